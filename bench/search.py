"""``/search`` latency for a member who owns many Spaces (``python -m bench.search``).

A member owning OWNED of CORPUS indexed 3-hour Spaces (~240 passages each) searches with a
fact's words; ``core.service.chat.search`` is timed end to end (titles and participants for
everyone, plus passages of the owned Spaces it covers). Measured with the transcript search
bounded to the latest ``SEARCH_OWNED_SPACES`` purchases (what ships) and, side by side in
the same run, with the bound lifted to every owned Space (what /search did before). Target:
p95 within the retrieval target, 50 ms.

Environment: BENCH_PG_URL (admin URL for a scratch database), BENCH_SEARCH_CORPUS (default
200), BENCH_SEARCH_OWNED (default 150), BENCH_QUERIES (default 100).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from bench.chat import Corpus, fill, pct
from core.accounts import get_or_create_account, get_or_create_user, link_account
from core.config import Secrets, load_settings
from core.context import Context
from core.db import Database, TranscriptionPayment
from core.db.migrate import upgrade
from core.results import Caller, Refused
from core.service import chat
from tests.pg_admin import create_scratch, drop_scratch

PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
CORPUS = int(os.environ.get("BENCH_SEARCH_CORPUS", "200"))
OWNED = int(os.environ.get("BENCH_SEARCH_OWNED", "150"))
QUERIES = int(os.environ.get("BENCH_QUERIES", "100"))
TARGET_MS = 50.0
MEMBER = Caller("telegram", "bench-search", "bench")


async def _own(ctx: Context, pks: list[int]) -> None:
    async with ctx.db.session() as s:
        acc = await get_or_create_account(s, MEMBER)
        user = await get_or_create_user(s, "0x" + "be" * 20)
        await link_account(s, acc.id, user.id)
        await s.execute(
            insert(TranscriptionPayment),
            [
                {"user_id": user.id, "space_id": pk, "amount_usdc": "0.2", "payment_verified": True}
                for pk in pks
            ],
        )


async def _timed(ctx: Context, corpus: Corpus, bound: int) -> tuple[list[float], int]:
    saved = chat.SEARCH_OWNED_SPACES
    chat.SEARCH_OWNED_SPACES = bound
    rng = random.Random(7)
    times, passages = [], 0
    try:
        for _ in range(QUERIES):
            _, fact = corpus.facts[rng.randrange(len(corpus.facts))]
            t0 = time.perf_counter()
            hits = await chat.search(ctx, MEMBER, fact.question[:200])
            times.append((time.perf_counter() - t0) * 1000)
            assert not isinstance(hits, Refused), hits
            passages += sum(1 for h in hits if h.excerpt)
    finally:
        chat.SEARCH_OWNED_SPACES = saved
    return times, passages


async def engine_run(url: str, name: str) -> dict[str, Any]:
    await asyncio.to_thread(upgrade, url)
    settings = load_settings(database={"url": url})
    ctx = Context(settings, Secrets.model_construct(), Database(url), instance="bench:search")
    corpus = Corpus()
    out: dict[str, Any] = {}
    try:
        t0 = time.perf_counter()
        await fill(ctx.db, corpus, 0, CORPUS)
        await _own(ctx, [pk for pk, _ in corpus.facts[:OWNED]])
        print(f"  {name}: {CORPUS} Spaces built in {time.perf_counter() - t0:.0f} s", flush=True)
        for label, bound in (("bounded", chat.SEARCH_OWNED_SPACES), ("unbounded", OWNED)):
            await _timed(ctx, corpus, bound)  # warm-up: caches, prepared statements
            times, passages = await _timed(ctx, corpus, bound)
            out[label] = {"p50": statistics.median(times), "p95": pct(times, 0.95)}
            print(
                f"  {name} {label:>9} ({min(bound, OWNED)} of {OWNED} owned Spaces searched): "
                f"p50/p95 = {out[label]['p50']:.1f}/{out[label]['p95']:.1f} ms, "
                f"{passages / QUERIES:.1f} passages per search",
                flush=True,
            )
    finally:
        await ctx.close()
    return out


async def amain() -> None:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = await engine_run(f"sqlite:///{Path(tmp) / 's.db'}", "sqlite")
    url = await create_scratch(PG_ADMIN, "bench_search")
    try:
        results["postgresql"] = await engine_run(url, "postgresql")
    finally:
        await drop_scratch(PG_ADMIN, url)
    for eng, r in results.items():
        p95 = r["bounded"]["p95"]
        print(
            f"  {eng}: bounded p95 {p95:.1f} ms, target {TARGET_MS:.0f} ms: "
            f"{'met' if p95 <= TARGET_MS else 'MISSED'}; unbounded/bounded p95 = "
            f"{r['unbounded']['p95'] / p95:.1f}x"
        )


def main() -> None:
    asyncio.run(amain())


if __name__ == "__main__":
    main()
