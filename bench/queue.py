"""Queue claims per second: 8 worker processes draining one queue, PostgreSQL vs SQLite.

Each process runs the real :class:`core.worker.Worker` (with a processor that only records
the Space it was given) until the queue is empty: claim, run, complete, and one
``transcript_ready`` outbox message for the Space's payer (every queued Space was paid
for). It is run with 1 slot per worker (one job per claim) and with ``SLOTS`` slots (a
claim takes up to that many jobs in one statement). Each run gets a fresh database
(PostgreSQL from SPACESCRIBE_TEST_PG_URL: a scratch database, dropped after).

Afterwards the database is asked, not the workers: the Spaces each process ran are written
to a scratch table and a Space run twice is a double claim; every job must be completed on
its first attempt with one message per payer. Target on PostgreSQL: ≥ 1,000 claims/s with
8 processes, 0 double claims.

CPU per job is split into the worker processes, their PostgreSQL backends (read from
/proc, same machine) and the rest of the machine's busy time (other load: the figures of a
shared machine move with it).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, Table, Text, func, insert, select, text

from core.db import (
    Account,
    Database,
    Outbox,
    ProcessingJob,
    Space,
    TranscriptionPayment,
    User,
    utcnow,
)
from core.db import migrate as m
from tests.pg_admin import create_scratch, drop_scratch

JOBS = 4000
PROCESSES = 8
SLOTS = 32
PG_URL = os.environ.get("SPACESCRIBE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parents[1]

RUNS = Table(
    "bench_queue_runs",
    MetaData(),
    Column("space_id", Integer, nullable=False),
    Column("worker", Text, nullable=False),
)


@dataclass
class Result:
    engine: str
    slots: int
    rate: float
    worker_ms: float  # worker processes' CPU per job, while draining
    server_ms: float  # their PostgreSQL backends' CPU per job (SQLite: in the workers)
    other_ms: float  # the rest of the machine's CPU per job: other load on it
    busy: float  # the machine's CPUs busy while draining, 0..1
    ran: int
    double: int


def _cpu_times() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / hz, sum(fields[:8]) / hz


# ---------------------------------------------------------------- one worker process


async def _child(url: str, worker_id: str, slots: int) -> None:
    from core import logging as slog
    from core.config import Secrets, load_settings
    from core.context import Context
    from core.worker import Worker

    settings = load_settings(database={"url": url}, queue={"concurrency": slots})
    slog.configure(settings.logging.level, settings.logging.json_logs)  # as a real worker
    ctx = Context(settings, Secrets.model_construct(), Database(url, pool_size=2), worker_id)
    ran: list[int] = []

    async def record(_ctx: Context, space_pk: int) -> None:
        ran.append(space_pk)

    before = await _server_cpu(ctx.db, {})  # also connects before the start signal
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    cpu = time.process_time()
    await Worker(ctx, record).run(until_idle=True)
    cpu = time.process_time() - cpu
    after = await _server_cpu(ctx.db, before)
    server = sum(after[pid] - before.get(pid, 0.0) for pid in after)
    print(json.dumps({"ran": ran, "end": time.time(), "cpu": cpu, "server": server}), flush=True)
    await ctx.close()


async def _server_cpu(db: Database, known: dict[int, float]) -> dict[int, float]:
    """CPU seconds so far of the PostgreSQL backends serving this process (same machine),
    by backend pid; {} on SQLite, which runs inside the worker process."""
    if db.dialect != "postgresql":
        return {}
    async with db.session() as s:
        pid = int(await s.scalar(text("SELECT pg_backend_pid()")) or 0)
    out = {}
    for p in {*known, pid}:  # a worker uses one connection at a time: usually just one
        try:
            stat = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a backend that ended is not counted
        out[p] = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return out


# ---------------------------------------------------------------- one run


async def _fill(url: str) -> None:
    db = Database(url)
    now = utcnow()
    ids = range(1, JOBS + 1)
    async with db.session() as s:
        await s.execute(
            insert(Space),
            [
                {
                    "id": i,
                    "space_id": f"1B{i:011d}",
                    "space_url": "u",
                    "title": "t",
                    "status": "pending",
                }
                for i in ids
            ],
        )
        await s.execute(insert(User), [{"id": i, "wallet_address": f"0x{i:040x}"} for i in ids])
        await s.execute(
            insert(Account),
            [{"platform": "telegram", "platform_user_id": str(i), "user_id": i} for i in ids],
        )
        await s.execute(
            insert(TranscriptionPayment),
            [
                {"user_id": i, "space_id": i, "amount_usdc": "0.2", "payment_verified": True}
                for i in ids
            ],
        )
        await s.execute(
            insert(ProcessingJob),
            [
                {
                    "space_id": i,
                    "status": "queued",
                    "priority": i % 3,
                    "queued_at": now,
                    "available_at": now,
                }
                for i in ids
            ],
        )
    async with db.engine.connect() as conn:  # statistics, as autovacuum / PRAGMA optimize keep
        await conn.execute(text("ANALYZE"))
        await conn.commit()
    await db.dispose()


async def _verify(url: str, runs: list[tuple[int, str]]) -> int:
    """Count double claims from the database; fail loudly if any job was not done once."""
    db = Database(url)
    try:
        async with db.session() as s:
            await s.run_sync(lambda sync: RUNS.create(sync.connection()))
            await s.execute(insert(RUNS), [{"space_id": p, "worker": w} for p, w in runs])
        async with db.session() as s:
            twice = select(RUNS.c.space_id).group_by(RUNS.c.space_id).having(func.count() > 1)
            double = await s.scalar(select(func.count()).select_from(twice.subquery()))
            distinct = await s.scalar(select(func.count(func.distinct(RUNS.c.space_id))))
            j = ProcessingJob
            once = await s.scalar(
                select(func.count()).where(j.status == "completed", j.retry_count == 0)
            )
            spaces = await s.scalar(select(func.count()).where(Space.status == "completed"))
            notices = await s.scalar(select(func.count()).where(Outbox.kind == "transcript_ready"))
    finally:
        await db.dispose()
    if (distinct, once, spaces, notices) != (JOBS, JOBS, JOBS, JOBS):
        raise RuntimeError(
            f"not every job done once: {distinct} Spaces ran, {once} jobs completed on "
            f"the first attempt, {spaces} Spaces completed, {notices} payer messages"
        )
    return int(double or 0)


def run(engine: str, url: str, slots: int) -> Result:
    m.upgrade(url)
    asyncio.run(_fill(url))
    with tempfile.TemporaryFile("w+") as errors:
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "bench.queue", "child", url, f"w{i}", str(slots)],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,  # the workers' logs (INFO, as configured by default)
                text=True,
            )
            for i in range(PROCESSES)
        ]
        for p in procs:
            assert p.stdout is not None
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError("a worker process did not start")
        busy0, total0 = _cpu_times()
        start = time.time()
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outs = [p.communicate()[0] for p in procs]
        busy1, total1 = _cpu_times()  # includes the workers' exit: close enough
        if any(p.returncode for p in procs):
            errors.seek(0)
            raise RuntimeError(f"a worker process failed:\n{errors.read()[-3000:]}")
    reports = [json.loads(out.strip().splitlines()[-1]) for out in outs]
    took = max(r["end"] for r in reports) - start
    runs = [(pk, f"w{i}") for i, r in enumerate(reports) for pk in r["ran"]]
    double = asyncio.run(_verify(url, runs))
    n = len(runs)
    workers = sum(r["cpu"] for r in reports)
    server = sum(r["server"] for r in reports)
    return Result(
        engine,
        slots,
        n / took,
        workers / n * 1000,
        server / n * 1000,
        max(0.0, busy1 - busy0 - workers - server) / n * 1000,
        (busy1 - busy0) / (total1 - total0),
        n,
        double,
    )


def run_pg(slots: int) -> Result:
    url = asyncio.run(create_scratch(PG_URL, "spacescribe_bench"))
    try:
        return run("postgresql", url, slots)
    finally:
        asyncio.run(drop_scratch(PG_URL, url))


def run_sqlite(slots: int) -> Result:
    with tempfile.TemporaryDirectory() as d:
        return run("sqlite", f"sqlite:///{Path(d) / 'q.db'}", slots)


def main() -> None:
    results = {(r.engine, r.slots): r for s in (1, SLOTS) for r in (run_pg(s), run_sqlite(s))}
    print(
        f"{JOBS} jobs, {PROCESSES} worker processes (core.worker.Worker), each job: "
        "claim, run, complete, one payer message"
    )
    print(f"{'slots/worker':<13}{'postgresql':>16}{'sqlite':>16}{'pg / sqlite':>13}")
    for s in (1, SLOTS):
        pg, sq = results[("postgresql", s)], results[("sqlite", s)]
        print(f"{s:<13}{pg.rate:>7.0f} claims/s{sq.rate:>7.0f} claims/s{pg.rate / sq.rate:>12.2f}×")
    print(
        "CPU per job while draining: 8 worker processes + their PostgreSQL backends"
        f" + other load on the machine; share of its {os.cpu_count()} CPUs busy"
    )
    for r in results.values():
        print(
            f"  {r.engine:<11}{r.slots:>3} slots: {r.worker_ms:5.2f} + {r.server_ms:5.2f}"
            f" + {r.other_ms:5.2f} ms, {r.busy:4.0%} busy"
        )
    for r in results.values():
        print(f"{r.engine:<11} {r.slots:>2} slots: {r.ran} jobs run, {r.double} double claims")
    best = results[("postgresql", SLOTS)]
    verdict = "met" if best.rate >= 1000 and best.double == 0 else "NOT met"
    print(f"target ≥ 1,000 claims/s on PostgreSQL, 0 double claims: {verdict}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        asyncio.run(_child(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    else:
        main()
