"""Enriching a Space: compute, verify, store with the Space, render into its documents.

Called by the pipeline when a transcript is complete (a failure is recorded, never raised:
the transcript is delivered anyway), by the periodic retry of failed enrichments, and by
``spacescribe enrich`` for Spaces completed before enrichment existed. The documents are
read from and stored in the database (``core.transcripts``), so any machine can enrich.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import transcripts
from core.context import Context
from core.db import Space, SpaceEnrichment, utcnow
from core.db.upsert import dialect_name
from core.enrich import extractive, structured
from core.enrich.model import Chapter, Enrichment, normalise_chapters
from core.logging import get_logger, redact
from core.metrics import CHAT_TOKENS
from core.pipeline.render import doc_from_json, documents
from core.pipeline.storage import SpaceFiles, atomic_write
from core.statuses import SpaceStatus

log = get_logger(__name__)


def backend(ctx: Context) -> str:
    chosen = ctx.settings.enrichment.backend
    if chosen == "extractive" or not ctx.openai_enabled:
        return extractive.METHOD
    return structured.METHOD


async def compute(ctx: Context, segments: list[dict[str, Any]], duration: float) -> Enrichment:
    """The enrichment by the configured method. Raises structured.EnrichmentFailed."""
    if backend(ctx) == extractive.METHOD:
        # CPU only, but a 3-hour Space takes a moment: keep the event loop free
        return await asyncio.to_thread(extractive.enrich, segments, duration)
    from core.chat.answer import client

    e = ctx.settings.enrichment
    async with client(ctx) as c:
        result = await structured.enrich(
            c, segments, duration, model=e.model, max_prompt_tokens=e.max_prompt_tokens
        )
    if not result.chapters:  # a model that gave no chapters: one for the whole Space
        result = Enrichment(
            result.method,
            result.model,
            result.takeaways,
            normalise_chapters([Chapter("Conversation", 0, 0)], duration),
            result.quotes,
            result.tokens_used,
            result.largest_prompt_tokens,
            result.dropped_quotes,
        )
    return result


async def _row(s: AsyncSession, space_pk: int) -> SpaceEnrichment | None:
    return (
        await s.execute(select(SpaceEnrichment).where(SpaceEnrichment.space_id == space_pk))
    ).scalar_one_or_none()


async def _record(
    ctx: Context,
    space_pk: int,
    *,
    result: Enrichment | None,
    tokens: int,
    error: str | None,
) -> None:
    """Upsert the Space's enrichment row (one per Space; the unique key settles races)."""
    async with ctx.db.session() as s:
        if dialect_name(s) == "postgresql":
            await s.execute(select(Space.id).where(Space.id == space_pk).with_for_update())
        row = await _row(s, space_pk)
        if row is None:
            row = SpaceEnrichment(space_id=space_pk, status="failed", tokens_used=0, attempts=0)
            s.add(row)
        row.attempts = (row.attempts or 0) + 1
        row.tokens_used = (row.tokens_used or 0) + tokens
        row.updated_at = utcnow()
        if result is not None:
            row.status, row.method, row.model, row.error = (
                "completed",
                result.method,
                result.model,
                None,
            )
            row.data = json.dumps(result.to_json(), ensure_ascii=False)
            titles = json.dumps([c.title for c in result.chapters], ensure_ascii=False)
            await s.execute(update(Space).where(Space.id == space_pk).values(chapter_titles=titles))
        elif row.status != "completed":  # a failed re-run keeps an earlier good enrichment
            # provider errors may echo the API key: stored text is redacted like the logs
            row.status, row.error = "failed", redact(error or "")[:500]


def enriched_documents(transcript_json: str, result: Enrichment | None) -> dict[str, str]:
    """Every document of a transcript (md, json, srt, vtt) rendered again from its
    transcript.json, with the enrichment."""
    doc = doc_from_json(transcript_json)
    if result is not None:
        doc = replace(doc, enrichment=result.to_json())
    return documents(doc)


def write_files(files: SpaceFiles, result: Enrichment | None) -> int:
    """``spacescribe transcribe`` (files only, no database): the Space folder's documents
    with the enrichment. Returns the Markdown's length."""
    docs = enriched_documents(files.json.read_text(encoding="utf-8"), result)
    _write(files, docs)
    return len(docs["md"])


def _write(files: SpaceFiles, docs: dict[str, str]) -> None:
    for fmt in ("json", "srt", "vtt", "md"):
        atomic_write(files.root / f"transcript.{fmt}", docs[fmt])


@dataclass
class EnrichReport:
    enriched: dict[str, str] = field(default_factory=dict)  # space id -> method
    failed: dict[str, str] = field(default_factory=dict)  # space id -> error
    missing: list[str] = field(default_factory=list)  # no transcript.json
    skipped: list[str] = field(default_factory=list)  # already enriched (no --force)


