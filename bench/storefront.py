"""Storefront pages as the library grows: ``GET /`` and ``GET /spaces/<id>`` with 100 and with
1,000 completed Spaces, on SQLite and PostgreSQL, side by side in one run.

The real app (``create_app``) is served in this process through httpx's ASGI transport, so
the figures are the app's and the database's, not a socket's. Requests come from a buyer
signed in with a wallet (a storefront session) who owns 20 Spaces and unlocked chat on 5,
so the Space page runs its owner queries too; the Spaces asked for are random. Measurements
of the two library sizes alternate in rounds, so a change in the machine's load hits both
alike. Printed: p50/p95 per page, the p95 at 1,000 over the p95 at 100 (target ≤ 1.5), and
whether each p95 is within 50 ms (the storefront issue's targets).

Environment: SPACESCRIBE_TEST_PG_URL (scratch databases are created and dropped there),
BENCH_STORE_REQUESTS (requests per page, size and engine; default 400), BENCH_STORE_ROUNDS (4).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert

from adapters.web.app import create_app
from core.accounts import get_or_create_user
from core.config import Secrets, load_settings
from core.context import Context
from core.db import ChatUnlock, Database, Space, TranscriptionPayment, utcnow
from core.db import migrate as m
from core.web_sessions import open_session
from tests.pg_admin import create_scratch, drop_scratch

SIZES = (100, 1000)
REQUESTS = int(os.environ.get("BENCH_STORE_REQUESTS", "400"))
ROUNDS = int(os.environ.get("BENCH_STORE_ROUNDS", "4"))
PG_URL = os.environ.get("SPACESCRIBE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
BUYER = "0x" + "b0" * 20
TARGET_MS, TARGET_RATIO = 50.0, 1.5
PAGES = ("/", "/spaces/<id>")


def sid(i: int) -> str:
    return f"1Shop{i:08d}"


def _p(ms: list[float], q: int) -> float:
    return statistics.quantiles(ms, n=100, method="inclusive")[q - 1]


async def _fill(url: str, n: int, data_dir: Path) -> tuple[Context, str]:
    """A migrated database with ``n`` completed Spaces; the context and a buyer's cookie."""
    await asyncio.to_thread(m.upgrade, url)
    settings = load_settings(
        database={"url": url},
        data_dir=data_dir,
        payments={"pay_to": "0x" + "12" * 20, "rpc_url": "http://127.0.0.1:9"},  # live, no chain
    )
    ctx = Context(settings, Secrets.model_construct(), Database(url), instance="bench:store")
    rng = random.Random(n)
    now = utcnow()
    rows = [
        {
            "space_id": sid(i),
            "space_url": f"https://x.com/i/spaces/{sid(i)}",
            "title": f"Bench Space {i} on rollups and rates",
            "creator": "bench",
            "status": "completed",
            "audio_duration_seconds": 3600,
            "participants": '["Alice", "Bob", "Carol"]',
            "transcription_count": rng.randrange(50),
            "completed_at": now - timedelta(minutes=i),  # one a minute, newest first
        }
        for i in range(n)
    ]
    async with ctx.db.session() as s:
        await s.execute(insert(Space), rows)
        user = await get_or_create_user(s, BUYER)
        for table, pks in ((TranscriptionPayment, range(1, 21)), (ChatUnlock, range(1, 6))):
            await s.execute(
                insert(table),
                [
                    {"user_id": user.id, "space_id": pk, "amount_usdc": "0.2"}
                    for pk in pks  # the first Spaces' primary keys
                ],
            )
    token, _ = await open_session(ctx, BUYER)
    return ctx, token


async def _measure(
    ctx: Context, token: str, n: int, count: int, seed: int
) -> dict[str, list[float]]:
    rng = random.Random(seed)
    out: dict[str, list[float]] = {p: [] for p in PAGES}
    transport = httpx.ASGITransport(app=create_app(ctx))
    cookies = {"spacescribe_session": token}
    async with httpx.AsyncClient(
        transport=transport, base_url=ctx.settings.web.public_url, cookies=cookies
    ) as c:
        for _ in range(count):
            for page in PAGES:
                path = "/" if page == "/" else f"/spaces/{sid(rng.randrange(n))}"
                t0 = time.perf_counter()
                r = await c.get(path)
                out[page].append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    raise RuntimeError(f"{path}: HTTP {r.status_code} {r.text[:200]}")
    return out


async def _engine(name: str, urls: dict[int, str], tmp: Path) -> dict[int, dict[str, list[float]]]:
    made = {size: await _fill(urls[size], size, tmp / f"{name}-{size}") for size in SIZES}
    try:
        for size, (ctx, token) in made.items():  # warm-up: caches, prepared statements
            await _measure(ctx, token, size, 30, seed=0)
        got: dict[int, dict[str, list[float]]] = {s: {p: [] for p in PAGES} for s in SIZES}
        per_round = max(1, REQUESTS // ROUNDS)
        for r in range(ROUNDS):
            for size in SIZES if r % 2 == 0 else reversed(SIZES):
                ctx, token = made[size]
                figures = await _measure(ctx, token, size, per_round, seed=r + 1)
                for p in PAGES:
                    got[size][p] += figures[p]
        return got
    finally:
        for ctx, _ in made.values():
            await ctx.close()


async def run() -> None:
    results: dict[str, dict[int, dict[str, list[float]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        lite = {size: f"sqlite:///{tmp}/store-{size}.db" for size in SIZES}
        results["sqlite"] = await _engine("sqlite", lite, Path(tmp))
        pg = {size: await create_scratch(PG_URL, f"bench_store_{size}") for size in SIZES}
        try:
            results["postgresql"] = await _engine("postgresql", pg, Path(tmp))
        finally:
            for url in pg.values():
                await drop_scratch(PG_URL, url)
    print(f"storefront, a signed-in buyer, {REQUESTS} requests per page, size and engine")
    print(f"  {'engine':<11}{'page':<15}" + "".join(f"{f'p95 @{s}':>12}" for s in SIZES)
          + f"{'ratio':>8}   p50 @1000   within {TARGET_MS:.0f} ms")  # fmt: skip
    ok = True
    for engine, by_size in results.items():
        for page in PAGES:
            p95 = {s: _p(by_size[s][page], 95) for s in SIZES}
            ratio = p95[SIZES[-1]] / p95[SIZES[0]]
            within = all(v <= TARGET_MS for v in p95.values())
            ok &= within and ratio <= TARGET_RATIO
            print(
                f"  {engine:<11}{page:<15}"
                + "".join(f"{p95[s]:>9.1f} ms" for s in SIZES)
                + f"{ratio:>8.2f}   {_p(by_size[SIZES[-1]][page], 50):>6.1f} ms   "
                + ("yes" if within else "NO")
            )
    print(
        f"targets (p95 ≤ {TARGET_MS:.0f} ms, p95 @1000 / p95 @100 ≤ {TARGET_RATIO}): "
        + ("met" if ok else "NOT met")
    )


def main(argv: list[str] | None = None) -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
