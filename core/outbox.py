"""The outbox: every outbound message is a row written with the change that causes it."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.db import Outbox, utcnow
from core.db.upsert import insert_ignore


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
    now = utcnow()
    values = {
        "dedupe_key": dedupe_key,
        "kind": kind,
        "platform": platform,
        "recipient": recipient,
        "origin_chat_id": origin_chat_id,
        "space_id": space_pk,
        "payload": json.dumps(payload, sort_keys=True, default=str),
        "status": "pending",
        "attempts": 0,
        "available_at": now,
        "created_at": now,
    }
    return await insert_ignore(session, Outbox, values, index_elements=["dedupe_key"])
