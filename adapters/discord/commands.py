"""The slash commands, one :class:`Commands` cog, and the one button the bot answers. Each
command defers (so no interaction times out while core works), builds the
:class:`~core.results.Caller`, calls one core operation and renders its result. The cog's
:meth:`~Commands.interaction_check` runs before every command and its
:meth:`~Commands.cog_app_command_error` handles every command's failure.

Payment details, a member's own Spaces, wallet links and files are ephemeral: only the
member sees them. Wherever a Space is asked for, the member's own Spaces are offered.
"""

from __future__ import annotations

import functools
import inspect
import re
import tempfile
import types
from pathlib import Path
from typing import Any

import discord
from discord import app_commands
from discord.app_commands import Choice
from discord.ext import commands

from adapters.discord import texts
from adapters.discord.replies import Host, Interaction, failed, host_of, send, thinking
from core.context import Context
from core.logging import bind_log_context, log_context
from core.money import display
from core.pipeline import imported
from core.results import Caller, Refused, Transcript
from core.service import catalog, imports, purchases
from core.service import chat as chat_service
from core.service import revenue as revenue_service
from core.service import wallet as wallet_service

OPTIONS_MAX = 25  # Discord's limit on a command's options
SPACE = "X Space link or id (your Spaces are suggested)"
# Where the commands are offered (the tree's defaults): a server install and a user install
# (a member adds the app to their own account), in servers, the bot's DM and private
# channels, so a member can /transcribe anywhere without that server adding the bot.
INSTALLS = app_commands.AppInstallationType(guild=True, user=True)
CONTEXTS = app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=True)
# An admin command is the server's: server install only, used in its servers only.
server_install = app_commands.allowed_installs(guilds=True, users=False)
in_servers = app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
FORMATS = [Choice(name=f, value=f) for f in ("md", "json", "srt", "vtt")]
PERIODS = [Choice(name=p, value=p) for p in revenue_service.PERIODS]


