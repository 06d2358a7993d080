"""Retrieval across the selected Spaces, each Space searched on its own (a per-Space share).

Every Space is ranked separately, so a 3-hour Space's last hour competes only with its own
passages, and the cost follows the Spaces asked about, not the whole corpus:
- SQLite: FTS5 MATCH limited to the Space's rowid range (FTS5 seeks doclists by rowid);
- PostgreSQL: the Space's stored tsvectors through a btree on space_id.
Both rank the same way, BM25-style from per-term match flags with the inverse document
frequency computed within the Space (ts_rank has no IDF; FTS5's bm25() scans the corpus).
The merged list keeps each Space's best passages first (round robin by rank), then the rest
by score, so no Space is crowded out by another with more matches.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from core.chat.terms import fts5_expression, terms
from core.db.upsert import dialect_name

PER_SPACE = 8


@dataclass(frozen=True)
class Hit:
    passage_id: int
    space_pk: int
    seq: int
    start: float
    end: float
    speakers: list[str]
    text: str
    score: float  # higher is better, comparable within one Space
    rank: int  # 0 = the Space's best passage


_SQLITE_RANGE = text("SELECT min(id), max(id), count(*) FROM passages WHERE space_id = :s")
_TEXTS = text(
    "SELECT id, space_id, seq, start_seconds, end_seconds, speakers, text "
    "FROM passages WHERE space_id = :s AND id IN :ids"
).bindparams(bindparam("ids", expanding=True))


def _sqlite_flags(n_terms: int) -> TextClause:
    """Per matching passage of one Space (its rowid range), which terms it contains.

    Each term's set is built once (an uncorrelated IN subquery) from a doclist FTS5 seeks
    to the Space's rowid range; bm25() is not used because its statistics scan every
    document of the corpus holding the term, which grows with the corpus.
    """
    flags = ", ".join(
        f"passages_fts.rowid IN (SELECT rowid FROM passages_fts WHERE passages_fts MATCH :t{i} "
        "AND rowid BETWEEN :lo AND :hi)"
        for i in range(n_terms)
    )
    return text(
        f"SELECT passages_fts.rowid, {flags} FROM passages_fts "
        "WHERE passages_fts MATCH :q AND passages_fts.rowid BETWEEN :lo AND :hi"
    )


def _pg_flags(n_terms: int) -> TextClause:
    """Per passage of one Space, which terms it contains (tsqueries parsed once).

    The Space's few hundred stored tsvectors come through the btree on space_id and are
    tested here; a ``tsv @@ q`` filter would let the planner AND in a GIN scan over the
    whole corpus (measured: 13,865 GIN hits to keep 226 rows at 60 Spaces).
    """
    queries = ", ".join(f"to_tsquery('english', :t{i}) AS q{i}" for i in range(n_terms))
    flags = ", ".join(f"(f.tsv @@ qs.q{i})::int" for i in range(n_terms))
    return text(
        f"SELECT f.passage_id, {flags} FROM passages_fts f, (SELECT {queries}) AS qs "
        "WHERE f.space_id = :s"
    )


def rank_flags(flags: Sequence[Any], n_terms: int, n_docs: int, k: int) -> list[tuple[float, int]]:
    """BM25-style: each term weighs its inverse document frequency within the Space (a word
    said everywhere counts little, the rare word a question is about counts most)."""
    df = [sum(bool(r[i + 1]) for r in flags) for i in range(n_terms)]
    idf = [math.log((n_docs - d + 0.5) / (d + 0.5) + 1.0) for d in df]
    scored = [(sum(w for i, w in enumerate(idf) if r[i + 1]), int(r[0])) for r in flags]
    scored.sort(key=lambda x: (-x[0], x[1]))
    return scored[:k]


async def _ranked_rows(
    session: AsyncSession, dialect: str, space_pk: int, words: list[str], k: int
) -> list[tuple[Any, ...]]:
    params: dict[str, Any] = {"s": space_pk}
    if dialect == "sqlite":
        lo, hi, n = (await session.execute(_SQLITE_RANGE, {"s": space_pk})).one()
        if lo is None:
            return []
        params.update({f"t{i}": fts5_expression([w]) for i, w in enumerate(words)})
        params.update(q=fts5_expression(words), lo=lo, hi=hi)
        flags = (await session.execute(_sqlite_flags(len(words)), params)).all()
    else:
        params.update({f"t{i}": w for i, w in enumerate(words)})
        every = (await session.execute(_pg_flags(len(words)), params)).all()
        n = len(every)
        flags = [r for r in every if any(r[1:])]
    if not flags:
        return []
    scored = rank_flags(flags, len(words), int(n or 0), k)
    score_of = {pid: sc for sc, pid in scored}
    rows = (await session.execute(_TEXTS, {"s": space_pk, "ids": list(score_of)})).all()
    out = [(*r, score_of[int(r[0])]) for r in rows]
    out.sort(key=lambda r: (-r[7], r[2]))
    return out


_FIRST = text(
    "SELECT id, space_id, seq, start_seconds, end_seconds, speakers, text, 0.0 "
    "FROM passages WHERE space_id = :s ORDER BY seq LIMIT :k"
)


async def _space_hits(
    session: AsyncSession, dialect: str, space_pk: int, words: list[str], k: int
) -> list[Hit]:
    rows: Sequence[Any]
    if not words:
        rows = (await session.execute(_FIRST, {"s": space_pk, "k": k})).all()
    else:
        rows = await _ranked_rows(session, dialect, space_pk, words, k)
    return [
        Hit(
            passage_id=int(r[0]),
            space_pk=int(r[1]),
            seq=int(r[2]),
            start=float(r[3]),
            end=float(r[4]),
            speakers=json.loads(r[5]) if r[5] else [],
            text=str(r[6]),
            score=float(r[7]),
            rank=i,
        )
        for i, r in enumerate(rows)
    ]


async def retrieve(
    session: AsyncSession, space_pks: list[int], question: str, limit: int = 20
) -> list[Hit]:
    """Best passages for ``question`` across ``space_pks``, each Space getting its share."""
    words = terms(question)
    dialect = dialect_name(session)
    per_space = max(PER_SPACE, -(-limit // max(len(space_pks), 1)))
    hits: list[Hit] = []
    for pk in dict.fromkeys(space_pks):
        hits.extend(await _space_hits(session, dialect, pk, words, per_space))
    # round robin by per-Space rank; within one rank, higher score first
    hits.sort(key=lambda h: (h.rank, -h.score))
    return hits[:limit]


_SQLITE_RANGES = text(
    "SELECT space_id, min(id), max(id), count(*) FROM passages WHERE space_id IN :pks "
    "GROUP BY space_id"
).bindparams(bindparam("pks", expanding=True))
_TEXTS_OF = text(
    "SELECT id, space_id, seq, start_seconds, end_seconds, speakers, text "
    "FROM passages WHERE id IN :ids"
).bindparams(bindparam("ids", expanding=True))


def _sqlite_flags_many(n_terms: int, n_spaces: int) -> TextClause:
    """:func:`_sqlite_flags` for several Spaces in one statement: one arm per Space, each
    seeking its own rowid range (an OR of ranges would make FTS5 walk the whole doclist)."""
    arms = []
    for j in range(n_spaces):
        flags = ", ".join(
            f"passages_fts.rowid IN (SELECT rowid FROM passages_fts WHERE passages_fts MATCH "
            f":t{i} AND rowid BETWEEN :lo{j} AND :hi{j})"
            for i in range(n_terms)
        )
        arms.append(
            f"SELECT {j}, passages_fts.rowid, {flags} FROM passages_fts "
            f"WHERE passages_fts MATCH :q AND passages_fts.rowid BETWEEN :lo{j} AND :hi{j}"
        )
    return text(" UNION ALL ".join(arms))


def _pg_flags_many(n_terms: int) -> TextClause:
    """:func:`_pg_flags` for several Spaces in one statement (their tsvectors via the btree
    on space_id), only the passages matching some term returned, with each Space's size."""
    queries = ", ".join(f"to_tsquery('english', :t{i}) AS q{i}" for i in range(n_terms))
    flags = ", ".join(f"(f.tsv @@ qs.q{i})::int AS m{i}" for i in range(n_terms))
    some = " OR ".join(f"m{i} = 1" for i in range(n_terms))
    return text(
        f"SELECT * FROM (SELECT f.space_id, f.passage_id, {flags}, "
        "count(*) OVER (PARTITION BY f.space_id) AS n "
        f"FROM passages_fts f, (SELECT {queries}) AS qs WHERE f.space_id IN :pks) AS x "
        f"WHERE {some}"
    ).bindparams(bindparam("pks", expanding=True))


