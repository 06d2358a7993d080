"""Crediting a paid invoice: everything in ONE transaction, at most once.

The guards are database constraints and conditional updates, never check-then-insert:
- the receipt moves ``confirmed → credited`` by one conditional UPDATE (one winner);
- grant rows carry ``invoice_id UNIQUE`` and the seed's UNIQUE (user_id, space_id);
- account credit rows are UNIQUE by (reason, reference).
A second payment for something already owned becomes account credit, never lost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import outbox, queue
from core.accounts import get_or_create_user
from core.context import Context
from core.db import (
    Account,
    ChatSession,
    ChatUnlock,
    Invoice,
    PaymentReceipt,
    ProcessingJob,
    Space,
    TranscriptionPayment,
    User,
    utcnow,
)
from core.db.upsert import insert_ignore
from core.money import canonical_units
from core.payments import states
from core.payments.account_credit import add_credit
from core.payments.fulfil import FulfilRequest
from core.spaces import canonical_url
from core.statuses import InvoiceStatus, ReceiptStatus


@dataclass(frozen=True)
class CreditResult:
    invoice_id: str
    kind: str
    user_id: int
    granted: list[str]  # Space ids newly granted
    to_credit_units: int  # paid for something already owned → account credit
    newly_credited: bool  # False: this invoice had already been credited


def fulfil_request(inv: Invoice, payer: str | None) -> FulfilRequest:
    return FulfilRequest(
        invoice_pk=inv.id,
        invoice_id=inv.public_id,
        kind=inv.kind,
        space_ids=json.loads(inv.space_ids),
        payload=json.loads(inv.payload) if inv.payload else {},
        payer=payer,
        amount_units=int(inv.amount_units),
    )


def _started_at(raw: object) -> datetime | None:
    try:
        return datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


async def _space_row(session: AsyncSession, space_id: str, payload: dict[str, Any]) -> Space:
    """The Space's row, created with what the check before payment learnt (title, creator,
    start, duration): a Space we hold is later sold from this row, without asking X."""
    title = payload.get("title")
    creator = payload.get("creator")
    duration = payload.get("duration_seconds")
    await insert_ignore(
        session,
        Space,
        {
            "space_id": space_id,
            "space_url": canonical_url(space_id),
            "title": str(title) if title else f"X Space {space_id}",
            "creator": str(creator) if creator else None,
            "space_started_at": _started_at(payload.get("started_at")),
            "audio_duration_seconds": duration if isinstance(duration, int) else None,
            "status": "pending",
            "first_requested_at": utcnow(),
            "transcription_count": 0,
            "chat_unlock_count": 0,
        },
        index_elements=["space_id"],  # pragma: no mutate (sole unique key)
    )
    # Row locks order this purchase with a job completing the Space: either the completion
    # sees this payment (and notifies this payer), or this sees "completed". Workers lock
    # the job, then the Space (claim, completion, failure); so do we, or the two deadlock.
    # pragma: no mutate start
    # (a lock only, its rows unread: SQLite, the engine mutmut runs, ignores FOR UPDATE; the
    # PostgreSQL race tests in tests/test_enqueue_and_outbox.py cover it)
    await session.execute(
        select(ProcessingJob.id)
        .join(Space, Space.id == ProcessingJob.space_id)
        .where(Space.space_id == space_id, ProcessingJob.status.in_(("queued", "processing")))
        .with_for_update(of=ProcessingJob)
    )
    # pragma: no mutate end
    locked = (
        select(Space)
        .where(Space.space_id == space_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(locked)).scalar_one()


async def _regrant(
    session: AsyncSession,
    inv: Invoice,
    user_id: int,
    space_pk: int,
    amount: str,
    transaction_hash: str | None,
    now: datetime,
) -> bool:
    """A payment the user was refunded for (the Space failed) no longer grants; buying the
    Space again turns that row back into a grant for this invoice (the seed's UNIQUE
    (user_id, space_id) keeps one row per user and Space)."""
    moved = await session.execute(
        update(TranscriptionPayment)
        .where(
            TranscriptionPayment.user_id == user_id,
            TranscriptionPayment.space_id == space_pk,
            TranscriptionPayment.refunded_at.is_not(None),
        )
        .values(
            amount_usdc=amount,
            transaction_hash=transaction_hash,
            payment_verified=True,
            paid_at=now,
            verified_at=now,
            invoice_id=inv.id,
            refunded_at=None,
        )
    )
    return bool(getattr(moved, "rowcount", 0))  # pragma: no mutate (an UPDATE always has rowcount)


async def _buyer(session: AsyncSession, inv: Invoice, payer: str | None) -> int:
    """Purchases follow the account that asked (its linked wallet); otherwise the payer,
    whose wallet becomes the account's link (paying links the wallet)."""
    if inv.user_id is not None:
        return int(inv.user_id)
    acc = await session.get(Account, inv.account_id) if inv.account_id is not None else None
    if acc is not None and acc.user_id is not None:
        return int(acc.user_id)
    if payer is None:
        raise ValueError("an invoice without a buyer cannot be credited without a payer")
    user = await get_or_create_user(session, payer)
    if acc is not None:
        await session.execute(
            update(Account)
            .where(Account.id == acc.id, Account.user_id.is_(None))
            .values(user_id=user.id, linked_at=utcnow())
        )
    return int(user.id)


