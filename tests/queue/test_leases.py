"""Every end state of a job is conditional on its lease, and claimers never wait on each other.

- A worker whose job was reaped and claimed by another worker cannot fail it, refund or
  notify (both engines), not even when the reaper runs between its read and its write
  (PostgreSQL, where another connection can: the read takes the row lock).
- A job that runs out of attempts through lease expiry is failed *and refunded*.
- PostgreSQL: a claimer skips the rows another open claim holds instead of waiting for them
  (``SKIP LOCKED``); a short ``lock_timeout`` turns any wait into an error, not a timing.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError

from core import queue
from core.context import Context
from core.db import Credit, Outbox, ProcessingJob, Space, utcnow
from core.refunds import settle_failed_space
from core.worker import reap_once
from tests.queue.test_queue import _claim, _enqueue, _space


async def _fail_as_worker(ctx: Context, job_id: int, worker: str, session_hook: Any = None) -> Any:
    """What ``Worker._fail`` does: fail the job and, if it failed for good, settle it."""
    async with ctx.db.session() as s:
        if session_hook is not None:
            session_hook(s)
        status = await queue.fail(s, job_id, worker, "download failed: 404", False, 0, 0)
        if status == "failed":
            await settle_failed_space(s, ctx.settings, (await _job(s)).space_id)
        return status


async def _job(s: Any) -> ProcessingJob:
    return (await s.execute(select(ProcessingJob))).scalar_one()


async def _stale(ctx: Context) -> None:
    """The holder stopped renewing its lease an hour ago (it died or hung)."""
    async with ctx.db.session() as s:
        await s.execute(update(ProcessingJob).values(heartbeat_at=utcnow() - timedelta(hours=1)))


async def _money_and_messages(ctx: Context) -> tuple[list[tuple[int, str]], list[str]]:
    async with ctx.db.session() as s:
        credits = [tuple(r) for r in await s.execute(select(Credit.amount_units, Credit.reason))]
        kinds = sorted((await s.execute(select(Outbox.kind))).scalars())
    return credits, kinds  # type: ignore[return-value]


async def test_a_worker_whose_lease_moved_cannot_fail_refund_or_notify(ctx: Context) -> None:
    pk = await _space(ctx, 1, payers=2)
    await _enqueue(ctx, pk)
    first = await _claim(ctx, "a")
    assert first is not None
    await _stale(ctx)
    async with ctx.db.session() as s:
        assert await queue.reap(s, 60) == 1
    second = await _claim(ctx, "b")
    assert second is not None and second.id == first.id
    # "a" wakes up and reports its failure: for good, then as retryable
    assert await _fail_as_worker(ctx, first.id, "a") is None
    async with ctx.db.session() as s:
        assert await queue.fail(s, first.id, "a", "late", True, 0, 0) is None
        job = await _job(s)
        assert (job.status, job.locked_by, job.retry_count) == ("processing", "b", 1)
        assert job.error_message == "worker lost (lease expired)"
        assert await s.scalar(select(Space.status).where(Space.id == pk)) == "processing"
    assert await _money_and_messages(ctx) == ([], [])
    # the lease holder can: failed for good, both payers refunded and told
    assert await _fail_as_worker(ctx, first.id, "b") == "failed"
    credits, kinds = await _money_and_messages(ctx)
    assert credits == [(200_000, "refund"), (200_000, "refund")]
    assert kinds == ["job_failed", "job_failed", "refunded", "refunded"]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_reaper_between_the_read_and_the_write_of_fail(ctx: Context) -> None:
    """Another connection reaps and re-claims the job right after ``fail()`` read it: either
    the row lock keeps it out (it would have to wait: ``lock_timeout`` makes that an error)
    or ``fail()`` sees the lease gone. Never both a new owner and a stale failure."""
    pk = await _space(ctx, 2, payers=1)
    await _enqueue(ctx, pk)
    job = await _claim(ctx, "a")
    assert job is not None
    await _stale(ctx)
    moved: list[bool] = []

    async def reap_and_claim() -> None:
        try:
            async with ctx.db.session() as s2:
                await s2.execute(text("SET LOCAL lock_timeout = '200ms'"))
                assert await queue.reap(s2, 60) == 1
                assert await queue.claim(s2, "b") is not None
            moved.append(True)
        except DBAPIError as e:
            assert "lock timeout" in str(e), e
            moved.append(False)

    def hook(s: Any) -> None:
        real = s.execute

        async def execute(*a: Any, **kw: Any) -> Any:
            result = await real(*a, **kw)
            if not moved:  # right after fail()'s first statement
                await reap_and_claim()
            return result

        s.execute = execute

    status = await _fail_as_worker(ctx, job.id, "a", hook)
    async with ctx.db.session() as s:
        row = await _job(s)
    credits, kinds = await _money_and_messages(ctx)
    if moved == [True]:  # the lease moved: "a" changed nothing
        assert status is None
        assert (row.status, row.locked_by) == ("processing", "b")
        assert (credits, kinds) == ([], [])
    else:  # the lease never moved: "a" failed its own job
        assert moved == [False] and status == "failed"
        assert (row.status, row.locked_by) == ("failed", None)
        assert (credits, kinds) == ([(200_000, "refund")], ["job_failed", "refunded"])
    # what the row lock guarantees here: the reaper could not get in between
    assert moved == [False]


async def test_out_of_attempts_through_lease_expiry_refunds(ctx: Context) -> None:
    ctx.settings.queue.lease_seconds = 60
    pk = await _space(ctx, 3, payers=2)
    await _enqueue(ctx, pk, max_retries=1)
    assert await _claim(ctx, "dead") is not None
    await _stale(ctx)
    assert await reap_once(ctx) == 1
    async with ctx.db.session() as s:
        job = await _job(s)
        sp = await s.get(Space, pk)
        refunded = await s.execute(select(Outbox.payload).where(Outbox.kind == "refunded"))
        amounts = sorted(json.loads(p)["amount"] for p in refunded.scalars())
    assert (job.status, job.retry_count, job.locked_by) == ("failed", 1, None)
    assert sp is not None and sp.status == "failed" and "lease" in (sp.error_message or "")
    credits, kinds = await _money_and_messages(ctx)
    assert credits == [(200_000, "refund"), (200_000, "refund")]
    assert kinds == ["job_failed", "job_failed", "refunded", "refunded"]
    assert amounts == ["0.2", "0.2"]
    assert await reap_once(ctx) == 0  # and once only
    assert await _money_and_messages(ctx) == (credits, kinds)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_claimers_never_wait_on_each_other(ctx: Context) -> None:
    pks = [await _space(ctx, 10 + i) for i in range(3)]
    for pk in pks:
        await _enqueue(ctx, pk)
    async with ctx.db.sessionmaker() as held, held.begin():
        # an open claim: its rows stay locked until this transaction ends
        first = await queue.claim_many(held, "a", 1)
        assert len(first) == 1
        for n in (1, 2):  # both remaining jobs, one at a time, without waiting
            async with ctx.db.session() as s:
                await s.execute(text("SET LOCAL lock_timeout = '100ms'"))
                got = await queue.claim_many(s, f"b{n}", 1)
            assert len(got) == 1 and got[0].id != first[0].id, got
        async with ctx.db.session() as s:  # nothing left but the held row: skipped, no wait
            await s.execute(text("SET LOCAL lock_timeout = '100ms'"))
            assert await queue.claim_many(s, "c", 5) == []
    async with ctx.db.session() as s:
        owners = (await s.execute(select(ProcessingJob.locked_by))).scalars().all()
        assert sorted(owners) == ["a", "b1", "b2"]
        assert await s.scalar(select(func.count()).select_from(ProcessingJob)) == 3
