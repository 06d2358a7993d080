"""SQLAlchemy 2.0 models.

The seed's six tables keep its exact table names, column names, types, defaults, NOT NULL,
UNIQUE and ON DELETE CASCADE. Index names are the seed's, except where the seed repeats a
name across tables (``idx_status``, ``idx_user_space``): SQLite and PostgreSQL want index
names unique per schema, so those carry a table prefix (listed in the README).
Extensions live in new tables or new nullable columns; no seed column is renamed or retyped.

Timestamps are naive UTC (the seed's ``TIMESTAMP`` is without time zone).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Naive UTC now: what the seed's TIMESTAMP columns hold."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _ts(nullable: bool = True, default: bool = False) -> Mapped[datetime | None]:
    if default:
        return mapped_column(
            DateTime, server_default=func.current_timestamp(), default=utcnow, nullable=nullable
        )
    return mapped_column(DateTime, nullable=nullable)


_AUTOINC = {"sqlite_autoincrement": True}

# ---------------------------------------------------------------- the seed's six tables


class User(Base):
    __tablename__ = "users"
    __table_args__ = (Index("idx_wallet", "wallet_address"), _AUTOINC)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    wallet_address: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    created_at: Mapped[datetime | None] = _ts(default=True)
    last_seen_at: Mapped[datetime | None] = _ts(default=True)


class Space(Base):
    __tablename__ = "spaces"
    __table_args__ = (
        Index("idx_space_id", "space_id"),
        Index("idx_spaces_status", "status"),
        Index("idx_completed_at", "completed_at"),
        _AUTOINC,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    space_id: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    space_url: Mapped[str] = mapped_column(Text, nullable=False)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    creator: Mapped[str | None] = mapped_column(Text)
    audio_file_path: Mapped[str | None] = mapped_column(Text)
    transcript_file_path: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(
        Text, nullable=False, server_default=text("'pending'"), default="pending"
    )
    audio_duration_seconds: Mapped[int | None] = mapped_column(Integer)
    audio_size_mb: Mapped[float | None] = mapped_column(Float)
    transcript_length: Mapped[int | None] = mapped_column(Integer)
    participants: Mapped[str | None] = mapped_column(Text)  # JSON array of names
    speaker_profiles: Mapped[str | None] = mapped_column(Text)  # JSON array of profiles
    first_requested_at: Mapped[datetime | None] = _ts(default=True)
    processing_started_at: Mapped[datetime | None] = _ts()
    completed_at: Mapped[datetime | None] = _ts()
    transcription_count: Mapped[int | None] = mapped_column(
        Integer, server_default=text("0"), default=0
    )
    chat_unlock_count: Mapped[int | None] = mapped_column(
        Integer, server_default=text("0"), default=0
    )
    # extensions (nullable)
    error_message: Mapped[str | None] = mapped_column(Text)
    space_started_at: Mapped[datetime | None] = _ts()
    # the free teaser: chapter titles only (JSON array), copied from space_enrichments
    chapter_titles: Mapped[str | None] = mapped_column(Text)


class TranscriptionPayment(Base):
    __tablename__ = "transcription_payments"
    __table_args__ = (
        UniqueConstraint("user_id", "space_id"),
        Index("idx_transcription_payments_user_space", "user_id", "space_id"),
        Index("idx_paid_at", "paid_at"),
        # extension: a Space's payers (told when it completes or fails) without a full scan;
        # the seed's indexes both lead with user_id
        Index("idx_transcription_payments_space", "space_id"),
        _AUTOINC,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    space_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("spaces.id", ondelete="CASCADE"), nullable=False
    )
    amount_usdc: Mapped[str] = mapped_column(Text, nullable=False)
    transaction_hash: Mapped[str | None] = mapped_column(Text)
    payment_verified: Mapped[bool | None] = mapped_column(
        Boolean, server_default=false(), default=False
    )
    paid_at: Mapped[datetime | None] = _ts(default=True)
    verified_at: Mapped[datetime | None] = _ts()
    # extension: the invoice this row was credited from (one invoice grants once)
    invoice_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("invoices.id", ondelete="SET NULL"), unique=True
    )
    # extension: credited back because the Space failed; the row no longer grants
    refunded_at: Mapped[datetime | None] = _ts()


class ChatUnlock(Base):
    __tablename__ = "chat_unlocks"
    __table_args__ = (
        UniqueConstraint("user_id", "space_id"),
        Index("idx_chat_unlocks_user_space", "user_id", "space_id"),
        Index("idx_unlocked_at", "unlocked_at"),
        _AUTOINC,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    space_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("spaces.id", ondelete="CASCADE"), nullable=False
    )
    amount_usdc: Mapped[str] = mapped_column(Text, nullable=False)
    transaction_hash: Mapped[str | None] = mapped_column(Text)
    payment_verified: Mapped[bool | None] = mapped_column(
        Boolean, server_default=false(), default=False
    )
    unlocked_at: Mapped[datetime | None] = _ts(default=True)
    verified_at: Mapped[datetime | None] = _ts()
    invoice_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("invoices.id", ondelete="SET NULL"), unique=True
    )


class ChatSession(Base):
    __tablename__ = "chat_sessions"
    __table_args__ = (
        Index("idx_user_id", "user_id"),
        Index("idx_queried_at", "queried_at"),
        Index("idx_session_id", "session_id"),
        _AUTOINC,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    space_ids: Mapped[str] = mapped_column(Text, nullable=False)  # JSON array of Space ids
    question: Mapped[str] = mapped_column(Text, nullable=False)
    answer: Mapped[str] = mapped_column(Text, nullable=False)
    sources: Mapped[str | None] = mapped_column(Text)  # JSON [{spaceId, excerpt, ...}]
    num_spaces: Mapped[int] = mapped_column(Integer, nullable=False)
    amount_usdc: Mapped[str] = mapped_column(Text, nullable=False)
    transaction_hash: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(
        Text, server_default=text("'gpt-4o'"), default="gpt-4o"
    )
    tokens_used: Mapped[int | None] = mapped_column(Integer)
    queried_at: Mapped[datetime | None] = _ts(default=True)
    invoice_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("invoices.id", ondelete="SET NULL"), unique=True
    )


class ProcessingJob(Base):
    __tablename__ = "processing_queue"
    __table_args__ = (
        Index("idx_processing_queue_status", "status"),
        Index("idx_priority_queued", text("priority DESC"), text("queued_at ASC")),
        # extension: the claim's scan, in seed query 6's order, over queued jobs only (so it
        # never walks past finished ones); its predicate is written as literally in the claim
        Index(
            "idx_processing_queue_claim",
            text("priority DESC"),
            text("queued_at ASC"),
            text("id ASC"),
            sqlite_where=text("status = 'queued'"),
            postgresql_where=text("status = 'queued'"),
        ),
        # extension: never two live jobs for one Space
        Index(
            "uq_processing_queue_live_space",
            "space_id",
            unique=True,
            sqlite_where=text("status IN ('queued', 'processing')"),
            postgresql_where=text("status IN ('queued', 'processing')"),
        ),
        _AUTOINC,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    space_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("spaces.id", ondelete="CASCADE"), nullable=False
    )
    status: Mapped[str] = mapped_column(
        Text, nullable=False, server_default=text("'queued'"), default="queued"
    )
    priority: Mapped[int | None] = mapped_column(Integer, server_default=text("0"), default=0)
    retry_count: Mapped[int | None] = mapped_column(Integer, server_default=text("0"), default=0)
    max_retries: Mapped[int | None] = mapped_column(Integer, server_default=text("3"), default=3)
    error_message: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = _ts()
    queued_at: Mapped[datetime | None] = _ts(default=True)
    started_at: Mapped[datetime | None] = _ts()
    completed_at: Mapped[datetime | None] = _ts()
    # extensions: backoff and lease
    available_at: Mapped[datetime | None] = _ts()
    locked_by: Mapped[str | None] = mapped_column(Text)
    heartbeat_at: Mapped[datetime | None] = _ts()


# ---------------------------------------------------------------- extensions


class Account(Base):
    """A Discord / Telegram / web identity; linked to a ``users`` row by a wallet signature."""

    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("platform", "platform_user_id"), _AUTOINC)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(Text, nullable=False)  # discord | telegram
    platform_user_id: Mapped[str] = mapped_column(Text, nullable=False)
    display_name: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime | None] = _ts(default=True)
    linked_at: Mapped[datetime | None] = _ts()


class Invoice(Base):
    """What is bought, by whom, for how much, until when; open → paid → credited | expired."""

    __tablename__ = "invoices"
    __table_args__ = (Index("idx_invoices_status_expires", "status", "expires_at"), _AUTOINC)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    kind: Mapped[str] = mapped_column(Text, nullable=False)  # transcription|chat_unlock|chat_query
    account_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    space_ids: Mapped[str] = mapped_column(Text, nullable=False)  # JSON array of Space ids
    payload: Mapped[str | None] = mapped_column(Text)  # JSON: question, pay-page links, ...
    origin_chat_id: Mapped[str | None] = mapped_column(Text)  # where the command came from
    amount_units: Mapped[int] = mapped_column(BigInteger, nullable=False)
    credit_units: Mapped[int] = mapped_column(
        BigInteger, nullable=False, default=0, server_default=text("0")
    )
    network: Mapped[str] = mapped_column(Text, nullable=False)
    token_address: Mapped[str] = mapped_column(Text, nullable=False)
    pay_to: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(
        Text, nullable=False, server_default=text("'open'"), default="open"
    )
    payer_address: Mapped[str | None] = mapped_column(Text)
    transaction_hash: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime | None] = _ts(default=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    paid_at: Mapped[datetime | None] = _ts()
    credited_at: Mapped[datetime | None] = _ts()


class PaymentReceipt(Base):
    """Every on-chain payment seen; UNIQUE keys make crediting one payment twice impossible."""

    __tablename__ = "payment_receipts"
    __table_args__ = (
        UniqueConstraint("network", "transaction_hash", "log_index"),
        UniqueConstraint("network", "token_address", "payer_address", "authorization_nonce"),
        _AUTOINC,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    invoice_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("invoices.id", ondelete="SET NULL"), index=True
    )
    method: Mapped[str] = mapped_column(Text, nullable=False)  # x402 | transfer
    network: Mapped[str] = mapped_column(Text, nullable=False)
    token_address: Mapped[str] = mapped_column(Text, nullable=False)
    payer_address: Mapped[str] = mapped_column(Text, nullable=False)
    pay_to: Mapped[str] = mapped_column(Text, nullable=False)
    amount_units: Mapped[int] = mapped_column(BigInteger, nullable=False)
    transaction_hash: Mapped[str | None] = mapped_column(Text)
    log_index: Mapped[int | None] = mapped_column(Integer)
    authorization_nonce: Mapped[str | None] = mapped_column(Text)
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(Text, nullable=False)  # settling|confirmed|credited
    payload: Mapped[str | None] = mapped_column(Text)  # signed authorization (no secrets)
    created_at: Mapped[datetime | None] = _ts(default=True)
    credited_at: Mapped[datetime | None] = _ts()


class Credit(Base):
    """Account credit ledger in 6-decimal units (positive: credit, negative: spent)."""

    __tablename__ = "credits"
    __table_args__ = (UniqueConstraint("reason", "reference"), _AUTOINC)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    amount_units: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)  # overpaid|refund|spent|...
    reference: Mapped[str] = mapped_column(Text, nullable=False)  # idempotency key
    created_at: Mapped[datetime | None] = _ts(default=True)


class Outbox(Base):
    """Outbound messages, kept until an adapter confirms delivery (at most once per key)."""

    __tablename__ = "outbox"
    __table_args__ = (Index("idx_outbox_status_available", "status", "available_at"), _AUTOINC)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    platform: Mapped[str] = mapped_column(Text, nullable=False)
    recipient: Mapped[str] = mapped_column(Text, nullable=False)  # platform user id
    origin_chat_id: Mapped[str | None] = mapped_column(Text)  # where the command came from
    space_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("spaces.id", ondelete="CASCADE")
    )
    payload: Mapped[str] = mapped_column(Text, nullable=False)  # JSON
    status: Mapped[str] = mapped_column(
        Text, nullable=False, server_default=text("'pending'"), default="pending"
    )  # pending | sending | sent | fallback | failed
    attempts: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default=text("0")
    )
    available_at: Mapped[datetime | None] = _ts(default=True)
    locked_by: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime | None] = _ts(default=True)
    sent_at: Mapped[datetime | None] = _ts()


class Passage(Base):
    """A window of a Space's transcript (speakers kept), the unit chat retrieval ranks.

    Full text lives beside it in ``passages_fts`` (SQLite FTS5 external content; PostgreSQL
    tsvector + GIN), maintained by triggers created in migration 0004.
    """

    __tablename__ = "passages"
    __table_args__ = (UniqueConstraint("space_id", "seq"), _AUTOINC)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    space_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("spaces.id", ondelete="CASCADE"), nullable=False
    )
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    start_seconds: Mapped[float] = mapped_column(Float, nullable=False)
    end_seconds: Mapped[float] = mapped_column(Float, nullable=False)
    speakers: Mapped[str | None] = mapped_column(Text)  # JSON array of names, in order
    text: Mapped[str] = mapped_column(Text, nullable=False)


class PaymentCursor(Base):
    """How far the payment watcher has read ``Transfer`` logs to pay-to, per chain and token."""

    __tablename__ = "payment_cursors"
    __table_args__ = (UniqueConstraint("network", "token_address", "pay_to"), _AUTOINC)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    network: Mapped[str] = mapped_column(Text, nullable=False)
    token_address: Mapped[str] = mapped_column(Text, nullable=False)
    pay_to: Mapped[str] = mapped_column(Text, nullable=False)
    last_block: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[datetime | None] = _ts(default=True)


class WalletLinkToken(Base):
    """A one-time wallet-link page for one platform account (``/wallet``), and the SIWE
    nonce last issued on it. Only the token's SHA-256 is stored; the link carries the token."""

    __tablename__ = "wallet_link_tokens"
    __table_args__ = (_AUTOINC,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    account_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True
    )
    nonce: Mapped[str | None] = mapped_column(Text)  # SIWE nonce; cleared when used
    created_at: Mapped[datetime | None] = _ts(default=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    used_at: Mapped[datetime | None] = _ts()
    wallet_address: Mapped[str | None] = mapped_column(Text)  # linked wallet, once used


class X402Request(Base):
    """One paid x402 request, reserved before its payment is verified: the idempotency
    record behind payment-identifier retries and re-sent ``PAYMENT-SIGNATURE`` headers.

    ``payment_id`` is the client's payment-identifier (NULL when none was sent);
    ``authorization_key`` names the EIP-3009 authorization (network, token, payer, nonce),
    which can pay once only, so a payload re-sent without its id finds its row too.
    ``state``: ``in_flight`` (reserved; ``lease_until`` says until when its process owns
    it), ``unknown`` (money may have moved, the outcome is not known yet) or ``done`` (the
    stored response is final and is what every retry gets)."""

    __tablename__ = "x402_requests"
    __table_args__ = (_AUTOINC,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    payment_id: Mapped[str | None] = mapped_column(Text, unique=True)
    authorization_key: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    request_hash: Mapped[str] = mapped_column(Text, nullable=False)  # SHA-256 of all, hex
    body_hash: Mapped[str] = mapped_column(Text, nullable=False)  # SHA-256 of route + body
    route: Mapped[str] = mapped_column(Text, nullable=False)
    payer_address: Mapped[str] = mapped_column(Text, nullable=False, index=True)
    state: Mapped[str] = mapped_column(Text, nullable=False)
    lease_until: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)  # JSON text, replayed verbatim
    response_headers: Mapped[str | None] = mapped_column(Text)  # JSON object
    created_at: Mapped[datetime | None] = _ts(default=True)
    updated_at: Mapped[datetime | None] = _ts()


class SiwxNonce(Base):
    """A Sign-In-With-X nonce that was used; the UNIQUE key makes each one single-use."""

    __tablename__ = "siwx_nonces"
    __table_args__ = (_AUTOINC,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    nonce: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    wallet_address: Mapped[str] = mapped_column(Text, nullable=False)
    used_at: Mapped[datetime | None] = _ts(default=True)


class WebSession(Base):
    """A storefront session: the wallet that signed in (SIWE). Only the cookie token's
    SHA-256 is kept; ``csrf_token`` is echoed by the session's forms."""

    __tablename__ = "web_sessions"
    __table_args__ = (_AUTOINC,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    wallet_address: Mapped[str] = mapped_column(Text, nullable=False)
    csrf_token: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime | None] = _ts(default=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)


class StarPayment(Base):
    """A Telegram Stars payment (currency XTR, whole Stars): the receipt of a Stars purchase.

    Keyed by Telegram's ``telegram_payment_charge_id`` (UNIQUE, like a transaction hash), so
    a ``successful_payment`` delivered twice is recorded and granted once. Stars never enter
    the seed's ``amount_usdc`` columns. received → credited, or → refund_due → refunded.
    """

    __tablename__ = "star_payments"
    __table_args__ = (_AUTOINC,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    telegram_payment_charge_id: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    provider_payment_charge_id: Mapped[str | None] = mapped_column(Text)
    invoice_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("invoices.id", ondelete="SET NULL"), index=True
    )
    telegram_user_id: Mapped[str] = mapped_column(Text, nullable=False)  # who paid (refund to)
    currency: Mapped[str] = mapped_column(Text, nullable=False)  # XTR
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)  # whole Stars
    status: Mapped[str] = mapped_column(Text, nullable=False)  # see the class doc
    refund_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime | None] = _ts(default=True)
    credited_at: Mapped[datetime | None] = _ts()
    refunded_at: Mapped[datetime | None] = _ts()