async def search_passages(
    session: AsyncSession, space_pks: list[int], words: list[str], limit: int
) -> list[Hit]:
    """The best ``limit`` passages for ``words`` across ``space_pks``, ranked as
    :func:`retrieve` ranks them (per Space, then round robin), in a fixed number of
    statements whatever the number of Spaces: for ``/search`` over a member's Spaces."""
    pks = list(dict.fromkeys(space_pks))
    if not pks or not words:
        return []
    dialect = dialect_name(session)
    params: dict[str, Any] = {}
    by_space: dict[int, list[Any]] = {pk: [] for pk in pks}
    size: dict[int, int] = {}
    if dialect == "sqlite":
        ranges = (await session.execute(_SQLITE_RANGES, {"pks": pks})).all()
        if not ranges:
            return []
        order = [int(r[0]) for r in ranges]
        for j, (_, lo, hi, n) in enumerate(ranges):
            params.update({f"lo{j}": lo, f"hi{j}": hi})
            size[order[j]] = int(n)
        params.update({f"t{i}": fts5_expression([w]) for i, w in enumerate(words)})
        params["q"] = fts5_expression(words)
        stmt = _sqlite_flags_many(len(words), len(ranges))
        for r in (await session.execute(stmt, params)).all():
            by_space[order[int(r[0])]].append(r[1:])
    else:
        params.update({f"t{i}": w for i, w in enumerate(words)}, pks=pks)
        for r in (await session.execute(_pg_flags_many(len(words)), params)).all():
            by_space[int(r[0])].append(r[1:-1])
            size[int(r[0])] = int(r[-1])
    ranked: list[tuple[int, float, int, int]] = []  # (rank, -score, passage id, space)
    for pk, flags in by_space.items():
        for rank, (score, pid) in enumerate(rank_flags(flags, len(words), size.get(pk, 0), limit)):
            ranked.append((rank, -score, pid, pk))
    ranked.sort()
    top = ranked[:limit]
    if not top:
        return []
    rows = {int(r[0]): r for r in (await session.execute(_TEXTS_OF, {"ids": [t[2] for t in top]}))}
    return [
        Hit(
            passage_id=pid,
            space_pk=pk,
            seq=int(rows[pid][2]),
            start=float(rows[pid][3]),
            end=float(rows[pid][4]),
            speakers=json.loads(rows[pid][5]) if rows[pid][5] else [],
            text=str(rows[pid][6]),
            score=-neg,
            rank=rank,
        )
        for rank, neg, pid, pk in top
    ]
