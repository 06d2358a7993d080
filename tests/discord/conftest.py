"""The Discord adapter's fixtures: the real discord.py client against the local stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord import texts
from adapters.discord.bot import DiscordBot
from core.context import Context
from core.pipeline.media import SpaceMeta
from core.results import Caller
from tests.chat.helpers import add_space, member, space_id_for
from tests.pipeline.conftest import speech  # noqa: F401 (a fixture: recordings /import gets)
from tests.stand_ins.discord_api import ADMIN_ROLE_ID, CHANNEL_ID, DiscordAPI, discord_api

ADMIN = 1  # a user id in discord.admin_ids
ANN, BOB = 7, 8
SEGMENTS = [
    {"start": 1.0, "end": 4.0, "speaker": "alice", "text": "Welcome to the weekly space."},
    {"start": 5.0, "end": 9.0, "speaker": "bob", "text": "The launch date is the ninth of May."},
]


class Recorded:
    """X at the pipeline's resolver seam: every Space is a finished recording."""

    async def resolve(self, space_id: str) -> SpaceMeta:
        return SpaceMeta(space_id, f"Recorded {space_id}", "alice", None, 60.0, False, True, "")


@pytest.fixture
def endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    """discord.py keeps its REST base and gateway on classes: restore them after the test."""
    monkeypatch.setattr(Route, "BASE", Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)


@asynccontextmanager
async def started(bot: DiscordBot) -> AsyncIterator[DiscordBot]:
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()
        assert "discord" not in bot.ctx.wiring.bots()  # a stopped bot leaves readiness alone


@asynccontextmanager
async def running(ctx: Context, **discord: Any) -> AsyncIterator[tuple[DiscordAPI, DiscordBot]]:
    """The stand-in, and a bot started against it (REST base and gateway from config)."""
    async with discord_api() as api:
        ctx.settings.discord.api_url = api.api_url
        ctx.settings.discord.admin_ids = [ADMIN]
        ctx.settings.discord.admin_role_ids = [ADMIN_ROLE_ID]
        for key, value in discord.items():
            setattr(ctx.settings.discord, key, value)
        async with started(DiscordBot(ctx, api.token)) as bot:
            yield api, bot
        # no command may have failed unnoticed: the error handler's reply would show it
        failed = texts.failure().content
        said = [r.text for it in api.interactions.values() for r in it.replies]
        assert failed not in said, "a command failed; see the captured log"


@pytest.fixture
async def dc(ctx: Context, endpoints: None) -> AsyncIterator[tuple[DiscordAPI, DiscordBot]]:
    ctx.settings.payments.pay_to = "0x" + "22" * 20
    ctx.wiring.resolver = Recorded()
    async with running(ctx) as pair:
        yield pair


async def owned_space(
    ctx: Context,
    i: int,
    user: int,
    *,
    title: str | None = None,
    unlocked: bool = False,
    transcript: str = "# Weekly\n\n[00:00:01] alice: Welcome to the weekly space.\n",
) -> str:
    """A completed, indexed Space with its transcript.md, bought by Discord user ``user``."""
    pk = await add_space(ctx, i, SEGMENTS, title=title, participants=["alice", "bob"])
    caller = Caller("discord", str(user), chat_id=str(CHANNEL_ID))
    await member(ctx, f"u{user}", owns=[pk], unlocked=[pk] if unlocked else [], caller=caller)
    sid = space_id_for(i)
    path = ctx.spaces_dir / sid / "transcript.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(transcript)
    return sid
