"""The outbox: every outbound message is a row written with the change that causes it.

A scheduler job drains it through the :class:`~core.outbox_contract.MessageSender` each
running adapter adds for its platform to the application object (``ctx.wiring``); see :func:`drain_once` for the delivery guarantees.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import backoff
from core.config import OutboxSettings
from core.db import Outbox, utcnow
from core.db.upsert import dialect_name, insert_ignore, insert_ignore_many
from core.logging import get_logger
from core.outbox_contract import Delivery, OutboundMessage
from core.statuses import OutboxStatus

if TYPE_CHECKING:
    from core.context import Context

log = get_logger("spacescribe.outbox")


def message_row(
    *,
    kind: str,
    platform: str,
    recipient: str,
    payload: dict[str, Any],
    dedupe_key: str,
    origin_chat_id: str | None = None,
    space_pk: int | None = None,
) -> dict[str, Any]:
    """The ``outbox`` row of one message, ready to insert."""
    now = utcnow()
    return {
        "dedupe_key": dedupe_key,
        "kind": kind,
        "platform": platform,
        "recipient": recipient,
        "origin_chat_id": origin_chat_id,
        "space_id": space_pk,
        "payload": json.dumps(payload, sort_keys=True, default=str),
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "available_at": now,
        "created_at": now,
    }


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
    values = message_row(
        kind=kind,
        platform=platform,
        recipient=recipient,
        payload=payload,
        dedupe_key=dedupe_key,
        origin_chat_id=origin_chat_id,
        space_pk=space_pk,
    )
    return await insert_ignore(session, Outbox, values, index_elements=["dedupe_key"])


async def add_messages(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """Queue many :func:`message_row` rows in one statement, each at most once per
    ``dedupe_key``. Returns how many were added."""
    return await insert_ignore_many(session, Outbox, rows, index_elements=["dedupe_key"])


# ---------------------------------------------------------------- draining

DEFAULT_POLICY = OutboxSettings()
SEND_LEASE_SECONDS = 120.0


REDELIVER_WITHIN = timedelta(days=30)


async def release_undelivered(session: AsyncSession, platform: str, recipient: str) -> int:
    """The recipient can be reached again (they started the bot): the messages that could not
    reach them in the last 30 days go out again. Only rows in ``fallback`` are released, so
    nothing already delivered is sent twice. Returns how many."""
    released = await session.execute(
        update(Outbox)
        .where(
            Outbox.platform == platform,
            Outbox.recipient == recipient,
            Outbox.status == OutboxStatus.FALLBACK,
            Outbox.created_at >= utcnow() - REDELIVER_WITHIN,
        )
        .values(status=OutboxStatus.PENDING, attempts=0, available_at=utcnow(), locked_by=None)
    )
    return int(getattr(released, "rowcount", 0) or 0)


def retry_delay(attempts: int, policy: OutboxSettings = DEFAULT_POLICY) -> float:
    """Backoff for transient delivery errors: 5 s, 10 s, 20 s … capped at 15 minutes
    (``[outbox]`` in config.toml)."""
    return backoff.exponential(
        max(1, attempts), policy.retry_base_seconds, policy.retry_max_seconds
    )


async def _claim(
    session: AsyncSession, worker: str, platforms: list[str], limit: int
) -> list[Outbox]:
    """Due rows of our platforms: pending, or 'sending' rows whose sender died (lease over)."""
    now = utcnow()
    pick = (
        select(Outbox.id)
        .where(
            Outbox.platform.in_(platforms),
            Outbox.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING)),
            Outbox.available_at <= now,
        )
        .order_by(Outbox.available_at, Outbox.id)
        .limit(limit)
    )
    if dialect_name(session) == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    ids = list((await session.execute(pick)).scalars())
    if not ids:
        return []
    await session.execute(
        update(Outbox)
        .where(Outbox.id.in_(ids))
        .values(
            status=OutboxStatus.SENDING,
            locked_by=worker,
            attempts=Outbox.attempts + 1,
            available_at=now + timedelta(seconds=SEND_LEASE_SECONDS),
        )
    )
    rows = await session.execute(select(Outbox).where(Outbox.id.in_(ids)).order_by(Outbox.id))
    return list(rows.scalars())


async def _record(
    session: AsyncSession, row: Outbox, worker: str, result: Delivery, policy: OutboxSettings
) -> None:
    now = utcnow()
    values: dict[str, Any]
    if result.status == "sent":
        values = {"status": OutboxStatus.SENT, "sent_at": now, "last_error": None}
    elif result.status == "undeliverable":
        values = {"status": OutboxStatus.FALLBACK, "sent_at": now, "last_error": result.detail}
    elif result.status == "retry" and row.attempts < policy.max_attempts:
        delay = result.retry_after
        if delay is None:
            delay = retry_delay(row.attempts, policy)
        values = {
            "status": OutboxStatus.PENDING,
            "available_at": now + timedelta(seconds=delay),
            "last_error": result.detail,
        }
    else:
        values = {"status": OutboxStatus.FAILED, "last_error": result.detail}
    await session.execute(
        update(Outbox)
        .where(
            Outbox.id == row.id, Outbox.locked_by == worker, Outbox.status == OutboxStatus.SENDING
        )
        .values(locked_by=None, **values)
    )


async def drain_once(
    ctx: Context, worker: str, limit: int = 20, policy: OutboxSettings = DEFAULT_POLICY
) -> int:
    """Deliver due messages through the senders of the running adapters
    (``ctx.wiring.senders``). Returns how many were handled.

    A row is claimed (status 'sending', lease) in one transaction and its outcome recorded
    in another: a crash in between leaves it 'sending' until the lease ends, then it is
    tried again — delivery is at-least-once at the transport, once per ``dedupe_key``.
    """
    platforms = sorted(ctx.wiring.senders)
    if not platforms:
        return 0
    async with ctx.db.session() as s:
        rows = await _claim(s, worker, platforms, limit)
    for row in rows:
        msg = OutboundMessage(
            id=row.id,
            kind=row.kind,
            platform=row.platform,
            recipient=row.recipient,
            origin_chat_id=row.origin_chat_id,
            payload=json.loads(row.payload),
            attempts=row.attempts,
            last_attempt=row.attempts >= policy.max_attempts,
        )
        try:
            result = await ctx.wiring.senders[row.platform].deliver(msg)
        except Exception as exc:  # an adapter bug must not stop the drain
            log.exception("outbox delivery raised", message_id=row.id, kind=row.kind)
            result = Delivery("retry", detail=f"{type(exc).__name__}: {exc}"[:500])
        async with ctx.db.session() as s:
            await _record(s, row, worker, result, policy)
    return len(rows)
