"""An admin imports a recording in Telegram: a file captioned ``/import <space>``, through
python-telegram-bot against the Bot API stand-in (``getFile`` and the file download).

A member waiting on the Space gets the transcript once; members who are not admins are
refused before the file is fetched; a bad file is refused and leaves nothing behind.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from core.context import Context
from core.db import Space
from core.worker import Worker
from tests.chat.helpers import member
from tests.pipeline.test_import import SID, NoX, _waiting_space
from tests.snapshot import snapshot
from tests.stand_ins.audio import ffmpeg
from tests.stand_ins.telegram_api import BotAPI, bot_api
from tests.telegram.test_scenarios import drain, running

ADMIN, MEMBER = 99, 7


@pytest.fixture
async def api(ctx: Context) -> AsyncIterator[BotAPI]:
    ctx.settings.telegram.admin_ids = [ADMIN]
    ctx.settings.transcription.backend = "offline"
    ctx.settings.transcription.chunk_seconds = 30
    ctx.wiring.resolver = NoX()
    async with bot_api() as a:
        bot = await running(ctx, a)
        try:
            yield a
        finally:
            await bot.stop()


@pytest.fixture(scope="module")
def m4a(speech: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("tg-import") / "talk.m4a"
    ffmpeg("-i", str(speech), "-c:a", "aac", "-b:a", "48k", str(out))
    return out.read_bytes()


async def _said_to(api: BotAPI, chat: int, n: int) -> str:
    msgs = await api.wait_for("sendMessage", n + 1)
    return html.unescape(str([m for m in msgs[n:] if m["chat_id"] == chat][-1]["text"]))


async def test_admin_import_serves_the_waiting_member_once(
    ctx: Context, api: BotAPI, m4a: bytes
) -> None:
    pk = await _waiting_space(ctx, "waiting", payers=())
    await member(ctx, "tg7", owns=[pk], platform_user_id=str(MEMBER))
    n = len(api.sent("sendMessage"))
    api.upload(m4a, f"/import https://x.com/i/spaces/{SID}", ADMIN, kind="audio")
    said = await _said_to(api, ADMIN, n)
    assert "Imported" in said and SID in said and "1 payer(s)" in said, said
    assert api.downloads == [f"documents/{api.sent('getFile')[0]['file_id']}"]
    assert await Worker(ctx, worker_id="w").run_space(SID)
    async with ctx.db.session() as s:
        row = (await s.execute(select(Space))).scalar_one()
    assert row.status == "completed", row.error_message
    await drain(ctx)
    docs = [d for d in api.sent("sendDocument") if d["chat_id"] == MEMBER]
    assert len(docs) == 1 and "weather" in docs[0]["document"]["content"].lower()
    assert await drain(ctx) == 0 and len(api.sent("sendDocument")) == 1  # once


async def test_members_are_refused_before_the_file_is_fetched(
    ctx: Context, api: BotAPI, m4a: bytes
) -> None:
    before = await snapshot(ctx)
    n = len(api.sent("sendMessage"))
    api.upload(m4a, f"/import {SID}", MEMBER)
    said = await _said_to(api, MEMBER, n)
    assert "Only the bot's admins can import recordings" in said, said
    api.command(f"/import {SID}", user_id=MEMBER)
    assert "Only the bot's admins" in await _said_to(api, MEMBER, n + 1)
    assert api.sent("getFile") == [] and api.downloads == []
    assert await snapshot(ctx) == before


async def test_admin_without_a_file_is_told_how(ctx: Context, api: BotAPI) -> None:
    api.command(f"/import {SID}", user_id=ADMIN)
    said = await _said_to(api, ADMIN, 0)
    assert "caption" in said and "/import" in said, said


@pytest.mark.parametrize(
    "case",
    ["not audio", "too big (announced)", "bad space", "empty"],
)
async def test_bad_uploads_are_refused_and_leave_nothing(
    ctx: Context, api: BotAPI, m4a: bytes, case: str
) -> None:
    before = await snapshot(ctx)
    caption, content, kw = f"/import {SID}", m4a, {}
    if case == "not audio":
        content, kw = b"just some notes\n" * 100, {"file_name": "notes.txt"}
    if case == "too big (announced)":
        ctx.settings.transcription.import_max_mb = 1
        kw = {"file_size": 2_000_000}
    if case == "bad space":
        caption = "/import https://evil.com/i/spaces/1IMPORT000001"
    if case == "empty":
        content = b""
    api.upload(content, caption, ADMIN, **kw)
    said = await _said_to(api, ADMIN, 0)
    expect = {
        "not audio": "notes.txt holds no audio stream",
        "too big (announced)": "recording.m4a is 2.0 MB; an imported recording may be at most",
        "bad space": "Only X (Twitter) Space links",
        "empty": "recording.m4a is empty",
    }[case]
    assert expect in said, said
    fetched = case == "not audio"  # the others are refused before anything is fetched
    assert bool(api.downloads) == fetched
    assert await snapshot(ctx) == before
