"""Telegram Stars: the second way to pay an invoice (currency XTR, whole Stars).

The invoice is the same one a USDC quote opens; its public id travels in the Stars invoice's
``payload``. Telegram asks first (``pre_checkout_query``: :func:`pre_checkout` says yes only
if the invoice is still open, the price unchanged and the thing not owned), and tells after
(``successful_payment``): only then is anything granted (:func:`paid`), once per
``telegram_payment_charge_id`` (UNIQUE in ``star_payments``), through the same
:func:`~core.payments.credit.credit_invoice` and outbox messages as a USDC payment.

Stars go back as Stars: a payment that cannot be honoured (already paid, already owned, the
Space failed for good) is marked ``refund_due`` and a ``stars_refund`` outbox message asks the
Telegram adapter to call ``refundStarPayment`` (once: conditional updates and the outbox's
dedupe key; the adapter records the refund with :func:`mark_refunded`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import outbox
from core.accounts import buyer_for_account, find_account
from core.config import PriceSettings, Settings
from core.context import Context
from core.db import (
    Account,
    ChatUnlock,
    Invoice,
    Space,
    StarPayment,
    TranscriptionPayment,
    utcnow,
)
from core.db.upsert import insert_ignore
from core.payments.credit import credit_invoice
from core.payments.invoices import get_invoice
from core.results import Caller, Refused
from core.statuses import InvoiceStatus

CURRENCY = "XTR"
MAX_CHARGE_ID = 256

MESSAGES = {
    "stars_off": "Paying with Telegram Stars is turned off here; use the USDC button.",
    "unknown_invoice": "That is not an invoice of this bot; ask again for a price.",
    "not_yours": "This invoice was made for somebody else; ask for your own price.",
    "expired": "This invoice has expired; ask again (/transcribe, /unlock or /chat) for a new one.",
    "already_paid": "This invoice is already paid; nothing more to pay.",
    "credit_applied": "Your account credit is already applied to this invoice; pay the rest "
    "with USDC.",
    "price_changed": "The price changed since this invoice was sent; ask again for the new price.",
    "currency": "Only Telegram Stars (XTR) are accepted for this invoice.",
    "owned": "You already own this: nothing to pay (/myspaces lists your Spaces).",
}


def _refuse(code: str) -> Refused:
    return Refused(code, MESSAGES[code])


def stars_price(prices: PriceSettings, kind: str, n_spaces: int = 1) -> int:
    """The whole-Stars price of one purchase (``[prices.stars]``)."""
    p = prices.stars
    if kind == "transcription":
        return p.transcription
    if kind == "chat_unlock":
        return p.chat_unlock
    return p.chat_base + p.chat_per_space * n_spaces


def offers_stars(settings: Settings, credit_applied: bool) -> bool:
    """A quote offers Stars when the operator allows it and no USDC credit is reserved on
    it (Stars pay a whole price; a part paid from credit is paid with USDC)."""
    return settings.telegram.stars_enabled and not credit_applied


@dataclass(frozen=True)
class StarsOffer:
    """What ``sendInvoice`` sends: one price item of ``amount`` Stars."""

    invoice_id: str  # the payload
    title: str  # 1-32 characters
    description: str  # 1-255 characters
    label: str
    amount: int


@dataclass(frozen=True)
class StarsPaid:
    """What a ``successful_payment`` did: ``granted`` (newly credited), ``duplicate`` (this
    charge was seen before: nothing more), or ``refunded`` (refund queued, with why)."""

    outcome: str
    invoice_id: str | None
    reason: str | None = None


async def _problem(
    s: AsyncSession, ctx: Context, caller: Caller, inv: Invoice | None, *, expiry: bool = True
) -> Refused | None:
    """Why this caller may not pay ``inv`` in Stars now, if anything stands in the way."""
    if inv is None:
        return _refuse("unknown_invoice")
    acc = await find_account(s, caller)
    if acc is None or inv.account_id != acc.id:
        return _refuse("not_yours")
    if inv.status != InvoiceStatus.OPEN:
        paid = inv.status in (InvoiceStatus.PAID, InvoiceStatus.CREDITED)
        return _refuse("already_paid" if paid else "expired")
    if expiry and inv.expires_at <= utcnow():
        return _refuse("expired")
    if inv.credit_units:
        return _refuse("credit_applied")
    uid = inv.user_id or acc.user_id
    if uid is not None and inv.kind in ("transcription", "chat_unlock"):
        model = TranscriptionPayment if inv.kind == "transcription" else ChatUnlock
        owned = await s.scalar(
            select(
                exists()
                .where(model.user_id == uid, model.space_id == Space.id)
                .where(Space.space_id.in_(json.loads(inv.space_ids)))
            )
        )
        if owned:
            return _refuse("owned")
    return None


async def _payable(
    s: AsyncSession, ctx: Context, caller: Caller, public_id: str
) -> Invoice | Refused:
    """The caller's invoice ``public_id`` if it may be paid in Stars now, else why not."""
    inv = await get_invoice(s, public_id)  # None for a malformed id too
    problem = await _problem(s, ctx, caller, inv)
    if problem is not None:
        return problem
    assert inv is not None  # _problem refuses an unknown invoice
    return inv


