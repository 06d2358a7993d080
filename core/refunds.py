"""When a Space fails for good: every payer is told, and refunded per the refund policy:
USDC payers with account credit, Telegram Stars payers in Stars (``refundStarPayment``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.config import Settings
from core.db import Credit, Space, TranscriptionPayment, utcnow
from core.db.upsert import insert_ignore
from core.money import canonical_units, to_units
from core.outbox import add_message
from core.payments.stars import refund_for_invoices, stars_invoice_pks
from core.queue import notify_payers, payers


async def settle_failed_space(session: AsyncSession, settings: Settings, space_pk: int) -> int:
    """Credit each verified transcript payment of the Space once (idempotent by reference)
    and queue ``job_failed`` (and ``refunded``) messages. Returns the units credited now."""
    space = await session.get(Space, space_pk)
    if space is None:
        return 0
    error = space.error_message or "processing failed"
    await notify_payers(session, space_pk, "job_failed", {"error": error})
    if settings.payments.refund_policy != "credit":
        return 0
    rows = await session.execute(
        select(TranscriptionPayment).where(
            TranscriptionPayment.space_id == space_pk,
            TranscriptionPayment.payment_verified.is_(True),
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
    for tp in paid:
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
                "reference": f"refund:transcription_payment:{tp.id}",
                "created_at": utcnow(),
            },
            index_elements=["reason", "reference"],
        )
    for p in await payers(session, space_pk):
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
            dedupe_key=f"refunded:{space.space_id}:{p.platform}:{p.recipient}",
            origin_chat_id=p.origin_chat_id,
            space_pk=space_pk,
        )
    return total
