"""Read-only use cases: /myspaces, /status, /popular, re-sending a transcript."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import bindparam, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts import user_id_for
from core.context import Context
from core.db import ChatUnlock, ProcessingJob, Space, TranscriptionPayment
from core.db.reads import Reader
from core.enrich.service import enrichment_of
from core.errors import InvalidInput
from core.queue import place_of, position
from core.results import Caller, OwnedSpace, Refused, SpaceView, Transcript
from core.service.views import format_problem, space_view, transcript_of
from core.spaces import parse_space
from core.statuses import JobStatus, SpaceStatus

POPULAR_LIMIT = 10
MATCH_LIMIT = 25  # Discord shows at most 25 autocomplete choices


def parse_or_refuse(text: str) -> str | Refused:
    try:
        return parse_space(text)
    except InvalidInput as e:
        return Refused(e.code, str(e))


async def find_space(session: AsyncSession, space_id: str) -> Space | None:
    return (
        await session.execute(select(Space).where(Space.space_id == space_id))
    ).scalar_one_or_none()


# A Space's status (``/status``, ``GET /api/spaces/<id>``, the MCP tool) in one statement:
# only the columns the view shows, no ORM object, and the Space's queued job joined (at most
# one: the unique index uq_processing_queue_live_space), so that ``position`` is asked only for
# a Space that has one. Built once, run by ``Database.reader``: the status read is the web
# server's hottest path.
_STATUS = (
    select(
        Space.id,
        Space.space_id,
        Space.space_url,
        Space.title,
        Space.status,
        Space.creator,
        Space.audio_duration_seconds,
        Space.participants,
        Space.transcription_count,
        Space.chat_unlock_count,
        Space.error_message,
        Space.completed_at,
        Space.chapter_titles,
        Space.space_started_at,
        ProcessingJob.id.label("queued_job"),
        ProcessingJob.priority.label("queued_priority"),
        ProcessingJob.queued_at,
    )
    .outerjoin(
        ProcessingJob,
        (ProcessingJob.space_id == Space.id) & (ProcessingJob.status == JobStatus.QUEUED),
    )
    .where(Space.space_id == bindparam("space_id"))
)


async def space_status(db: Reader, space_id: str) -> SpaceView | None:
    """The Space's view with its queue position, or None if it was never requested."""
    row = (await db.execute(_STATUS, {"space_id": space_id})).one_or_none()
    if row is None:
        return None
    pos = None
    if row.queued_job is not None:
        place = place_of(row.queued_priority, row.queued_at, row.queued_job)
        pos = int((await db.execute(place)).scalar_one())
    return space_view(row, pos)


async def status(ctx: Context, text: str) -> SpaceView | Refused:
    sid = parse_or_refuse(text)
    if isinstance(sid, Refused):
        return sid
    view = await space_status(ctx.db.reader, sid)
    if view is None:
        return Refused(
            "unknown_space",
            f"Space {sid} has not been requested yet. Use /transcribe to order its transcript.",
        )
    return view


async def my_spaces(ctx: Context, caller: Caller) -> list[OwnedSpace]:
    """Seed query 1 (the caller's paid Spaces, newest payment first), with every status."""
    async with ctx.db.read() as s:
        user_id = await user_id_for(s, caller)
        if user_id is None:
            return []
        unlocked = exists().where(ChatUnlock.user_id == user_id, ChatUnlock.space_id == Space.id)
        rows = await s.execute(
            select(Space, TranscriptionPayment.paid_at, unlocked)
            .join(TranscriptionPayment, TranscriptionPayment.space_id == Space.id)
            .where(TranscriptionPayment.user_id == user_id)
            .order_by(TranscriptionPayment.paid_at.desc(), Space.id.desc())
        )
        out = []
        for space, paid_at, is_unlocked in rows.all():
            pos = await position(s, space.id) if space.status == SpaceStatus.PENDING else None
            out.append(OwnedSpace(space_view(space, pos), bool(is_unlocked), paid_at))
        return out


async def owned_matching(
    ctx: Context, caller: Caller, text: str, limit: int = MATCH_LIMIT
) -> list[SpaceView]:
    """The caller's Spaces whose id or title contains ``text`` (any case), newest purchase
    first: what a member picks from when a command asks for one of their Spaces."""
    text = (text or "").strip()[:100]
    async with ctx.db.read() as s:
        user_id = await user_id_for(s, caller)
        if user_id is None:
            return []
        query = (
            select(Space)
            .join(TranscriptionPayment, TranscriptionPayment.space_id == Space.id)
            .where(TranscriptionPayment.user_id == user_id)
            .order_by(TranscriptionPayment.paid_at.desc(), Space.id.desc())
            .limit(limit)
        )
        if text:
            query = query.where(
                or_(
                    Space.space_id.icontains(text, autoescape=True),
                    Space.title.icontains(text, autoescape=True),
                )
            )
        return [space_view(sp) for sp in (await s.execute(query)).scalars()]


async def popular(ctx: Context) -> list[SpaceView]:
    """Seed query 4."""
    async with ctx.db.read() as s:
        rows = await s.execute(
            select(Space)
            .where(Space.status == SpaceStatus.COMPLETED)
            .order_by(Space.transcription_count.desc(), Space.id)
            .limit(POPULAR_LIMIT)
        )
        return [space_view(sp) for sp in rows.scalars()]


async def owns(session: AsyncSession, user_id: int | None, space_pk: int) -> bool:
    """Seed query 2: has the user paid for this Space's transcript? A payment refunded
    because the Space failed (``refunded_at`` set) no longer counts."""
    if user_id is None:
        return False
    return bool(
        await session.scalar(
            select(
                exists().where(
                    TranscriptionPayment.user_id == user_id,
                    TranscriptionPayment.space_id == space_pk,
                    TranscriptionPayment.refunded_at.is_(None),
                )
            )
        )
    )


async def ownership(
    session: AsyncSession, caller: Caller, space_id: str
) -> tuple[Space | None, int | None, bool]:
    """The Space row, the caller's user id, and whether that user owns the transcript."""
    space = await find_space(session, space_id)
    user_id = await user_id_for(session, caller)
    return space, user_id, space is not None and await owns(session, user_id, space.id)


async def transcript_for(
    ctx: Context, caller: Caller, text: str, fmt: str = "md"
) -> Transcript | Refused:
    """The transcript file (md, json, srt or vtt) for an owner, with the Space's overview
    (re-send from /myspaces or a deep link, delivery)."""
    sid = parse_or_refuse(text)
    if isinstance(sid, Refused):
        return sid
    fmt = (fmt or "md").strip().lower().lstrip(".")
    if bad := format_problem(fmt):
        return bad
    async with ctx.db.read() as s:
        space, _user_id, owned = await ownership(s, caller, sid)
        if space is None or not owned:
            return Refused(
                "not_owned",
                f"You have not bought the transcript of Space {sid}. Use /transcribe {sid}.",
            )
        t = await transcript_of(s, ctx, space, fmt)
        if t is not None:
            return replace(t, overview=await enrichment_of(s, space.id))
        if t is None:
            if space.status == SpaceStatus.FAILED:
                return Refused("failed", f"Processing Space {sid} failed: {space.error_message}")
            return Refused(
                "not_ready",
                f"The transcript of Space {sid} is not ready yet (status: {space.status}). "
                "You will get it by direct message as soon as it is.",
            )
        return Refused(  # completed, but this file is missing (e.g. subtitles not made yet)
            "not_ready", f"The {fmt} file of Space {sid} is not available yet."
        )
