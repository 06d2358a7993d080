"""After settlement: confirm the transaction on chain, then credit; and the recovery job
that finishes every receipt a crash left between "settled" and "credited".

Receipt states: settling (claimed, maybe sent) → settled (tx hash known) → confirmed
(receipt status 1, the token's Transfer log from payer to pay-to for the amount, enough
confirmations) → credited. ``reverted`` / ``mismatch`` are kept for the operator.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.context import Context
from core.db import Invoice, PaymentReceipt
from core.logging import get_logger
from core.payments import states
from core.payments.credit import CreditResult, credit_invoice
from core.payments.onchain import (
    ChainReader,
    ChainUnavailable,
    TransferLog,
    reader_for_settings,
)
from core.payments.outcomes import MESSAGES, Paid, PaymentOutcome, PaymentPending
from core.results import Refused
from core.statuses import InvoiceStatus, ReceiptStatus

log = get_logger("spacescribe.payments")
_UNFINISHED = (ReceiptStatus.SETTLING, ReceiptStatus.SETTLED, ReceiptStatus.CONFIRMED)


def _refuse(code: str, invoice_id: str | None = None) -> Refused:
    return Refused(code, MESSAGES.get(code, code), invoice_id=invoice_id)


async def release_claim(ctx: Context, invoice_pk: int, receipt_id: int) -> None:
    """Nothing was settled: drop the claim so the payer may try again (same authorization)."""
    async with ctx.db.session() as s:
        if not await states.drop_receipt(s, receipt_id, ReceiptStatus.SETTLING):
            return  # the claim moved on meanwhile (settled: money may be on chain)
        await states.move_invoice(s, invoice_pk, InvoiceStatus.PAID, InvoiceStatus.OPEN)


def _matching_transfer(r: PaymentReceipt, transfers: list[TransferLog]) -> TransferLog | None:
    for t in transfers:
        if (
            t.token == r.token_address.lower()
            and t.sender == r.payer_address.lower()
            and t.recipient == r.pay_to.lower()
            and t.value == int(r.amount_units)
        ):
            return t
    return None


async def finish_receipt(ctx: Context, receipt_id: int, reader: ChainReader) -> PaymentOutcome:
    """settled → confirmed → credited, from what the chain says about its transaction."""
    async with ctx.db.session() as s:
        r = await s.get(PaymentReceipt, receipt_id)
        inv = await s.get(Invoice, r.invoice_id) if r and r.invoice_id else None
    if r is None or inv is None:
        return _refuse("unknown_invoice")
    if r.status == ReceiptStatus.CREDITED:
        return Paid(inv.public_id, inv.kind, r.transaction_hash, r.payer_address, already=True)
    if not r.transaction_hash:
        return PaymentPending(inv.public_id, None)
    try:
        check = await reader.check_transaction(r.transaction_hash)
    except ChainUnavailable:
        return PaymentPending(
            inv.public_id, r.transaction_hash, "rpc_unavailable", MESSAGES["confirm_unavailable"]
        )
    if check.status in ("pending", "unconfirmed", "not_found"):
        return PaymentPending(inv.public_id, r.transaction_hash)
    t = _matching_transfer(r, check.transfers) if check.status == "ok" else None
    if t is None:
        async with ctx.db.session() as s:
            await states.move_receipt(
                s,
                receipt_id,
                ReceiptStatus.SETTLED,
                ReceiptStatus.REVERTED if check.status == "reverted" else ReceiptStatus.MISMATCH,
            )
        log.error("settled payment not confirmed", invoice=inv.public_id, status=check.status)
        return _refuse("transfer_mismatch", inv.public_id)
    try:
        async with ctx.db.session() as s:
            await states.move_receipt(
                s,
                receipt_id,
                ReceiptStatus.SETTLED,
                ReceiptStatus.CONFIRMED,
                log_index=t.log_index,
                block_number=t.block_number,
            )
            res = await _credit(s, ctx, inv, r)
    except IntegrityError:  # (network, tx hash, log index) already credited elsewhere
        return _refuse("nonce_used", inv.public_id)
    return Paid(
        inv.public_id,
        inv.kind,
        r.transaction_hash,
        r.payer_address,
        res.granted,
        res.to_credit_units,
        already=not res.newly_credited,
    )


async def recover_payments(ctx: Context, reader: ChainReader | None = None) -> int:
    """Run at start and by the scheduler: finish every receipt left between settle and credit.

    ``settling`` receipts whose transaction hash was never recorded (a crash during settle)
    are found by the token's ``AuthorizationUsed`` log; if the authorization was never used
    and can no longer be (its validBefore passed), the claim is released.
    """
    reader = reader or reader_for_settings(ctx.settings.payments)
    async with ctx.db.session() as s:
        rows = (
            (
                await s.execute(
                    select(PaymentReceipt)
                    .where(PaymentReceipt.status.in_(_UNFINISHED))
                    .order_by(PaymentReceipt.id)
                    .limit(200)
                )
            )
            .scalars()
            .all()
        )
    done = 0
    for r in rows:
        try:
            if (
                r.status == ReceiptStatus.SETTLING
                and r.method == "x402"
                and not await _find_settlement(ctx, r, reader)
            ):
                continue
            if r.status == ReceiptStatus.CONFIRMED:
                await _credit_confirmed(ctx, r)
                done += 1
                continue
            outcome = await finish_receipt(ctx, r.id, reader)
            done += isinstance(outcome, Paid)
        except ChainUnavailable:
            log.warning("payment recovery: RPC unavailable; will retry")
            break
    return done


async def _find_settlement(ctx: Context, r: PaymentReceipt, reader: ChainReader) -> bool:
    head = await reader.block_number()
    tx = await reader.authorization_tx(
        r.payer_address, r.authorization_nonce or "", int(r.block_number or 0), head
    )
    if tx is not None:
        async with ctx.db.session() as s:
            await states.move_receipt(
                s, r.id, ReceiptStatus.SETTLING, ReceiptStatus.SETTLED, transaction_hash=tx
            )
        return True
    stored = json.loads(r.payload or "{}")
    auth = stored.get("payment", {}).get("payload", {}).get("authorization", {})
    valid_before = int(auth.get("validBefore", 0) or 0)
    expired = valid_before and datetime.fromtimestamp(valid_before) < datetime.now()
    if expired and r.invoice_id is not None:
        await release_claim(ctx, r.invoice_id, r.id)
    return False


async def _credit_confirmed(ctx: Context, r: PaymentReceipt) -> None:
    async with ctx.db.session() as s:
        inv = await s.get(Invoice, r.invoice_id) if r.invoice_id else None
        if inv is None:
            return
        await _credit(s, ctx, inv, r)


async def _credit(s: AsyncSession, ctx: Context, inv: Invoice, r: PaymentReceipt) -> CreditResult:
    """Credit ``inv`` for its confirmed receipt ``r`` (with the answer a fulfiller gave before
    settlement, kept in the receipt's payload), in the caller's transaction."""
    stored = json.loads(r.payload) if r.payload else {}
    return await credit_invoice(
        s,
        ctx,
        inv,
        payer=r.payer_address,
        transaction_hash=r.transaction_hash,
        receipt_id=r.id,
        fulfilment=stored.get("fulfilment"),
    )
