"""Queue claims per second: 8 worker processes claiming from one queue, PostgreSQL vs SQLite.

Each process claims and completes jobs as fast as it can until the queue is empty; the run
checks that no job was claimed twice. PostgreSQL from SPACESCRIBE_TEST_PG_URL (a scratch
database is created and dropped). Target on PostgreSQL: ≥ 1,000 claims/s, 0 double claims.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.engine import make_url

from core.db import Database, ProcessingJob, Space, utcnow
from core.db import migrate as m

JOBS = 4000
PROCESSES = 8
PG_URL = os.environ.get("SPACESCRIBE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")

CLAIMER = """
import asyncio, sys, time
from core.db import Database
from core import queue
async def main():
    db = Database(sys.argv[1], pool_size=2); got = []
    while time.time() < float(sys.argv[3]):
        await asyncio.sleep(0.001)
    while True:
        async with db.session() as s:
            j = await queue.claim(s, sys.argv[2])
            if j is None:
                break
            await queue.complete(s, j.id, sys.argv[2])
        got.append(j.id)
    print(' '.join(map(str, got))); await db.dispose()
asyncio.run(main())
"""


async def _fill(url: str) -> None:
    db = Database(url)
    now = utcnow()
    async with db.session() as s:
        await s.execute(
            insert(Space),
            [
                {"space_id": f"1B{i:011d}", "space_url": "u", "title": "t", "status": "pending"}
                for i in range(JOBS)
            ],
        )
    async with db.session() as s:
        await s.execute(
            insert(ProcessingJob),
            [
                {
                    "space_id": i + 1,
                    "status": "queued",
                    "priority": i % 3,
                    "queued_at": now,
                    "available_at": now,
                }
                for i in range(JOBS)
            ],
        )
    await db.dispose()


def run(url: str) -> tuple[float, int, int]:
    m.upgrade(url)
    asyncio.run(_fill(url))
    start_at = time.time() + 2.0  # all processes start claiming together
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, url, f"w{i}", str(start_at)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    outs = [p.communicate()[0] for p in procs]
    took = time.time() - start_at
    claimed = [int(x) for out in outs for x in out.split()]
    return len(claimed) / took, len(claimed), len(claimed) - len(set(claimed))


async def _admin(sql: str) -> None:
    import asyncpg

    u = make_url(PG_URL)
    conn = await asyncpg.connect(
        host=u.host,
        port=u.port or 5432,
        user=u.username,
        password=u.password,
        database=u.database or "postgres",
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def main() -> None:
    rows = []
    name = f"spacescribe_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        pg = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        rows.append(("postgresql", *run(pg)))
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    with tempfile.TemporaryDirectory() as d:
        rows.append(("sqlite", *run(f"sqlite:///{Path(d) / 'q.db'}")))
    print(f"{JOBS} jobs, {PROCESSES} worker processes, claim + complete each")
    for engine, rate, n, dup in rows:
        print(f"{engine:<11}: {rate:8.0f} claims/s  ({n} claimed, {dup} double claims)")
    print(f"postgresql / sqlite = {rows[0][1] / rows[1][1]:.2f}×")


if __name__ == "__main__":
    main()
