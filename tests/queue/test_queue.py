"""The processing queue on both engines: order, atomic claims, backoff, leases, refunds."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import accounts, backoff, payers, queue
from core.context import Context
from core.db import Credit, Outbox, ProcessingJob, Space, TranscriptionPayment, utcnow
from core.results import Caller
from core.worker import Worker, reap_once

ROOT = Path(__file__).resolve().parents[2]


async def _space(ctx: Context, n: int, payers: int = 0) -> int:
    sid = f"1Q{n:011d}"
    async with ctx.db.session() as s:
        sp = Space(space_id=sid, space_url=f"https://x.com/i/spaces/{sid}", title=f"S{n}")
        s.add(sp)
        await s.flush()
        for p in range(payers):
            user = await accounts.get_or_create_user(s, f"0x{n:020x}{p:020x}")
            acc = await accounts.get_or_create_account(s, Caller("telegram", f"{n}-{p}"))
            await accounts.link_account(s, acc.id, user.id)
            s.add(
                TranscriptionPayment(
                    user_id=user.id,
                    space_id=sp.id,
                    amount_usdc="0.2",
                    payment_verified=True,
                    paid_at=utcnow(),
                )
            )
        return sp.id


async def _enqueue(ctx: Context, pk: int, **kw: int) -> None:
    async with ctx.db.session() as s:
        assert await queue.enqueue(s, pk, **kw)


async def _claim(ctx: Context, worker: str = "w") -> queue.ClaimedJob | None:
    async with ctx.db.session() as s:
        return await queue.claim(s, worker)


async def complete(s: AsyncSession, ids: list[int], worker: str) -> set[int]:
    """Complete jobs and tell their payers in one transaction, as the worker does."""
    done = await queue.complete_many(s, ids, worker)
    await payers.transcript_ready(s, list(done.values()))
    return set(done)


async def test_order_is_seed_query_6(ctx: Context) -> None:
    pks = [await _space(ctx, i) for i in range(4)]
    await _enqueue(ctx, pks[0])
    await _enqueue(ctx, pks[1], priority=5)
    await _enqueue(ctx, pks[2])
    await _enqueue(ctx, pks[3], priority=5)
    async with ctx.db.session() as s:  # a job out of retries is never picked
        await s.execute(
            update(ProcessingJob)
            .where(ProcessingJob.space_id == pks[2])
            .values(retry_count=3, max_retries=3)
        )
    order = [(await _claim(ctx)) for _ in range(4)]
    assert [j.space_pk if j else None for j in order] == [pks[1], pks[3], pks[0], None]
    async with ctx.db.session() as s:
        st = await s.scalar(select(Space.status).where(Space.id == pks[1]))
    assert st == "processing"


async def test_concurrent_claimers_never_share_a_job(ctx: Context) -> None:
    pks = [await _space(ctx, i) for i in range(30)]
    for pk in pks:
        await _enqueue(ctx, pk)

    async def claimer(name: str) -> list[int]:
        got = []
        while (job := await _claim(ctx, name)) is not None:
            got.append(job.id)
        return got

    results = await asyncio.gather(*(claimer(f"w{i}") for i in range(6)))
    flat = [j for r in results for j in r]
    assert len(flat) == 30 and len(set(flat)) == 30


def test_backoff_is_exponential_and_capped() -> None:
    """The one formula of the queue's retries and the outbox's deliveries."""
    assert [backoff.exponential(n, 30, 3600) for n in range(0, 5)] == [0, 30, 60, 120, 240]
    assert backoff.exponential(20, 30, 3600) == 3600
    assert backoff.exponential(2, 0.5, 3600) == 1.0 and backoff.exponential(-1, 30, 60) == 0
    assert queue.should_retry(1, 3, True) and not queue.should_retry(3, 3, True)
    assert not queue.should_retry(1, 3, False)


async def test_retry_then_fail_refunds_and_tells_payers(ctx: Context) -> None:
    pk = await _space(ctx, 1, payers=2)
    await _enqueue(ctx, pk)
    for attempt in range(1, 4):
        async with ctx.db.session() as s:  # make the job due now despite the backoff
            await s.execute(update(ProcessingJob).values(available_at=utcnow()))
        job = await _claim(ctx)
        assert job is not None
        async with ctx.db.session() as s:
            status = await queue.fail(s, job.id, "w", "download failed: HTTP 404", True, 30, 3600)
            if status == "failed":
                from core.refunds import settle_failed_space

                await settle_failed_space(s, ctx.settings, pk)
        assert status == ("failed" if attempt == 3 else "queued")
        if attempt == 1:
            async with ctx.db.session() as s:
                job_row = (await s.execute(select(ProcessingJob))).scalar_one()
                assert job_row.available_at is not None and job_row.last_error_at is not None
                assert job_row.available_at - job_row.last_error_at >= timedelta(seconds=29)
                assert await s.scalar(select(Space.status).where(Space.id == pk)) == "pending"
    async with ctx.db.session() as s:
        sp = await s.get(Space, pk)
        assert sp is not None and sp.status == "failed" and "404" in (sp.error_message or "")
        credits = (await s.execute(select(Credit))).scalars().all()
        assert sorted(c.amount_units for c in credits) == [200_000, 200_000]
        kinds = (await s.execute(select(Outbox.kind, func.count()).group_by(Outbox.kind))).all()
        assert dict(kinds) == {"job_failed": 2, "refunded": 2}
        # settling again changes nothing (idempotent)
        from core.refunds import settle_failed_space

        assert await settle_failed_space(s, ctx.settings, pk) == 0
    async with ctx.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Credit)) == 2


async def test_completion_is_once_and_lease_bound(ctx: Context) -> None:
    pk = await _space(ctx, 2, payers=1)
    await _enqueue(ctx, pk)
    job = await _claim(ctx, "a")
    assert job is not None
    async with ctx.db.session() as s:
        assert not await queue.complete(s, job.id, "b")  # not b's lease
        assert await complete(s, [job.id], "a") == {job.id}
    async with ctx.db.session() as s:
        assert not await queue.complete(s, job.id, "a")
        assert await complete(s, [job.id], "a") == set()  # told once
        assert await s.scalar(select(func.count()).select_from(Outbox)) == 1
        msg = (await s.execute(select(Outbox))).scalar_one()
        assert (
            msg.kind == "transcript_ready"
            and json.loads(msg.payload)["space_id"] == "1Q00000000002"
        )


async def test_worker_processes_and_retries(ctx: Context) -> None:
    ctx.settings.queue.backoff_base_seconds = 0
    pk = await _space(ctx, 3, payers=1)
    await _enqueue(ctx, pk)
    calls = []

    async def flaky(c: Context, space_pk: int) -> None:
        calls.append(space_pk)
        if len(calls) == 1:
            raise RuntimeError("STT returned 500")

    w = Worker(ctx, flaky, "w1")
    assert await w.run_one() and await w.run_one()
    assert not await w.run_one()
    async with ctx.db.session() as s:
        job = (await s.execute(select(ProcessingJob))).scalar_one()
        assert (job.status, job.retry_count) == ("completed", 1)
        assert await s.scalar(select(Space.status).where(Space.id == pk)) == "completed"


async def test_sigkilled_worker_job_is_picked_up_and_completes_once(
    ctx: Context, db_url: str, tmp_path: Path
) -> None:
    pk = await _space(ctx, 4, payers=2)
    await _enqueue(ctx, pk)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.queue.worker_proc", db_url, str(tmp_path)], cwd=ROOT, env=env
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / f"started-{pk}").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "worker never started"
            await asyncio.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    async with ctx.db.session() as s:
        job = (await s.execute(select(ProcessingJob))).scalar_one()
        assert (job.status, job.locked_by) == ("processing", "victim")
    ctx.settings.queue.lease_seconds = 1
    await asyncio.sleep(1.2)
    assert await reap_once(ctx) == 1
    done = []

    async def finish(c: Context, space_pk: int) -> None:
        done.append(space_pk)

    w = Worker(ctx, finish, "rescuer")
    assert await w.run_one()
    assert done == [pk]
    assert await reap_once(ctx) == 0 and not await w.run_one()
    async with ctx.db.session() as s:
        job = (await s.execute(select(ProcessingJob))).scalar_one()
        assert (job.status, job.retry_count) == ("completed", 1)
        assert await s.scalar(select(func.count()).select_from(Outbox)) == 2  # one per payer


@pytest.mark.parametrize("n_workers", [3])
async def test_parallel_worker_processes_share_the_queue(
    ctx: Context, db_url: str, n_workers: int
) -> None:
    """Several real processes claim from one queue: every job exactly once."""
    pks = [await _space(ctx, 100 + i) for i in range(40)]
    for pk in pks:
        await _enqueue(ctx, pk)
    script = (
        "import asyncio,sys\n"
        "from core.db import Database\n"
        "from core import queue\n"
        "async def main():\n"
        "    db = Database(sys.argv[1]); got = []\n"
        "    while True:\n"
        "        async with db.session() as s:\n"
        "            j = await queue.claim(s, sys.argv[2])\n"
        "        if j is None: break\n"
        "        got.append(j.id)\n"
        "    print(' '.join(map(str, got))); await db.dispose()\n"
        "asyncio.run(main())\n"
    )
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
            db_url,
            f"p{i}",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        for i in range(n_workers)
    ]
    outs = [(await p.communicate())[0].decode().split() for p in procs]
    claimed = [int(x) for out in outs for x in out]
    assert len(claimed) == 40 and len(set(claimed)) == 40


# Every column each transition writes, exactly: a job's row is what the next claim, the
# reaper and an operator's `status` read, so a value left out or written wrong is a bug.


async def _row(ctx: Context, pk: int) -> tuple[ProcessingJob, Space]:
    async with ctx.db.session() as s:
        job = (
            await s.execute(select(ProcessingJob).where(ProcessingJob.space_id == pk))
        ).scalar_one()
        sp = await s.get(Space, pk)
        assert sp is not None
        return job, sp


def _recent(at: object) -> bool:
    now = utcnow().replace(tzinfo=None)
    return at is not None and abs(now - at.replace(tzinfo=None)) < timedelta(minutes=1)  # type: ignore[attr-defined]


async def test_a_retried_attempt_writes_its_error_backoff_and_frees_the_lease(ctx: Context) -> None:
    pk = await _space(ctx, 20)
    await _enqueue(ctx, pk)
    job = await _claim(ctx, "w")
    assert job is not None
    long_error = "E" * 2500
    async with ctx.db.session() as s:
        assert await queue.fail(s, job.id, "w", long_error, True, 30, 3600) == "queued"
    row, sp = await _row(ctx, pk)
    assert (row.status, row.retry_count, row.locked_by, row.heartbeat_at) == (
        "queued",
        1,
        None,
        None,
    )
    assert row.error_message == "E" * 2000  # kept to 2,000 characters, not one more
    assert _recent(row.last_error_at) and row.completed_at is None
    assert row.available_at - row.last_error_at == timedelta(seconds=30)  # type: ignore[operator]
    assert (sp.status, sp.error_message) == ("pending", None)


async def test_a_last_attempt_fails_job_and_space_with_the_error(ctx: Context) -> None:
    pk = await _space(ctx, 21)
    await _enqueue(ctx, pk, max_retries=1)
    job = await _claim(ctx, "w")
    assert job is not None
    async with ctx.db.session() as s:
        assert await queue.fail(s, job.id, "w", "download failed: 404", True, 30, 3600) == "failed"
    row, sp = await _row(ctx, pk)
    assert (row.status, row.retry_count, row.locked_by) == ("failed", 1, None)
    assert row.error_message == "download failed: 404" and _recent(row.completed_at)
    assert _recent(row.last_error_at)
    assert (sp.status, sp.error_message) == ("failed", "download failed: 404")


async def test_reap_takes_back_only_expired_or_unrenewed_leases(ctx: Context) -> None:
    fresh, stale, never = [await _space(ctx, 30 + i) for i in range(3)]
    for pk in (fresh, stale, never):
        await _enqueue(ctx, pk)
        assert await _claim(ctx, f"w{pk}") is not None
    async with ctx.db.session() as s:
        J = ProcessingJob
        await s.execute(
            update(J)
            .where(J.space_id == stale)
            .values(heartbeat_at=utcnow() - timedelta(seconds=90))
        )
        await s.execute(update(J).where(J.space_id == never).values(heartbeat_at=None))
        await s.execute(
            update(J)
            .where(J.space_id == fresh)
            .values(heartbeat_at=utcnow() - timedelta(seconds=30))
        )
    async with ctx.db.session() as s:
        assert await queue.reap(s, 60) == 2
    row, _ = await _row(ctx, fresh)
    assert (row.status, row.locked_by, row.retry_count) == ("processing", f"w{fresh}", 0)
    for pk in (stale, never):
        row, _ = await _row(ctx, pk)
        assert (row.status, row.locked_by, row.heartbeat_at) == ("queued", None, None)
        assert (row.retry_count, row.error_message) == (1, "worker lost (lease expired)")
        assert _recent(row.last_error_at) and row.available_at == row.last_error_at


async def test_only_queued_jobs_without_attempts_left_fail_for_good(ctx: Context) -> None:
    spent, left, done = [await _space(ctx, 40 + i) for i in range(3)]
    for pk in (spent, left, done):
        await _enqueue(ctx, pk, max_retries=2)
    async with ctx.db.session() as s:
        J = ProcessingJob
        await s.execute(
            update(J).where(J.space_id == spent).values(retry_count=2, error_message=None)
        )
        await s.execute(update(J).where(J.space_id == left).values(retry_count=1))
        # a job that completed on its last attempt is history, not a failure
        await s.execute(
            update(J).where(J.space_id == done).values(status="completed", retry_count=2)
        )
    async with ctx.db.session() as s:
        assert await queue.fail_exhausted(s) == [spent]
    row, sp = await _row(ctx, spent)
    assert row.status == "failed" and _recent(row.completed_at)
    assert (sp.status, sp.error_message) == ("failed", "processing failed")
    assert (await _row(ctx, left))[0].status == "queued"
    assert (await _row(ctx, done))[0].status == "completed"


async def test_defer_waits_without_counting_an_attempt(ctx: Context) -> None:
    pk = await _space(ctx, 50)
    await _enqueue(ctx, pk)
    job = await _claim(ctx, "w")
    assert job is not None
    async with ctx.db.session() as s:
        assert not await queue.defer(s, job.id, "other", "live", 600)  # not its lease
    async with ctx.db.session() as s:
        assert await queue.defer(s, job.id, "w", "N" * 2100, 600)
    row, sp = await _row(ctx, pk)
    assert (row.status, row.retry_count, row.locked_by, row.heartbeat_at) == (
        "queued",
        0,
        None,
        None,
    )
    assert row.error_message == "N" * 2000 and sp.status == "pending"
    assert _recent(row.available_at - timedelta(seconds=600))  # type: ignore[operator]
    async with ctx.db.session() as s:  # waiting: nobody claims it before its time
        assert await queue.claim_space(s, "w", pk) is None
        assert not await queue.defer(s, job.id, "w", "again", 1)  # no longer processing


async def test_claim_space_takes_that_spaces_job_when_it_may_run(ctx: Context) -> None:
    mine, other = await _space(ctx, 60), await _space(ctx, 61)
    await _enqueue(ctx, mine, max_retries=2)
    await _enqueue(ctx, other)
    started = utcnow() - timedelta(hours=2)
    J = ProcessingJob
    async with ctx.db.session() as s:
        await s.execute(update(Space).where(Space.id == mine).values(processing_started_at=started))
        await s.execute(update(J).where(J.space_id == mine).values(retry_count=2))
    async with ctx.db.session() as s:  # out of attempts
        assert await queue.claim_space(s, "w", mine) is None
    async with ctx.db.session() as s:  # an attempt left, but not due yet
        await s.execute(
            update(J)
            .where(J.space_id == mine)
            .values(retry_count=1, available_at=utcnow() + timedelta(hours=1))
        )
    async with ctx.db.session() as s:
        assert await queue.claim_space(s, "w", mine) is None
        await s.execute(update(J).where(J.space_id == mine).values(available_at=None))
    async with ctx.db.session() as s:
        got = await queue.claim_space(s, "w", mine)
    assert got is not None
    assert (got.space_pk, got.retry_count, got.max_retries) == (mine, 1, 2)
    row, sp = await _row(ctx, mine)
    assert (row.id, row.status, row.locked_by) == (got.id, "processing", "w")
    assert _recent(row.started_at) and row.heartbeat_at == row.started_at
    assert sp.status == "processing"
    assert sp.processing_started_at.replace(tzinfo=None) == started.replace(tzinfo=None)  # type: ignore[union-attr]
    async with ctx.db.session() as s:  # taken: a second claim gets nothing
        assert await queue.claim_space(s, "v", mine) is None
    row, sp = await _row(ctx, other)  # the other Space's job was not touched
    assert (row.status, sp.status) == ("queued", "pending")


async def test_claim_space_never_reopens_a_completed_space(ctx: Context) -> None:
    pk = await _space(ctx, 62)
    await _enqueue(ctx, pk)
    async with ctx.db.session() as s:
        await s.execute(update(Space).where(Space.id == pk).values(status="completed"))
    async with ctx.db.session() as s:
        got = await queue.claim_space(s, "w", pk)
    assert got is not None
    row, sp = await _row(ctx, pk)
    assert row.status == "processing" and sp.status == "completed"


async def test_position_counts_the_jobs_claimed_before_it(ctx: Context) -> None:
    """Seed query 6's order: higher priority first, then earlier queued, then lower id; jobs
    out of attempts and jobs not queued are not ahead of anyone."""
    pks = [await _space(ctx, 70 + i) for i in range(7)]
    for pk in pks:
        await _enqueue(ctx, pk)
    J = ProcessingJob
    t0 = utcnow() - timedelta(hours=1)
    async with ctx.db.session() as s:
        rows = [
            (0, t0 + timedelta(minutes=2)),  # pks[0]
            (0, t0 + timedelta(minutes=3)),  # pks[1]: higher id than pks[0], queued later
            # pks[2]: higher priority, queued last, with pks[1] (a lower id, but a lower
            # priority: the id breaks ties of priority and time only)
            (5, t0 + timedelta(minutes=3)),
            # pks[3]: same priority and time as pks[1], a higher id: behind it (and behind
            # pks[0], queued earlier with a lower id)
            (0, t0 + timedelta(minutes=3)),
            (9, t0),  # pks[4]: out of attempts: never claimed, so never ahead
            (9, t0),  # pks[5]: processing: not waiting
            (0, t0 + timedelta(minutes=1)),  # pks[6]: the highest id, queued first of its rank
        ]
        for pk, (priority, at) in zip(pks, rows, strict=True):
            await s.execute(
                update(J).where(J.space_id == pk).values(priority=priority, queued_at=at)
            )
        await s.execute(update(J).where(J.space_id == pks[4]).values(retry_count=3, max_retries=3))
        await s.execute(update(J).where(J.space_id == pks[5]).values(status="processing"))
    async with ctx.db.session() as s:
        got = [await queue.position(s, pk) for pk in pks]
    assert got == [3, 4, 1, 5, 1, None, 2]


async def test_claim_space_picks_the_queued_job_and_reports_it_exactly(ctx: Context) -> None:
    """The Space's finished job is history: the claim takes its queued one, reports that
    job's own id and attempts, and stamps the Space's first processing time."""
    filler = await _space(ctx, 80)  # ids of jobs and Spaces no longer coincide
    await _enqueue(ctx, filler)
    pk = await _space(ctx, 81)
    await _enqueue(ctx, pk)
    J = ProcessingJob
    async with ctx.db.session() as s:
        await s.execute(update(J).where(J.space_id == pk).values(status="completed"))
    await _enqueue(ctx, pk)  # asked again after it completed (say, the file was lost)
    async with ctx.db.session() as s:
        got = await queue.claim_space(s, "w", pk)
    assert got is not None
    async with ctx.db.session() as s:
        jobs = (await s.execute(select(J).where(J.space_id == pk).order_by(J.id))).scalars().all()
        sp = await s.get(Space, pk)
    assert [j.status for j in jobs] == ["completed", "processing"]
    assert (got.id, got.space_pk, got.retry_count, got.max_retries) == (jobs[1].id, pk, 0, 3)
    assert got.id != got.space_pk
    assert sp is not None and _recent(sp.processing_started_at)


async def test_defer_moves_only_the_named_job_still_processing(ctx: Context) -> None:
    a, b = await _space(ctx, 90), await _space(ctx, 91)
    await _enqueue(ctx, a)
    await _enqueue(ctx, b)
    async with ctx.db.session() as s:
        held = await queue.claim_many(s, "w", 2)
    assert len(held) == 2
    first, second = sorted(held, key=lambda j: j.id)
    async with ctx.db.session() as s:
        assert await queue.defer(s, first.id, "w", "live", 60)
    assert (await _row(ctx, second.space_pk))[0].status == "processing"  # the other job held
    async with ctx.db.session() as s:  # a job no longer processing, whoever's name is on it
        await s.execute(
            update(ProcessingJob).where(ProcessingJob.id == second.id).values(status="completed")
        )
    async with ctx.db.session() as s:
        assert not await queue.defer(s, second.id, "w", "live", 60)
    assert (await _row(ctx, second.space_pk))[0].status == "completed"
