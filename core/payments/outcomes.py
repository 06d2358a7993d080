"""What a payment attempt ends as: plain values with reason codes (x402-style)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Paid:
    invoice_id: str
    kind: str
    transaction_hash: str | None
    payer: str | None
    granted: list[str] = field(default_factory=list)
    credit_units: int = 0  # paid for something already owned: became account credit
    result: dict[str, Any] | None = None  # what a fulfiller answered (chat queries)
    settlement: Any = None  # x402 SettleResponse, for the PAYMENT-RESPONSE header
    already: bool = False  # this payment had been credited before (a repeat submission)


@dataclass(frozen=True)
class PaymentPending:
    """Settled on chain, waiting for confirmations; finished by the recovery job."""

    invoice_id: str
    transaction_hash: str | None
    code: str = "confirming"
    message: str = "Payment sent; waiting for confirmations."


@dataclass(frozen=True)
class PaymentRefused:
    code: str
    message: str
    retry_later: bool = False  # the chain or facilitator was unreachable: nothing granted
    invoice_id: str | None = None


PaymentOutcome = Paid | PaymentPending | PaymentRefused

# x402 verify/settle reasons → messages a payer can act on.
MESSAGES = {
    "invalid_payload": "The payment could not be read.",
    "unknown_invoice": "No such invoice.",
    "invoice_expired": "This invoice has expired; ask for a new one.",
    "already_paid": "This invoice is already paid.",
    "payment_in_progress": "A payment for this invoice is already being processed.",
    "nonce_used": "This payment authorization was already used.",
    "rpc_unavailable": "The blockchain node is unreachable; nothing was charged. Try again later.",
    "not_answered": "The question could not be answered, so nothing was charged.",
    "transfer_mismatch": "The transaction does not carry the expected USDC transfer.",
}


def reason_message(reason: str | None, detail: str | None = None) -> str:
    r = (reason or "").lower()
    if "value" in r or "amount" in r:
        return "The amount does not match the price."
    if "recipient" in r or "pay_to" in r or "_to" in r.rsplit("authorization", 1)[-1]:
        return "The payment is addressed to the wrong recipient."
    if "network" in r or "chain" in r:
        return "The payment is for another chain."
    if "asset" in r or "token" in r:
        return "The payment is in the wrong token."
    if "valid_before" in r or "expired" in r:
        return "The payment authorization has expired."
    if "valid_after" in r or "not_yet" in r:
        return "The payment authorization is not valid yet."
    if "nonce" in r:
        return MESSAGES["nonce_used"]
    if "signature" in r or "signer" in r:
        return "The payment signature is not valid for this payer."
    if "balance" in r or "insufficient" in r:
        return "The paying wallet does not hold enough USDC."
    return MESSAGES.get(r, detail or "The payment was refused.")
