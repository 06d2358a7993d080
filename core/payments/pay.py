"""Paying an invoice with an x402 "exact" payload: verify → (fulfil) → settle → confirm → credit.

The one entry point both the pay page and the HTTP API use is :func:`pay_invoice`.
``payment_payload`` is an x402 v2 PaymentPayload (object or its JSON dict)::

    {"x402Version": 2,
     "accepted": <invoice_requirements(...) as JSON, by alias>,
     "payload": {"signature": "0x…65 bytes",
                 "authorization": {"from", "to", "value", "validAfter", "validBefore",
                                   "nonce"}}}   # strings; the EIP-3009 message signed
                                                 # with eth_signTypedData_v4 under the
                                                 # token's domain (name/version in
                                                 # accepted.extra, chainId, token)
Claiming is a database act: the invoice moves ``open → paid`` by a conditional UPDATE and
the receipt row (UNIQUE by network, token, payer, authorization nonce) is written in the
same transaction, before anything is settled. So concurrent submissions settle once, and a
crash after settlement leaves a receipt that :func:`recover_payments` finishes.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update
from x402.mechanisms.evm.constants import ERR_SETTLEMENT_PENDING, ERR_TRANSACTION_FAILED
from x402.schemas import PaymentPayload, PaymentRequirements

from core import metrics
from core.context import Context
from core.db import Account, Invoice, PaymentReceipt, utcnow
from core.db.upsert import insert_ignore
from core.logging import get_logger
from core.payments import eip3009, states
from core.payments.confirm import finish_receipt, recover_payments, release_claim
from core.payments.credit import fulfil_request
from core.payments.gateway import GatewayUnavailable, PaymentGateway, SettleResult, gateway_for
from core.payments.invoices import due_units, get_invoice
from core.payments.onchain import (
    ChainReader,
    ChainUnavailable,
    reader_for_settings,
)
from core.payments.outcomes import (
    MESSAGES,
    Paid,
    PaymentOutcome,
    PaymentPending,
    reason_message,
)
from core.results import Refused
from core.statuses import InvoiceStatus, ReceiptStatus

log = get_logger("spacescribe.payments")


def _refuse(code: str, invoice_id: str | None = None, **kw: Any) -> Refused:
    return Refused(code, MESSAGES.get(code, code), invoice_id=invoice_id, **kw)


def parse_payload(raw: Any) -> PaymentPayload | str:
    """The x402 v2 "exact" payload, or why it cannot be read (checked before any chain call:
    a float, signed or exponent amount, a short nonce or signature never reaches verify)."""
    if isinstance(raw, PaymentPayload):
        p = raw
    else:
        try:
            p = PaymentPayload.model_validate(raw)
        except (ValidationError, ValueError, TypeError):
            return "it is not an x402 payment payload"
    if p.x402_version != 2:
        return "only x402 version 2 is accepted"
    inner = p.payload  # a dict: the model validates it
    problem = eip3009.authorization_problem(inner.get("authorization"), inner.get("signature"))
    return problem if problem else p


def unreadable(problem: str, invoice_id: str | None = None) -> Refused:
    """``invalid_payload``, saying what is wrong with it."""
    return Refused(
        "invalid_payload", f"The payment could not be read: {problem}.", invoice_id=invoice_id
    )


def _accepted_mismatch(payload: PaymentPayload, reqs: PaymentRequirements) -> str | None:
    """Which of the invoice's terms the payer's ``accepted`` block names differently."""
    a = payload.accepted
    if a.scheme != reqs.scheme:
        return "unsupported_scheme"
    if a.network != reqs.network:
        return "network_mismatch"
    if a.asset.lower() != reqs.asset.lower():
        return "asset_mismatch"
    if a.pay_to.lower() != reqs.pay_to.lower():
        return "invalid_exact_evm_payload_recipient_mismatch"
    if str(a.amount) != str(reqs.amount):
        return "invalid_exact_evm_payload_authorization_value_mismatch"
    return None


def _unsure(public_id: str) -> PaymentPending:
    return PaymentPending(public_id, None, "settlement_unknown", MESSAGES["settlement_unknown"])


def _transient(exc: BaseException) -> bool:
    name = type(exc).__name__
    return isinstance(exc, (OSError, TimeoutError)) or "Connection" in name or "Timeout" in name


async def usdc_turned_off(ctx: Context, inv: Invoice) -> bool:
    """The operator turned USDC off on Telegram (``telegram.usdc_enabled = false``) and this
    invoice was quoted there: its pay page takes no USDC (a quote sent before the switch)."""
    if ctx.settings.telegram.usdc_enabled or inv.account_id is None:
        return False
    async with ctx.db.read() as s:
        platform = await s.scalar(select(Account.platform).where(Account.id == inv.account_id))
    return platform == "telegram"


def reader_for(ctx: Context) -> ChainReader:
    return reader_for_settings(ctx.settings.payments)


async def invoice_requirements(ctx: Context, public_id: str) -> PaymentRequirements | Refused:
    """What a wallet must sign for this invoice (the pay page builds its EIP-712 request
    from it; the same object the x402 API sends in PAYMENT-REQUIRED)."""
    async with ctx.db.session() as s:
        inv = await get_invoice(s, public_id)
    if inv is None:
        return _refuse("unknown_invoice")
    if inv.status == InvoiceStatus.CREDITED:
        return _refuse("already_paid", public_id)
    if inv.status == InvoiceStatus.PAID:  # another submission is being settled: not "expired"
        return _refuse("payment_in_progress", public_id)
    if inv.status != InvoiceStatus.OPEN or inv.expires_at <= utcnow():
        return _refuse("invoice_expired", public_id)
    if await usdc_turned_off(ctx, inv):
        return _refuse("usdc_off", public_id)
    try:
        return gateway_for(ctx.settings.payments, ctx.secrets).requirements(due_units(inv))
    except GatewayUnavailable:
        return _refuse("payments_unavailable", public_id)
    except Exception as exc:
        log.warning("x402 facilitator unavailable", error=type(exc).__name__)
        return _refuse("rpc_unavailable", public_id, retry_later=True)


async def pay_invoice(
    ctx: Context,
    public_id: str,
    payment_payload: Any,
    *,
    gateway: PaymentGateway | None = None,
    reader: ChainReader | None = None,
) -> PaymentOutcome:
    """Verify, settle, confirm and credit one x402 payment; counted in /metrics by outcome."""
    outcome = await _pay_invoice(ctx, public_id, payment_payload, gateway=gateway, reader=reader)
    if isinstance(outcome, Refused):
        metrics.payment("rejected", outcome.code)
    else:
        metrics.payment("verified", type(outcome).__name__.lower())
    return outcome


async def _pay_invoice(
    ctx: Context,
    public_id: str,
    payment_payload: Any,
    *,
    gateway: PaymentGateway | None = None,
    reader: ChainReader | None = None,
) -> PaymentOutcome:
    payload = parse_payload(payment_payload)
    if isinstance(payload, str):
        return unreadable(payload, public_id)
    nonce = str(payload.payload["authorization"]["nonce"]).lower()
    inv = await _payable_invoice(ctx, public_id, nonce)
    if not isinstance(inv, Invoice):
        return inv
    terms = _terms(ctx, inv, gateway)
    if isinstance(terms, Refused):
        return terms
    gw, reqs = terms
    reader = reader or reader_for(ctx)
    start_block = await _start_block(reader, public_id)
    if not isinstance(start_block, int):
        return start_block
    payer = await _verify(ctx, gw, payload, reqs, public_id, nonce)
    if not isinstance(payer, str):
        return payer
    claim = await _claim(ctx, inv, payload, payer, nonce, start_block)
    if not isinstance(claim, int):
        return claim
    receipt_id = claim
    result = await _fulfil(ctx, inv, payload, payer, receipt_id)
    if isinstance(result, Refused):
        return result
    settled = await _settle(ctx, gw, payload, reqs, inv, receipt_id)
    if not isinstance(settled, SettleResult):
        return settled
    tx = (settled.transaction or "").lower()  # _settle returns only a result with a hash
    await _record_hash(ctx, receipt_id, tx)
    outcome = await finish_receipt(ctx, receipt_id, reader)
    if isinstance(outcome, Paid):
        raw = settled.raw if settled.ok else None
        return Paid(**{**outcome.__dict__, "settlement": raw, "result": result})
    return outcome


async def _payable_invoice(ctx: Context, public_id: str, nonce: str) -> Invoice | PaymentOutcome:
    """The invoice, if it can be paid now; else the answer (a repeat of the winning
    submission answers like the winner)."""
    async with ctx.db.session() as s:
        inv = await get_invoice(s, public_id)
    if inv is None:
        return _refuse("unknown_invoice")
    if inv.status == InvoiceStatus.CREDITED:
        return await _repeat(ctx, inv, nonce)
    if inv.status == InvoiceStatus.PAID:
        return _refuse("payment_in_progress", public_id)
    if inv.status != InvoiceStatus.OPEN or inv.expires_at <= utcnow():
        return _refuse("invoice_expired", public_id)
    if await usdc_turned_off(ctx, inv):
        return _refuse("usdc_off", public_id)
    return inv


def _terms(
    ctx: Context, inv: Invoice, gateway: PaymentGateway | None
) -> tuple[PaymentGateway, PaymentRequirements] | Refused:
    """The gateway and what the payer must have signed for this invoice."""
    try:
        gw = gateway or gateway_for(ctx.settings.payments, ctx.secrets)
        return gw, gw.requirements(due_units(inv))
    except GatewayUnavailable:
        log.error("payments are not configured (relayer key / facilitator URL / pay_to)")
        return _refuse("payments_unavailable", inv.public_id)
    except Exception as exc:  # the facilitator could not be set up or reached
        log.warning("x402 facilitator unavailable", error=type(exc).__name__)
        return _refuse("rpc_unavailable", inv.public_id, retry_later=True)


async def _start_block(reader: ChainReader, public_id: str) -> int | Refused:
    """The chain's head before settling: where recovery looks for the authorization."""
    try:  # an unreachable node must read as "try later", not as a bad signature
        return await reader.block_number()
    except ChainUnavailable:
        return _refuse("rpc_unavailable", public_id, retry_later=True)


