"""The processing queue (``processing_queue``): one live job per Space, claimed atomically.

Like procrastinate: every statement lives here, retry decisions are pure functions, and
the same code runs on SQLite and PostgreSQL. A claim takes up to n jobs in one
``UPDATE … RETURNING``: on PostgreSQL its sub-select takes ``FOR UPDATE SKIP LOCKED`` so
concurrent workers never wait on or take the same row, and the Spaces turn ``processing``
in the same statement; on SQLite the write transaction (``BEGIN IMMEDIATE``) serialises
claimers. Order is the seed's query 6 (priority DESC, queued_at ASC), read from a partial
index of queued jobs, so a claim costs the same however many finished jobs the table holds.

A claimed job carries a lease (``locked_by``, ``heartbeat_at``); the worker renews it while
it works and a job whose lease expired (its worker died) is queued again by :func:`reap`.
Every transition is conditional on the lease, so a job completes at most once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    DateTime,
    Executable,
    Integer,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from core import backoff
from core.db import ProcessingJob, Space, utcnow
from core.db.upsert import dialect_name, insert_ignore
from core.statuses import JobStatus, SpaceStatus

LIVE_STATUSES = (JobStatus.QUEUED, JobStatus.PROCESSING)
LIVE_INDEX_PREDICATE = text("status IN ('queued', 'processing')")
J = ProcessingJob


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    space_pk: int
    retry_count: int
    max_retries: int


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
        "status": JobStatus.QUEUED,
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


# ---------------------------------------------------------------- hot-path statements
#
# Claim, complete and heartbeat run for every job, so they are Core statements on the
# tables (no ORM unit of work), built once per dialect with bound parameters: SQLAlchemy
# reuses their memoised cache key and compiled form, and asyncpg its prepared statement.
# Each takes a batch (``LIMIT :n`` / a list of ids), so a worker with n free slots pays
# for one statement, not n.

QT = cast(Table, ProcessingJob.__table__)
ST = cast(Table, Space.__table__)
_NOW = bindparam("now", type_=DateTime())
_WORKER = bindparam("worker", type_=Text())
# Status values are constants written into the SQL: a partial index's predicate
# (``status = 'queued'``) only matches a literal, and on PostgreSQL the generic plan of a
# prepared statement knows no bound value.
QUEUED, PROCESSING, COMPLETED, SPACE_PROCESSING, SPACE_COMPLETED = (
    literal_column(f"'{v}'", Text())
    for v in (
        JobStatus.QUEUED,
        JobStatus.PROCESSING,
        JobStatus.COMPLETED,
        SpaceStatus.PROCESSING,
        SpaceStatus.COMPLETED,
    )
)


@dataclass(frozen=True)
class _Statements:
    claim: Executable  # now, worker, n → (id, space_id, retry_count, max_retries)
    claim_spaces: Executable | None  # SQLite only: now, space_ids (PostgreSQL folds it in)
    complete: Executable  # now, worker, ids → (id, space_id)
    complete_spaces: Executable | None  # SQLite only: now, space_ids
    heartbeat: Executable  # now, worker, ids → (id,)


# pragma: no mutate start
# (built once at import, before mutmut can switch a mutant on: the queue tests cover them)
def _ids(name: str, postgres: bool) -> ColumnElement[bool]:
    """``column = ANY(:ids)`` on PostgreSQL (one prepared statement for every batch size),
    an expanding ``IN`` on SQLite."""
    col = QT.c.id if name == "ids" else ST.c.id
    if postgres:
        return col == any_(bindparam(name, type_=ARRAY(Integer())))
    return col.in_(bindparam(name, expanding=True))


# SQLite without table statistics prefers the status index and a sort of every queued job
# over reading the claim index in order; SQLAlchemy cannot render ``INDEXED BY``, hence text.
# The same conditions and order as the PostgreSQL sub-select below.
_SQLITE_PICK = (
    text(
        "SELECT id FROM processing_queue INDEXED BY idx_processing_queue_claim"
        " WHERE status = 'queued' AND retry_count < max_retries"
        " AND (available_at IS NULL OR available_at <= :now)"
        " ORDER BY priority DESC, queued_at ASC, id ASC LIMIT :n"
    )
    .bindparams(_NOW, bindparam("n", type_=Integer()))
    .columns(QT.c.id)
)


def _build(postgres: bool) -> _Statements:
    pick = (
        select(QT.c.id)
        .where(
            QT.c.status == QUEUED,
            QT.c.retry_count < QT.c.max_retries,
            or_(QT.c.available_at.is_(None), QT.c.available_at <= _NOW),
        )
        .order_by(QT.c.priority.desc(), QT.c.queued_at.asc(), QT.c.id.asc())
        .limit(bindparam("n", type_=Integer()))
    )
    if postgres:
        # the picked ids become one array, so the UPDATE finds its rows through the primary
        # key instead of joining the sub-select against the whole table
        picked = QT.c.id == any_(
            func.array(pick.with_for_update(skip_locked=True).scalar_subquery())
        )
    else:
        picked = QT.c.id.in_(_SQLITE_PICK)
    claim = (
        update(QT)
        .where(picked, QT.c.status == QUEUED)
        .values(status=PROCESSING, started_at=_NOW, locked_by=_WORKER, heartbeat_at=_NOW)
        .returning(
            QT.c.id,
            QT.c.space_id,
            QT.c.retry_count,
            QT.c.max_retries,
            QT.c.priority,
            QT.c.queued_at,
        )
    )
    start_spaces = update(ST).values(
        status=SPACE_PROCESSING,
        processing_started_at=func.coalesce(ST.c.processing_started_at, _NOW),
    )
    complete = (
        update(QT)
        .where(_ids("ids", postgres), QT.c.locked_by == _WORKER, QT.c.status == PROCESSING)
        .values(status=COMPLETED, completed_at=_NOW, locked_by=None)
        .returning(QT.c.id, QT.c.space_id)
    )
    finish_spaces = update(ST).values(
        status=SPACE_COMPLETED,
        completed_at=func.coalesce(ST.c.completed_at, _NOW),
        error_message=None,
    )
    heartbeat = (
        update(QT)
        .where(_ids("ids", postgres), QT.c.locked_by == _WORKER, QT.c.status == PROCESSING)
        .values(heartbeat_at=_NOW)
        .returning(QT.c.id)
    )
    if not postgres:
        # SQLite: the write transaction (BEGIN IMMEDIATE) holds both statements together
        return _Statements(
            claim=claim,
            claim_spaces=start_spaces.where(
                _ids("space_ids", False), ST.c.status != SPACE_COMPLETED
            ),
            complete=complete,
            complete_spaces=finish_spaces.where(_ids("space_ids", False)),
            heartbeat=heartbeat,
        )
    # PostgreSQL: the Space rows change in the same statement (data-modifying CTEs)
    claimed = claim.cte("claimed")
    started = start_spaces.where(ST.c.id == claimed.c.space_id, ST.c.status != SPACE_COMPLETED).cte(
        "started"
    )
    done = complete.cte("done")
    finished = finish_spaces.where(ST.c.id == done.c.space_id).cte("finished")
    return _Statements(
        claim=select(claimed.c.id, claimed.c.space_id, claimed.c.retry_count, claimed.c.max_retries)
        .add_cte(started)
        .order_by(claimed.c.priority.desc(), claimed.c.queued_at.asc(), claimed.c.id.asc()),
        claim_spaces=None,
        complete=select(done.c.id, done.c.space_id).add_cte(finished),
        complete_spaces=None,
        heartbeat=heartbeat,
    )


_STATEMENTS = {"postgresql": _build(True), "sqlite": _build(False)}
# pragma: no mutate end


def _sql(session: AsyncSession) -> _Statements:
    return _STATEMENTS[dialect_name(session)]


async def claim_many(session: AsyncSession, worker: str, n: int) -> list[ClaimedJob]:
    """Take up to ``n`` jobs (seed query 6 order) for ``worker`` in one statement.

    Their Spaces become ``processing`` in the same transaction. Concurrent claimers never
    get the same job: PostgreSQL skips rows another claim has locked, SQLite serialises.
    """
    if n < 1:
        return []
    sql = _sql(session)
    now = utcnow()
    rows = (await session.execute(sql.claim, {"now": now, "worker": worker, "n": n})).all()
    if rows and sql.claim_spaces is not None:
        await session.execute(sql.claim_spaces, {"now": now, "space_ids": [r[1] for r in rows]})
    jobs = [ClaimedJob(r[0], r[1], r[2] or 0, r[3] or 0) for r in rows]
    if sql.claim_spaces is not None:  # SQLite's RETURNING order is unspecified
        order = {r[0]: (-(r[4] or 0), r[5] or datetime.min, r[0]) for r in rows}
        jobs.sort(key=lambda j: order[j.id])
    return jobs


async def claim(session: AsyncSession, worker: str) -> ClaimedJob | None:
    """Take the next job (seed query 6 order) for ``worker``; None if there is none."""
    jobs = await claim_many(session, worker, 1)
    return jobs[0] if jobs else None


async def claim_space(session: AsyncSession, worker: str, space_pk: int) -> ClaimedJob | None:
    """Take the queued job of one Space, if it can run now (``spacescribe import`` runs the
    job it queued in its own process). Concurrent claimers never both get it: PostgreSQL
    skips the row another claim has locked, SQLite serialises writers."""
    now = utcnow()
    pick = select(J.id).where(
        J.space_id == space_pk,
        J.status == JobStatus.QUEUED,
        J.retry_count < J.max_retries,
        # due now: ``<`` would differ only at the very microsecond the backoff ends
        or_(J.available_at.is_(None), J.available_at <= now),  # pragma: no mutate
    )
    # PostgreSQL only (SQLite serialises writers; the mutation run is on SQLite): a claimer
    # skips a row another claim holds, as tests/queue/test_leases.py shows for claim_many
    if dialect_name(session) == "postgresql":  # pragma: no mutate
        pick = pick.with_for_update(skip_locked=True)  # pragma: no mutate
    job_id = await session.scalar(pick)
    if job_id is None:
        return None
    row = (
        await session.execute(
            update(J)
            # the SELECT above holds the row (SQLite: the one writer; PostgreSQL: FOR UPDATE),
            # so this status guard cannot be seen failing: a second lock, not a tested rule
            .where(J.id == job_id, J.status == JobStatus.QUEUED)  # pragma: no mutate
            .values(status=JobStatus.PROCESSING, started_at=now, locked_by=worker, heartbeat_at=now)
            .returning(J.id, J.space_id, J.retry_count, J.max_retries)
        )
    ).first()
    if row is None:
        return None
    await session.execute(
        update(Space)
        .where(Space.id == space_pk, Space.status != SpaceStatus.COMPLETED)
        .values(
            status=SpaceStatus.PROCESSING,
            processing_started_at=func.coalesce(Space.processing_started_at, now),
        )
    )
    # a job with NULL max_retries is never picked (retry_count < NULL is not true): the
    # fallback is never taken
    return ClaimedJob(row[0], row[1], row[2] or 0, row[3] or 0)  # pragma: no mutate


async def heartbeat_many(session: AsyncSession, job_ids: list[int], worker: str) -> set[int]:
    """Renew the leases of ``worker``'s jobs; returns the ids still held (others were lost)."""
    if not job_ids:
        return set()
    rows = await session.execute(
        _sql(session).heartbeat, {"now": utcnow(), "worker": worker, "ids": list(job_ids)}
    )
    return {r[0] for r in rows}


