"""The Discord bot: a discord.py client whose slash commands are one cog
(:class:`~adapters.discord.commands.Commands`), talking to Discord, or to ``discord.api_url``
through this client only (:mod:`adapters.discord.endpoints`).

Only the non-privileged ``guilds`` intent is asked for: slash commands need no message
content, and the guild cache gives the roles that may use /revenue. Commands are synced
globally, or to ``discord.guild_ids`` at once (development). Outbound messages are
delivered by :class:`~adapters.discord.sender.DiscordSender` from the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import discord
import yarl
from discord import app_commands
from discord.ext.commands import Bot, when_mentioned
from discord.state import ConnectionState
from discord.webhook.async_ import async_context

from adapters.discord import commands, replies
from adapters.discord.endpoints import Endpoints, RebasedHTTPClient, RebasedWebhooks
from adapters.discord.sender import DiscordSender
from core.context import Context
from core.errors import ConfigError
from core.logging import get_logger
from core.results import Caller

log = get_logger("spacescribe.discord")

CONNECT_WAIT_SECONDS = 30.0  # start() waits this long for the gateway, then goes on
RATE_LIMIT_WAIT_SECONDS = 30.0  # longer 429 waits are left to the outbox's retry


def intents() -> discord.Intents:
    wanted = discord.Intents.none()
    wanted.guilds = True  # roles and channels of the servers the bot is in; not privileged
    return wanted


class Tree(app_commands.CommandTree["SpacescribeClient"]):
    async def on_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        """The cog answers its commands' failures (:meth:`Commands.cog_app_command_error`);
        this answers the rest: a command Discord still offers that the bot no longer has."""
        if interaction.command is not None:
            return  # the cog's
        if interaction.type is discord.InteractionType.application_command:
            await replies.failed(interaction, error)
        else:  # an autocomplete: there is no answer to give
            log.error("discord command failed", command=None, error=repr(error)[:300])


class SpacescribeClient(Bot):
    """discord.py's Bot, for its cogs: the slash commands are one cog. No prefix commands
    (no message content is asked for), so no help command either."""

    def __init__(self, bot: DiscordBot) -> None:
        # the bot never joins voice channels: no warning about voice libraries
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        self.endpoints = Endpoints(bot.ctx.settings.discord.api_url)
        super().__init__(
            command_prefix=when_mentioned,
            help_command=None,
            tree_cls=Tree,
            allowed_installs=commands.INSTALLS,
            allowed_contexts=commands.CONTEXTS,
            intents=intents(),
            allowed_mentions=discord.AllowedMentions.none(),
            max_ratelimit_timeout=RATE_LIMIT_WAIT_SECONDS,
        )
        self.bot = bot
        self.gateway_up = asyncio.Event()

    def _get_state(self, **options: Any) -> ConnectionState[Any]:
        # discord.Client's hook for its connection state, which (like the command tree after
        # it) keeps the client's HTTP client: ours is put in place first
        self.http = RebasedHTTPClient(
            self.loop, self.endpoints, max_ratelimit_timeout=self.http.max_ratelimit_timeout
        )
        return super()._get_state(**options)

    async def connect(self, *, reconnect: bool = True) -> None:
        # interaction responses go through discord.py's webhook adapter, a context variable:
        # set in this (the gateway's) task, it is this client's interactions' only
        async_context.set(RebasedWebhooks(self.endpoints))
        await super().connect(reconnect=reconnect)

    async def setup_hook(self) -> None:
        await self.add_cog(commands.Commands(self.bot))
        await self.bot.sync_commands()

    async def on_connect(self) -> None:
        self.bot.ctx.wiring.set_connected("discord", True)
        self.gateway_up.set()

    async def on_resumed(self) -> None:
        self.bot.ctx.wiring.set_connected("discord", True)

    async def on_disconnect(self) -> None:
        self.bot.ctx.wiring.set_connected("discord", False)


class DiscordBot:
    name = "discord"

    def __init__(self, ctx: Context, token: str) -> None:
        self.ctx = ctx
        self._token = token
        self.client = SpacescribeClient(self)
        max_spaces = ctx.settings.chat.max_spaces
        if max_spaces > commands.OPTIONS_MAX - 1:
            log.warning(
                "discord /chat names at most 24 Spaces (Discord allows 25 options)",
                configured=max_spaces,
            )
        self.client.add_dynamic_items(commands.AnswerButton)  # presses of earlier messages too
        self.sender = DiscordSender(self)
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        try:
            await self.client.login(self._token)  # REST: who we are; setup_hook syncs commands
        except discord.LoginFailure as exc:
            await self.client.close()
            raise ConfigError(
                "DISCORD_TOKEN was refused by Discord (401): copy the token again from "
                "Bot → Reset Token in the Developer Portal"
            ) from exc
        if self.client.endpoints.api:  # its gateway, for this client only
            _shards, gateway, _limits = await self.client.http.get_bot_gateway()
            self.client.endpoints.gateway = yarl.URL(gateway)
        self._task = asyncio.create_task(self.client.connect(), name="discord-gateway")
        self._task.add_done_callback(_gateway_ended)
        waiter = asyncio.create_task(self.client.gateway_up.wait())
        await asyncio.wait(
            {waiter, self._task}, timeout=CONNECT_WAIT_SECONDS, return_when="FIRST_COMPLETED"
        )
        waiter.cancel()
        if self._task.done():
            self._task.result()  # the gateway refused us (bad token, intents): say why
        if not self.client.gateway_up.is_set():
            log.warning("discord gateway not connected yet; retrying in the background")
        self.ctx.wiring.add_sender(self.sender)
        server, user = invite_links(self.client.application_id or 0)
        log.info(
            "discord bot started",
            user=str(self.client.user),
            commands=len(self.client.tree.get_commands()),
            server_install=server,
            user_install=user,
        )

    async def stop(self) -> None:
        self.ctx.wiring.remove_sender("discord")
        await self.client.close()
        if self._task is not None:
            # after an outage the gateway task may be sleeping out a reconnect backoff
            # (up to many minutes): closed, it has nothing left to do
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, discord.DiscordException):
                await self._task
        self.ctx.wiring.forget("discord")  # last: closing dispatches a disconnect that would set it

    async def sync_commands(self) -> None:
        """Global sync (Discord may take a while to show changes), or per configured guild."""
        guilds = self.ctx.settings.discord.guild_ids
        tree = self.client.tree
        if not guilds:
            synced = await tree.sync()
            log.info("discord commands synced", scope="global", count=len(synced))
            return
        for gid in guilds:
            guild = discord.Object(gid)
            tree.copy_global_to(guild=guild)
            synced = await tree.sync(guild=guild)
            log.info("discord commands synced", scope=f"guild {gid}", count=len(synced))

    # ------------------------------------------------------------ helpers

    def caller(self, interaction: discord.Interaction[Any]) -> Caller:
        user = interaction.user
        cfg = self.ctx.settings.discord
        # the bot can post in a server's channel (and knows its roles) only where the server
        # installed it; a member's user install used elsewhere answers by interaction and DM
        ours = interaction.is_guild_integration()
        by_role = (
            ours
            and isinstance(user, discord.Member)
            and any(user.get_role(rid) is not None for rid in cfg.admin_role_ids)
        )
        in_guild = interaction.guild_id is not None
        return Caller(
            "discord",
            str(user.id),
            user.name,
            # where to tell the member when a DM cannot be delivered (a DM has no elsewhere)
            str(interaction.channel_id) if ours and interaction.channel_id else None,
            is_admin=user.id in cfg.admin_ids or by_role,
            back=(("guild_id", str(interaction.guild_id)),) if in_guild else (),
        )


INVITE = "https://discord.com/oauth2/authorize?client_id={app}&"
SERVER_PERMISSIONS = 51200  # Send Messages, Embed Links, Attach Files: the DM-closed notice


def invite_links(application_id: int) -> tuple[str, str]:
    """The two ways to add the app: to a server (the bot joins; every command, /revenue and
    /import for its admins) and to one's own account (commands anywhere, no bot user)."""
    base = INVITE.format(app=application_id)
    server = f"{base}scope=bot+applications.commands&permissions={SERVER_PERMISSIONS}"
    return f"{server}&integration_type=0", f"{base}scope=applications.commands&integration_type=1"


def _gateway_ended(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("discord gateway stopped", error=repr(task.exception())[:300])
