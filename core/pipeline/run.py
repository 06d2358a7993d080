"""The pipeline, end to end, resumable: every finished step is a file that is reused.

``transcribe_audio`` works on files only (``spacescribe transcribe`` uses it directly);
``process_space`` wraps it for a queued Space: metadata, download, the seed's columns, and
the transcript documents stored in the database (``core.transcripts``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update

from core import transcripts
from core.config import Secrets, Settings
from core.context import Context
from core.db import Space
from core.metrics import STT_MINUTES
from core.pipeline import chunks as chunking
from core.pipeline import hooks, media
from core.pipeline.errors import PipelineError, SpaceUnavailable
from core.pipeline.ffmpeg import probe_duration
from core.pipeline.merge import merge
from core.pipeline.render import TranscriptDoc, documents
from core.pipeline.speakers import participants, profiles
from core.pipeline.storage import SpaceFiles, atomic_write
from core.pipeline.transcribe import Segment, Transcriber, make_transcriber
from core.pipeline.xspaces import (
    USER_TEXT,
    WAITING,
    Outcome,
    SpaceNotReady,
    SpaceUnreachable,
    XRefusesUs,
    error_for,
)
from core.results import Refused
from core.spaces import canonical_url
from core.statuses import SpaceStatus


class Progress:
    """Progress reporting; the CLI shows bars, the worker logs nothing extra."""

    def stage(self, name: str) -> None: ...

    def chunks(self, total: int, done: int) -> None: ...

    def chunk_done(self) -> None: ...


@dataclass(frozen=True)
class TranscriptResult:
    files: SpaceFiles
    doc: TranscriptDoc
    documents: dict[str, str]  # format → text (render.documents)
    audio_bytes: int

    @property
    def markdown_chars(self) -> int:
        return len(self.documents["md"])


async def _chunk_segments(
    files: SpaceFiles,
    transcriber: Transcriber,
    chunk: chunking.Chunk,
    sem: asyncio.Semaphore,
    progress: Progress,
) -> tuple[chunking.Chunk, list[Segment]]:
    result = files.chunk_result(chunk.index)
    if result.exists():  # finished before a crash or a retry: reuse
        data = json.loads(result.read_text())
        return chunk, [Segment.from_json(d) for d in data["segments"]]
    async with sem:
        target = files.chunks / f"{chunk.index:04d}.{transcriber.chunk_format}"
        audio = target
        try:
            audio = await chunking.extract(files.audio, chunk, transcriber.chunk_format, target)
            segs = await transcriber.transcribe(audio, chunk.cut_length)
        finally:
            audio.unlink(missing_ok=True)
        atomic_write(
            result,
            json.dumps(
                {
                    "index": chunk.index,
                    "cut_start": chunk.cut_start,
                    "backend": transcriber.name,
                    "segments": [s.to_json() for s in segs],
                }
            ),
        )
        STT_MINUTES.labels(backend=transcriber.name).inc(chunk.cut_length / 60)
    progress.chunk_done()
    return chunk, segs


async def transcribe_audio(
    settings: Settings,
    secrets: Secrets,
    files: SpaceFiles,
    *,
    title: str,
    creator: str | None = None,
    started_at: datetime | None = None,
    url: str | None = None,
    progress: Progress | None = None,
    transcriber: Transcriber | None = None,
    speakers: Sequence[str] = (),
) -> TranscriptResult:
    progress = progress or Progress()
    t = settings.transcription
    transcriber = transcriber or make_transcriber(
        t, secrets, settings.resolve_path(settings.data_dir)
    )
    progress.stage("probe")
    duration = await probe_duration(files.audio)
    plan = chunking.plan(duration, t.chunk_seconds, t.overlap_seconds)
    files.chunks.mkdir(parents=True, exist_ok=True)
    progress.stage("transcribe")
    progress.chunks(len(plan), sum(files.chunk_result(c.index).exists() for c in plan))
    sem = asyncio.Semaphore(t.concurrency)
    tasks = [
        asyncio.ensure_future(_chunk_segments(files, transcriber, c, sem, progress)) for c in plan
    ]
    try:
        parts = await asyncio.gather(*tasks)
    except BaseException:
        # One chunk failed (or the job was cancelled): stop the others now, and let them
        # remove their chunk audio, so no upload outlives the attempt or races its retry.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    progress.stage("merge")
    segments = merge(list(parts))
    names = participants(segments, creator, speakers)
    doc = TranscriptDoc(
        space_id=files.space_id,
        title=title,
        creator=creator,
        url=url or canonical_url(files.space_id),
        started_at=started_at,
        duration_seconds=duration,
        backend=transcriber.name,
        participants=names,
        speaker_profiles=profiles(segments),
        segments=segments,
    )
    progress.stage("render")
    docs = documents(doc)
    for fmt in ("json", "srt", "vtt", "md"):  # transcript.md last: "all written" (the drills)
        atomic_write(files.root / f"transcript.{fmt}", docs[fmt])
    return TranscriptResult(files, doc, docs, files.audio.stat().st_size)


async def resolve_space(ctx: Context, space_id: str) -> media.SpaceMeta:
    """Metadata of a Space whose replay can be downloaded now; raises the pipeline error of
    any other outcome (``spacescribe transcribe`` uses it directly)."""
    meta = await media.resolver(ctx).resolve(space_id)
    if meta.state is not Outcome.READY:
        raise error_for(meta.state, since=meta.started_ts)
    return meta


@dataclass(frozen=True)
class Checked:
    """A Space that may be bought: what we know of it, and what the buyer should be told."""

    title: str
    creator: str | None = None
    started_at: datetime | None = None
    duration_seconds: int | None = None
    from_library: bool = False  # known from our ``spaces`` row: X was not asked
    note: str | None = None  # e.g. "will be transcribed when it ends"

    def payload(self) -> dict[str, object]:
        """What the invoice carries to the ``spaces`` row it creates."""
        out: dict[str, object] = {"title": self.title}
        if self.creator:
            out["creator"] = self.creator
        if self.started_at:
            out["started_at"] = self.started_at.isoformat()
        if self.duration_seconds:
            out["duration_seconds"] = self.duration_seconds
        return out


_REFUSED_CODES = {
    XRefusesUs: "x_refuses_us",
    SpaceUnreachable: "space_unreachable",
}


async def check_space(ctx: Context, space_id: str) -> Refused | Checked:
    """The check a payment flow runs BEFORE anyone pays: library first, X only for a Space
    we do not hold (no row, or a row that failed and may be asked again).

    Refusal codes: ``space_not_found``, ``space_private``, ``space_no_replay`` (the Space
    itself: 422), ``x_refuses_us`` and ``space_unreachable`` (ours or the network: 503)."""
    async with ctx.db.session() as s:
        row = (
            await s.execute(select(Space).where(Space.space_id == space_id))
        ).scalar_one_or_none()
        if row is not None and row.status != SpaceStatus.FAILED:
            return Checked(
                title=row.title,
                creator=row.creator,
                started_at=row.space_started_at,
                duration_seconds=row.audio_duration_seconds,
                from_library=True,
            )
    try:
        meta = await media.resolver(ctx).resolve(space_id)
    except SpaceUnavailable as e:
        return Refused(e.code, str(e))
    except PipelineError as e:
        code = _REFUSED_CODES.get(type(e), "space_unreachable")
        text = USER_TEXT[Outcome.REFUSED] if code == "x_refuses_us" else str(e)
        return Refused(code, text)
    state = meta.state
    if state not in (Outcome.READY, *WAITING):
        return Refused(f"space_{state.value}", USER_TEXT[state])
    return Checked(
        title=meta.title,
        creator=meta.creator,
        started_at=meta.started_at,
        duration_seconds=int(meta.duration_seconds) if meta.duration_seconds else None,
        note=USER_TEXT[state] if state in WAITING else None,
    )


async def _metadata(
    ctx: Context, space_pk: int, space: Space, files: SpaceFiles
) -> tuple[str, str | None, datetime | None, tuple[str, ...]]:
    """Title, creator, start and X's list of speakers of a queued Space. Audio already held
    (downloaded before a crash, or imported) needs no X (and has no speaker list); otherwise X
    is asked and every answer that is not a downloadable replay raises (waiting, unavailable,
    refused, unreachable)."""
    if files.audio.exists():
        return space.title, space.creator, space.space_started_at, ()
    meta = await media.resolver(ctx).resolve(space.space_id)
    state = meta.state
    if state in WAITING:
        since = meta.started_ts
        if since is None and space.space_started_at is not None:
            since = space.space_started_at.replace(tzinfo=UTC).timestamp()
        raise SpaceNotReady(USER_TEXT[state], state, since)
    if state is not Outcome.READY:
        raise error_for(state)
    async with ctx.db.session() as s:  # known from the first answer, whatever happens next
        await s.execute(
            update(Space)
            .where(Space.id == space_pk)
            .values(title=meta.title, creator=meta.creator, space_started_at=meta.started_at)
        )
    await media.download(meta, files.audio, ctx.settings.transcription.cookies_file)
    return meta.title, meta.creator, meta.started_at, meta.speakers


async def process_space(
    ctx: Context,
    space_pk: int,
    progress: Progress | None = None,
    transcriber_factory: Callable[[], Transcriber] | None = None,
) -> TranscriptResult:
    """Make the transcript of a queued Space and fill the seed's columns.

    Raises PipelineError (``retryable`` says whether the queue should try again)."""
    async with ctx.db.session() as s:
        space = await s.get(Space, space_pk)
        if space is None:
            raise PipelineError("the Space row is gone", retryable=False)
        space_id = space.space_id
    files = SpaceFiles.of(ctx.spaces_dir, space_id)
    files.clear_partial()  # a killed earlier attempt's temporary files
    (progress or Progress()).stage("metadata")
    try:
        title, creator, started_at, speakers = await _metadata(ctx, space_pk, space, files)
    except OSError as e:
        raise PipelineError(f"could not store the audio ({e.strerror})") from None
    try:
        result = await transcribe_audio(
            ctx.settings,
            ctx.secrets,
            files,
            title=title,
            creator=creator,
            started_at=started_at,
            url=canonical_url(space_id),
            progress=progress,
            transcriber=transcriber_factory() if transcriber_factory else None,
            speakers=speakers,
        )
    except OSError as e:
        raise PipelineError(f"could not write the transcript ({e.strerror})") from None
    doc = result.doc
    data_name = ctx.settings.data_dir.name
    async with ctx.db.session() as s:
        await s.execute(
            update(Space)
            .where(Space.id == space_pk)
            .values(
                title=title,
                creator=creator,
                space_started_at=started_at,
                audio_file_path=files.relative(files.audio, data_name),
                transcript_file_path=files.relative(files.markdown, data_name),
                audio_duration_seconds=int(round(doc.duration_seconds)),
                audio_size_mb=round(result.audio_bytes / 1_000_000, 3),
                transcript_length=result.markdown_chars,
                participants=json.dumps(doc.participants),
                speaker_profiles=json.dumps(doc.speaker_profiles),
            )
        )
        # the documents go with the row, before the job marks the Space completed: served
        # from the database, whichever machine delivers them (idempotent: a re-run replaces)
        await transcripts.store(s, space_pk, result.documents)
    await hooks.on_completed(ctx, space_pk, [s.to_json() for s in doc.segments])
    return result
