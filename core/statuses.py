"""Status vocabularies: the strings stored in the database, as ``StrEnum``s (a member equals
its string, so rows written before and after read the same)."""

from __future__ import annotations

from enum import StrEnum


class InvoiceStatus(StrEnum):
    """``invoices.status``: open → paid → credited, or open → expired."""

    OPEN = "open"
    PAID = "paid"  # claimed by one x402 submission; being settled
    CREDITED = "credited"
    EXPIRED = "expired"


class ReceiptStatus(StrEnum):
    """``payment_receipts.status``: settling → settled → confirmed → credited; ``reverted``
    and ``mismatch`` are kept for the operator."""

    SETTLING = "settling"  # claimed, maybe sent
    SETTLED = "settled"  # transaction hash known
    CONFIRMED = "confirmed"  # the chain shows the transfer
    CREDITED = "credited"
    REVERTED = "reverted"
    MISMATCH = "mismatch"