async def heartbeat(session: AsyncSession, job_id: int, worker: str) -> bool:
    """Renew the lease. False means the lease was lost: stop working on the job."""
    return job_id in await heartbeat_many(session, [job_id], worker)


async def complete_many(session: AsyncSession, job_ids: list[int], worker: str) -> dict[int, int]:
    """Mark ``worker``'s jobs done (each once) and their Spaces completed. Returns job id →
    Space pk of the jobs completed now (the rest had lost their lease): the caller tells
    their payers (:func:`core.payers.transcript_ready`) in the same transaction."""
    if not job_ids:
        return {}
    sql = _sql(session)
    now = utcnow()
    rows = (
        await session.execute(sql.complete, {"now": now, "worker": worker, "ids": list(job_ids)})
    ).all()
    space_pks = [r[1] for r in rows]
    if space_pks and sql.complete_spaces is not None:
        await session.execute(sql.complete_spaces, {"now": now, "space_ids": space_pks})
    return {r[0]: r[1] for r in rows}


async def complete(session: AsyncSession, job_id: int, worker: str) -> bool:
    """Mark the job done (once); False if the lease was lost."""
    return job_id in await complete_many(session, [job_id], worker)


async def fail(
    session: AsyncSession,
    job_id: int,
    worker: str,
    error: str,
    retryable: bool,
    backoff_base: float,
    backoff_cap: float,
) -> JobStatus | None:
    """Record a failed attempt: queued again after a backoff, or failed for good.

    Returns ``queued``, ``failed``, or None if the lease was lost (nothing changed).

    Every write is conditional on the lease (id, worker, ``processing``) and the read takes
    the row lock (``FOR UPDATE`` on PostgreSQL; SQLite's write transaction serialises), so
    a worker whose job was reaped and claimed by another worker overwrites nothing, and its
    caller neither refunds nor notifies.
    """
    now = utcnow()
    held = (J.id == job_id, J.locked_by == worker, J.status == JobStatus.PROCESSING)
    job = (
        await session.execute(
            select(J.retry_count, J.max_retries, J.space_id).where(*held).with_for_update()
        )
    ).one_or_none()
    if job is None:
        return None
    retries = (job.retry_count or 0) + 1
    error = error[:2000]
    # NULL, 0 and 1 all allow no second attempt: ``or 1`` would be the same rule
    attempts = job.max_retries or 0  # pragma: no mutate
    if should_retry(retries, attempts, retryable):
        delay = backoff.exponential(retries, backoff_base, backoff_cap)  # as the outbox
        status = JobStatus.QUEUED
        space_values: dict[str, object] = {"status": SpaceStatus.PENDING}
        values: dict[str, object] = {
            "available_at": now + timedelta(seconds=delay),
            "heartbeat_at": None,
        }
    else:
        status = JobStatus.FAILED
        space_values = {"status": SpaceStatus.FAILED, "error_message": error}
        values = {"completed_at": now}
    moved = await session.execute(
        update(J)
        .where(*held)
        .values(
            status=status,
            retry_count=retries,
            error_message=error,
            last_error_at=now,
            locked_by=None,
            **values,
        )
        .returning(J.id)
    )
    if moved.first() is None:  # the lease moved after all: nothing of ours to end
        return None
    await session.execute(update(Space).where(Space.id == job.space_id).values(**space_values))
    return status


