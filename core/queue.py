"""The processing queue (``processing_queue``): one live job per Space."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from core.db import ProcessingJob, utcnow
from core.db.upsert import insert_ignore

LIVE_STATUSES = ("queued", "processing")


async def enqueue(session: AsyncSession, space_pk: int, priority: int = 0) -> bool:
    """Queue a job for the Space unless a live (queued/processing) one exists.

    Race-safe on both engines: the partial unique index ``uq_processing_queue_live_space``
    turns a concurrent second enqueue into a no-op. Returns True if a job was added.
    """
    now = utcnow()
    return await insert_ignore(
        session,
        ProcessingJob,
        {
            "space_id": space_pk,
            "status": "queued",
            "priority": priority,
            "queued_at": now,
            "available_at": now,
        },
        index_elements=["space_id"],
        index_where=ProcessingJob.status.in_(LIVE_STATUSES),
    )
