"""When a Space fails for good, or a paid question can never be answered: the payer is told
and refunded per the refund policy: USDC payers with account credit, Telegram Stars payers in
Stars (``refundStarPayment``).

Credited payments get ``refunded_at``: they no longer grant the Space, so a member may ask
for it again (a fresh attempt, paid normally or from this credit). A Space can fail more
than once (asked again, failed again): each failure's messages and credits are keyed by
its number, so every payer is credited once and told once per failure.
"""

from __future__ import annotations

import json

from sqlalchemy import exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.config import Settings
from core.db import (
    Account,
    ChatSession,
    Credit,
    Invoice,
    ProcessingJob,
    Space,
    StarPayment,
    TranscriptionPayment,
    utcnow,
)
from core.db.upsert import insert_ignore
from core.money import canonical_units, to_units
from core.outbox import add_message
from core.payers import payers
from core.payments.stars import refund_for_invoices, stars_invoice_pks
from core.statuses import JobStatus


async def _failure_suffix(session: AsyncSession, space_pk: int) -> str:
    """ "" for a Space's first failure (the keys it always had), ":<n>" for the n-th."""
    n = (
        await session.execute(
            select(func.count())
            .select_from(ProcessingJob)
            .where(ProcessingJob.space_id == space_pk, ProcessingJob.status == JobStatus.FAILED)
        )
    ).scalar_one()
    return f":{n}" if n > 1 else ""


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
            # (reason, reference) is the only unique key besides the id, and SQLite (the mutation
            # run's engine) reads column names case-insensitively: no change to this conflict
            # target differs there (a wrong name fails the PostgreSQL tests)
            index_elements=["reason", "reference"],  # pragma: no mutate
        )
    for p in people:
        if p.user_id in stars_payers:
            continue  # told by stars_refund (one payment per user and Space: no USDC credit)
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


UNANSWERED_CREDIT = "unanswered"  # credits.reason of a USDC question refunded unanswered


def _unanswered_reference(inv: Invoice) -> str:
    return f"unanswered:invoice:{inv.public_id}"


async def question_refunded(session: AsyncSession, inv: Invoice) -> bool:
    """Was this paid question refunded as unanswered (then it is never answered after)?"""
    in_credit = exists().where(
        Credit.reason == UNANSWERED_CREDIT, Credit.reference == _unanswered_reference(inv)
    )
    in_stars = exists().where(
        StarPayment.invoice_id == inv.id, StarPayment.status.in_(("refund_due", "refunded"))
    )
    return bool(await session.scalar(select(in_credit | in_stars)))


async def settle_unanswered_question(
    session: AsyncSession, settings: Settings, invoice_pk: int, reason: str
) -> bool:
    """A paid question whose answer can never be produced (the model gave up on its last
    attempt): Stars go back as Stars (``stars_refund``), USDC becomes account credit with a
    ``refunded`` notice. Once: the Stars payment moves to ``refund_due`` conditionally, the
    credit is unique by (reason, reference). A question already answered is never refunded.
    Returns True if a refund was made now."""
    inv = await session.get(Invoice, invoice_pk)
    if inv is None or inv.kind != "chat_query" or inv.status != "credited":
        return False
    if settings.payments.refund_policy != "credit" or inv.user_id is None:
        return False
    answered = await session.scalar(select(exists().where(ChatSession.invoice_id == inv.id)))
    if answered:
        return False
    spaces: list[str] = json.loads(inv.space_ids)
    if await stars_invoice_pks(session, [inv.id]):
        why = f"your question could not be answered ({reason})"
        done = await refund_for_invoices(session, [inv.id], why)
        return bool(done)
    units = int(inv.amount_units)
    added = await insert_ignore(
        session,
        Credit,
        {
            "user_id": inv.user_id,
            "amount_units": units,
            "reason": UNANSWERED_CREDIT,
            "reference": _unanswered_reference(inv),
            "created_at": utcnow(),
        },
        # (reason, reference) is the only unique key besides the id, and SQLite (the mutation
        # run's engine) reads column names case-insensitively: no change to this conflict
        # target differs there (a wrong name fails the PostgreSQL tests)
        index_elements=["reason", "reference"],  # pragma: no mutate
    )
    acc = None
    # pragma: without this test, session.get(Account, None) is None as well (it only warns)
    if inv.account_id:  # pragma: no mutate
        acc = await session.get(Account, inv.account_id)
    if added and acc is not None:
        await add_message(
            session,
            kind="refunded",
            platform=acc.platform,
            recipient=acc.platform_user_id,
            payload={
                "space_ids": spaces,
                "amount": canonical_units(units),
                "reason": reason,
                "unanswered": True,
            },
            dedupe_key=f"refunded:question:{inv.public_id}",
            origin_chat_id=inv.origin_chat_id,
        )
    return bool(added)