class Commands(commands.Cog):
    """Every slash command of the bot. ``/chat`` names as many Spaces as ``chat.max_spaces``
    (within Discord's limit), so it is built per bot (:func:`chat_command`) and added here."""

    def __init__(self, host: Host) -> None:
        self.host = host
        chat = chat_command(host.ctx.settings.chat.max_spaces, self)
        # a cog's app commands, which add_cog puts on the tree: /chat after /unlock, as ever
        self.__cog_app_commands__.insert(2, chat)

    @property
    def ctx(self) -> Context:
        return self.host.ctx

    def caller(self, interaction: Interaction) -> Caller:
        return self.host.caller(interaction)

    async def interaction_check(self, interaction: Interaction, /) -> bool:  # type: ignore[override]
        """Before every command: each log line of the command (its failure too) names the
        interaction. The task running it is the interaction's own, so nothing leaks."""
        bind_log_context(interaction=interaction.id)
        return True

    async def cog_app_command_error(  # type: ignore[override]
        self, interaction: Interaction, error: app_commands.AppCommandError
    ) -> None:
        """A command failed: log it with context, tell the member nothing was charged."""
        await failed(interaction, error)

    async def own_spaces(self, interaction: Interaction, current: str) -> list[Choice[str]]:
        """Autocomplete: the caller's Spaces matching what they typed so far."""
        views = await catalog.owned_matching(self.ctx, self.caller(interaction), current)
        return [Choice(name=texts.choice(v), value=v.space_id) for v in views]

    # ------------------------------------------------------------ the commands

    @app_commands.command(description="Get the transcript of an X Space, sent to you by DM")
    @app_commands.describe(space=SPACE)
    @app_commands.autocomplete(space=own_spaces)
    async def transcribe(self, interaction: Interaction, space: str) -> None:
        await thinking(interaction)
        got = await purchases.request_transcription(self.ctx, self.caller(interaction), space)
        await send(interaction, texts.outcome(got))

    @app_commands.command(description="Unlock AI chat on a Space you own")
    @app_commands.describe(space="A Space whose transcript you own")
    @app_commands.autocomplete(space=own_spaces)
    async def unlock(self, interaction: Interaction, space: str) -> None:
        await thinking(interaction)
        got = await purchases.request_unlock(self.ctx, self.caller(interaction), space)
        await send(interaction, texts.outcome(got))

    async def chat(self, interaction: Interaction, question: str, **spaces: str | None) -> None:
        """/chat (see :func:`chat_command`): a question across the Spaces named."""
        await thinking(interaction)
        named = [s for s in spaces.values() if s]
        got = await chat_service.ask(self.ctx, self.caller(interaction), question, named)
        await send(interaction, texts.outcome(got))

    @app_commands.command(description="Your Spaces; pick one to get its transcript here")
    @app_commands.describe(
        space="Pick one of your Spaces to get its transcript here",
        format="The file: md (default), json, srt or vtt subtitles",
    )
    @app_commands.choices(format=FORMATS)
    @app_commands.autocomplete(space=own_spaces)
    async def myspaces(
        self,
        interaction: Interaction,
        space: str | None = None,
        format: str | None = None,  # noqa: A002 (the option's public name)
    ) -> None:
        await thinking(interaction)
        caller = self.caller(interaction)
        if space:
            t = await catalog.transcript_for(self.ctx, caller, space, format or "md")
            out = texts.transcript(t) if isinstance(t, Transcript) else texts.refused(t)
        else:
            out = texts.my_spaces(await catalog.my_spaces(self.ctx, caller))
        await send(interaction, out)

    @app_commands.command(description="Processing status of a Space")
    @app_commands.describe(space=SPACE)
    @app_commands.autocomplete(space=own_spaces)
    async def status(self, interaction: Interaction, space: str) -> None:
        await thinking(interaction, ephemeral=False)
        v = await catalog.status(self.ctx, space)
        out = texts.refused(v) if isinstance(v, Refused) else texts.status(v)
        await send(interaction, out, ephemeral=False)

    @app_commands.command(description="The most bought Spaces")
    async def popular(self, interaction: Interaction) -> None:
        await thinking(interaction, ephemeral=False)
        await send(interaction, texts.popular(await catalog.popular(self.ctx)), ephemeral=False)

    @app_commands.command(description="Search Space titles and speakers")
    @app_commands.describe(words="Words in titles or speaker names (and in your transcripts)")
    async def search(self, interaction: Interaction, words: str) -> None:
        await thinking(interaction)
        hits = await chat_service.search(self.ctx, self.caller(interaction), words)
        await send(
            interaction, texts.refused(hits) if isinstance(hits, Refused) else texts.search(hits)
        )

    @app_commands.command(description="Link your wallet and see your credit")
    async def wallet(self, interaction: Interaction) -> None:
        await thinking(interaction)
        got = await wallet_service.wallet(self.ctx, self.caller(interaction))
        await send(interaction, texts.wallet(got))

    @app_commands.command(description="Revenue by product, with a chart (admins)")
    @app_commands.describe(period="Which period to sum (default: week)")
    @app_commands.choices(period=PERIODS)
    @app_commands.default_permissions(administrator=True)
    @server_install
    @in_servers
    async def revenue(self, interaction: Interaction, period: str | None = None) -> None:
        await thinking(interaction)
        rep = await revenue_service.report(self.ctx, self.caller(interaction), period or "week")
        await send(
            interaction, texts.refused(rep) if isinstance(rep, Refused) else texts.revenue(rep)
        )

    @app_commands.command(
        name="import", description="Import a Space's recording X cannot give (admins)"
    )
    @app_commands.describe(
        space="The Space's link or id",
        attachment="Its recording: an audio file",
        title="The Space's title, if the bot does not know it yet",
    )
    @app_commands.default_permissions(administrator=True)
    @server_install
    @in_servers
    async def import_(
        self,
        interaction: Interaction,
        space: str,
        attachment: discord.Attachment,
        title: str | None = None,
    ) -> None:
        """An admin's recording for a Space X cannot give: checked before it is fetched (admin,
        Space, size), then fetched to a temporary folder and imported."""
        await thinking(interaction)
        await send(interaction, await self._import(interaction, space, attachment, title))

    async def _import(
        self,
        interaction: Interaction,
        space: str,
        attachment: discord.Attachment,
        title: str | None,
    ) -> texts.Out:
        caller = self.caller(interaction)
        sid = await imports.precheck(self.ctx, caller, space, force=False)
        if isinstance(sid, Refused):
            return texts.refused(sid)
        limits = imported.Limits.of(self.ctx.settings.transcription)
        too_big = imported.size_problem(attachment.size, attachment.filename, limits)
        if too_big is not None:
            return texts.refused(too_big)
        with tempfile.TemporaryDirectory(prefix="spacescribe-dc-") as tmp:
            path = Path(tmp) / "recording"
            await attachment.save(path)
            meta = imports.Metadata(title=title.strip()[:300] if title and title.strip() else None)
            out = await imports.import_recording(
                self.ctx, caller, sid, path, name=attachment.filename, meta=meta
            )
        return texts.refused(out) if isinstance(out, Refused) else texts.imported(out.summary())

    @app_commands.command(name="help", description="What the bot does and what it costs")
    async def help_(self, interaction: Interaction) -> None:
        p = self.ctx.settings.prices
        text = texts.HELP.format(
            transcription=display(p.transcription),
            unlock=display(p.chat_unlock),
            chat_base=display(p.chat_base),
            per_space=display(p.chat_per_space),
        )
        await send(interaction, texts.Out(content=text))


