"""Chat benchmarks, figures and ratios in one run (``python -m bench.chat``).

1. recall@5 on the evaluation set (3-hour Spaces, facts at random times), both engines.
2. Retrieval p50/p95 at 100 and at 1,000 indexed 3-hour Spaces (~240 passages each), SQLite
   and PostgreSQL, per-Space retrieval vs the naive global FTS join (SQLite), and the ratio
   p95(1,000) / p95(100).
3. Prompt tokens per question for 1, 5 and 10 Spaces vs stuffing the first 15,000 characters
   of every Space.

Environment: BENCH_PG_URL (default postgresql://postgres@127.0.0.1:5432/postgres, used to
create and drop a scratch database), BENCH_QUERIES (default 200).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from core.chat import prompt as prompts
from core.chat import tokens
from core.chat.index import index_segments
from core.chat.passages import group
from core.chat.prompt import SpaceRef
from core.chat.retrieve import Hit, retrieve
from core.chat.terms import fts5_expression, terms
from core.db import Database, Space
from core.db.migrate import upgrade
from core.spaces import canonical_url
from tests.chat.synth import COMPANIES, MONTHS, Fact, entity, make_space
from tests.chat.synth import TEMPLATES as FT
from tests.pg_admin import create_scratch, drop_scratch

PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
QUERIES = int(os.environ.get("BENCH_QUERIES", "200"))
TEMPLATES = 12  # distinct synthetic transcripts, re-used with fresh facts to fill the corpus
NAIVE_CHARS = 15_000


def sid(i: int) -> str:
    return f"1Bench{i:06d}X"


class Corpus:
    def __init__(self, seed: int = 11) -> None:
        self.rng = random.Random(seed)
        self.templates = [make_space(self.rng, 0, 3.0, 0)[0] for _ in range(TEMPLATES)]
        self.facts: list[tuple[int, Fact]] = []  # (space pk, fact)

    def space(self, i: int) -> list[dict[str, Any]]:
        segs = list(self.templates[i % TEMPLATES])
        rng = random.Random(1000 + i)
        tpl, q, a = FT[rng.randrange(len(FT))]
        vals = {
            "x": entity(rng),
            "n": rng.randint(11, 999),
            "m": rng.choice(MONTHS),
            "c": rng.choice(COMPANIES),
        }
        k = rng.randrange(len(segs))
        sentence = "And a key point: " + tpl.format(**vals) + "."
        segs[k] = {**segs[k], "text": sentence}
        self._pending = Fact(0, segs[k]["start"], sentence, q.format(**vals), a.format(**vals))
        return segs


async def fill(db: Database, corpus: Corpus, start: int, stop: int) -> None:
    for i in range(start, stop):
        segs = corpus.space(i)
        async with db.session() as s:
            res = await s.execute(
                insert(Space)
                .values(
                    space_id=sid(i),
                    space_url=canonical_url(sid(i)),
                    title=f"Bench {i}",
                    status="completed",
                )
                .returning(Space.id)
            )
            pk = int(res.scalar_one())
            await index_segments(s, pk, segs)
        corpus.facts.append((pk, corpus._pending))


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]


async def timed_queries(
    db: Database, corpus: Corpus, naive: bool = False
) -> tuple[list[float], float]:
    rng = random.Random(5)
    times, found = [], 0
    pks = [pk for pk, _ in corpus.facts]
    for _ in range(QUERIES):
        pk, fact = corpus.facts[rng.randrange(len(corpus.facts))]
        others = rng.sample([p for p in pks if p != pk], 2)
        asked = [pk, *others]
        t0 = time.perf_counter()
        async with db.session() as s:
            if naive:
                rows = (
                    await s.execute(
                        text(
                            "SELECT p.id, p.space_id, p.text FROM passages_fts "
                            "JOIN passages p ON p.id = passages_fts.rowid "
                            "WHERE passages_fts MATCH :q AND p.space_id IN (:a, :b, :c) "
                            "ORDER BY bm25(passages_fts) LIMIT 8"
                        ),
                        {
                            "q": fts5_expression(terms(fact.question)),
                            "a": asked[0],
                            "b": asked[1],
                            "c": asked[2],
                        },
                    )
                ).all()
                ok = any(r[1] == pk and fact.answer in r[2] for r in rows[:5])
            else:
                hits = await retrieve(s, asked, fact.question, 8)
                ok = any(h.space_pk == pk and fact.answer in h.text for h in hits[:5])
        times.append((time.perf_counter() - t0) * 1000)
        found += ok
    return times, found / QUERIES


async def engine_run(url: str, name: str, sizes: tuple[int, ...]) -> dict[str, Any]:
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    corpus = Corpus()
    out: dict[str, Any] = {}
    done = 0
    try:
        for size in sizes:
            t0 = time.perf_counter()
            await fill(db, corpus, done, size)
            done = size
            async with db.session() as s:
                n = await s.scalar(text("SELECT count(*) FROM passages"))
            build = time.perf_counter() - t0
            times, recall = await timed_queries(db, corpus)
            row = {
                "passages": n,
                "p50": statistics.median(times),
                "p95": pct(times, 0.95),
                "recall5": recall,
                "build_s": build,
            }
            if name == "sqlite":
                nt, nrecall = await timed_queries(db, corpus, naive=True)
                row.update(
                    naive_p50=statistics.median(nt), naive_p95=pct(nt, 0.95), naive_recall5=nrecall
                )
            out[str(size)] = row
            print(
                f"  {name} {size:>5} Spaces ({n} passages, built in {build:.0f} s): "
                f"per-Space p50/p95 = {row['p50']:.1f}/{row['p95']:.1f} ms, "
                f"recall@5 {recall:.2f}"
                + (
                    f"; naive global join p50/p95 = {row['naive_p50']:.1f}/"
                    f"{row['naive_p95']:.1f} ms, recall@5 {row['naive_recall5']:.2f}"
                    if name == "sqlite"
                    else ""
                ),
                flush=True,
            )
    finally:
        await db.dispose()
    return out


def prompt_tokens() -> None:
    rng = random.Random(9)
    spaces = [make_space(rng, i, 3.0, 2) for i in range(10)]
    print("  prompt tokens per question (limit 4,000):")
    for n in (1, 5, 10):
        hits = []
        refs = {}
        naive_parts = []
        for i in range(n):
            segs, facts = spaces[i]
            refs[i] = SpaceRef(i, sid(i), f"Bench {i}", canonical_url(sid(i)))
            for d in group(segs)[:24]:
                hits.append(Hit(d.seq, i, d.seq, d.start, d.end, d.speakers, d.text, 1.0, d.seq))
            full = "\n".join(f"{s['speaker']}: {s['text']}" for s in segs)
            naive_parts.append(full[:NAIVE_CHARS])
        hits.sort(key=lambda h: h.rank)
        q = spaces[0][1][0].question
        p = prompts.build(q, hits, refs, model="gpt-4o", max_tokens=4000)
        naive = tokens.count_messages(
            [
                {"role": "system", "content": prompts.SYSTEM},
                {"role": "user", "content": q + "\n\n" + "\n\n".join(naive_parts)},
            ]
        )
        print(
            f"    {n:>2} Spaces: bounded prompt {p.tokens:>6} tokens ({len(p.passages)} "
            f"passages) | naive first {NAIVE_CHARS:,} chars/Space {naive:>6} tokens "
            f"| naive/bounded {naive / p.tokens:.1f}x",
            flush=True,
        )


async def amain() -> None:
    sizes = tuple(int(x) for x in os.environ.get("BENCH_SIZES", "100,1000").split(","))
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = await engine_run(f"sqlite:///{Path(tmp) / 'b.db'}", "sqlite", sizes)
    url = await create_scratch(PG_ADMIN, "bench_chat")
    try:
        results["postgresql"] = await engine_run(url, "postgresql", sizes)
    finally:
        await drop_scratch(PG_ADMIN, url)
    first, last = str(sizes[0]), str(sizes[-1])
    print("  ratios p95(1,000) / p95(100) (target <= 2, p95 <= 50 ms):")
    for eng, r in results.items():
        line = f"    {eng}: per-Space {r[last]['p95'] / r[first]['p95']:.2f}"
        if "naive_p95" in r[last]:
            line += f", naive global join {r[last]['naive_p95'] / r[first]['naive_p95']:.2f}"
        print(line)
    prompt_tokens()
    print(json.dumps(results, indent=1, default=float))


def main() -> None:
    asyncio.run(amain())


if __name__ == "__main__":
    main()
