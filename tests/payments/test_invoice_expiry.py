"""Issue 14: ``expire_invoices`` counts only the invoices it expired, and money that arrives
for an invoice already credited becomes the paying wallet's credit (never a user without a
wallet). Both engines."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, event, func, select, update

from core.context import Context
from core.db import Credit, Invoice, PaymentReceipt, User, utcnow
from core.payments import expire_invoices
from core.payments.account_credit import add_credit, credit_balance
from core.payments.credit import credit_invoice
from core.payments.invoices import insert_invoice

WALLET = "0x" + "5a" * 20


async def _invoice(ctx: Context, user_id: int | None = None, space: str = "1RDxlAoOeQRKL") -> str:
    async with ctx.db.session() as s:
        inv = await insert_invoice(
            s,
            ctx,
            kind="transcription",
            account_id=None,
            user_id=user_id,
            space_ids=[space],
            amount_units=200_000,
        )
        return inv.public_id


async def _confirmed_receipt(ctx: Context, tx_byte: str) -> int:
    """A confirmed 0.2-USDC transfer from WALLET for the (one) invoice, not yet credited."""
    async with ctx.db.session() as s:
        inv = (await s.execute(select(Invoice))).scalar_one()
        receipt = PaymentReceipt(
            invoice_id=inv.id,
            method="transfer",
            network=inv.network,
            token_address=inv.token_address,
            payer_address=WALLET,
            pay_to=inv.pay_to,
            amount_units=200_000,
            transaction_hash="0x" + tx_byte * 32,
            log_index=0,
            status="confirmed",
            created_at=utcnow(),
        )
        s.add(receipt)
        await s.flush()
        return int(receipt.id)


async def test_an_invoice_paid_while_expiring_is_not_counted(ctx: Context) -> None:
    late = await _invoice(ctx)
    fresh = await _invoice(ctx, space="1YqJDqWqbNVGV")
    async with ctx.db.session() as s:
        await s.execute(
            update(Invoice)
            .where(Invoice.public_id == late)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    fired: list[str] = []

    def paid_meanwhile(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        """The invoice is credited between expiry's read and its conditional update."""
        if fired or not statement.lstrip().upper().startswith("UPDATE INVOICES SET STATUS"):
            return
        fired.append(statement)
        conn.execute(update(Invoice).where(Invoice.public_id == late).values(status="credited"))

    event.listen(ctx.db.engine.sync_engine, "before_cursor_execute", paid_meanwhile)
    try:
        n = await expire_invoices(ctx)
    finally:
        event.remove(ctx.db.engine.sync_engine, "before_cursor_execute", paid_meanwhile)
    assert fired, "the expiry never tried to expire the late invoice"
    async with ctx.db.session() as s:
        rows = dict((await s.execute(select(Invoice.public_id, Invoice.status))).tuples().all())
    assert rows == {late: "credited", fresh: "open"}
    assert n == 0, f"expire_invoices said {n} expired; none was"


async def test_money_for_an_invoice_already_credited_is_the_payers_credit(ctx: Context) -> None:
    public_id = await _invoice(ctx)
    async with ctx.db.session() as s:
        inv = (await s.execute(select(Invoice))).scalar_one()
        await credit_invoice(s, ctx, inv, payer=WALLET, transaction_hash=None, receipt_id=None)
    rid = await _confirmed_receipt(ctx, "77")
    async with ctx.db.session() as s:
        inv = (await s.execute(select(Invoice))).scalar_one()
        # a caller that does not know the payer: the receipt names it
        res = await credit_invoice(s, ctx, inv, payer=None, transaction_hash=None, receipt_id=rid)
    assert res.to_credit_units == 200_000 and not res.newly_credited
    async with ctx.db.session() as s:
        users = (await s.execute(select(User.wallet_address))).scalars().all()
        uid = await s.scalar(select(User.id).where(User.wallet_address == WALLET))
        assert users == [WALLET] and uid is not None
        assert await credit_balance(s, uid) == 200_000
        assert await s.scalar(select(func.count()).select_from(Credit)) == 1
        assert public_id == inv.public_id


async def test_money_for_a_credited_invoice_never_falls_back_to_an_empty_wallet(
    ctx: Context,
) -> None:
    """Defect 5: the overpaid path fell back to the wallet ``""`` when it could not read the
    receipt. The receipt is removed between its own update and that read (the injected fault);
    the crediting must stop naming the receipt, and leave no user and no credit behind."""
    await _invoice(ctx)
    async with ctx.db.session() as s:
        inv = (await s.execute(select(Invoice))).scalar_one()
        await credit_invoice(s, ctx, inv, payer=WALLET, transaction_hash=None, receipt_id=None)
        await s.execute(delete(User))  # the payer is unknown again: nothing to fall back on
    rid = await _confirmed_receipt(ctx, "78")
    fired: list[str] = []

    def receipt_gone(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if fired or not statement.lstrip().upper().startswith("UPDATE INVOICES SET STATUS"):
            return
        fired.append(statement)
        conn.execute(delete(PaymentReceipt).where(PaymentReceipt.id == rid))

    event.listen(ctx.db.engine.sync_engine, "before_cursor_execute", receipt_gone)
    try:
        with pytest.raises(LookupError, match=f"receipt {rid}"):
            async with ctx.db.session() as s:
                inv = (await s.execute(select(Invoice))).scalar_one()
                await credit_invoice(s, ctx, inv, payer=None, transaction_hash=None, receipt_id=rid)
    finally:
        event.remove(ctx.db.engine.sync_engine, "before_cursor_execute", receipt_gone)
    assert fired, "the crediting never reached the invoice update"
    async with ctx.db.session() as s:
        assert (await s.execute(select(User.wallet_address))).scalars().all() == []
        assert await s.scalar(select(func.count()).select_from(Credit)) == 0
        # the failed crediting rolled back: the receipt is still there, confirmed, to retry
        assert await s.scalar(select(PaymentReceipt.status).where(PaymentReceipt.id == rid)) == (
            "confirmed"
        )


async def test_expired_invoice_returns_its_reserved_credit_once(ctx: Context) -> None:
    async with ctx.db.session() as s:
        s.add(User(wallet_address=WALLET))
    async with ctx.db.session() as s:
        uid = int(await s.scalar(select(User.id)) or 0)
        await add_credit(s, uid, 50_000, "refund", "test:1")
    await _invoice(ctx, user_id=uid)
    async with ctx.db.session() as s:
        assert await credit_balance(s, uid) == 0
        await s.execute(update(Invoice).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert await expire_invoices(ctx) == 1
    assert await expire_invoices(ctx) == 0
    async with ctx.db.session() as s:
        assert await credit_balance(s, uid) == 50_000
