"""Retrieval across the selected Spaces, each Space searched on its own (a per-Space share).

Every Space is ranked separately, so a 3-hour Space's last hour competes only with its own
passages, and the cost follows the Spaces asked about, not the whole corpus:
- SQLite: FTS5 MATCH limited to the Space's rowid range (FTS5 seeks doclists by rowid);
- PostgreSQL: the Space's stored tsvectors through a btree on space_id, ranked BM25-style
  (inverse document frequency within the Space) from per-term match flags.
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

from core.chat.terms import fts5_expression, terms, tsquery_expression
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


_SQLITE_RANGE = text("SELECT min(id), max(id) FROM passages WHERE space_id = :s")
_SQLITE_MATCH = text(
    "SELECT p.id, p.space_id, p.seq, p.start_seconds, p.end_seconds, p.speakers, p.text, "
    "-bm25(passages_fts, 1.0, 0.5) AS score "
    "FROM passages_fts JOIN passages p ON p.id = passages_fts.rowid "
    "WHERE passages_fts MATCH :q AND passages_fts.rowid BETWEEN :lo AND :hi "
    "AND p.space_id = :s ORDER BY bm25(passages_fts, 1.0, 0.5) LIMIT :k"
)
_PG_TEXT = text(
    "SELECT id, space_id, seq, start_seconds, end_seconds, speakers, text "
    "FROM passages WHERE id IN :ids"
).bindparams(bindparam("ids", expanding=True))


def _pg_match(n_terms: int) -> TextClause:
    """Which of the terms each of the Space's matching passages contains (one flag each).

    ts_rank has no inverse document frequency, so common words would outrank the rare word
    a question is really about; the flags give a BM25-style weighting per Space in Python.
    """
    flags = ", ".join(f"(f.tsv @@ to_tsquery('english', :t{i}))::int" for i in range(n_terms))
    return text(
        f"SELECT f.passage_id, {flags} FROM passages_fts f "
        "WHERE f.space_id = :s AND f.tsv @@ to_tsquery('english', :q)"
    )


_PG_COUNT = text("SELECT count(*) FROM passages_fts WHERE space_id = :s")


async def _pg_rows(
    session: AsyncSession, space_pk: int, words: list[str], k: int
) -> list[tuple[Any, ...]]:
    params: dict[str, Any] = {f"t{i}": w for i, w in enumerate(words)}
    params.update(s=space_pk, q=tsquery_expression(words))
    flags = (await session.execute(_pg_match(len(words)), params)).all()
    if not flags:
        return []
    n = int(await session.scalar(_PG_COUNT, {"s": space_pk}) or 0)
    df = [sum(r[i + 1] for r in flags) for i in range(len(words))]
    idf = [math.log((n - d + 0.5) / (d + 0.5) + 1.0) for d in df]
    scored = sorted(
        ((sum(w * r[i + 1] for i, w in enumerate(idf)), int(r[0])) for r in flags),
        key=lambda x: (-x[0], x[1]),
    )[:k]
    score_of = {pid: sc for sc, pid in scored}
    rows = (await session.execute(_PG_TEXT, {"ids": list(score_of)})).all()
    out = [(*r, score_of[int(r[0])]) for r in rows]  # type: ignore[misc]
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
    elif dialect == "sqlite":
        lo, hi = (await session.execute(_SQLITE_RANGE, {"s": space_pk})).one()
        if lo is None:
            return []
        params = {"q": fts5_expression(words), "lo": lo, "hi": hi, "s": space_pk, "k": k}
        rows = (await session.execute(_SQLITE_MATCH, params)).all()
    else:
        rows = await _pg_rows(session, space_pk, words, k)
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
