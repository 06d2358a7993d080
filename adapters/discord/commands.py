"""The slash commands, and the one button the bot answers. Each one defers (so no
interaction times out while core works), builds the :class:`~core.results.Caller`, calls one
core operation and renders its result.

Payment details, a member's own Spaces, wallet links and files are ephemeral: only the
member sees them. Wherever a Space is asked for, the member's own Spaces are offered.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import tempfile
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import discord
from discord import app_commands
from discord.app_commands import Choice

from adapters.discord import texts
from core.logging import get_logger, log_context
from core.money import display
from core.pipeline import imported
from core.results import Refused, Transcript
from core.service import catalog, imports, purchases
from core.service import chat as chat_service
from core.service import revenue as revenue_service
from core.service import wallet as wallet_service

if TYPE_CHECKING:
    from adapters.discord.bot import DiscordBot

Interaction = discord.Interaction[Any]
log = get_logger("spacescribe.discord")
F = TypeVar("F", bound=Callable[..., Any])
OPTIONS_MAX = 25  # Discord's limit on a command's options
SPACE = "X Space link or id (your Spaces are suggested)"
# Where the commands are offered (the tree's defaults): a server install and a user install
# (a member adds the app to their own account), in servers, the bot's DM and private
# channels, so a member can /transcribe anywhere without that server adding the bot.
INSTALLS = app_commands.AppInstallationType(guild=True, user=True)
CONTEXTS = app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=True)


def server_only(f: F) -> F:
    """An admin command is the server's: server install only, used in its servers only."""
    f = app_commands.allowed_installs(guilds=True, users=False)(f)
    return app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)(f)


def bot_of(interaction: Interaction) -> DiscordBot:
    return interaction.client.bot  # type: ignore[no-any-return]


async def send(interaction: Interaction, out: texts.Out, *, ephemeral: bool = True) -> None:
    """Answer, or follow up on a deferred answer."""
    if interaction.response.is_done():
        await interaction.followup.send(**out.kwargs(), ephemeral=ephemeral)
    else:
        await interaction.response.send_message(**out.kwargs(), ephemeral=ephemeral)


async def _run(
    interaction: Interaction,
    work: Callable[[DiscordBot], Awaitable[texts.Out]],
    *,
    ephemeral: bool = True,
) -> None:
    with log_context(interaction=interaction.id):  # on every log line of this command
        await interaction.response.defer(ephemeral=ephemeral, thinking=True)
        await send(interaction, await work(bot_of(interaction)), ephemeral=ephemeral)


async def own_spaces(interaction: Interaction, current: str) -> list[Choice[str]]:
    """Autocomplete: the caller's Spaces matching what they typed so far."""
    bot = bot_of(interaction)
    views = await catalog.owned_matching(bot.ctx, bot.caller(interaction), current)
    return [Choice(name=texts.choice(v), value=v.space_id) for v in views]


# ---------------------------------------------------------------- the commands


@app_commands.describe(space=SPACE)
async def transcribe(interaction: Interaction, space: str) -> None:
    async def work(bot: DiscordBot) -> texts.Out:
        caller = bot.caller(interaction)
        return texts.outcome(await purchases.request_transcription(bot.ctx, caller, space))

    await _run(interaction, work)


@app_commands.describe(space="A Space whose transcript you own")
async def unlock(interaction: Interaction, space: str) -> None:
    async def work(bot: DiscordBot) -> texts.Out:
        return texts.outcome(
            await purchases.request_unlock(bot.ctx, bot.caller(interaction), space)
        )

    await _run(interaction, work)


async def _chat(interaction: Interaction, question: str, **spaces: str | None) -> None:
    named = [s for s in spaces.values() if s]

    async def work(bot: DiscordBot) -> texts.Out:
        return texts.outcome(
            await chat_service.ask(bot.ctx, bot.caller(interaction), question, named)
        )

    await _run(interaction, work)


