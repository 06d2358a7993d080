"""When a Space fails for good: every payer is told, and refunded per the refund policy:
USDC payers with account credit, Telegram Stars payers in Stars (``refundStarPayment``).

Credited payments get ``refunded_at``: they no longer grant the Space, so a member may ask
for it again (a fresh attempt, paid normally or from this credit). A Space can fail more
than once (asked again, failed again): each failure's messages and credits are keyed by
its number, so every payer is credited once and told once per failure.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.config import Settings
from core.db import Credit, ProcessingJob, Space, TranscriptionPayment, utcnow
from core.db.upsert import insert_ignore
from core.money import canonical_units, to_units
from core.outbox import add_message
from core.payments.stars import refund_for_invoices, stars_invoice_pks
from core.queue import payers


async def _failure_suffix(session: AsyncSession, space_pk: int) -> str:
    """ "" for a Space's first failure (the keys it always had), ":<n>" for the n-th."""
    n = await session.scalar(
        select(func.count())
        .select_from(ProcessingJob)
        .where(ProcessingJob.space_id == space_pk, ProcessingJob.status == "failed")
    )
    return f":{n}" if (n or 0) > 1 else ""


async def settle_failed_space(session: AsyncSession, settings: Settings, space_pk: int) -> int:
    """Credit each verified transcript payment of the Space once (idempotent by reference)
    and queue ``job_failed`` (and ``refunded``) messages. Returns the units credited now."""
    space = await session.get(Space, space_pk)
    if space is None:
        return 0
    error = space.error_message or "processing failed"
    suffix = await _failure_suffix(session, space_pk)
    people = await payers(session, space_pk)
    for p in people:
        await add_message(
            session,
            kind="job_failed",
            platform=p.platform,
            recipient=p.recipient,
            payload={"space_id": space.space_id, "error": error},
            dedupe_key=f"job_failed:{space.space_id}:{p.platform}:{p.recipient}{suffix}",
            origin_chat_id=p.origin_chat_id,
            space_pk=space_pk,
        )
    if settings.payments.refund_policy != "credit":
        return 0
    rows = await session.execute(
        select(TranscriptionPayment).where(
            TranscriptionPayment.space_id == space_pk,
            TranscriptionPayment.payment_verified.is_(True),
            TranscriptionPayment.refunded_at.is_(None),
        )
    )
    paid = list(rows.scalars())
    in_stars = await stars_invoice_pks(
        session, [tp.invoice_id for tp in paid if tp.invoice_id is not None]
    )
    await refund_for_invoices(session, sorted(in_stars), f"Space {space.space_id}: {error}")
    stars_payers = {tp.user_id for tp in paid if tp.invoice_id in in_stars}
    refunded: dict[int, int] = {}
    total = 0
    now = utcnow()
    for tp in paid:
        await session.execute(
            update(TranscriptionPayment)
            .where(TranscriptionPayment.id == tp.id)
            .values(refunded_at=now)
        )
        if tp.invoice_id in in_stars:
            continue  # Stars go back as Stars (the stars_refund message tells the member)
        units = to_units(tp.amount_usdc)
        refunded[tp.user_id] = units
        total += units * await insert_ignore(
            session,
            Credit,
            {
                "user_id": tp.user_id,
                "amount_units": units,
                "reason": "refund",
                "reference": f"refund:transcription_payment:{tp.id}{suffix}",
                "created_at": now,
            },
            index_elements=["reason", "reference"],
        )
    for p in people:
        if p.user_id in stars_payers and p.user_id not in refunded:
            continue
        await add_message(
            session,
            kind="refunded",
            platform=p.platform,
            recipient=p.recipient,
            payload={
                "space_id": space.space_id,
                "reason": error,
                "amount": canonical_units(refunded.get(p.user_id, 0)),
            },
            dedupe_key=f"refunded:{space.space_id}:{p.platform}:{p.recipient}{suffix}",
            origin_chat_id=p.origin_chat_id,
            space_pk=space_pk,
        )
    return total
