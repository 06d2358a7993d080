"""The commands cog's interaction_check: every log line of a command names its interaction,
and nothing of it is left on the log lines of the next one."""

from __future__ import annotations

from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from adapters.discord.bot import DiscordBot
from core.context import Context
from core.logging import get_logger
from core.service import catalog
from tests.stand_ins.discord_api import DiscordAPI

log = get_logger("test")


async def test_each_commands_log_lines_name_its_interaction(
    ctx: Context, dc: tuple[DiscordAPI, DiscordBot], monkeypatch: pytest.MonkeyPatch
) -> None:
    api, _ = dc
    popular = catalog.popular

    async def noisy(c: Context) -> Any:
        log.info("inside the command")
        return await popular(c)

    monkeypatch.setattr(catalog, "popular", noisy)
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        first = await api.interact("popular")
        await api.reply(first)
        second = await api.interact("popular")
        await api.reply(second)
    inside = [e.get("interaction") for e in logs if e["event"] == "inside the command"]
    assert inside == [first.id, second.id]
    assert structlog.contextvars.get_contextvars() == {}  # nothing leaks into the test's task