def chat_command(max_spaces: int) -> app_commands.Command[Any, ..., None]:
    """/chat with a question and ``space1`` … ``spaceN`` (N = ``chat.max_spaces``, within
    Discord's 25 options): a callback signature built for the configured maximum."""
    n = max(1, min(max_spaces, OPTIONS_MAX - 1))
    kw = inspect.Parameter.KEYWORD_ONLY
    params = [
        inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter("question", kw, annotation=str),
        inspect.Parameter("space1", kw, annotation=str),
    ]
    params += [
        inspect.Parameter(f"space{i}", kw, annotation=str | None, default=None)
        for i in range(2, n + 1)
    ]

    async def chat(interaction: Interaction, question: str, **spaces: str | None) -> None:
        await _chat(interaction, question, **spaces)

    chat.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    described = {f"space{i}": "Another of your unlocked Spaces" for i in range(2, n + 1)}
    app_commands.describe(
        question="What you want to know", space1="A Space you unlocked chat on", **described
    )(chat)
    cmd: app_commands.Command[Any, ..., None] = app_commands.Command(
        name="chat",
        description=f"Ask a question across up to {n} of your Spaces, with cited sources",
        callback=chat,
    )
    for i in range(1, n + 1):
        cmd.autocomplete(f"space{i}")(own_spaces)
    return cmd


@app_commands.describe(
    space="Pick one of your Spaces to get its transcript here",
    format="The file: md (default), json, srt or vtt subtitles",
)
@app_commands.choices(format=[Choice(name=f, value=f) for f in ("md", "json", "srt", "vtt")])
async def myspaces(
    interaction: Interaction,
    space: str | None = None,
    format: str | None = None,  # noqa: A002 (the option's public name)
) -> None:
    async def work(bot: DiscordBot) -> texts.Out:
        caller = bot.caller(interaction)
        if space:
            t = await catalog.transcript_for(bot.ctx, caller, space, format or "md")
            return texts.transcript(t) if isinstance(t, Transcript) else texts.refused(t)
        return texts.my_spaces(await catalog.my_spaces(bot.ctx, caller))

    await _run(interaction, work)


@app_commands.describe(space=SPACE)
async def status(interaction: Interaction, space: str) -> None:
    async def work(bot: DiscordBot) -> texts.Out:
        v = await catalog.status(bot.ctx, space)
        return texts.refused(v) if isinstance(v, Refused) else texts.status(v)

    await _run(interaction, work, ephemeral=False)


async def popular(interaction: Interaction) -> None:
    async def work(bot: DiscordBot) -> texts.Out:
        return texts.popular(await catalog.popular(bot.ctx))

    await _run(interaction, work, ephemeral=False)


@app_commands.describe(words="Words in titles or speaker names (and in your transcripts)")
async def search(interaction: Interaction, words: str) -> None:
    async def work(bot: DiscordBot) -> texts.Out:
        hits = await chat_service.search(bot.ctx, bot.caller(interaction), words)
        return texts.refused(hits) if isinstance(hits, Refused) else texts.search(hits)

    await _run(interaction, work)


async def wallet(interaction: Interaction) -> None:
    async def work(bot: DiscordBot) -> texts.Out:
        return texts.wallet(await wallet_service.wallet(bot.ctx, bot.caller(interaction)))

    await _run(interaction, work)


@app_commands.describe(period="Which period to sum (default: week)")
@app_commands.choices(period=[Choice(name=p, value=p) for p in revenue_service.PERIODS])
@app_commands.default_permissions(administrator=True)
@server_only
async def revenue(interaction: Interaction, period: str | None = None) -> None:
    async def work(bot: DiscordBot) -> texts.Out:
        rep = await revenue_service.report(bot.ctx, bot.caller(interaction), period or "week")
        return texts.refused(rep) if isinstance(rep, Refused) else texts.revenue(rep)

    await _run(interaction, work)


