"""The processing queue (``processing_queue``): one live job per Space, claimed atomically.

Like procrastinate: every statement lives here, retry decisions are pure functions, and
the same code runs on SQLite and PostgreSQL. A claim is one ``UPDATE … RETURNING``: on
PostgreSQL its sub-select takes ``FOR UPDATE SKIP LOCKED`` so concurrent workers never
wait on or take the same row; on SQLite the write transaction (``BEGIN IMMEDIATE``)
serialises claimers. Order is the seed's query 6: priority DESC, queued_at ASC.

A claimed job carries a lease (``locked_by``, ``heartbeat_at``); the worker renews it while
it works and a job whose lease expired (its worker died) is queued again by :func:`reap`.
Every transition is conditional on the lease, so a job completes at most once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import Account, Invoice, ProcessingJob, Space, TranscriptionPayment, utcnow
from core.db.upsert import dialect_name, insert_ignore

LIVE_STATUSES = ("queued", "processing")
LIVE_INDEX_PREDICATE = text("status IN ('queued', 'processing')")
J = ProcessingJob


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    space_pk: int
    retry_count: int
    max_retries: int


@dataclass(frozen=True)
class Payer:
    """An account to notify about a Space, and the chat its purchase came from."""

    user_id: int
    platform: str
    recipient: str
    origin_chat_id: str | None


def backoff_seconds(retry_count: int, base: float, cap: float) -> float:
    """Exponential backoff before attempt ``retry_count + 1``: base × 2^(retry_count − 1)."""
    if retry_count <= 0:
        return 0.0
    return float(min(cap, base * 2 ** (retry_count - 1)))


def should_retry(retry_count: int, max_retries: int, retryable: bool) -> bool:
    """``retry_count`` is after counting the failed attempt."""
    return retryable and retry_count < max_retries


async def enqueue(
    session: AsyncSession, space_pk: int, priority: int = 0, max_retries: int | None = None
) -> bool:
    """Queue a job for the Space unless a live (queued/processing) one exists.

    Race-safe on both engines: the partial unique index ``uq_processing_queue_live_space``
    turns a concurrent second enqueue into a no-op. Returns True if a job was added.
    """
    now = utcnow()
    values: dict[str, object] = {
        "space_id": space_pk,
        "status": "queued",
        "priority": priority,
        "queued_at": now,
        "available_at": now,
    }
    if max_retries is not None:
        values["max_retries"] = max_retries
    return await insert_ignore(
        session,
        ProcessingJob,
        values,
        index_elements=["space_id"],
        # a literal predicate: PostgreSQL must match it to the partial index even in the
        # generic plans of prepared statements, where bound values are unknown
        index_where=LIVE_INDEX_PREDICATE,
    )


def _claimable(now: datetime):  # type: ignore[no-untyped-def]
    return and_(
        J.status == "queued",
        J.retry_count < J.max_retries,
        or_(J.available_at.is_(None), J.available_at <= now),
    )


async def claim(session: AsyncSession, worker: str) -> ClaimedJob | None:
    """Take the next job (seed query 6 order) for ``worker``; None if there is none."""
    now = utcnow()
    pick = (
        select(J.id)
        .where(_claimable(now))
        .order_by(J.priority.desc(), J.queued_at.asc(), J.id.asc())
        .limit(1)
    )
    if dialect_name(session) == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    row = (
        await session.execute(
            update(J)
            .where(J.id == pick.scalar_subquery(), J.status == "queued")
            .values(status="processing", started_at=now, locked_by=worker, heartbeat_at=now)
            .returning(J.id, J.space_id, J.retry_count, J.max_retries)
        )
    ).first()
    if row is None:
        return None
    await session.execute(
        update(Space)
        .where(Space.id == row.space_id, Space.status != "completed")
        .values(
            status="processing",
            processing_started_at=func.coalesce(Space.processing_started_at, now),
        )
    )
    return ClaimedJob(row.id, row.space_id, row.retry_count or 0, row.max_retries or 0)


async def heartbeat(session: AsyncSession, job_id: int, worker: str) -> bool:
    """Renew the lease. False means the lease was lost: stop working on the job."""
    result = await session.execute(
        update(J)
        .where(J.id == job_id, J.locked_by == worker, J.status == "processing")
        .values(heartbeat_at=utcnow())
    )
    return bool(getattr(result, "rowcount", 0))


async def complete(session: AsyncSession, job_id: int, worker: str) -> bool:
    """Mark the job done (once). Queues ``transcript_ready`` for every payer."""
    now = utcnow()
    done = await session.execute(
        update(J)
        .where(J.id == job_id, J.locked_by == worker, J.status == "processing")
        .values(status="completed", completed_at=now, locked_by=None)
        .returning(J.space_id)
    )
    space_pk = done.scalar_one_or_none()
    if space_pk is None:
        return False
    await session.execute(
        update(Space)
        .where(Space.id == space_pk)
        .values(
            status="completed",
            completed_at=func.coalesce(Space.completed_at, now),
            error_message=None,
        )
    )
    await notify_payers(session, space_pk, "transcript_ready", {})
    return True


async def fail(
    session: AsyncSession,
    job_id: int,
    worker: str,
    error: str,
    retryable: bool,
    backoff_base: float,
    backoff_cap: float,
) -> str | None:
    """Record a failed attempt: queued again after a backoff, or failed for good.

    Returns "queued", "failed", or None if the lease was lost (nothing changed).
    """
    now = utcnow()
    job = (
        await session.execute(
            select(J).where(J.id == job_id, J.locked_by == worker, J.status == "processing")
        )
    ).scalar_one_or_none()
    if job is None:
        return None
    retries = (job.retry_count or 0) + 1
    error = error[:2000]
    if should_retry(retries, job.max_retries or 0, retryable):
        delay = backoff_seconds(retries, backoff_base, backoff_cap)
        await session.execute(
            update(J)
            .where(J.id == job_id)
            .values(
                status="queued",
                retry_count=retries,
                error_message=error,
                last_error_at=now,
                available_at=now + timedelta(seconds=delay),
                locked_by=None,
                heartbeat_at=None,
            )
        )
        await session.execute(
            update(Space).where(Space.id == job.space_id).values(status="pending")
        )
        return "queued"
    await session.execute(
        update(J)
        .where(J.id == job_id)
        .values(
            status="failed",
            retry_count=retries,
            error_message=error,
            last_error_at=now,
            completed_at=now,
            locked_by=None,
        )
    )
    await session.execute(
        update(Space).where(Space.id == job.space_id).values(status="failed", error_message=error)
    )
    return "failed"


async def reap(session: AsyncSession, lease_seconds: float) -> int:
    """Queue again the jobs whose worker stopped renewing its lease (it died).

    The lost attempt counts as a retry, so a job that kills its worker every time (a
    poison job) ends ``failed`` instead of looping; its work so far is reused.
    """
    now = utcnow()
    stale = now - timedelta(seconds=lease_seconds)
    result = await session.execute(
        update(J)
        .where(J.status == "processing", or_(J.heartbeat_at.is_(None), J.heartbeat_at < stale))
        .values(
            status="queued",
            locked_by=None,
            heartbeat_at=None,
            available_at=now,
            retry_count=J.retry_count + 1,
            error_message="worker lost (lease expired)",
            last_error_at=now,
        )
        .returning(J.id)
    )
    return len(result.all())


async def fail_exhausted(session: AsyncSession) -> list[int]:
    """Jobs queued again by :func:`reap` with no attempt left: failed for good."""
    now = utcnow()
    rows = await session.execute(
        update(J)
        .where(J.status == "queued", J.retry_count >= J.max_retries)
        .values(status="failed", completed_at=now)
        .returning(J.space_id, J.error_message)
    )
    out = []
    for space_pk, err in rows.all():
        await session.execute(
            update(Space)
            .where(Space.id == space_pk)
            .values(status="failed", error_message=err or "processing failed")
        )
        out.append(space_pk)
    return out


async def payers(session: AsyncSession, space_pk: int) -> list[Payer]:
    """Every platform account that bought the Space's transcript (via its linked user)."""
    tp = TranscriptionPayment
    rows = await session.execute(
        select(tp.user_id, Account.platform, Account.platform_user_id, Invoice.payload)
        .join(Account, Account.user_id == tp.user_id)
        .outerjoin(Invoice, Invoice.id == tp.invoice_id)
        .where(tp.space_id == space_pk)
        .order_by(tp.id, Account.id)
    )
    out = []
    for user_id, platform, recipient, payload in rows.all():
        origin = None
        if payload:
            try:
                origin = json.loads(payload).get("chat_id")
            except ValueError:
                origin = None
        out.append(Payer(user_id, platform, recipient, str(origin) if origin else None))
    return out


