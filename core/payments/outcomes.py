"""What a payment attempt ends as: plain values with reason codes (x402-style)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.results import Refused


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


PaymentOutcome = Paid | PaymentPending | Refused  # one refusal type for the whole product

# x402 verify/settle reasons → messages a payer can act on.
MESSAGES = {
    "invalid_payload": "The payment could not be read.",
    "unknown_invoice": "No such invoice.",
    "invoice_expired": "This invoice has expired; ask for a new one.",
    "usdc_off": "Paying in USDC is turned off for purchases made in Telegram; use the "
    '"Pay with Stars" button under the price in Telegram.',
    "already_paid": "This invoice is already paid.",
    "payment_in_progress": "A payment for this invoice is already being processed.",
    "nonce_used": "This payment authorization was already used.",
    "rpc_unavailable": "The blockchain node is unreachable; nothing was charged. Try again later.",
    "confirm_unavailable": (
        "Payment sent; the blockchain node is unreachable right now, so it is credited as soon "
        "as the node confirms it."
    ),
    "settlement_unknown": (
        "The blockchain node stopped answering while your payment was being sent. If it went "
        "through, it is credited automatically once confirmed; if not, nothing is charged and "
        "the invoice can be paid again once this authorization expires."
    ),
    "payments_unavailable": "Payments are not configured on this server yet.",
    "not_answered": "The question could not be answered, so nothing was charged.",
    "transfer_mismatch": "The transaction does not carry the expected USDC transfer.",
}


# The x402 package's exact-EVM reason codes (x402.mechanisms.evm constants).
X402_REASONS = {
    "invalid_exact_evm_payload_authorization_value_mismatch": "The amount does not match the price.",
    "invalid_exact_evm_payload_recipient_mismatch": "The payment is addressed to the wrong recipient.",
    "network_mismatch": "The payment is for another chain.",
    "invalid_exact_evm_token_name_mismatch": "The payment is in the wrong token.",
    "invalid_exact_evm_token_version_mismatch": "The payment is in the wrong token.",
    "invalid_exact_evm_failed_to_get_asset_info": "The payment is in the wrong token.",
    "asset_not_deployed_contract": "The payment is in the wrong token.",
    "asset_mismatch": "The payment is in the wrong token.",
    "invalid_exact_evm_payload_authorization_valid_before": (
        "The payment authorization has expired."
    ),
    "invalid_exact_evm_payload_authorization_valid_after": (
        "The payment authorization is not valid yet."
    ),
    "invalid_exact_evm_nonce_already_used": MESSAGES["nonce_used"],
    "invalid_exact_evm_payload_signature": (
        "The payment signature is not valid for this payer, token and chain."
    ),
    "invalid_exact_evm_failed_to_verify_signature": (
        "The payment signature is not valid for this payer, token and chain."
    ),
    "invalid_exact_evm_insufficient_balance": "The paying wallet does not hold enough USDC.",
    "invalid_exact_evm_transaction_simulation_failed": (
        "The transfer would fail on chain (balance, nonce or validity); nothing was charged."
    ),
    "unsupported_scheme": "Only the x402 exact scheme on the configured chain is accepted.",
    "transaction_failed": "The transfer failed on chain; nothing was charged.",
}


def reason_message(reason: str | None, detail: str | None = None) -> str:
    # no reason and an unknown one read the same: "" is only a key no table holds
    r = (reason or "").lower()  # pragma: no mutate
    return X402_REASONS.get(r) or MESSAGES.get(r) or "The payment was refused."