async def defer(
    session: AsyncSession, job_id: int, worker: str, note: str, delay_seconds: float
) -> bool:
    """Put a job back to wait (a live or scheduled Space): queued again after
    ``delay_seconds``, without counting an attempt. False if the lease was lost."""
    now = utcnow()
    moved = await session.execute(
        update(J)
        .where(J.id == job_id, J.locked_by == worker, J.status == JobStatus.PROCESSING)
        .values(
            status=JobStatus.QUEUED,
            error_message=note[:2000],
            available_at=now + timedelta(seconds=delay_seconds),
            locked_by=None,
            heartbeat_at=None,
        )
        .returning(J.space_id)
    )
    space_pk = moved.scalar_one_or_none()
    if space_pk is None:
        return False
    await session.execute(
        update(Space).where(Space.id == space_pk).values(status=SpaceStatus.PENDING)
    )
    return True


async def reap(session: AsyncSession, lease_seconds: float) -> int:
    """Queue again the jobs whose worker stopped renewing its lease (it died).

    The lost attempt counts as a retry, so a job that kills its worker every time (a
    poison job) ends ``failed`` instead of looping; its work so far is reused.
    """
    now = utcnow()
    stale = now - timedelta(seconds=lease_seconds)
    # ``<=`` would differ only for a heartbeat exactly ``lease_seconds`` old, to the microsecond
    lapsed = J.heartbeat_at < stale  # pragma: no mutate
    result = await session.execute(
        update(J)
        .where(J.status == JobStatus.PROCESSING, or_(J.heartbeat_at.is_(None), lapsed))
        .values(
            status=JobStatus.QUEUED,
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
        .where(J.status == JobStatus.QUEUED, J.retry_count >= J.max_retries)
        .values(status=JobStatus.FAILED, completed_at=now)
        .returning(J.space_id, J.error_message)
    )
    out = []
    for space_pk, err in rows.all():
        await session.execute(
            update(Space)
            .where(Space.id == space_pk)
            .values(status=SpaceStatus.FAILED, error_message=err or "processing failed")
        )
        out.append(space_pk)
    return out


async def position(session: AsyncSession, space_pk: int) -> int | None:
    """1-based position of the Space's queued job in seed query 6's order, if queued."""
    job = (
        await session.execute(select(J).where(J.space_id == space_pk, J.status == JobStatus.QUEUED))
    ).scalar_one_or_none()
    if job is None:
        return None
    return int((await session.execute(place_of(job.priority, job.queued_at, job.id))).scalar_one())


def place_of(priority: int | None, queued_at: datetime | None, job_id: int) -> Executable:
    """The 1-based position of a queued job (its priority, queued_at and id) in seed query
    6's order, as one statement: it counts the live queued jobs ahead of it. A Core
    statement, for a session or a :meth:`Database.reader` alike."""
    return (
        select(func.count() + 1)
        .select_from(J)
        .where(
            J.status == JobStatus.QUEUED,
            J.retry_count < J.max_retries,
            or_(
                J.priority > priority,
                and_(J.priority == priority, J.queued_at < queued_at),
                and_(J.priority == priority, J.queued_at == queued_at, J.id < job_id),
            ),
        )
    )
