"""The pipeline, end to end, resumable: every finished step is a file that is reused.

``transcribe_audio`` works on files only (``spacescribe transcribe`` uses it directly);
``process_space`` wraps it for a queued Space: metadata, download, the seed's columns.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update

from core.config import Secrets, Settings
from core.context import Context
from core.db import Space
from core.metrics import STT_MINUTES
from core.pipeline import chunks as chunking
from core.pipeline import hooks, media
from core.pipeline.errors import PipelineError, SpaceUnavailable
from core.pipeline.ffmpeg import probe_duration
from core.pipeline.merge import merge
from core.pipeline.render import TranscriptDoc, to_json, to_markdown
from core.pipeline.speakers import participants, profiles
from core.pipeline.storage import SpaceFiles, atomic_write
from core.pipeline.transcribe import Segment, Transcriber, make_transcriber
from core.results import Refused
from core.spaces import canonical_url


class Progress:
    """Progress reporting; the CLI shows bars, the worker logs nothing extra."""

    def stage(self, name: str) -> None: ...

    def chunks(self, total: int, done: int) -> None: ...

    def chunk_done(self) -> None: ...


@dataclass(frozen=True)
class TranscriptResult:
    files: SpaceFiles
    doc: TranscriptDoc
    markdown_chars: int
    audio_bytes: int


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
    names = participants(segments, creator)
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
    md = to_markdown(doc)
    atomic_write(files.json, to_json(doc))
    atomic_write(files.markdown, md)
    return TranscriptResult(files, doc, len(md), files.audio.stat().st_size)


async def resolve_space(ctx: Context, space_id: str) -> media.SpaceMeta:
    """Metadata of a Space that can be transcribed now; raises SpaceUnavailable otherwise."""
    meta = await media.resolver(ctx.settings.transcription.cookies_file).resolve(space_id)
    problem = media.availability_problem(meta)
    if problem:
        raise SpaceUnavailable(problem, retryable=meta.live)
    return meta


async def check_space(ctx: Context, space_id: str) -> Refused | media.SpaceMeta:
    """The check a payment flow runs BEFORE anyone pays: metadata, or why not (as a value).

    Codes: ``space_live`` (ask again after it ends), ``space_unavailable`` (not recorded,
    private, gone), ``space_unreachable`` (X could not be asked now; try again later)."""
    try:
        return await resolve_space(ctx, space_id)
    except SpaceUnavailable as e:
        return Refused("space_live" if e.retryable else "space_unavailable", str(e))
    except PipelineError as e:
        return Refused("space_unreachable", str(e))


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
    meta = await resolve_space(ctx, space_id)
    (progress or Progress()).stage("download")
    try:
        await media.download(meta, files.audio, ctx.settings.transcription.cookies_file)
    except OSError as e:
        raise PipelineError(f"could not store the audio ({e.strerror})") from None
    try:
        result = await transcribe_audio(
            ctx.settings,
            ctx.secrets,
            files,
            title=meta.title,
            creator=meta.creator,
            started_at=meta.started_at,
            url=canonical_url(space_id),
            progress=progress,
            transcriber=transcriber_factory() if transcriber_factory else None,
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
                title=meta.title,
                creator=meta.creator,
                space_started_at=meta.started_at,
                audio_file_path=files.relative(files.audio, data_name),
                transcript_file_path=files.relative(files.markdown, data_name),
                audio_duration_seconds=int(round(doc.duration_seconds)),
                audio_size_mb=round(result.audio_bytes / 1_000_000, 3),
                transcript_length=result.markdown_chars,
                participants=json.dumps(doc.participants),
                speaker_profiles=json.dumps(doc.speaker_profiles),
            )
        )
    await hooks.on_completed(ctx, space_pk, [s.to_json() for s in doc.segments])
    return result