async def _verify(
    ctx: Context,
    gw: PaymentGateway,
    payload: PaymentPayload,
    reqs: PaymentRequirements,
    public_id: str,
    nonce: str,
) -> str | PaymentOutcome:
    """The payer's address (lower case) if the payload pays these terms; else the answer."""
    mismatch = _accepted_mismatch(payload, reqs)
    if mismatch:
        return Refused(mismatch, reason_message(mismatch), invoice_id=public_id)
    try:
        verified = await gw.verify(payload, reqs)
    except Exception as exc:
        log.warning("x402 verify failed", error=type(exc).__name__)
        if _transient(exc):
            return _refuse("rpc_unavailable", public_id, retry_later=True)
        return Refused("invalid_payment", reason_message(None), invoice_id=public_id)
    if not verified.ok and verified.reason == "invalid_exact_evm_nonce_already_used":
        # a repeat of a submission that won meanwhile answers like the winner
        async with ctx.db.session() as s:
            fresh = await get_invoice(s, public_id)
        if fresh is not None and fresh.status == InvoiceStatus.CREDITED:
            return await _repeat(ctx, fresh, nonce)
        if fresh is not None and fresh.status == InvoiceStatus.PAID:
            return _refuse("payment_in_progress", public_id)
    if not verified.ok or not verified.payer:
        return Refused(
            verified.reason or "invalid_payment",
            reason_message(verified.reason, verified.message),
            invoice_id=public_id,
        )
    return verified.payer.lower()


