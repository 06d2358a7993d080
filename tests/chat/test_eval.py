"""Evaluation set: 3-hour Spaces, facts at random times, questions about them; recall@5."""

from __future__ import annotations

import random

from core.chat.retrieve import retrieve
from core.context import Context
from tests.chat.helpers import add_space
from tests.chat.synth import Fact, make_space

N_SPACES = 4
FACTS_PER_SPACE = 6


async def build_eval(ctx: Context, seed: int = 7) -> tuple[list[int], list[Fact]]:
    rng = random.Random(seed)
    pks, facts = [], []
    for i in range(N_SPACES):
        segs, fs = make_space(rng, i, hours=3.0, n_facts=FACTS_PER_SPACE)
        pks.append(await add_space(ctx, 100 + i, segs))
        facts.extend(fs)
    return pks, facts


async def recall_at_5(ctx: Context, pks: list[int], facts: list[Fact], pair: bool) -> float:
    found = 0
    async with ctx.db.session() as s:
        for f in facts:
            asked = [pks[f.space_index]]
            if pair:  # the fact's Space and another one, as a two-Space question
                asked.append(pks[(f.space_index + 1) % len(pks)])
            hits = await retrieve(s, asked, f.question, 20)
            found += any(h.space_pk == pks[f.space_index] and f.answer in h.text for h in hits[:5])
    return found / len(facts)


async def test_recall_at_5_anywhere_in_three_hours(ctx: Context) -> None:
    pks, facts = await build_eval(ctx)
    assert max(f.at for f in facts) > 2 * 3600  # facts in the last hour are part of the set
    one = await recall_at_5(ctx, pks, facts, pair=False)
    two = await recall_at_5(ctx, pks, facts, pair=True)
    print(f"recall@5 one Space {one:.2f}, two Spaces {two:.2f} ({len(facts)} facts)")
    assert one >= 0.9 and two >= 0.9
