"""/search: titles and participants for everyone, transcript passages only in the
caller's own Spaces."""

from __future__ import annotations

from sqlalchemy import func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from core.accounts import user_id_for
from core.chat import answer as backends
from core.chat.retrieve import search_passages
from core.chat.terms import fts5_expression, terms, tsquery_expression
from core.context import Context
from core.db import Space, TranscriptionPayment
from core.db.upsert import dialect_name
from core.results import Caller, Refused, SearchHit
from core.service.views import space_view
from core.statuses import SpaceStatus

SEARCH_LIMIT = 10
MAX_SEARCH_CHARS = 200
SEARCH_OWNED_SPACES = 10  # passage search covers the latest purchases (bench.search: p95 in target)


async def titled(s: AsyncSession, ws: list[str], limit: int = SEARCH_LIMIT) -> list[Space]:
    """Completed Spaces whose title or participants match the terms, most bought first:
    what anyone may find (no transcript text)."""
    if dialect_name(s) == "sqlite":
        ids = text("SELECT rowid FROM spaces_fts WHERE spaces_fts MATCH :q ORDER BY rank LIMIT :k")
        pks = [r[0] for r in (await s.execute(ids, {"q": fts5_expression(ws), "k": 50}))]
        cond: ColumnElement[bool] = Space.id.in_(pks)
    else:
        q = func.to_tsquery("english", tsquery_expression(ws))
        cond = or_(
            func.to_tsvector("english", Space.title).op("@@")(q),
            func.to_tsvector("english", func.coalesce(Space.participants, "")).op("@@")(q),
        )
    rows = await s.execute(
        select(Space)
        .where(cond, Space.status == SpaceStatus.COMPLETED)
        .order_by(Space.transcription_count.desc(), Space.id)
        .limit(limit)
    )
    return list(rows.scalars())


async def search(ctx: Context, caller: Caller | None, words: str) -> list[SearchHit] | Refused:
    """Titles and participants for everyone (``caller`` None: a visitor of the storefront);
    transcript passages only in owned Spaces."""
    if len(words or "") > MAX_SEARCH_CHARS:
        return Refused("query_too_long", f"Search with at most {MAX_SEARCH_CHARS} characters.")
    ws = terms(words or "")
    if not ws:
        return Refused("empty_query", "Search for some words, e.g. /search bitcoin etf")
    hits: list[SearchHit] = []
    async with ctx.db.session() as s:
        hits += [SearchHit(space_view(sp)) for sp in await titled(s, ws)]
        uid = await user_id_for(s, caller) if caller is not None else None
        if uid is not None:
            # the caller's latest SEARCH_OWNED_SPACES purchases, not every one: the cost of
            # a search is bounded whatever a member has bought (README: Chat, /search)
            owned = (
                (
                    await s.execute(
                        select(Space)
                        .join(TranscriptionPayment, TranscriptionPayment.space_id == Space.id)
                        .where(
                            TranscriptionPayment.user_id == uid,
                            Space.status == SpaceStatus.COMPLETED,
                        )
                        .order_by(TranscriptionPayment.id.desc())
                        .limit(SEARCH_OWNED_SPACES)
                    )
                )
                .scalars()
                .all()
            )
            by_pk = {sp.id: sp for sp in owned}
            passages = await search_passages(s, list(by_pk), ws, SEARCH_LIMIT)
            for h in passages:
                if h.score <= 0:
                    continue
                hits.append(
                    SearchHit(
                        space_view(by_pk[h.space_pk]), backends.excerpt(h.text, ws), start=h.start
                    )
                )
    return hits