class SpaceEnrichment(Base):
    """A Space's summary, chapters and verified quotes (``data``, JSON, see core/enrich/model),
    or why the last attempt failed. One row per Space; ``tokens_used`` adds up every attempt's
    model tokens (spent even when an attempt fails), for /revenue costs."""

    __tablename__ = "space_enrichments"
    __table_args__ = (Index("idx_space_enrichments_status", "status"), _AUTOINC)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    space_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("spaces.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    status: Mapped[str] = mapped_column(Text, nullable=False)  # completed | failed
    method: Mapped[str | None] = mapped_column(Text)  # openai | extractive
    model: Mapped[str | None] = mapped_column(Text)
    data: Mapped[str | None] = mapped_column(Text)
    tokens_used: Mapped[int] = mapped_column(
        Integer, nullable=False, server_default=text("0"), default=0
    )
    attempts: Mapped[int] = mapped_column(
        Integer, nullable=False, server_default=text("0"), default=0
    )
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime | None] = _ts(default=True)
    updated_at: Mapped[datetime | None] = _ts(default=True)


class TranscriptDocument(Base):
    """A transcript document of a Space (``format``: md, json, srt or vtt), stored whole.

    The database is the only thing the machines of one installation share: the worker that
    made a transcript stores its documents here before the Space is marked completed, and
    every surface serves them from here (``core/transcripts.py``). Audio and chunk files stay
    in the worker's own ``data/``. One row per Space and format; a re-run replaces it."""

    __tablename__ = "transcript_documents"
    __table_args__ = (UniqueConstraint("space_id", "format"), _AUTOINC)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    space_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("spaces.id", ondelete="CASCADE"), nullable=False
    )
    format: Mapped[str] = mapped_column(Text, nullable=False)  # md | json | srt | vtt
    content: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime | None] = _ts(default=True)
    updated_at: Mapped[datetime | None] = _ts(default=True)
