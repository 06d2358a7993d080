"""The processing job enriches what it completes: offline on real speech, and a failing
summary model never fails the transcript (delivered anyway, the enrichment retried later)."""

from __future__ import annotations

import io
import json

import srt
import webvtt
from sqlalchemy import select

from core import accounts, transcripts
from core.context import Context
from core.db import Outbox, Space, SpaceEnrichment, TranscriptionPayment
from core.results import Caller
from core.worker import Worker
from tests.pipeline.conftest import LocalResolver
from tests.pipeline.test_pipeline import SID, _openai, _queued_space
from tests.stand_ins.openai_audio import openai_audio


async def _payer(ctx: Context, pk: int) -> None:
    async with ctx.db.session() as s:
        u = await accounts.get_or_create_user(s, "0x" + "34" * 20)
        a = await accounts.get_or_create_account(s, Caller("telegram", "77"))
        await accounts.link_account(s, a.id, u.id)
        s.add(
            TranscriptionPayment(
                user_id=u.id, space_id=pk, amount_usdc="0.2", payment_verified=True
            )
        )


async def test_offline_job_delivers_overview_and_subtitles(
    ctx: Context, resolver: LocalResolver
) -> None:
    ctx.settings.transcription.backend = "offline"
    pk = await _queued_space(ctx)
    assert await Worker(ctx, worker_id="w").run_one()
    async with ctx.db.session() as s:
        sp = await s.get(Space, pk)
        row = (await s.execute(select(SpaceEnrichment))).scalar_one()
    assert sp is not None and sp.status == "completed"
    assert (row.status, row.method, row.tokens_used) == ("completed", "extractive", 0)
    data = json.loads(row.data or "{}")
    assert data["chapters"] and data["chapters"][0]["start"] == 0
    assert json.loads(sp.chapter_titles or "[]") == [c["title"] for c in data["chapters"]]
    root = ctx.spaces_dir / SID
    md = (root / "transcript.md").read_text()
    assert "## Overview" in md and "Extractive overview" in md
    assert sp.transcript_length == len(md)
    async with ctx.db.read() as s:  # what is served: the database's copy, all four formats
        stored = {f: await transcripts.read(s, ctx.spaces_dir, sp, f) for f in transcripts.FORMATS}
    assert stored == {f: (root / f"transcript.{f}").read_bytes() for f in transcripts.FORMATS}
    assert json.loads((root / "transcript.json").read_text())["enrichment"] == data
    subs = list(srt.parse((root / "transcript.srt").read_text()))
    vtt = webvtt.from_buffer(io.StringIO((root / "transcript.vtt").read_text()))
    assert subs and len(subs) == len(vtt.captions)
    said = " ".join(s.content for s in subs).lower()
    assert {"weather", "welcome", "morning", "weekly"} & set(said.split())


async def test_a_failing_summary_model_never_fails_the_transcript(
    ctx: Context, resolver: LocalResolver
) -> None:
    async with openai_audio() as stt:  # the audio stand-in has no chat endpoint: 404
        _openai(ctx, stt.url)
        ctx.settings.enrichment.backend = "openai"
        pk = await _queued_space(ctx)
        await _payer(ctx, pk)
        assert await Worker(ctx, worker_id="w").run_one()
    async with ctx.db.session() as s:
        sp = await s.get(Space, pk)
        row = (await s.execute(select(SpaceEnrichment))).scalar_one()
        kinds = sorted((await s.execute(select(Outbox.kind))).scalars())
    assert sp is not None and sp.status == "completed"
    assert kinds == ["transcript_ready"]  # delivered anyway
    assert (row.status, row.attempts) == ("failed", 1) and row.error
    assert "## Overview" not in (ctx.spaces_dir / SID / "transcript.md").read_text()
    assert (ctx.spaces_dir / SID / "transcript.srt").is_file()
    ctx.settings.enrichment.backend = "extractive"  # later, the retry job succeeds
    from core.enrich.service import retry_failed

    assert await retry_failed(ctx) == 1
    async with ctx.db.session() as s:
        row = (await s.execute(select(SpaceEnrichment))).scalar_one()
    assert (row.status, row.attempts, row.method) == ("completed", 2, "extractive")
    async with ctx.db.read() as s:  # the scheduler's retry stored the enriched document
        md = await transcripts.read(s, ctx.spaces_dir, sp, "md")
    assert md is not None and b"## Overview" in md
