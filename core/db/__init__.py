"""Database: typed models of the seed's schema (plus extensions) and the one session factory."""

from core.db.engine import Database, async_url, sync_url
from core.db.models import (
    Account,
    Base,
    ChatSession,
    ChatUnlock,
    Credit,
    Invoice,
    Outbox,
    Passage,
    PaymentCursor,
    PaymentReceipt,
    ProcessingJob,
    Space,
    TranscriptionPayment,
    User,
    WalletLinkToken,
    utcnow,
)

__all__ = [
    "Account",
    "Base",
    "ChatSession",
    "ChatUnlock",
    "Credit",
    "Database",
    "Invoice",
    "Outbox",
    "Passage",
    "PaymentCursor",
    "PaymentReceipt",
    "ProcessingJob",
    "Space",
    "TranscriptionPayment",
    "User",
    "WalletLinkToken",
    "async_url",
    "sync_url",
    "utcnow",
]