def _price_of(ctx: Context, inv: Invoice) -> int:
    return stars_price(ctx.settings.prices, inv.kind, len(json.loads(inv.space_ids)))


async def offer(ctx: Context, caller: Caller, public_id: str) -> StarsOffer | Refused:
    """The Stars invoice for one of the caller's open invoices ("Pay with Stars")."""
    from core.service.notices import product

    if not ctx.settings.telegram.stars_enabled:
        return _refuse("stars_off")
    async with ctx.db.session() as s:
        inv = await _payable(s, ctx, caller, public_id)
        if isinstance(inv, Refused):
            return inv
        what = product(inv.kind)
        spaces = json.loads(inv.space_ids)
        title = (json.loads(inv.payload).get("title") if inv.payload else None) or ""
        about = f"X Space {', '.join(spaces)}" + (f" ({title})" if title else "")
        return StarsOffer(
            invoice_id=inv.public_id,
            title=what[:32],
            description=f"{what} of {about}"[:255],
            label=what[:32],
            amount=_price_of(ctx, inv),
        )


async def pre_checkout(
    ctx: Context, caller: Caller, payload: str, currency: str, total_amount: int
) -> Refused | None:
    """Telegram asks before charging: None means yes; a Refused's message is shown."""
    if not ctx.settings.telegram.stars_enabled:
        return _refuse("stars_off")
    if currency != CURRENCY:
        return _refuse("currency")
    async with ctx.db.session() as s:
        inv = await _payable(s, ctx, caller, payload)
        if isinstance(inv, Refused):
            return inv
        if total_amount != _price_of(ctx, inv):
            return _refuse("price_changed")
    return None


async def paid(
    ctx: Context,
    caller: Caller,
    *,
    payload: str,
    currency: str,
    total_amount: int,
    charge_id: str,
    provider_charge_id: str | None = None,
) -> StarsPaid:
    """A ``successful_payment``: record it once by its charge id and grant what the invoice
    buys, in one transaction; what cannot be honoured is refunded in Stars."""
    if not charge_id or len(charge_id) > MAX_CHARGE_ID:
        raise ValueError("a successful_payment carries a telegram_payment_charge_id")
    async with ctx.db.session() as s:
        inv = await get_invoice(s, payload)  # None for a malformed id too
        added = await insert_ignore(
            s,
            StarPayment,
            {
                "telegram_payment_charge_id": charge_id,
                "provider_payment_charge_id": provider_charge_id or None,
                "invoice_id": inv.id if inv is not None else None,
                "telegram_user_id": caller.platform_user_id,
                "currency": currency,
                "amount": int(total_amount),
                "status": "received",
                "created_at": utcnow(),
            },
            index_elements=["telegram_payment_charge_id"],  # pragma: no mutate (sole unique key)
        )
        if not added:
            return StarsPaid("duplicate", inv.public_id if inv else None)
        sp = (
            await s.execute(
                select(StarPayment).where(StarPayment.telegram_payment_charge_id == charge_id)
            )
        ).scalar_one()
        # approved at pre-checkout moments ago: the invoice's expiry no longer applies
        problem = await _problem(s, ctx, caller, inv, expiry=False)
        if problem is None and currency != CURRENCY:
            problem = _refuse("currency")
        if problem is None and inv is not None and total_amount != _price_of(ctx, inv):
            problem = _refuse("price_changed")
        if problem is not None:
            await _refund(s, sp, problem.message, caller.chat_id)
            return StarsPaid("refunded", inv.public_id if inv else None, problem.message)
        assert inv is not None  # _problem refuses an unknown invoice
        acc = await s.get(Account, inv.account_id)
        assert acc is not None  # _problem checked the invoice is this caller's
        if inv.user_id is None:
            inv.user_id = await buyer_for_account(s, acc)
            await s.flush()
        res = await credit_invoice(
            s, ctx, inv, payer=None, transaction_hash=None, receipt_id=None, stars=total_amount
        )
        if not res.newly_credited or res.to_credit_units:
            reason = MESSAGES["already_paid" if not res.newly_credited else "owned"]
            await _refund(s, sp, reason, caller.chat_id)
            return StarsPaid("refunded", inv.public_id, reason)
        await s.execute(  # inserted "received" by this very transaction
            update(StarPayment)
            .where(StarPayment.id == sp.id)
            .values(status="credited", credited_at=utcnow())
        )
        return StarsPaid("granted", inv.public_id)


