"""Invoices: a quoted price for one thing, open → paid → credited, or expired (the moves:
:mod:`core.payments.states`).

Account credit (:mod:`core.payments.account_credit`) is applied when the invoice is made and
given back if it expires.
"""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.context import Context
from core.db import Invoice, PaymentReceipt, utcnow
from core.money import from_units
from core.payments import states
from core.payments.account_credit import add_credit, spend_credit
from core.results import DirectTransfer, Quote
from core.statuses import InvoiceStatus

KINDS = ("transcription", "chat_unlock", "chat_query")
_PUBLIC_ID_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def new_public_id() -> str:
    return secrets.token_urlsafe(18)  # 144 bits: unguessable


def valid_public_id(text: str) -> bool:
    return isinstance(text, str) and 16 <= len(text) <= 64 and set(text) <= _PUBLIC_ID_CHARS


def pay_url(ctx: Context, public_id: str) -> str:
    return f"{ctx.settings.web.public_url.rstrip('/')}/pay/{public_id}"


def chain_id(ctx: Context) -> int:
    return int(ctx.settings.payments.network.removeprefix("eip155:"))  # validated: eip155:<n>


def direct_transfer(ctx: Context, amount_units: int) -> DirectTransfer | None:
    p = ctx.settings.payments
    if not p.pay_to:
        return None
    cid = chain_id(ctx)
    uri = f"ethereum:{p.token_address}@{cid}/transfer?address={p.pay_to}&uint256={amount_units}"
    return DirectTransfer(p.pay_to, p.token_address, cid, amount_units, uri)


def due_units(inv: Invoice) -> int:
    """What is still to be paid on chain, after account credit."""
    return int(inv.amount_units) - int(inv.credit_units)


async def insert_invoice(
    session: AsyncSession,
    ctx: Context,
    *,
    kind: str,
    account_id: int | None,
    user_id: int | None,
    space_ids: list[str],
    amount_units: int,
    payload: dict[str, Any] | None = None,
    payer_address: str | None = None,
    origin_chat_id: str | None = None,
    partial_credit: bool = True,
) -> Invoice:
    if kind not in KINDS:
        raise ValueError(f"unknown invoice kind {kind!r}")
    if amount_units <= 0:
        raise ValueError("an invoice is for a positive amount")
    p = ctx.settings.payments
    now = utcnow()
    inv = Invoice(
        public_id=new_public_id(),
        kind=kind,
        account_id=account_id,
        user_id=user_id,
        space_ids=json.dumps(space_ids),
        payload=json.dumps(payload, sort_keys=True) if payload is not None else None,
        origin_chat_id=origin_chat_id,
        amount_units=amount_units,
        credit_units=0,
        network=p.network,
        token_address=p.token_address.lower(),
        pay_to=p.pay_to.lower(),
        status=InvoiceStatus.OPEN,
        payer_address=payer_address,
        created_at=now,
        expires_at=now + timedelta(seconds=p.invoice_ttl_seconds),
    )
    session.add(inv)
    await session.flush()
    if user_id is not None:
        # credit that pays only part leaves the rest to USDC: not where USDC is turned off
        use = await spend_credit(
            session, user_id, amount_units, f"invoice:{inv.public_id}", partial=partial_credit
        )
        if use:
            inv.credit_units = use
            await session.flush()
    return inv


def quote_for(ctx: Context, inv: Invoice) -> Quote:
    due = due_units(inv)
    return Quote(
        invoice_id=inv.public_id,
        kind=inv.kind,
        space_ids=json.loads(inv.space_ids),
        amount=from_units(due),
        pay_url=pay_url(ctx, inv.public_id),
        expires_at=inv.expires_at,
        direct=direct_transfer(ctx, due) if due > 0 else None,
        credit_applied=from_units(int(inv.credit_units)),
    )


async def get_invoice(session: AsyncSession, public_id: str) -> Invoice | None:
    if not valid_public_id(public_id):
        return None
    return (
        await session.execute(select(Invoice).where(Invoice.public_id == public_id))
    ).scalar_one_or_none()


async def discard_invoice(ctx: Context, public_id: str) -> None:
    """Drop an invoice made for one x402 request whose payment was refused: nobody else
    knows its id, so nothing may remain of a refused payment. An invoice that a receipt
    names (a settlement recovery will decide) or that reserved credit is kept."""
    async with ctx.db.session() as s:
        await states.discard_invoice(
            s,
            public_id,
            InvoiceStatus.OPEN,
            where=(
                Invoice.credit_units == 0,
                ~exists().where(PaymentReceipt.invoice_id == Invoice.id),
            ),
        )


async def expire_invoices(ctx: Context) -> int:
    """Scheduler job: open invoices past their expiry become expired; reserved credit returns.
    Returns how many this call expired."""
    now = utcnow()
    async with ctx.db.session() as s:
        rows = (
            (
                await s.execute(
                    select(Invoice)
                    .where(Invoice.status == InvoiceStatus.OPEN, Invoice.expires_at <= now)
                    .limit(500)
                )
            )
            .scalars()
            .all()
        )
        n = 0
        for inv in rows:
            expired = await states.move_invoice(
                s, inv.id, InvoiceStatus.OPEN, InvoiceStatus.EXPIRED
            )
            if not expired:
                continue  # paid (or expired by another process) since it was read
            n += 1
            if inv.credit_units and inv.user_id is not None:
                await add_credit(
                    s, inv.user_id, int(inv.credit_units), "released", f"invoice:{inv.public_id}"
                )
    return n
