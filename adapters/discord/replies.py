"""What the commands, the button and the sender share: the bot as they see it, answering an
interaction, and the one way a failure is told.

It imports neither the bot nor the commands nor the sender (they import it), so the Discord
adapter's modules have no import cycle: bot → commands, sender → replies.
"""

from __future__ import annotations

from typing import Any, Protocol

import discord

from adapters.discord import texts
from core.context import Context
from core.logging import get_logger
from core.results import Caller

Interaction = discord.Interaction[Any]
log = get_logger("spacescribe.discord")


class Host(Protocol):
    """The bot, as its commands and sender use it (:class:`~adapters.discord.bot.DiscordBot`)."""

    @property
    def ctx(self) -> Context: ...

    @property
    def client(self) -> discord.Client: ...

    def caller(self, interaction: Interaction) -> Caller: ...


def host_of(interaction: Interaction) -> Host:
    """The bot an interaction came to (its client carries it)."""
    return interaction.client.bot  # type: ignore[attr-defined,no-any-return]


async def thinking(interaction: Interaction, *, ephemeral: bool = True) -> None:
    """Defer the answer, so no interaction times out while core works."""
    await interaction.response.defer(ephemeral=ephemeral, thinking=True)


async def send(interaction: Interaction, out: texts.Out, *, ephemeral: bool = True) -> None:
    """Answer, or follow up on a deferred answer."""
    if interaction.response.is_done():
        await interaction.followup.send(**out.kwargs(), ephemeral=ephemeral)
    else:
        await interaction.response.send_message(**out.kwargs(), ephemeral=ephemeral)


async def failed(interaction: Interaction, error: BaseException, *, what: str = "command") -> None:
    """A command or the button failed: log it with context, tell the member nothing was
    charged (if the answer can still reach them)."""
    name = interaction.command.name if interaction.command else None
    log.error(
        f"discord {what} failed", command=name, interaction=interaction.id, error=repr(error)[:300]
    )
    try:
        await send(interaction, texts.failure())
    except discord.HTTPException as exc:  # e.g. the interaction expired meanwhile
        log.warning("discord failure notice not sent", error=repr(exc)[:300])
