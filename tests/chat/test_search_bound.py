"""Issue 14: ``/search`` covers the caller's latest ``SEARCH_OWNED_SPACES`` purchases, not
every Space they ever bought, and ranks their passages as chat retrieval does (in a fixed
number of statements). Both engines."""

from __future__ import annotations

import random

from sqlalchemy import func, select

from core.chat.retrieve import retrieve, search_passages
from core.chat.terms import terms
from core.context import Context
from core.db import TranscriptionPayment
from core.results import Refused
from core.service import chat
from tests.chat.helpers import add_space, member, space_id_for
from tests.chat.synth import make_space


def _segs(i: int, word: str | None = None) -> list[dict[str, object]]:
    text = f"we talked about the weekly roadmap number {i}"
    return [
        {"start": 0.0, "end": 30.0, "speaker": "Ann", "text": text},
        {"start": 60.0, "end": 90.0, "speaker": "Bob", "text": word or "nothing to add here"},
    ]


async def test_search_covers_the_latest_purchases_only(ctx: Context) -> None:
    n = chat.SEARCH_OWNED_SPACES + 1
    # the oldest purchase and the newest both say the word; only the newest is searched
    pks = [
        await add_space(ctx, i, _segs(i, "the quorvantis memo" if i in (0, n - 1) else None))
        for i in range(n)
    ]
    caller, uid = await member(ctx, "ann", owns=pks)
    async with ctx.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(TranscriptionPayment)) == n
    hits = await chat.search(ctx, caller, "quorvantis")
    assert not isinstance(hits, Refused)
    found = [h.space.space_id for h in hits if h.excerpt]
    assert found == [space_id_for(n - 1)], found


async def test_search_ranks_passages_as_retrieval_does(ctx: Context) -> None:
    rng = random.Random(4)
    pks, questions = [], []
    for i in range(4):
        segs, facts = make_space(rng, i, hours=1.0, n_facts=2)
        pks.append(await add_space(ctx, 10 + i, segs))
        questions += [f.question for f in facts]
    async with ctx.db.session() as s:
        for q in questions:
            words = terms(q)
            want = [(h.passage_id, h.rank) for h in await retrieve(s, pks, q, chat.SEARCH_LIMIT)]
            got = [
                (h.passage_id, h.rank)
                for h in await search_passages(s, pks, words, chat.SEARCH_LIMIT)
            ]
            # retrieval also returns unmatched passages (score 0); search keeps matches
            assert got == want[: len(got)] and got, (q, got, want)
