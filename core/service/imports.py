"""Importing a recording X cannot give us (replay disabled, expired, refused): the operator's
``spacescribe import`` and the admins' ``/import`` in the bots.

The file is checked first (:mod:`core.pipeline.imported`); a refused file leaves nothing
behind: no ``spaces`` row, no folder, no job. An accepted one becomes the Space's audio and
the Space gets the same processing job as a download (``process_space`` finds the audio on
disk and never asks X); payers waiting on it are served when the job completes, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import queue, transcripts
from core.context import Context
from core.db import ProcessingJob, Space, utcnow
from core.db.upsert import insert_ignore
from core.logging import get_logger
from core.payers import payers
from core.pipeline import imported
from core.pipeline.errors import PipelineError
from core.pipeline.storage import SpaceFiles
from core.results import Caller, Refused, SpaceView
from core.service.catalog import find_space, parse_or_refuse
from core.service.views import space_view
from core.spaces import canonical_url
from core.statuses import JobStatus, SpaceStatus

log = get_logger("spacescribe.imports")

NOT_ADMIN = "Only the bot's admins can import recordings."


@dataclass(frozen=True)
class Metadata:
    """What the importer tells us about the Space (kept on its ``spaces`` row)."""

    title: str | None = None
    creator: str | None = None
    started_at: datetime | None = None  # naive UTC


@dataclass(frozen=True)
class Imported:
    space: SpaceView
    duration_seconds: float
    payers: int  # payers waiting on the Space, served when its job completes
    created: bool  # the Space was unknown: its row was made from the given metadata

    def summary(self) -> str:
        """What the importer is told (plain text; adapters escape it)."""
        v = self.space
        minutes = self.duration_seconds / 60
        who = (
            f"{self.payers} payer(s) waiting on it get the transcript when it is ready."
            if self.payers
            else "Nobody has paid for it yet; it is sold from the library once transcribed."
        )
        return (
            f"Imported {minutes:.1f} min of audio for Space {v.space_id} ({v.title}). "
            f"It is queued for transcription. {who}"
        )


def allowed(caller: Caller | None) -> Refused | None:
    """The operator (no caller) and configured admins may import; nobody else."""
    if caller is not None and not caller.is_admin:
        return Refused("not_admin", NOT_ADMIN)
    return None


def _refusal(space: Space | None, busy: bool, force: bool) -> Refused | None:
    if space is None:
        return None
    if busy or space.status == SpaceStatus.PROCESSING:
        return Refused(
            "being_processed",
            f"Space {space.space_id} is being processed right now; import again if it fails.",
        )
    if space.status == SpaceStatus.COMPLETED and not force:
        return Refused(
            "already_transcribed",
            f"Space {space.space_id} is already transcribed; importing would replace its "
            "transcript (the operator can: spacescribe import --force).",
        )
    return None


async def _busy(session: AsyncSession, space_pk: int) -> bool:
    return bool(
        await session.scalar(
            select(ProcessingJob.id).where(
                ProcessingJob.space_id == space_pk, ProcessingJob.status == JobStatus.PROCESSING
            )
        )
    )


async def precheck(ctx: Context, caller: Caller | None, text: str, force: bool) -> Refused | str:
    """Who asks and for which Space, before a file is even fetched: the Space id, or why not."""
    refused = allowed(caller)
    if refused is not None:
        return refused
    sid = parse_or_refuse(text)
    if isinstance(sid, Refused):
        return sid
    async with ctx.db.read() as s:
        space = await find_space(s, sid)
        busy = space is not None and await _busy(s, space.id)
        refused = _refusal(space, busy, force)
    return refused or sid


async def _record(
    session: AsyncSession, ctx: Context, sid: str, meta: Metadata, force: bool
) -> tuple[Space, bool] | Refused:
    """The Space's row (made if unknown) and a job that can start now, under the locks a
    claim and a purchase take (the job, then the Space)."""
    await session.execute(
        select(ProcessingJob.id)
        .join(Space, Space.id == ProcessingJob.space_id)
        .where(Space.space_id == sid, ProcessingJob.status.in_(queue.LIVE_STATUSES))
        .with_for_update(of=ProcessingJob)
    )
    created = await insert_ignore(
        session,
        Space,
        {
            "space_id": sid,
            "space_url": canonical_url(sid),
            "title": meta.title or f"X Space {sid}",
            "creator": meta.creator,
            "space_started_at": meta.started_at,
            "status": SpaceStatus.PENDING,
            "first_requested_at": utcnow(),
            "transcription_count": 0,
            "chat_unlock_count": 0,
        },
        index_elements=["space_id"],
    )
    locked = (
        select(Space)
        .where(Space.space_id == sid)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    space = (await session.execute(locked)).scalar_one()
    if not created:
        refused = _refusal(space, await _busy(session, space.id), force)
        if refused is not None:
            return refused
        await transcripts.forget(session, space.id)  # made from the audio being replaced
    given = {
        k: v
        for k, v in (
            ("title", meta.title),
            ("creator", meta.creator),
            ("space_started_at", meta.started_at),
        )
        if v is not None
    }
    await session.execute(
        update(Space)
        .where(Space.id == space.id)
        .values(status=SpaceStatus.PENDING, error_message=None, **given)
    )
    # a job already waiting (a live Space, X unreachable) starts now, with every attempt
    waiting = await session.execute(
        update(ProcessingJob)
        .where(ProcessingJob.space_id == space.id, ProcessingJob.status == JobStatus.QUEUED)
        .values(available_at=utcnow(), retry_count=0, error_message=None)
        .returning(ProcessingJob.id)
    )
    if waiting.first() is None:
        await queue.enqueue(session, space.id, max_retries=ctx.settings.queue.max_retries)
    await session.refresh(space)
    return space, created


async def import_recording(
    ctx: Context,
    caller: Caller | None,
    text: str,
    path: Path,
    *,
    name: str | None = None,
    meta: Metadata | None = None,
    force: bool = False,
) -> Imported | Refused:
    """Check the file, make it the Space's audio and queue the Space's job.

    ``name`` is how the file is named in refusals (a bot's download has a temporary path
    nobody should see); ``force`` replaces the transcript of a completed Space."""
    sid = await precheck(ctx, caller, text, force)
    if isinstance(sid, Refused):
        return sid
    shown = name or str(path)
    checked = await imported.check(path, shown, imported.Limits.of(ctx.settings.transcription))
    if isinstance(checked, Refused):
        return checked
    try:
        staged = await imported.stage(path, ctx.spaces_dir)
    except PipelineError as e:
        return Refused("import_not_audio", f"{shown} could not be converted to audio ({e}).")
    files = SpaceFiles.of(ctx.spaces_dir, sid)
    try:
        async with ctx.db.session() as s:
            recorded = await _record(s, ctx, sid, meta or Metadata(), force)
            if isinstance(recorded, Refused):
                staged.done()
                return recorded
            space, created = recorded
            staged.install(files)  # renames only; undone below if the commit fails
            waiting = len(await payers(s, space.id))
            view = space_view(space)
    except BaseException:
        staged.undo()
        raise
    staged.done()
    log.info("recording imported", space=sid, seconds=round(checked), payers=waiting)
    return Imported(view, checked, waiting, created)
