"""The outbox: every outbound message is a row written with the change that causes it."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import Outbox, utcnow


async def add_message(
    session: AsyncSession,
    *,
    kind: str,
    platform: str,
    recipient: str,
    payload: dict[str, Any],
    dedupe_key: str,
    origin_chat_id: str | None = None,
    space_pk: int | None = None,
) -> bool:
    """Queue one message, at most once per ``dedupe_key``. Returns True if it was added."""
    ins = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    now = utcnow()
    stmt = (
        ins(Outbox)
        .values(
            dedupe_key=dedupe_key,
            kind=kind,
            platform=platform,
            recipient=recipient,
            origin_chat_id=origin_chat_id,
            space_id=space_pk,
            payload=json.dumps(payload, sort_keys=True, default=str),
            status="pending",
            attempts=0,
            available_at=now,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
    )
    result = await session.execute(stmt)
    return bool(result.rowcount)