async def _fulfil(
    ctx: Context, inv: Invoice, payload: PaymentPayload, payer: str, receipt_id: int
) -> dict[str, Any] | None | Refused:
    """The fulfiller's answer before settling (kept on the receipt), None if the kind has no
    fulfiller; a refusal releases the claim: nothing is settled for an unanswered request."""
    fulfiller = ctx.wiring.fulfiller_for(inv.kind)
    if fulfiller is None:
        return None
    try:
        answered = await fulfiller.answer(ctx, fulfil_request(inv, payer))
    except Exception as exc:
        log.warning("fulfilment failed", invoice=inv.public_id, error=type(exc).__name__)
        answered = Refused("not_answered", MESSAGES["not_answered"])
    if isinstance(answered, Refused):
        await release_claim(ctx, inv.id, receipt_id)
        return Refused(answered.code, answered.message, invoice_id=inv.public_id)
    await _store_result(ctx, receipt_id, payload, answered)
    return answered


async def _settle(
    ctx: Context,
    gw: PaymentGateway,
    payload: PaymentPayload,
    reqs: PaymentRequirements,
    inv: Invoice,
    receipt_id: int,
) -> SettleResult | PaymentOutcome:
    """The settlement, when it has a transaction hash; else the answer (the claim is kept
    while the money may be on chain, released when it surely is not)."""
    public_id = inv.public_id
    try:
        settled = await gw.settle(payload, reqs)
    except Exception as exc:  # unknown whether it reached the chain: recovery decides
        log.warning("x402 settle unavailable", invoice=public_id, error=type(exc).__name__)
        return _unsure(public_id)
    if not settled.ok and settled.reason == ERR_SETTLEMENT_PENDING and settled.transaction:
        # broadcast, but its receipt could not be read (the node went away): the claim and
        # the hash are kept, and the chain decides now or in recover_payments
        log.warning("x402 settlement unconfirmed", invoice=public_id, tx=settled.transaction)
    elif not settled.ok and not settled.transaction and settled.reason == ERR_TRANSACTION_FAILED:
        # sending it failed without a hash (e.g. the answer to the broadcast was lost): it
        # may be on chain. The claim stays; recover_payments finds it by its
        # AuthorizationUsed log, or releases it once the authorization has expired.
        log.warning("x402 settlement outcome unknown", invoice=public_id, error=settled.message)
        return _unsure(public_id)
    elif not settled.ok or not settled.transaction:
        await release_claim(ctx, inv.id, receipt_id)
        return Refused(
            settled.reason or "settle_failed",
            reason_message(settled.reason, settled.message),
            invoice_id=public_id,
        )
    return settled