@app_commands.describe(
    space="The Space's link or id",
    attachment="Its recording: an audio file",
    title="The Space's title, if the bot does not know it yet",
)
@app_commands.default_permissions(administrator=True)
@server_only
async def import_(
    interaction: Interaction,
    space: str,
    attachment: discord.Attachment,
    title: str | None = None,
) -> None:
    """An admin's recording for a Space X cannot give: checked before it is fetched (admin,
    Space, size), then fetched to a temporary folder and imported."""

    async def work(bot: DiscordBot) -> texts.Out:
        caller = bot.caller(interaction)
        sid = await imports.precheck(bot.ctx, caller, space, force=False)
        if isinstance(sid, Refused):
            return texts.refused(sid)
        limits = imported.Limits.of(bot.ctx.settings.transcription)
        too_big = imported.size_problem(attachment.size, attachment.filename, limits)
        if too_big is not None:
            return texts.refused(too_big)
        with tempfile.TemporaryDirectory(prefix="spacescribe-dc-") as tmp:
            path = Path(tmp) / "recording"
            await attachment.save(path)
            meta = imports.Metadata(title=title.strip()[:300] if title and title.strip() else None)
            out = await imports.import_recording(
                bot.ctx, caller, sid, path, name=attachment.filename, meta=meta
            )
        return texts.refused(out) if isinstance(out, Refused) else texts.imported(out.summary())

    await _run(interaction, work)


async def help_(interaction: Interaction) -> None:
    p = bot_of(interaction).ctx.settings.prices
    text = texts.HELP.format(
        transcription=display(p.transcription),
        unlock=display(p.chat_unlock),
        chat_base=display(p.chat_base),
        per_space=display(p.chat_per_space),
    )
    await send(interaction, texts.Out(content=text))


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
        async def work(bot: DiscordBot) -> texts.Out:
            shown = await chat_service.answer_for(bot.ctx, bot.caller(interaction), self.answer_id)
            return texts.refused(shown) if isinstance(shown, Refused) else texts.answer(shown)

        try:
            await _run(interaction, work)
        except Exception as exc:  # discord.py would only log it: tell the member too
            log.error("discord button failed", interaction=interaction.id, error=repr(exc)[:300])
            with contextlib.suppress(discord.HTTPException):
                await send(interaction, texts.failure())


DESCRIPTIONS: dict[str, str] = {
    "transcribe": "Get the transcript of an X Space, sent to you by DM",
    "unlock": "Unlock AI chat on a Space you own",
    "myspaces": "Your Spaces; pick one to get its transcript here",
    "status": "Processing status of a Space",
    "popular": "The most bought Spaces",
    "search": "Search Space titles and speakers",
    "wallet": "Link your wallet and see your credit",
    "revenue": "Revenue by product, with a chart (admins)",
    "import": "Import a Space's recording X cannot give (admins)",
    "help": "What the bot does and what it costs",
}
CALLBACKS: dict[str, Callable[..., Coroutine[Any, Any, None]]] = {
    "transcribe": transcribe,
    "unlock": unlock,
    "myspaces": myspaces,
    "status": status,
    "popular": popular,
    "search": search,
    "wallet": wallet,
    "revenue": revenue,
    "import": import_,
    "help": help_,
}
ASKS_FOR_SPACE = ("transcribe", "unlock", "myspaces", "status")


def build(max_spaces: int) -> list[app_commands.Command[Any, ..., None]]:
    """Fresh command objects for one bot's tree."""
    out = []
    for name, callback in CALLBACKS.items():
        cmd: app_commands.Command[Any, ..., None] = app_commands.Command(
            name=name, description=DESCRIPTIONS[name], callback=callback
        )
        if name in ASKS_FOR_SPACE:
            cmd.autocomplete("space")(own_spaces)
        out.append(cmd)
    out.insert(2, chat_command(max_spaces))
    return out
