"""Reads beside a writer: ``GET /api/spaces/<id>`` over 1,000 completed Spaces, both engines.

One real web process (``spacescribe run --roles web``) per engine; 50 concurrent clients ask
for random Spaces while a writer in this process keeps committing short transactions the way
a worker does (a job's progress, an outbox row), so SQLite's single write lock is always
busy. Reads use ``Database.read`` (a deferred transaction on SQLite): they should not queue
behind the writer. Printed side by side: throughput, p50/p95/p99, and the ratios the
architecture issue sets — SQLite p99 ≤ 2 × PostgreSQL p99, SQLite throughput ≥ 0.8 × PostgreSQL
throughput, neither p99 over 100 ms. ``/healthz`` is measured too, as the ceiling of the web
process without the database.

The clients run in a process of their own on aiohttp: measured on this 2-core machine,
httpx's pure-Python client spent 2.4–3.6 ms of CPU per request against the server's 0.5–1 ms
for ``/healthz``, so the clients, not the server, set the figures; aiohttp's spend 0.3 ms.

Environment: SPACESCRIBE_TEST_PG_URL (a scratch database is created and dropped there),
BENCH_HTTP_REQUESTS (requests per measurement, default 4,000), BENCH_HTTP_CLIENTS (50).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx
from sqlalchemy import insert, update

from core.db import Database, Space, utcnow
from core.db import migrate as m
from tests.pg_admin import create_scratch, drop_scratch

SPACES = 1000
REQUESTS = int(os.environ.get("BENCH_HTTP_REQUESTS", "4000"))
CLIENTS = int(os.environ.get("BENCH_HTTP_CLIENTS", "50"))
PG_URL = os.environ.get("SPACESCRIBE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parents[1]


def sid(i: int) -> str:
    return f"1Http{i:08d}"


@dataclass
class Figures:
    rps: float
    p50: float
    p95: float
    p99: float

    def line(self, name: str) -> str:
        return (
            f"  {name:<28} {self.rps:8.0f} req/s   p50 {self.p50:6.1f} ms   "
            f"p95 {self.p95:6.1f} ms   p99 {self.p99:6.1f} ms"
        )


def _pct(ms: list[float], q: float) -> float:
    return statistics.quantiles(ms, n=100, method="inclusive")[int(q) - 1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _fill(url: str) -> None:
    await asyncio.to_thread(m.upgrade, url)  # Alembic runs its own event loop
    db = Database(url)
    now = utcnow()
    rows = [
        {
            "space_id": sid(i),
            "space_url": f"https://x.com/i/spaces/{sid(i)}",
            "title": f"Bench Space {i}",
            "creator": "bench",
            "status": "completed",
            "audio_duration_seconds": 3600,
            "transcript_length": 50_000,
            "participants": '["Alice", "Bob"]',
            "completed_at": now,
        }
        for i in range(SPACES)
    ]
    async with db.session() as s:
        await s.execute(insert(Space), rows)
    await db.dispose()


async def _writer(url: str, stop: asyncio.Event, counter: list[int]) -> None:
    """A worker's write load: short transactions, back to back, each holding the write lock
    for a moment (as a job's progress update or an outbox insert does)."""
    db = Database(url)
    rng = random.Random(7)
    try:
        while not stop.is_set():
            async with db.session() as s:
                await s.execute(
                    update(Space)
                    .where(Space.space_id == sid(rng.randrange(SPACES)))
                    .values(transcription_count=Space.transcription_count + 1)
                )
                await asyncio.sleep(0.002)  # the work a transaction does between statements
            counter[0] += 1
    finally:
        await db.dispose()


async def _clients(base: str, path_of: Callable[[random.Random], str], n: int) -> Figures:
    """``n`` GETs from CLIENTS concurrent keep-alive clients (aiohttp: its C parser costs the
    machine a fraction of what httpx's pure-Python stack does, so the clients do not starve
    the server they measure)."""
    rng = random.Random(11)
    it = iter([path_of(rng) for _ in range(n)])
    ms: list[float] = []
    conn = aiohttp.TCPConnector(limit=CLIENTS, keepalive_timeout=2)
    async with aiohttp.ClientSession(base, connector=conn) as client:

        async def one_client() -> None:
            for path in it:
                t0 = time.perf_counter()
                async with client.get(path) as r:
                    body = await r.read()
                ms.append((time.perf_counter() - t0) * 1000)
                if r.status != 200:
                    raise RuntimeError(f"{path}: HTTP {r.status} {body[:200]!r}")

        t0 = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(CLIENTS)))
        wall = time.perf_counter() - t0
    return Figures(n / wall, _pct(ms, 50), _pct(ms, 95), _pct(ms, 99))


