"""Readiness of the parts of this process that talk to the outside. The bots' connection
state is on the application object (``ctx.wiring.connected``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.context import Context


async def x_refusal(ctx: Context) -> str | None:
    """ "X refuses us: set `transcription.cookies_file`" while X refuses this server: this
    process saw it last time it asked, or a waiting job (any process's) failed on it."""
    from sqlalchemy import select

    from core.db import ProcessingJob
    from core.pipeline.xspaces import COOKIES_HINT, refused_since
    from core.queue import LIVE_STATUSES

    if refused_since() is not None:
        return COOKIES_HINT
    async with ctx.db.session() as s:
        hit = await s.scalar(
            select(ProcessingJob.id)
            .where(
                ProcessingJob.status.in_(LIVE_STATUSES),
                ProcessingJob.error_message.startswith(COOKIES_HINT, autoescape=True),
            )
            .limit(1)
        )
    return COOKIES_HINT if hit is not None else None
