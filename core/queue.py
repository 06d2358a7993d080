"""The processing queue (``processing_queue``): one live job per Space."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import ProcessingJob, utcnow

LIVE_STATUSES = ("queued", "processing")


async def enqueue(session: AsyncSession, space_pk: int, priority: int = 0) -> bool:
    """Queue a job for the Space unless a live (queued/processing) one exists.

    Race-safe on both engines: the partial unique index ``uq_processing_queue_live_space``
    turns a concurrent second enqueue into a no-op. Returns True if a job was added.
    """
    ins = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    now = utcnow()
    stmt = (
        ins(ProcessingJob)
        .values(
            space_id=space_pk, status="queued", priority=priority, queued_at=now, available_at=now
        )
        .on_conflict_do_nothing(
            index_elements=["space_id"],
            index_where=ProcessingJob.status.in_(LIVE_STATUSES),
        )
    )
    result = await session.execute(stmt)
    return bool(result.rowcount)