async def _refund(
    s: AsyncSession, sp: StarPayment, reason: str, origin_chat_id: str | None = None
) -> bool:
    """received/credited → refund_due, once, with the outbox message that performs it."""
    moved = await s.execute(
        update(StarPayment)
        .where(StarPayment.id == sp.id, StarPayment.status.in_(("received", "credited")))
        .values(status="refund_due", refund_reason=reason[:500])
    )
    moved_rows = getattr(moved, "rowcount", 0)  # pragma: no mutate (an UPDATE always has rowcount)
    if not moved_rows:
        return False
    space_id = None
    if sp.invoice_id is not None:
        inv = await s.get(Invoice, sp.invoice_id)
        space_id = json.loads(inv.space_ids)[0] if inv is not None else None
    await outbox.add_message(
        s,
        kind="stars_refund",
        platform="telegram",
        recipient=sp.telegram_user_id,
        payload={
            "charge_id": sp.telegram_payment_charge_id,
            "stars": int(sp.amount),
            "reason": reason,
            **({"space_id": space_id} if space_id else {}),
        },
        dedupe_key=f"stars_refund:{sp.telegram_payment_charge_id}",
        origin_chat_id=origin_chat_id,
    )
    return True


async def refund_for_invoices(
    s: AsyncSession, invoice_pks: list[int], reason: str
) -> dict[int, int]:
    """Refund the credited Stars payments of these invoices (a failed Space, an unanswered
    question). Returns invoice pk → Stars refunded now (already refunded ones: not again)."""
    if not invoice_pks:
        return {}
    rows = await s.execute(
        select(StarPayment).where(
            StarPayment.invoice_id.in_(invoice_pks), StarPayment.status == "credited"
        )
    )
    out: dict[int, int] = {}
    for sp in rows.scalars().all():
        if await _refund(s, sp, reason) and sp.invoice_id is not None:
            out[int(sp.invoice_id)] = int(sp.amount)
    return out


async def stars_invoice_pks(s: AsyncSession, invoice_pks: list[int]) -> set[int]:
    """Which of these invoices were paid in Stars (granted or since refunded)."""
    if not invoice_pks:
        return set()
    rows = await s.execute(
        select(StarPayment.invoice_id).where(
            StarPayment.invoice_id.in_(invoice_pks), StarPayment.credited_at.is_not(None)
        )
    )
    return {int(i) for i in rows.scalars() if i is not None}


async def mark_refunded(ctx: Context, charge_id: str) -> None:
    """Telegram confirmed ``refundStarPayment`` (or says it was refunded already)."""
    async with ctx.db.session() as s:
        await s.execute(
            update(StarPayment)
            .where(
                StarPayment.telegram_payment_charge_id == charge_id,
                StarPayment.status == "refund_due",
            )
            .values(status="refunded", refunded_at=utcnow())
        )
