"""The contract between the outbox (core) and the platform adapters that deliver messages.

Core code never talks to Discord or Telegram: it writes an ``outbox`` row in the same
transaction as the change that causes it (payment credited, transcript ready, job failed,
refund). A scheduler job drains the outbox through the :class:`MessageSender` the running
adapter of the row's platform added to ``ctx.wiring.senders``, and records what happened, so a
crash never loses nor repeats a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

# Message kinds (outbox.kind) and their payload keys (JSON):
#   payment_confirmed  {invoice_id, kind, space_ids, amount} (+ {currency: "XTR", stars}
#                      when paid in Telegram Stars; amount is then "0.0" USDC)
#   transcript_ready   {space_id}              -> attach its transcript.md (core.transcripts)
#   chat_answer        {session_id}            -> render the chat_sessions row
#                      or {invoice_id}         -> an owed answer, produced when it is sent;
#                      one that cannot be produced (last attempt, or refused for good) is
#                      refunded (refunds.settle_unanswered_question) and the row fails
#   job_failed         {space_id, error}
#   refunded           {space_id, amount, reason}
#                      or {space_ids, amount, reason, unanswered: true} (a question)
#   wallet_linked      {address}
#   stars_refund       {charge_id, stars, reason, [space_id]} -> Telegram only: the adapter
#                      calls refundStarPayment, records it (stars.mark_refunded), tells the member
MessageKind = Literal[
    "payment_confirmed",
    "transcript_ready",
    "chat_answer",
    "job_failed",
    "refunded",
    "wallet_linked",
    "stars_refund",
]


@dataclass(frozen=True)
class OutboundMessage:
    id: int
    kind: str
    platform: str
    recipient: str  # platform user id (DM target)
    origin_chat_id: str | None  # the chat the command came from
    payload: dict[str, Any]
    attempts: int
    # this is the row's last attempt under the drain's retry policy: a sender that would
    # answer "retry" now gives up instead (an owed chat answer is refunded, not lost)
    last_attempt: bool = False


@dataclass(frozen=True)
class Delivery:
    """What an adapter reports for one message."""

    status: Literal["sent", "retry", "undeliverable", "failed"]
    retry_after: float | None = None  # seconds, for "retry" (e.g. 429 retry_after)
    detail: str | None = None
    # "undeliverable": the DM could not be delivered (blocked / DMs closed); the adapter has
    # already told the member in origin_chat_id where possible. The row is not retried.


class MessageSender(Protocol):
    platform: str

    async def deliver(self, message: OutboundMessage) -> Delivery: ...
