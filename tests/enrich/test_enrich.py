"""Enrichment end to end on both engines: the OpenAI path against the chat stand-in
(structured outputs, map-reduce, a hallucinated quote dropped, malformed answers retried then
refused), the offline path, storage, files, the back-fill command, the retry of failures,
delivery despite a failure, the teaser and the costs in /revenue."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import select

from core.config import Secrets
from core.context import Context
from core.db import Space, SpaceEnrichment
from core.enrich import service
from core.enrich.model import Enrichment
from core.enrich.verify import SegmentIndex, verify
from core.pipeline.render import TranscriptDoc, to_json, to_markdown
from core.pipeline.storage import SpaceFiles
from core.pipeline.transcribe.base import Segment
from core.results import RevenueReport
from core.service.revenue import build_report
from core.service.views import space_view
from tests.enrich.synth import make_space
from tests.stand_ins.openai_chat import HALLUCINATION, OpenAIChat, openai_chat
from tests.test_cli import _env

SID = "1ENRICH000001"


async def completed_space(
    ctx: Context, segments: list[dict[str, Any]], duration: float, sid: str = SID
) -> int:
    doc = TranscriptDoc(
        space_id=sid,
        title="Builders weekly",
        creator="alice",
        url=f"https://x.com/i/spaces/{sid}",
        started_at=None,
        duration_seconds=duration,
        backend="offline",
        participants=["alice"],
        speaker_profiles=[],
        segments=[Segment.from_json(s) for s in segments],
    )
    files = SpaceFiles.of(ctx.spaces_dir, sid)
    files.root.mkdir(parents=True, exist_ok=True)
    files.json.write_text(to_json(doc))
    files.markdown.write_text(to_markdown(doc))
    async with ctx.db.session() as s:
        sp = Space(
            space_id=sid,
            space_url=doc.url,
            title=doc.title,
            status="completed",
            audio_duration_seconds=int(duration),
            participants=json.dumps(["alice"]),
        )
        s.add(sp)
        await s.flush()
        return sp.id


def use_openai(ctx: Context, chat: OpenAIChat) -> None:
    ctx.secrets = Secrets.model_construct(
        openai_api_key=SecretStr("sk-test-stand-in"), openai_base_url=chat.url
    )


async def row(ctx: Context, pk: int) -> SpaceEnrichment:
    async with ctx.db.session() as s:
        r = (
            await s.execute(select(SpaceEnrichment).where(SpaceEnrichment.space_id == pk))
        ).scalar_one()
        s.expunge(r)
        return r


async def test_openai_map_reduce_drops_a_hallucinated_quote(ctx: Context) -> None:
    segs, _ = make_space(1.0)
    pk = await completed_space(ctx, segs, 3600)
    async with openai_chat(OpenAIChat(max_prompt_tokens=8000)) as chat:
        use_openai(ctx, chat)
        chat.faults = ["hallucinated_quote", "paraphrased_quote"]
        out = await service.enrich_space(ctx, pk, SID)
    assert isinstance(out, Enrichment), out
    assert chat.errors == []
    maps = [r for r in chat.requests if r["schema"] == "space_part"]
    reduces = [r for r in chat.requests if r["schema"] == "space_overview"]
    assert len(maps) >= 2 and len(reduces) == 1  # a 1-hour Space does not fit one prompt
    assert max(r["prompt_tokens"] for r in chat.requests) <= 8000
    assert all(r["model"] == "gpt-4o-mini" for r in chat.requests)
    assert out.method == "openai" and 5 <= len(out.takeaways) <= 8
    assert out.dropped_quotes == 2  # the invented line and the paraphrase
    assert out.quotes and HALLUCINATION not in json.dumps(out.to_json())
    assert all(verify(q, SegmentIndex(segs)) == q for q in out.quotes)
    assert out.chapters[0].start == 0 and out.chapters[-1].end >= 3600
    # stored with the Space, teaser column, rendered into both files
    r = await row(ctx, pk)
    assert (r.status, r.method, r.attempts) == ("completed", "openai", 1)
    assert r.tokens_used == out.tokens_used > 0
    async with ctx.db.session() as s:
        sp = await s.get(Space, pk)
        assert sp is not None
        view = space_view(sp)
    assert view.chapters == [c.title for c in out.chapters]
    files = SpaceFiles.of(ctx.spaces_dir, SID)
    md = files.markdown.read_text()
    assert md.startswith("# Builders weekly") and md.index("## Overview") < md.index(
        segs[0]["text"][:30]
    )
    assert "### Notable quotes" in md and "Extractive" not in md
    doc = json.loads(files.json.read_text())
    assert Enrichment.from_json(doc["enrichment"]) == out and len(doc["segments"]) == len(segs)
    assert files.srt.is_file() and files.vtt.is_file()


async def test_a_malformed_answer_is_retried_once(ctx: Context) -> None:
    segs, _ = make_space(0.3)
    pk = await completed_space(ctx, segs, 1080)
    async with openai_chat() as chat:
        use_openai(ctx, chat)
        chat.faults = ["malformed"]
        out = await service.enrich_space(ctx, pk, SID)
    assert isinstance(out, Enrichment) and len(chat.requests) == 2  # one part, asked twice
    assert (await row(ctx, pk)).status == "completed"


async def test_malformed_twice_is_refused_then_retried_later(ctx: Context) -> None:
    segs, _ = make_space(0.3)
    pk = await completed_space(ctx, segs, 1080)
    files = SpaceFiles.of(ctx.spaces_dir, SID)
    before = files.markdown.read_text()
    async with openai_chat() as chat:
        use_openai(ctx, chat)
        chat.faults = ["malformed", "wrong_schema"]
        out = await service.enrich_space(ctx, pk, SID)
        assert isinstance(out, str) and "malformed" in out
        r = await row(ctx, pk)
        assert (r.status, r.attempts, r.data) == ("failed", 1, None)
        assert r.tokens_used > 0  # the failed calls still cost tokens
        assert files.markdown.read_text() == before  # nothing half-made is rendered
        async with ctx.db.session() as s:
            sp = await s.get(Space, pk)
            assert sp is not None and space_view(sp).chapters == []
        assert await service.retry_failed(ctx) == 1  # the periodic retry
    r2 = await row(ctx, pk)
    assert (r2.status, r2.attempts) == ("completed", 2) and r2.tokens_used > r.tokens_used
    assert "## Overview" in files.markdown.read_text()
    assert await service.retry_failed(ctx) == 0


async def test_offline_backfill_and_force(ctx: Context) -> None:
    segs, _ = make_space(0.5)
    pk = await completed_space(ctx, segs, 1800)
    other = await completed_space(ctx, segs[:40], 300, sid="1ENRICH000002")
    SpaceFiles.of(ctx.spaces_dir, "1ENRICH000002").json.unlink()
    rep = await service.backfill(ctx)
    assert rep.enriched == {SID: "extractive"} and rep.missing == ["1ENRICH000002"]
    assert (await row(ctx, pk)).method == "extractive"
    assert "Extractive overview" in SpaceFiles.of(ctx.spaces_dir, SID).markdown.read_text()
    rep = await service.backfill(ctx, [SID])
    assert rep.skipped == [SID] and not rep.enriched
    rep = await service.backfill(ctx, [SID], force=True)
    assert rep.enriched == {SID: "extractive"} and (await row(ctx, pk)).attempts == 2
    assert other


async def test_summary_tokens_are_a_cost_in_revenue(ctx: Context) -> None:
    segs, _ = make_space(0.3)
    pk = await completed_space(ctx, segs, 1080)
    async with openai_chat() as chat:
        use_openai(ctx, chat)
        out = await service.enrich_space(ctx, pk, SID)
    assert isinstance(out, Enrichment)
    rep = await build_report(ctx, "all", chart=False)
    assert isinstance(rep, RevenueReport) and rep.enrichment_tokens == out.tokens_used
    line = next(x for x in rep.lines if x.product == "transcriptions")
    stt = Decimal(1080) / 60 * ctx.settings.transcription.stt_cost_per_minute
    summary = ctx.settings.enrichment.cost_per_1k_tokens * out.tokens_used / 1000
    assert line.cost == (stt + summary).quantize(Decimal("0.000001")) and summary > 0
    assert rep.margin == rep.total - rep.cost and rep.cost >= line.cost


async def test_cli_enrich_backfills(ctx: Context, tmp_path: Path, db_url: str) -> None:
    segs, _ = make_space(0.3)
    pk = await completed_space(ctx, segs, 1080)
    env = _env(tmp_path, db_url)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", "enrich", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    out = cli()
    assert out.returncode == 0, out.stderr
    assert f"{SID}: enriched (extractive)" in out.stdout
    assert (await row(ctx, pk)).status == "completed"
    again = cli(SID)
    assert again.returncode == 0 and "already enriched" in again.stdout
    forced = cli(SID, "--force")
    assert forced.returncode == 0 and "enriched (extractive)" in forced.stdout
    assert (await row(ctx, pk)).attempts == 2
    bad = cli("../etc")
    assert bad.returncode == 2 and "Space" in bad.stderr
