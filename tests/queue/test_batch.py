"""Batch paths of the queue on both engines: claim_many, complete_many, heartbeat_many, and
the Worker that fills several slots with one claim."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from sqlalchemy import func, select, text, update

from core import queue
from core.context import Context
from core.db import Outbox, ProcessingJob, Space
from core.outbox import add_messages, message_row
from core.worker import Worker
from tests.queue.test_queue import _enqueue, _space, complete

ROOT = Path(__file__).resolve().parents[2]


async def _queued(ctx: Context, n: int, first: int = 0, payers: int = 0) -> list[int]:
    pks = [await _space(ctx, first + i, payers=payers) for i in range(n)]
    for pk in pks:
        await _enqueue(ctx, pk)
    return pks


async def test_claim_many_takes_the_first_n_in_seed_order(ctx: Context) -> None:
    pks = await _queued(ctx, 5)
    async with ctx.db.session() as s:  # priorities 0, 5, 0, 5, 9
        for pk, prio in zip(pks, (0, 5, 0, 5, 9), strict=True):
            await s.execute(
                update(ProcessingJob).where(ProcessingJob.space_id == pk).values(priority=prio)
            )
    async with ctx.db.session() as s:
        first = await queue.claim_many(s, "w", 3)
    assert [j.space_pk for j in first] == [pks[4], pks[1], pks[3]]
    assert all(j.retry_count == 0 and j.max_retries == 3 for j in first)
    async with ctx.db.session() as s:
        rest = await queue.claim_many(s, "w", 10)
        assert await queue.claim_many(s, "w", 10) == []
        statuses = dict((await s.execute(select(Space.id, Space.status))).tuples().all())
        jobs = (await s.execute(select(ProcessingJob))).scalars().all()
    assert [j.space_pk for j in rest] == [pks[0], pks[2]]
    assert set(statuses.values()) == {"processing"}
    assert {(j.status, j.locked_by) for j in jobs} == {("processing", "w")}
    assert all(j.started_at is not None and j.heartbeat_at is not None for j in jobs)


async def test_claim_many_skips_jobs_not_due_or_out_of_attempts(ctx: Context) -> None:
    pks = await _queued(ctx, 3)
    async with ctx.db.session() as s:
        await s.execute(
            update(ProcessingJob)
            .where(ProcessingJob.space_id == pks[0])
            .values(available_at=func.current_timestamp() + text("INTERVAL '1 hour'"))
            if s.get_bind().dialect.name == "postgresql"
            else update(ProcessingJob)
            .where(ProcessingJob.space_id == pks[0])
            .values(available_at=text("datetime('now', '+1 hour')"))
        )
        await s.execute(
            update(ProcessingJob)
            .where(ProcessingJob.space_id == pks[1])
            .values(retry_count=3, max_retries=3)
        )
    async with ctx.db.session() as s:
        assert [j.space_pk for j in await queue.claim_many(s, "w", 10)] == [pks[2]]


async def test_concurrent_batch_claimers_never_share_a_job(ctx: Context) -> None:
    await _queued(ctx, 60)

    async def claimer(name: str) -> list[int]:
        got: list[int] = []
        while True:
            async with ctx.db.session() as s:
                jobs = await queue.claim_many(s, name, 7)
            if not jobs:
                return got
            got += [j.id for j in jobs]

    results = await asyncio.gather(*(claimer(f"w{i}") for i in range(6)))
    flat = [j for r in results for j in r]
    assert len(flat) == 60 and len(set(flat)) == 60
    async with ctx.db.session() as s:
        rows = (await s.execute(select(ProcessingJob.id, ProcessingJob.locked_by))).all()
    owner = {job_id: f"w{i}" for i, r in enumerate(results) for job_id in r}
    assert {job_id: by for job_id, by in rows} == owner  # each job leased to its claimer


async def test_complete_many_is_lease_bound_once_and_tells_each_payer_once(
    ctx: Context,
) -> None:
    pks = await _queued(ctx, 3, payers=2)
    async with ctx.db.session() as s:
        jobs = await queue.claim_many(s, "a", 3)
    ids = [j.id for j in jobs]
    async with ctx.db.session() as s:
        assert await complete(s, ids, "b") == set()  # not b's leases
    async with ctx.db.session() as s:  # one job's lease went elsewhere meanwhile
        await s.execute(
            update(ProcessingJob).where(ProcessingJob.id == ids[0]).values(locked_by="c")
        )
    async with ctx.db.session() as s:
        assert await complete(s, ids, "a") == set(ids[1:])
    async with ctx.db.session() as s:
        assert await complete(s, ids, "a") == set()
        spaces = dict((await s.execute(select(Space.id, Space.status))).tuples().all())
        msgs = (await s.execute(select(Outbox))).scalars().all()
    done = [j.space_pk for j in jobs[1:]]
    assert {pk: spaces[pk] for pk in pks} == {
        pk: ("completed" if pk in done else "processing") for pk in pks
    }
    assert sorted((m.space_id, m.kind) for m in msgs) == sorted(
        (pk, "transcript_ready") for pk in done for _ in range(2)
    )
    assert all(json.loads(m.payload)["space_id"].startswith("1Q") for m in msgs)


async def test_heartbeat_many_reports_the_leases_still_held(ctx: Context) -> None:
    await _queued(ctx, 3)
    async with ctx.db.session() as s:
        ids = [j.id for j in await queue.claim_many(s, "w", 3)]
    async with ctx.db.session() as s:
        await s.execute(
            update(ProcessingJob).where(ProcessingJob.id == ids[1]).values(locked_by="x")
        )
    async with ctx.db.session() as s:
        assert await queue.heartbeat_many(s, ids, "w") == {ids[0], ids[2]}
        assert await queue.heartbeat(s, ids[0], "w") and not await queue.heartbeat(s, ids[1], "w")


async def test_add_messages_adds_each_key_once(ctx: Context) -> None:
    rows = [
        message_row(kind="k", platform="telegram", recipient=str(i), payload={}, dedupe_key=f"k{i}")
        for i in range(3)
    ]
    async with ctx.db.session() as s:
        assert await add_messages(s, rows[:2]) == 2
    async with ctx.db.session() as s:
        assert await add_messages(s, rows) == 1
        assert await s.scalar(select(func.count()).select_from(Outbox)) == 3


async def test_worker_fills_its_slots_with_one_claim(ctx: Context) -> None:
    pks = await _queued(ctx, 7, payers=1)
    ctx.settings.queue.concurrency = 3
    running: set[int] = set()
    peak = 0
    gate = asyncio.Event()

    async def slow(_c: Context, space_pk: int) -> None:
        nonlocal peak
        running.add(space_pk)
        peak = max(peak, len(running))
        if peak == 3:
            gate.set()
        await gate.wait()
        await asyncio.sleep(0.01)
        running.discard(space_pk)

    claims: list[int] = []
    real = queue.claim_many

    async def counting(s, worker, n):  # type: ignore[no-untyped-def]
        jobs = await real(s, worker, n)
        claims.append(len(jobs))
        return jobs

    queue.claim_many = counting  # type: ignore[assignment]
    try:
        await asyncio.wait_for(Worker(ctx, slow, "w").run(until_idle=True), 30)
    finally:
        queue.claim_many = real  # type: ignore[assignment]
    assert peak == 3 and claims[0] == 3 and claims[-1] == 0 and sum(claims) == 7
    async with ctx.db.session() as s:
        jobs = (await s.execute(select(ProcessingJob))).scalars().all()
        statuses = set((await s.execute(select(Space.status))).scalars().all())
        msgs = await s.scalar(select(func.count()).select_from(Outbox))
    assert {(j.status, j.retry_count) for j in jobs} == {("completed", 0)}
    assert statuses == {"completed"} and msgs == len(pks)


async def test_worker_abandons_only_the_job_whose_lease_was_lost(ctx: Context) -> None:
    pks = await _queued(ctx, 3)
    ctx.settings.queue.lease_seconds = 5  # heartbeat every 1.25 s
    stolen: list[int] = []
    cancelled: list[int] = []

    async def work(_c: Context, space_pk: int) -> None:
        if space_pk != pks[0]:
            return
        async with ctx.db.session() as s:  # another worker took this job over
            await s.execute(
                update(ProcessingJob)
                .where(ProcessingJob.space_id == space_pk)
                .values(locked_by="thief")
            )
        stolen.append(space_pk)
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(space_pk)
            raise

    await asyncio.wait_for(Worker(ctx, work, "w", concurrency=3).run(until_idle=True), 30)
    assert stolen == cancelled == [pks[0]]
    async with ctx.db.session() as s:
        rows = dict(
            (await s.execute(select(ProcessingJob.space_id, ProcessingJob.status))).tuples().all()
        )
        assert await s.scalar(select(Space.status).where(Space.id == pks[0])) == "processing"
    assert rows == {pks[0]: "processing", pks[1]: "completed", pks[2]: "completed"}


async def test_worker_processes_with_batch_claims_share_the_queue(
    ctx: Context, db_url: str
) -> None:
    """Real processes, each a Worker claiming up to 5 jobs at once: every job run once."""
    pks = await _queued(ctx, 60, first=200)
    script = (
        "import asyncio, json, sys\n"
        "from core.config import Secrets\n"
        "from core.context import Context\n"
        "from core.db import Database\n"
        "from core.worker import Worker\n"
        "from tests.conftest import make_settings\n"
        "from pathlib import Path\n"
        "async def main():\n"
        "    settings = make_settings(sys.argv[1], Path(sys.argv[3]), queue={'concurrency': 5})\n"
        "    ctx = Context(settings, Secrets.model_construct(), Database(sys.argv[1]), sys.argv[2])\n"
        "    ran = []\n"
        "    async def run(c, pk):\n"
        "        ran.append(pk); await asyncio.sleep(0.005)\n"
        "    await Worker(ctx, run).run(until_idle=True)\n"
        "    print(json.dumps(ran)); await ctx.close()\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
            db_url,
            f"p{i}",
            str(ctx.settings.data_dir),
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
        )
        for i in range(3)
    ]
    outs = [json.loads((await p.communicate())[0].decode().splitlines()[-1]) for p in procs]
    ran = [pk for out in outs for pk in out]
    assert sorted(ran) == sorted(pks)  # none twice, none left out
    async with ctx.db.session() as s:
        jobs = (await s.execute(select(ProcessingJob))).scalars().all()
    assert {(j.status, j.retry_count, j.locked_by) for j in jobs} == {("completed", 0, None)}
