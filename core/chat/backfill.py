"""(Re-)index completed Spaces from their transcript.json (stored in the database): for Spaces
transcribed before the chat index existed, or after a change of passage windows. Idempotent."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlalchemy import exists, select

from core import transcripts
from core.chat.index import index_segments
from core.context import Context
from core.db import Passage, Space
from core.statuses import SpaceStatus


@dataclass
class BackfillReport:
    indexed: dict[str, int] = field(default_factory=dict)  # space id -> passages
    missing: list[str] = field(default_factory=list)  # completed, but no transcript.json


async def backfill(
    ctx: Context, space_ids: list[str] | None = None, *, force: bool = False
) -> BackfillReport:
    """Index the named completed Spaces (default: every completed Space without passages;
    ``force`` re-indexes those that have some)."""
    q = select(Space.id, Space.space_id).where(Space.status == SpaceStatus.COMPLETED)
    if space_ids is not None:
        q = q.where(Space.space_id.in_(space_ids))
    elif not force:
        q = q.where(~exists().where(Passage.space_id == Space.id))
    async with ctx.db.session() as s:
        todo = [(int(pk), str(sid)) for pk, sid in (await s.execute(q.order_by(Space.id))).all()]
    report = BackfillReport()
    for pk, sid in todo:
        raw = await transcripts.json_of(ctx, pk)
        try:
            segments = json.loads(raw or "")["segments"]
        except (ValueError, KeyError, TypeError):
            report.missing.append(sid)
            continue
        async with ctx.db.session() as s:
            report.indexed[sid] = await index_segments(s, pk, segments)
    return report
