"""Invoices: a quoted price for one thing, open → paid → credited, or expired.

Account credit (the ``credits`` ledger) is applied when the invoice is made: the part it
covers is reserved by a "spent" row and given back by a "released" row if the invoice
expires. Both rows are idempotent by (reason, reference). Spending is serialised per user
(:func:`lock_credit`), so two purchases never both spend the same balance.
"""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.context import Context
from core.db import Credit, Invoice, PaymentReceipt, User, utcnow
from core.db.upsert import insert_ignore
from core.money import from_units
from core.results import Caller, DirectTransfer, Granted, Quote

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


async def credit_balance(session: AsyncSession, user_id: int) -> int:
    total = await session.scalar(
        select(func.sum(Credit.amount_units)).where(Credit.user_id == user_id)
    )
    return int(total or 0)  # no rows: NULL


async def lock_credit(session: AsyncSession, user_id: int) -> None:
    """Hold the user's credit until this transaction ends: read the balance after this and
    spend it before committing. PostgreSQL: a row lock on the user (``FOR NO KEY UPDATE``,
    which credit rows' foreign-key checks do not wait for); SQLite: every transaction
    already holds the database's write lock from its start (``BEGIN IMMEDIATE``)."""
    # pragma: no mutate block
    # (a lock only, its row unread: SQLite, the engine mutmut runs, has no row locks)
    await session.execute(select(User.id).where(User.id == user_id).with_for_update(key_share=True))


async def add_credit(
    session: AsyncSession, user_id: int, units: int, reason: str, reference: str
) -> bool:
    """One ledger row, at most once per (reason, reference). True if it was added."""
    return await insert_ignore(
        session,
        Credit,
        {
            "user_id": user_id,
            "amount_units": units,
            "reason": reason,
            "reference": reference,
            "created_at": utcnow(),
        },
        index_elements=["reason", "reference"],  # pragma: no mutate (sole unique key)
    )


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
        # the payload keeps its chat_id too, for compatibility; the column is what is read
        origin_chat_id=str(payload["chat_id"]) if payload and payload.get("chat_id") else None,
        amount_units=amount_units,
        credit_units=0,
        network=p.network,
        token_address=p.token_address.lower(),
        pay_to=p.pay_to.lower(),
        status="open",
        payer_address=payer_address,
        created_at=now,
        expires_at=now + timedelta(seconds=p.invoice_ttl_seconds),
    )
    session.add(inv)
    await session.flush()
    if user_id is not None:
        await lock_credit(session, user_id)
        balance = await credit_balance(session, user_id)
        use = min(balance, amount_units)
        # credit that pays only part leaves the rest to USDC: not where USDC is turned off
        if use > 0 and (partial_credit or use == amount_units):
            await add_credit(session, user_id, -use, "spent", f"invoice:{inv.public_id}")
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
        await s.execute(
            delete(Invoice).where(
                Invoice.public_id == public_id,
                Invoice.status == "open",
                Invoice.credit_units == 0,
                ~exists().where(PaymentReceipt.invoice_id == Invoice.id),
            )
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
                    .where(Invoice.status == "open", Invoice.expires_at <= now)
                    .limit(500)
                )
            )
            .scalars()
            .all()
        )
        n = 0
        for inv in rows:
            res = await s.execute(
                update(Invoice)
                .where(Invoice.id == inv.id, Invoice.status == "open")
                .values(status="expired")
            )
            expired = getattr(res, "rowcount", 0)  # pragma: no mutate (UPDATE has rowcount)
            if not expired:
                continue  # paid (or expired by another process) since it was read
            n += 1
            if inv.credit_units and inv.user_id is not None:
                await add_credit(
                    s, inv.user_id, int(inv.credit_units), "released", f"invoice:{inv.public_id}"
                )
    return n


async def create_invoice(
    session: AsyncSession,
    ctx: Context,
    *,
    caller: Caller | None,
    user_id: int | None,
    kind: str,
    space_ids: list[str],
    amount_units: int,
    payload: dict[str, Any] | None = None,
    payer_address: str | None = None,
) -> Quote | Granted:
    """An open invoice for the caller (or an x402 payer), after account credit.

    When account credit covers the whole price, the purchase is credited at once in this
    same transaction and :class:`Granted` is returned instead of a quote.
    """
    from core.accounts import get_or_create_account
    from core.payments.credit import credit_invoice

    account_id = None
    if caller is not None:
        acc = await get_or_create_account(session, caller)
        account_id = acc.id
        if user_id is None:
            user_id = acc.user_id
        origin = dict(caller.back)
        if caller.chat_id:
            origin["chat_id"] = caller.chat_id
        if origin:
            payload = {**origin, **(payload or {})}
    inv = await insert_invoice(
        session,
        ctx,
        kind=kind,
        account_id=account_id,
        user_id=user_id,
        space_ids=space_ids,
        amount_units=amount_units,
        payload=payload,
        payer_address=payer_address,
        partial_credit=not (
            caller is not None
            and caller.platform == "telegram"
            and not ctx.settings.telegram.usdc_enabled
        ),
    )
    if due_units(inv) == 0:
        res = await credit_invoice(
            session, ctx, inv, payer=None, transaction_hash=None, receipt_id=None
        )
        return Granted(kind=kind, space_ids=res.granted or space_ids, invoice_pk=inv.id)
    return quote_for(ctx, inv)
