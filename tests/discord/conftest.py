"""The Discord adapter's fixtures: the real discord.py client against the local stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord.bot import DiscordBot
from core.context import Context
from core.pipeline import media
from core.pipeline.media import SpaceMeta
from tests.stand_ins.discord_api import ADMIN_ROLE_ID, DiscordAPI, discord_api

ADMIN = 1


class Recorded:
    """X at the pipeline's resolver seam: every Space is a finished recording."""

    async def resolve(self, space_id: str) -> SpaceMeta:
        return SpaceMeta(space_id, f"Recorded {space_id}", "alice", None, 60.0, False, True, "")


@pytest.fixture
def endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    """discord.py keeps its REST base and gateway on classes: restore them after the test."""
    monkeypatch.setattr(Route, "BASE", Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)


async def start_bot(ctx: Context, api: DiscordAPI, **discord: Any) -> DiscordBot:
    ctx.settings.discord.api_url = api.api_url
    ctx.settings.discord.admin_ids = [ADMIN]
    ctx.settings.discord.admin_role_ids = [ADMIN_ROLE_ID]
    for key, value in discord.items():
        setattr(ctx.settings.discord, key, value)
    bot = DiscordBot(ctx, api.token)
    await bot.start()
    return bot


@pytest.fixture
async def dc(ctx: Context, endpoints: None) -> AsyncIterator[tuple[DiscordAPI, DiscordBot]]:
    if ctx.settings.payments.pay_to == "":
        ctx.settings.payments.pay_to = "0x" + "22" * 20
    media.use_resolver(Recorded())
    async with discord_api() as api:
        bot = await start_bot(ctx, api)
        try:
            yield api, bot
        finally:
            await bot.stop()
            media.use_resolver(None)