async def notify_payers(
    session: AsyncSession, space_pk: int, kind: str, payload: dict[str, object]
) -> int:
    """One outbox message of ``kind`` per paying account (at most once each)."""
    from core.outbox import add_message

    space = await session.get(Space, space_pk)
    if space is None:
        return 0
    n = 0
    for p in await payers(session, space_pk):
        n += await add_message(
            session,
            kind=kind,
            platform=p.platform,
            recipient=p.recipient,
            payload={"space_id": space.space_id, **payload},
            dedupe_key=f"{kind}:{space.space_id}:{p.platform}:{p.recipient}",
            origin_chat_id=p.origin_chat_id,
            space_pk=space_pk,
        )
    return n


async def position(session: AsyncSession, space_pk: int) -> int | None:
    """1-based position of the Space's queued job in seed query 6's order, if queued."""
    job = (
        await session.execute(select(J).where(J.space_id == space_pk, J.status == "queued"))
    ).scalar_one_or_none()
    if job is None:
        return None
    ahead = await session.scalar(
        select(func.count())
        .select_from(J)
        .where(
            J.status == "queued",
            J.retry_count < J.max_retries,
            or_(
                J.priority > job.priority,
                and_(J.priority == job.priority, J.queued_at < job.queued_at),
                and_(J.priority == job.priority, J.queued_at == job.queued_at, J.id < job.id),
            ),
        )
    )
    return int(ahead or 0) + 1