def _space_path(rng: random.Random) -> str:
    return f"/api/spaces/{sid(rng.randrange(SPACES))}"


def _health_path(_rng: random.Random) -> str:
    return "/healthz"


def _clients_process(base: str, path_of: Callable[[random.Random], str], n: int) -> Figures:
    return asyncio.run(_clients(base, path_of, n))


async def _load(
    pool: ProcessPoolExecutor, base: str, path_of: Callable[[random.Random], str], n: int
) -> Figures:
    """The clients run in a process of their own: on a small machine they must not share an
    event loop (and a core's time slices) with the writer whose effect is measured."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(pool, _clients_process, base, path_of, n)


async def _measure(url: str, data_dir: Path) -> tuple[Figures, Figures, int]:
    port = _free_port()
    env = {
        **os.environ,
        "SPACESCRIBE_DATABASE_URL": url,
        "SPACESCRIBE_DATA_DIR": str(data_dir),
        "SPACESCRIBE_WEB__HOST": "127.0.0.1",
        "SPACESCRIBE_WEB__PORT": str(port),
        "SPACESCRIBE_LOGGING__LEVEL": "WARNING",
    }
    for secret in ("TELEGRAM_TOKEN", "DISCORD_TOKEN", "OPENAI_API_KEY"):
        env.pop(secret, None)
    proc = subprocess.Popen(  # noqa: ASYNC220 (started once, before the measurement)
        [sys.executable, "-m", "bot.cli", "run", "--roles", "web", "--no-migrate"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=None if os.environ.get("BENCH_HTTP_VERBOSE") else subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as c:
            for _ in range(1200):  # a loaded machine can take a minute to import it all
                try:
                    if (await c.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("the web process did not start")
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            await _load(pool, base, _space_path, 300)  # warm (and the client process started)
            stop, writes = asyncio.Event(), [0]
            writer = asyncio.create_task(_writer(url, stop, writes))
            spaces = await _load(pool, base, _space_path, REQUESTS)
            health = await _load(pool, base, _health_path, REQUESTS)
        stop.set()
        await writer
        return spaces, health, writes[0]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def run() -> None:
    results: dict[str, tuple[Figures, Figures, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        lite = f"sqlite:///{tmp}/bench.db"
        await _fill(lite)
        pg = await create_scratch(PG_URL, "bench_http")
        try:
            await _fill(pg)
            # Alternate the engines so a change in the machine's load hits both alike.
            for name, url in (("sqlite", lite), ("postgresql", pg)):
                results[name] = await _measure(url, Path(tmp) / name)
        finally:
            await drop_scratch(PG_URL, pg)
    print(f"{SPACES} completed Spaces, {CLIENTS} concurrent clients, {REQUESTS} requests each")
    for name, (spaces, health, writes) in results.items():
        print(f"{name} (writer committed {writes} transactions meanwhile)")
        print(spaces.line("GET /api/spaces/<id>"))
        print(health.line("GET /healthz"))
    lite_f, pg_f = results["sqlite"][0], results["postgresql"][0]
    print(
        f"SQLite p99 / PostgreSQL p99 = {lite_f.p99 / pg_f.p99:.2f} (target ≤ 2); "
        f"SQLite throughput / PostgreSQL = {lite_f.rps / pg_f.rps:.2f} (target ≥ 0.8); "
        f"p99 ≤ 100 ms: SQLite {'yes' if lite_f.p99 <= 100 else 'NO'}, "
        f"PostgreSQL {'yes' if pg_f.p99 <= 100 else 'NO'}"
    )


def main(argv: list[str] | None = None) -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