async def _notify(
    session: AsyncSession, inv: Invoice, kind: str, space: Space | None, extra: dict[str, object]
) -> None:
    if inv.account_id is None:
        return  # x402 API buyers get their answer in the HTTP response
    acc = await session.get(Account, inv.account_id)
    if acc is None:
        return
    await outbox.add_message(
        session,
        kind=kind,
        platform=acc.platform,
        recipient=acc.platform_user_id,
        payload={"invoice_id": inv.public_id, "kind": inv.kind, **extra},
        dedupe_key=f"{kind}:{inv.public_id}" + (f":{space.space_id}" if space else ""),
        origin_chat_id=inv.origin_chat_id,
        space_pk=space.id if space else None,
    )


async def credit_invoice(
    session: AsyncSession,
    ctx: Context,
    inv: Invoice,
    *,
    payer: str | None,
    transaction_hash: str | None,
    receipt_id: int | None,
    fulfilment: dict[str, object] | None = None,
    stars: int | None = None,
) -> CreditResult:
    """Grant what ``inv`` buys. Call inside the caller's transaction; idempotent.

    ``stars``: the invoice was paid in Telegram Stars (that many, currency XTR) rather than
    USDC: the grant rows record 0 USDC (the seed's ``amount_usdc`` holds USDC only), the
    confirmation names the Stars, and a part already owned is left to the caller to refund
    in Stars (``to_credit_units``) instead of becoming USDC account credit."""
    now = utcnow()
    if receipt_id is not None and not await _win_receipt(session, receipt_id, now):
        return _not_credited(inv)
    if not await _mark_credited(session, inv, payer, transaction_hash, now):
        if receipt_id is None:
            return _not_credited(inv)
        return await _overpaid(session, inv, receipt_id)
    user_id = await _settle_buyer(session, inv, payer, now)
    paid = _paid_fields(inv, stars)
    if inv.kind == "chat_query":
        await _grant_answer(session, ctx, inv, user_id, payer, transaction_hash, fulfilment)
        await _notify(
            session,
            inv,
            "payment_confirmed",
            None,
            {"space_ids": json.loads(inv.space_ids), **paid},
        )
        return CreditResult(inv.public_id, inv.kind, user_id, [], 0, True)
    granted, owned_already = await _grant_spaces(
        session, ctx, inv, user_id, str(paid["amount"]), transaction_hash, now
    )
    # the share of what was already owned returns as credit: all of the payment (and of the
    # reserved credit) when everything was owned
    to_credit = int(inv.amount_units) * owned_already // len(json.loads(inv.space_ids))
    if to_credit and stars is None:
        await add_credit(session, user_id, to_credit, "overpaid", f"invoice:{inv.public_id}")
    # one confirmation per invoice; "credit" tells what became account credit instead
    await _notify(
        session,
        inv,
        "payment_confirmed",
        None,
        {
            "space_ids": granted,
            **paid,
            "transaction_hash": transaction_hash,
            **({"credit": canonical_units(to_credit)} if to_credit and stars is None else {}),
        },
    )
    return CreditResult(inv.public_id, inv.kind, user_id, granted, to_credit, True)


def _not_credited(inv: Invoice) -> CreditResult:
    return CreditResult(inv.public_id, inv.kind, inv.user_id or 0, [], 0, False)


async def _win_receipt(session: AsyncSession, receipt_id: int, now: datetime) -> bool:
    """confirmed → credited: True for the one caller that moved it."""
    return await states.move_receipt(
        session, receipt_id, ReceiptStatus.CONFIRMED, ReceiptStatus.CREDITED, credited_at=now
    )


async def _mark_credited(
    session: AsyncSession,
    inv: Invoice,
    payer: str | None,
    transaction_hash: str | None,
    now: datetime,
) -> bool:
    """open/paid → credited: False if it was credited (or expired) before."""
    return await states.move_invoice(
        session,
        inv.id,
        (InvoiceStatus.OPEN, InvoiceStatus.PAID),
        InvoiceStatus.CREDITED,
        paid_at=now,
        credited_at=now,
        payer_address=payer,
        transaction_hash=transaction_hash,
    )


