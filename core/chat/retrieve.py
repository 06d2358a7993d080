"""Retrieval across the selected Spaces, each Space searched on its own (a per-Space share).

Every Space is ranked separately, so a 3-hour Space's last hour competes only with its own
passages, and the cost follows the Spaces asked about, not the whole corpus:
- SQLite: FTS5 MATCH limited to the Space's rowid range (FTS5 seeks doclists by rowid);
- PostgreSQL: the Space's stored tsvectors through a btree on space_id, ranked by ts_rank.
The merged list keeps each Space's best passages first (round robin by rank), then the rest
by score, so no Space is crowded out by another with more matches.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import text
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
_PG_MATCH = text(
    "SELECT p.id, p.space_id, p.seq, p.start_seconds, p.end_seconds, p.speakers, p.text, "
    "ts_rank_cd(f.tsv, q, 1) AS score "
    "FROM passages_fts f JOIN passages p ON p.id = f.passage_id, "
    "to_tsquery('english', :q) AS q "
    "WHERE f.space_id = :s AND f.tsv @@ q ORDER BY score DESC, p.seq LIMIT :k"
)
_FIRST = text(
    "SELECT id, space_id, seq, start_seconds, end_seconds, speakers, text, 0.0 "
    "FROM passages WHERE space_id = :s ORDER BY seq LIMIT :k"
)


async def _space_hits(
    session: AsyncSession, dialect: str, space_pk: int, words: list[str], k: int
) -> list[Hit]:
    if not words:
        rows = (await session.execute(_FIRST, {"s": space_pk, "k": k})).all()
    elif dialect == "sqlite":
        lo, hi = (await session.execute(_SQLITE_RANGE, {"s": space_pk})).one()
        if lo is None:
            return []
        params = {"q": fts5_expression(words), "lo": lo, "hi": hi, "s": space_pk, "k": k}
        rows = (await session.execute(_SQLITE_MATCH, params)).all()
    else:
        params = {"q": tsquery_expression(words), "s": space_pk, "k": k}
        rows = (await session.execute(_PG_MATCH, params)).all()
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
