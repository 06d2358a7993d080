"""The Telegram adapter's fixtures, and the recorded Space the scenarios buy: the pipeline's
speech served as HLS."""

from collections.abc import AsyncIterator

import pytest

from adapters.telegram.bot import TelegramBot
from core.context import Context
from core.pipeline.media import SpaceMeta
from tests.pipeline.conftest import hls_root, hls_url, speech  # noqa: F401
from tests.stand_ins.telegram_api import BotAPI, bot_api


class Recorded:
    async def resolve(self, space_id: str) -> SpaceMeta:
        return SpaceMeta(space_id, "Recorded Space", "alice", None, 60.0, False, True, "")


@pytest.fixture
async def tg(ctx: Context) -> AsyncIterator[tuple[BotAPI, TelegramBot]]:
    """The real python-telegram-bot, long polling the Bot API stand-in."""
    ctx.wiring.resolver = Recorded()
    ctx.settings.payments.pay_to = "0x" + "22" * 20
    async with bot_api() as api:
        ctx.settings.telegram.base_url = api.url
        ctx.settings.telegram.admin_ids = [1]
        bot = TelegramBot(ctx, api.token)
        await bot.start()
        try:
            yield api, bot
        finally:
            await bot.stop()
