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

from core import accounts, queue
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
    assert [queue.backoff_seconds(n, 30, 3600) for n in range(0, 5)] == [0, 30, 60, 120, 240]
    assert queue.backoff_seconds(20, 30, 3600) == 3600
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
        assert await queue.complete(s, job.id, "a")
    async with ctx.db.session() as s:
        assert not await queue.complete(s, job.id, "a")
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