async def _record_hash(ctx: Context, receipt_id: int, tx: str) -> None:
    async with ctx.db.session() as s:
        await states.move_receipt(
            s, receipt_id, ReceiptStatus.SETTLING, ReceiptStatus.SETTLED, transaction_hash=tx
        )


async def _repeat(ctx: Context, inv: Invoice, nonce: str) -> PaymentOutcome:
    async with ctx.db.session() as s:
        r = (
            await s.execute(
                select(PaymentReceipt).where(
                    PaymentReceipt.invoice_id == inv.id,
                    PaymentReceipt.authorization_nonce == nonce,
                    PaymentReceipt.status == ReceiptStatus.CREDITED,
                )
            )
        ).scalar_one_or_none()
    if r is None:
        return _refuse("already_paid", inv.public_id)
    return Paid(inv.public_id, inv.kind, r.transaction_hash, r.payer_address, already=True)


async def _claim(
    ctx: Context,
    inv: Invoice,
    payload: PaymentPayload,
    payer: str,
    nonce: str,
    start_block: int,
) -> int | PaymentOutcome:
    now = utcnow()
    try:
        async with ctx.db.session() as s:
            if not await states.move_invoice(
                s,
                inv.id,
                InvoiceStatus.OPEN,
                InvoiceStatus.PAID,
                where=(Invoice.expires_at > now,),
            ):
                raise _Lost
            added = await insert_ignore(
                s,
                PaymentReceipt,
                {
                    "invoice_id": inv.id,
                    "method": "x402",
                    "network": inv.network,
                    "token_address": inv.token_address,
                    "payer_address": payer,
                    "pay_to": inv.pay_to,
                    "amount_units": due_units(inv),
                    "authorization_nonce": nonce,
                    "block_number": start_block,
                    "status": ReceiptStatus.SETTLING,
                    "payload": json.dumps({"payment": payload.model_dump(mode="json")}),
                    "created_at": now,
                },
                index_elements=["network", "token_address", "payer_address", "authorization_nonce"],
            )
            if not added:
                raise _NonceUsed
            rid = await s.scalar(
                select(PaymentReceipt.id).where(
                    PaymentReceipt.network == inv.network,
                    PaymentReceipt.token_address == inv.token_address,
                    PaymentReceipt.payer_address == payer,
                    PaymentReceipt.authorization_nonce == nonce,
                )
            )
            return int(rid or 0)
    except _NonceUsed:
        return _refuse("nonce_used", inv.public_id)
    except _Lost:
        async with ctx.db.session() as s:
            fresh = await get_invoice(s, inv.public_id)
        if fresh is not None and fresh.status == InvoiceStatus.CREDITED:
            return await _repeat(ctx, fresh, nonce)
        if fresh is not None and fresh.status == InvoiceStatus.PAID:
            return _refuse("payment_in_progress", inv.public_id)
        return _refuse("invoice_expired", inv.public_id)


class _Lost(Exception):
    """Another submission claimed the invoice first (rolls the transaction back)."""


class _NonceUsed(Exception):
    """The authorization nonce is already on a receipt (rolls the transaction back)."""


async def _store_result(
    ctx: Context, receipt_id: int, payload: PaymentPayload, result: dict[str, Any]
) -> None:
    async with ctx.db.session() as s:
        await s.execute(
            update(PaymentReceipt)
            .where(PaymentReceipt.id == receipt_id)
            .values(
                payload=json.dumps(
                    # the payload's fields are str/int/dict: a python-mode dump serialises
                    # the same under default=str, so the mode is not mutated
                    {
                        "payment": payload.model_dump(mode="json"),  # pragma: no mutate
                        "fulfilment": result,
                    },
                    default=str,
                )
            )
        )


__all__ = ["finish_receipt", "invoice_requirements", "pay_invoice", "recover_payments"]
