"""Storing a Space's passages. Re-indexing replaces them in one transaction (idempotent).

The full-text side (``passages_fts``) follows by triggers. On SQLite the passages of one Space
get consecutive rowids (one writer at a time), which retrieval uses as a seekable range.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.chat.passages import group
from core.context import Context
from core.db import Passage
from core.logging import get_logger

log = get_logger(__name__)


async def index_segments(
    session: AsyncSession, space_pk: int, segments: list[dict[str, Any]]
) -> int:
    """Replace the Space's passages with those grouped from ``segments``; returns the count."""
    drafts = group(segments)
    await session.execute(delete(Passage).where(Passage.space_id == space_pk))
    if drafts:
        await session.execute(
            insert(Passage),
            [
                {
                    "space_id": space_pk,
                    "seq": d.seq,
                    "start_seconds": d.start,
                    "end_seconds": d.end,
                    "speakers": json.dumps(d.speakers, ensure_ascii=False),
                    "text": d.text,
                }
                for d in drafts
            ],
        )
    return len(drafts)


async def passage_count(session: AsyncSession, space_pk: int) -> int:
    n = await session.scalar(select(func.count()).where(Passage.space_id == space_pk))
    return int(n or 0)


async def on_space_completed(ctx: Context, space_pk: int, segments: list[dict[str, Any]]) -> None:
    async with ctx.db.session() as s:
        n = await index_segments(s, space_pk, segments)
    log.info("chat_index", space_pk=space_pk, passages=n)