async def _overpaid(session: AsyncSession, inv: Invoice, receipt_id: int) -> CreditResult:
    """Money arrived for an invoice already credited: it becomes the payer's credit. The
    receipt (just moved to credited) names the wallet that paid; there is no fallback: a
    user is never made without a wallet address."""
    receipt = await session.get(PaymentReceipt, receipt_id)
    if receipt is None:
        raise LookupError(f"payment receipt {receipt_id} vanished while being credited")
    units = int(receipt.amount_units)
    user = await get_or_create_user(session, receipt.payer_address)
    await add_credit(session, user.id, units, "overpaid", f"receipt:{receipt_id}")
    return CreditResult(inv.public_id, inv.kind, int(user.id), [], units, False)


async def _settle_buyer(
    session: AsyncSession, inv: Invoice, payer: str | None, now: datetime
) -> int:
    """The invoice's buyer, recorded on it and seen now."""
    user_id = await _buyer(session, inv, payer)
    await session.execute(update(Invoice).where(Invoice.id == inv.id).values(user_id=user_id))
    await session.execute(update(User).where(User.id == user_id).values(last_seen_at=now))
    return user_id


def _paid_fields(inv: Invoice, stars: int | None) -> dict[str, object]:
    """What the confirmation says was paid: the USDC amount (0 for Stars), and the Stars."""
    amount = canonical_units(0 if stars is not None else int(inv.amount_units))
    paid: dict[str, object] = {"amount": amount}
    if stars is not None:
        paid.update(currency="XTR", stars=stars)
    return paid


async def _grant_answer(
    session: AsyncSession,
    ctx: Context,
    inv: Invoice,
    user_id: int,
    payer: str | None,
    transaction_hash: str | None,
    fulfilment: dict[str, object] | None,
) -> None:
    """A paid question: its answer recorded (given before settlement) or owed."""
    f = ctx.wiring.fulfiller_for("chat_query")
    if f is not None and fulfilment is not None:
        await f.record(
            session,
            ctx,
            fulfil_request(inv, payer),
            dict(fulfilment),
            user_id,
            transaction_hash,
        )
    elif f is not None:  # paid, not yet answered: the answer is owed, not lost
        await f.owed(session, ctx, fulfil_request(inv, payer), user_id)
    await session.execute(
        update(ChatSession)
        .where(ChatSession.invoice_id == inv.id)
        .values(transaction_hash=transaction_hash)
    )


async def _grant_spaces(
    session: AsyncSession,
    ctx: Context,
    inv: Invoice,
    user_id: int,
    amount: str,
    transaction_hash: str | None,
    now: datetime,
) -> tuple[list[str], int]:
    """Each Space of a transcription or an unlock: the Space ids granted, and how many the
    user owned already."""
    payload = json.loads(inv.payload) if inv.payload else {}
    granted: list[str] = []
    owned_already = 0
    for sid in json.loads(inv.space_ids):
        if await _grant_space(
            session, ctx, inv, sid, payload, user_id, amount, transaction_hash, now
        ):
            granted.append(sid)
        else:
            owned_already += 1
    return granted, owned_already


async def _grant_space(
    session: AsyncSession,
    ctx: Context,
    inv: Invoice,
    sid: str,
    payload: dict[str, Any],
    user_id: int,
    amount: str,
    transaction_hash: str | None,
    now: datetime,
) -> bool:
    """One Space granted (counted, queued if it needs recording, the buyer told if its
    transcript is ready); False if the user owned it already."""
    model = TranscriptionPayment if inv.kind == "transcription" else ChatUnlock
    stamp = "paid_at" if inv.kind == "transcription" else "unlocked_at"
    counter = "transcription_count" if inv.kind == "transcription" else "chat_unlock_count"
    space = await _space_row(session, sid, payload)
    # the only key that can conflict (grants are made for one-Space invoices, credited
    # once: the UNIQUE invoice_id never does); SQLite matches its names in any case
    added = await insert_ignore(
        session,
        model,
        {
            "user_id": user_id,
            "space_id": space.id,
            "amount_usdc": amount,
            "transaction_hash": transaction_hash,
            "payment_verified": True,
            stamp: now,
            "verified_at": now,
            "invoice_id": inv.id,
        },
        index_elements=["user_id", "space_id"],  # pragma: no mutate (see above)
    )
    if not added and inv.kind == "transcription":
        added = await _regrant(session, inv, user_id, space.id, amount, transaction_hash, now)
    if not added:
        return False
    await session.execute(
        update(Space).where(Space.id == space.id).values({counter: getattr(Space, counter) + 1})
    )
    if inv.kind == "transcription" and space.status == "failed":  # asked again
        await session.execute(
            update(Space)
            .where(Space.id == space.id, Space.status == "failed")
            .values(status="pending", error_message=None)
        )
    if inv.kind == "transcription" and space.status not in ("completed", "processing"):
        await queue.enqueue(session, space.id, max_retries=ctx.settings.queue.max_retries)
    if inv.kind == "transcription" and space.status == "completed":
        await _notify(session, inv, "transcript_ready", space, {"space_id": sid})
    return True
