"""Outcomes the service operations return, as plain values adapters render.

A refusal is a normal outcome with a machine-readable ``code`` and a user-safe ``message``
(x402-style ``is_valid=False, invalid_reason=...``), never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Caller:
    """Who is asking, as the platform knows them."""

    platform: str  # "telegram" | "discord" | "web"
    platform_user_id: str
    display_name: str | None = None
    chat_id: str | None = None  # where the command came from (fallback for undeliverable DMs)
    is_admin: bool = False  # decided by the adapter from config.*.admin_ids (and roles)
    # How the pay page links back to the chat: ("bot_username", …) on Telegram,
    # ("guild_id", …) on Discord. Pairs, so the value stays hashable.
    back: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Refused:
    """Why something was not done: a :class:`core.refusals.RefusalCode` (or, for a refused
    payment, the x402 package's reason as it came) and a message the user can act on."""

    code: str
    message: str
    retry_later: bool = False  # the chain or facilitator was unreachable: nothing granted
    invoice_id: str | None = None  # the invoice a refused payment was for


@dataclass(frozen=True)
class SpaceView:
    space_id: str
    url: str
    title: str
    status: str  # pending | processing | completed | failed
    creator: str | None = None
    duration_seconds: int | None = None
    participants: list[str] = field(default_factory=list)
    transcription_count: int = 0
    chat_unlock_count: int = 0
    queue_position: int | None = None  # 1 = next, for queued jobs
    error: str | None = None
    completed_at: datetime | None = None
    chapters: list[str] = field(default_factory=list)  # chapter titles: the free teaser
    started_at: datetime | None = None  # when the Space took place (naive UTC), if known


@dataclass(frozen=True)
class Transcript:
    """A transcript the caller may receive: the document to attach and a short header."""

    space: SpaceView
    content: bytes  # the document (UTF-8), as stored in transcript_documents
    speakers: list[str] = field(default_factory=list)
    format: str = "md"  # md | json | srt | vtt
    overview: Any = None  # core.enrich.model.Enrichment when the Space has one


@dataclass(frozen=True)
class DirectTransfer:
    """Fallback for wallets without typed-data signing: plain USDC transfer."""

    to: str
    token_address: str
    chain_id: int
    amount_units: int
    eip681_uri: str  # ethereum:<token>@<chain>/transfer?address=<to>&uint256=<units>


@dataclass(frozen=True)
class Quote:
    """An open invoice: what, how much, until when, where to pay."""

    invoice_id: str
    kind: str  # transcription | chat_unlock | chat_query
    space_ids: list[str]
    amount: Decimal  # still to pay, after account credit
    pay_url: str
    expires_at: datetime
    direct: DirectTransfer | None = None
    credit_applied: Decimal = Decimal(0)
    space: SpaceView | None = None  # metadata when known (title, duration)
    note: str | None = None  # e.g. a live Space: "will be transcribed when it ends"


@dataclass(frozen=True)
class AlreadyOwned:
    """The caller already bought this; nothing to pay. For transcripts, ``transcript`` is
    set when the Space is completed (re-send it), else ``space`` tells its status."""

    kind: str
    space: SpaceView
    transcript: Transcript | None = None


@dataclass(frozen=True)
class Granted:
    """Paid in full from account credit: granted at once, nothing to pay."""

    kind: str
    space_ids: list[str]
    invoice_pk: int  # the credited invoice (``invoices.id``)
    transcript: Transcript | None = None


@dataclass(frozen=True)
class Source:
    space_id: str
    start: float
    end: float
    speaker: str | None
    excerpt: str
    url: str


@dataclass(frozen=True)
class Answer:
    session_id: str  # the answer's id (chat_sessions.session_id): what answer_for takes
    question: str
    answer: str
    sources: list[Source]
    model: str  # "extractive" when no OpenAI key
    amount: Decimal
    space_ids: list[str]


@dataclass(frozen=True)
class OwnedSpace:
    space: SpaceView
    chat_unlocked: bool
    paid_at: datetime | None


@dataclass(frozen=True)
class WalletInfo:
    address: str | None  # linked wallet, if any
    credit: Decimal
    link_url: str  # one-time SIWE link page


@dataclass(frozen=True)
class SearchHit:
    space: SpaceView
    excerpt: str | None = None  # transcript text only for Spaces the caller owns
    start: float | None = None


@dataclass(frozen=True)
class Card:
    """A Space as a shareable card (Telegram inline mode): what anyone may see before paying,
    the transcript's price, and no one's purchases."""

    space_id: str
    price: Decimal  # the transcript's list price; the buyer's quote may apply their credit
    space: SpaceView | None = None  # None: nobody has requested this Space yet


@dataclass(frozen=True)
class RevenueLine:
    product: str  # transcriptions | chat_unlocks | chat_queries
    total: Decimal
    count: int
    cost: Decimal = Decimal(0)


@dataclass(frozen=True)
class StarsLine:
    """Telegram Stars received for one product: whole Stars, never converted nor summed
    with USDC."""

    product: str  # transcriptions | chat_unlocks | chat_queries
    stars: int
    count: int


@dataclass(frozen=True)
class RevenueReport:
    period: str
    since: datetime | None
    lines: list[RevenueLine]  # USDC only
    paying_users: int
    refunds: Decimal
    top_spaces: list[SpaceView]
    chart_png: bytes | None = None
    stars_lines: list[StarsLine] = field(default_factory=list)
    stars_refunded: int = 0
    stars_refund_count: int = 0
    enrichment_tokens: int = 0  # summary model tokens, in the transcriptions cost
    enrichment_cost: Decimal = Decimal(0)

    @property
    def cost(self) -> Decimal:
        return sum((line.cost for line in self.lines), Decimal(0))

    @property
    def margin(self) -> Decimal:
        return self.total - self.cost

    @property
    def total(self) -> Decimal:
        """USDC received (Stars are reported apart: :attr:`stars_total`)."""
        return sum((line.total for line in self.lines), Decimal(0))

    @property
    def stars_total(self) -> int:
        return sum(line.stars for line in self.stars_lines)

    @property
    def stars_count(self) -> int:
        return sum(line.count for line in self.stars_lines)
