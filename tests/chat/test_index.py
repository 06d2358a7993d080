"""Passages: grouping, idempotent re-indexing with the full-text side in step, pipeline hook."""

from __future__ import annotations

import random

from sqlalchemy import func, select, text

from core.chat import index
from core.chat.passages import OVERLAP_SECONDS, WINDOW_SECONDS, group
from core.chat.retrieve import retrieve
from core.context import Context
from core.db import Passage
from core.pipeline import hooks
from tests.chat.helpers import add_space
from tests.chat.synth import make_space


def test_windows_overlap_and_keep_speakers() -> None:
    segs = [
        {"start": i * 10.0, "end": i * 10.0 + 9, "speaker": f"S{i % 3}", "text": f"word{i}"}
        for i in range(60)
    ]
    ps = group(segs)
    assert [p.seq for p in ps] == list(range(len(ps)))
    for a, b in zip(ps, ps[1:], strict=False):
        assert b.start < a.end  # overlap: the next window starts inside the previous one
        assert a.end - b.start <= OVERLAP_SECONDS + 10
    assert all(p.end - p.start <= WINDOW_SECONDS for p in ps)
    assert ps[0].lines[0] == "S0: word0" and ps[0].speakers[:2] == ["S0", "S1"]
    covered = {w for p in ps for w in p.text.split()}
    assert {f"S{i % 3}: word{i}".split()[1] for i in range(60)} <= covered
    assert group([]) == [] and group([{"start": 0, "end": 1, "text": "  "}]) == []


async def _fts_hits(ctx: Context, word: str) -> int:
    async with ctx.db.session() as s:
        if s.bind.dialect.name == "sqlite":
            q = text("SELECT count(*) FROM passages_fts WHERE passages_fts MATCH :w")
        else:
            q = text("SELECT count(*) FROM passages_fts WHERE tsv @@ to_tsquery('english', :w)")
        return int(await s.scalar(q, {"w": word}) or 0)


async def test_reindex_is_idempotent(ctx: Context) -> None:
    segs, facts = make_space(random.Random(1), 0, hours=0.5, n_facts=1)
    pk = await add_space(ctx, 1, segs)
    async with ctx.db.session() as s:
        first = await index.passage_count(s, pk)
    before = await _fts_hits(ctx, "zzuniqueword")
    segs.append({"start": 5000.0, "end": 5005.0, "speaker": "Z", "text": "zzuniqueword here"})
    for _ in range(2):
        async with ctx.db.session() as s:
            await index.index_segments(s, pk, segs)
    async with ctx.db.session() as s:
        again = await index.passage_count(s, pk)
        rows = await s.scalar(select(func.count()).select_from(Passage))
    assert first == len(group(segs[:-1])) and again == len(group(segs)) > first
    assert before == 0 and rows == again
    assert await _fts_hits(ctx, "zzuniqueword") == 1  # the full-text side follows, once
    async with ctx.db.session() as s:
        hits = await retrieve(s, [pk], facts[0].question, 5)
    assert any(facts[0].answer in h.text for h in hits)


async def test_pipeline_hook_indexes_completed_space(ctx: Context) -> None:
    ctx.wiring.add_on_completed(index.on_space_completed)
    ctx.wiring.add_on_completed(index.on_space_completed)  # idempotent (the wiring added it too)
    assert ctx.wiring.on_completed.count(index.on_space_completed) == 1
    pk = await add_space(ctx, 2, [])
    segs = [{"start": 0.0, "end": 5.0, "speaker": "Ann", "text": "hello marmalade world"}]
    await hooks.on_completed(ctx, pk, segs)
    await hooks.on_completed(ctx, pk, segs)
    async with ctx.db.session() as s:
        assert await index.passage_count(s, pk) == 1
    assert await _fts_hits(ctx, "marmalade") == 1
