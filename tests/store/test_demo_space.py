"""The demo Space of test mode: real espeak-ng voices, real ffmpeg, imported through the
operator's import path, transcribed by the worker with the offline backend (faster-whisper
tiny.en); made once; never in live mode. On both engines."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select

from core.context import Context
from core.db import ProcessingJob, Space
from core.pipeline.ffmpeg import _header as ffmpeg_header
from core.pipeline.ffmpeg import probe_duration
from core.pipeline.storage import SpaceFiles
from core.results import Refused
from core.service.demo_space import (
    DEMO_SPACE_ID,
    DEMO_TITLE,
    SCRIPT,
    DemoSpace,
    ensure_demo_space,
    synthesize,
)
from core.worker import Worker
from tests.pipeline.test_import import NoX, no_x  # noqa: F401 (fixture)


async def _jobs(ctx: Context) -> int:
    async with ctx.db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(ProcessingJob)) or 0)


async def test_the_conversation_has_several_voices(tmp_path: Path) -> None:
    audio = await synthesize(tmp_path)
    header = await ffmpeg_header(audio)
    assert b"16000 Hz, mono" in header, header
    assert 30 < await probe_duration(audio) < 90
    assert len({voice for voice, _ in SCRIPT}) >= 3


async def test_made_once_transcribed_offline_and_labelled(
    ctx: Context,
    no_x: NoX,  # noqa: F811
) -> None:
    ctx.settings.transcription.backend = "offline"
    assert ctx.settings.payments.test_mode  # no pay_to: test mode
    made = await ensure_demo_space(ctx)
    assert made == DemoSpace(DEMO_SPACE_ID, "pending", True)
    assert await Worker(ctx, worker_id="w").run_space(DEMO_SPACE_ID)
    async with ctx.db.session() as s:
        row = (await s.execute(select(Space).where(Space.space_id == DEMO_SPACE_ID))).scalar_one()
    assert row.status == "completed", row.error_message
    assert row.title == DEMO_TITLE and "demo" in row.title.lower()
    files = SpaceFiles.of(ctx.spaces_dir, DEMO_SPACE_ID)
    text = files.markdown.read_text().lower()
    # the real pipeline heard them
    for word in ("lighthouse", "sourdough bread", "storm", "rust", "chain dry"):
        assert word in text, (word, text)
    assert json.loads(files.json.read_text())["segments"]
    # a second start finds it: nothing made, nothing queued
    jobs = await _jobs(ctx)
    again = await ensure_demo_space(ctx)
    assert again == DemoSpace(DEMO_SPACE_ID, "completed", False)
    assert await _jobs(ctx) == jobs
    assert no_x.calls == []


async def test_never_in_live_mode(ctx: Context) -> None:
    ctx.settings.payments.mode = "live"
    ctx.settings.payments.pay_to = "0x" + "ab" * 20
    assert not ctx.settings.payments.test_mode
    out = await ensure_demo_space(ctx)
    assert isinstance(out, Refused) and out.code == "live_mode"
    async with ctx.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Space)) == 0