async def enrich_space(ctx: Context, space_pk: int, space_id: str) -> Enrichment | str:
    """Enrich one Space now: the enrichment, or why not (recorded for a later retry)."""
    raw = await transcripts.json_of(ctx, space_pk)
    if raw is None:
        return "no transcript.json stored"
    try:
        doc = json.loads(raw)
        segments, duration = doc["segments"], float(doc["duration_seconds"])
    except (ValueError, KeyError, TypeError) as e:
        return f"no readable transcript.json ({type(e).__name__})"
    t0 = time.perf_counter()
    try:
        result = await compute(ctx, segments, duration)
    except structured.EnrichmentFailed as e:
        await _record(ctx, space_pk, result=None, tokens=e.tokens_used, error=str(e))
        log.warning("enrichment failed", space_pk=space_pk, error=str(e)[:300])
        return str(e)
    if result.tokens_used:
        CHAT_TOKENS.labels(model=result.model).inc(result.tokens_used)
    try:
        docs = await asyncio.to_thread(enriched_documents, raw, result)
    except (ValueError, KeyError, TypeError) as e:
        await _record(ctx, space_pk, result=None, tokens=result.tokens_used, error=str(e))
        return f"could not render the documents ({type(e).__name__})"
    async with ctx.db.session() as s:
        await transcripts.store(s, space_pk, docs)
        await s.execute(
            update(Space).where(Space.id == space_pk).values(transcript_length=len(docs["md"]))
        )
    await _record(ctx, space_pk, result=result, tokens=result.tokens_used, error=None)
    files = SpaceFiles.of(ctx.spaces_dir, space_id)
    if files.json.is_file():  # this machine made it: its own copy follows (never served)
        try:
            await asyncio.to_thread(_write, files, docs)
        except OSError as e:
            log.warning("could not update the local transcript copy", error=e.strerror)
    log.info(
        "enriched",
        space_pk=space_pk,
        method=result.method,
        takeaways=len(result.takeaways),
        chapters=len(result.chapters),
        quotes=len(result.quotes),
        dropped_quotes=result.dropped_quotes,
        tokens=result.tokens_used,
        seconds=round(time.perf_counter() - t0, 2),
    )
    return result


async def on_space_completed(ctx: Context, space_pk: int, _segments: list[dict[str, Any]]) -> None:
    """The pipeline's hook: never raises, so a failed summary never fails the transcript."""
    try:
        async with ctx.db.session() as s:
            sid = await s.scalar(select(Space.space_id).where(Space.id == space_pk))
        if sid is not None:
            await enrich_space(ctx, space_pk, str(sid))
    except Exception as e:  # anything unexpected: recorded, retried later
        log.exception("enrichment crashed", space_pk=space_pk)
        try:
            await _record(ctx, space_pk, result=None, tokens=0, error=f"{type(e).__name__}: {e}")
        except Exception:
            log.exception("could not record the enrichment failure", space_pk=space_pk)


async def backfill(
    ctx: Context, space_ids: list[str] | None = None, *, force: bool = False
) -> EnrichReport:
    """Enrich completed Spaces: the named ones, else every one without a completed
    enrichment; ``force`` enriches again those that have one."""
    q = select(Space.id, Space.space_id, SpaceEnrichment.status).outerjoin(
        SpaceEnrichment, SpaceEnrichment.space_id == Space.id
    )
    q = q.where(Space.status == SpaceStatus.COMPLETED)
    if space_ids is not None:
        q = q.where(Space.space_id.in_(space_ids))
    async with ctx.db.session() as s:
        rows = (await s.execute(q.order_by(Space.id))).all()
    report = EnrichReport()
    for pk, sid, status in rows:
        if status == "completed" and not force:
            report.skipped.append(sid)
            continue
        if await transcripts.json_of(ctx, int(pk)) is None:
            report.missing.append(sid)
            continue
        out = await enrich_space(ctx, int(pk), str(sid))
        if isinstance(out, Enrichment):
            report.enriched[sid] = out.method
        else:
            report.failed[sid] = out
    return report


async def retry_failed(ctx: Context) -> int:
    """The periodic job: enrich again completed Spaces whose enrichment failed, while
    attempts remain. Returns how many were tried."""
    limit = ctx.settings.enrichment.max_attempts
    async with ctx.db.session() as s:
        rows = (
            await s.execute(
                select(Space.id, Space.space_id)
                .join(SpaceEnrichment, SpaceEnrichment.space_id == Space.id)
                .where(
                    Space.status == SpaceStatus.COMPLETED,
                    SpaceEnrichment.status == "failed",
                    SpaceEnrichment.attempts < limit,
                )
                .order_by(SpaceEnrichment.updated_at)
                .limit(20)
            )
        ).all()
    for pk, sid in rows:
        await enrich_space(ctx, int(pk), str(sid))
    return len(rows)


async def enrichment_of(session: AsyncSession, space_pk: int) -> Enrichment | None:
    row = await _row(session, space_pk)
    if row is None or row.status != "completed" or not row.data:
        return None
    return Enrichment.from_json(json.loads(row.data))