def chat_command(
    max_spaces: int, cog: Commands | None = None
) -> app_commands.Command[Any, ..., None]:
    """/chat with a question and ``space1`` … ``spaceN`` (N = ``chat.max_spaces``, within
    Discord's 25 options): :meth:`Commands.chat` with a signature built for the configured
    maximum, bound to ``cog`` (unbound, like a command in a class body, it only describes)."""
    n = max(1, min(max_spaces, OPTIONS_MAX - 1))
    positional, kw = inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY
    params = [
        inspect.Parameter("self", positional),
        inspect.Parameter("interaction", positional),
        inspect.Parameter("question", kw, annotation=str),
        inspect.Parameter("space1", kw, annotation=str),
    ]
    params += [
        inspect.Parameter(f"space{i}", kw, annotation=str | None, default=None)
        for i in range(2, n + 1)
    ]

    @functools.wraps(Commands.chat)  # its name: a method of the cog, called with the cog
    async def chat(
        self: Commands, interaction: Interaction, question: str, **spaces: str | None
    ) -> None:
        await Commands.chat(self, interaction, question, **spaces)

    chat.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    described = {f"space{i}": "Another of your unlocked Spaces" for i in range(2, n + 1)}
    app_commands.describe(
        question="What you want to know", space1="A Space you unlocked chat on", **described
    )(chat)
    cmd: app_commands.Command[Any, ..., None] = app_commands.Command(
        name="chat",
        description=f"Ask a question across up to {n} of your Spaces, with cited sources",
        callback=chat if cog is None else types.MethodType(chat, cog),
    )
    for i in range(1, n + 1):
        cmd.autocomplete(f"space{i}")(Commands.own_spaces)
    return cmd


class AnswerButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=re.compile(r"answer:(?P<id>.*)", re.S),
):
    """The button under the channel notice of a paid answer whose DM was refused.

    Persistent: its custom_id carries the answer's id, so it works for as long as the message
    exists, across restarts. Whoever presses it gets an ephemeral reply: the answer if they
    paid for it, else core's refusal (core checks the id and the buyer).
    """

    def __init__(self, answer_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label=texts.SHOW_ANSWER,
                style=discord.ButtonStyle.primary,
                custom_id=f"answer:{answer_id}"[:100],  # Discord's limit; core refuses the rest
            )
        )
        self.answer_id = answer_id

    @classmethod
    async def from_custom_id(
        cls, interaction: Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> AnswerButton:
        return cls(match["id"])

    async def callback(self, interaction: Interaction) -> None:
        host = host_of(interaction)
        try:
            with log_context(interaction=interaction.id):
                await thinking(interaction)
                shown = await chat_service.answer_for(
                    host.ctx, host.caller(interaction), self.answer_id
                )
                out = texts.refused(shown) if isinstance(shown, Refused) else texts.answer(shown)
                await send(interaction, out)
        except Exception as exc:  # discord.py would only log it: tell the member too
            await failed(interaction, exc, what="button")
