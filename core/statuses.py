"""The status values stored in the database, one ``StrEnum`` per column.

Members are ``str``s equal to the stored text, so they compare with rows read back, bind
as plain strings, and render as themselves in SQL literals and log lines.
"""

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


class JobStatus(StrEnum):
    """``processing_queue.status``: queued → processing → completed | failed (or queued again)."""

    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class SpaceStatus(StrEnum):
    """``spaces.status``: pending → processing → completed | failed."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class OutboxStatus(StrEnum):
    """``outbox.status``: pending → sending → sent | fallback (undeliverable) | failed."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FALLBACK = "fallback"
    FAILED = "failed"
