"""What outbox notices and quotes say, once for every platform.

Adapters pass their own markup: ``code`` wraps an id or address (``<code>`` on Telegram,
backticks on Discord) and ``escape`` neutralises text that came from outside.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from core import outbox
from core.context import Context
from core.money import MoneyError, display, parse_usdc
from core.pipeline.render import hms
from core.results import Caller, Quote, RevenueReport, SpaceView

Markup = Callable[[str], str]

PRODUCTS = {
    "transcription": "Transcript",
    "chat_unlock": "Chat unlock",
    "chat_query": "Question",
}


def product(kind: str) -> str:
    return PRODUCTS.get(kind, kind)


def _spaces(payload: Mapping[str, Any], code: Markup) -> str:
    ids = payload.get("space_ids") or ([payload["space_id"]] if payload.get("space_id") else [])
    return ", ".join(code(str(s)) for s in ids)


def stars_text(n: Any) -> str:
    """A whole number of Telegram Stars, as shown to members: "15 Stars"."""
    try:
        stars = int(n)
    except (TypeError, ValueError):
        stars = 0
    return f"{stars} Star" + ("" if stars == 1 else "s")


def _amount(raw: Any) -> str:
    try:
        return display(parse_usdc(str(raw)))
    except MoneyError:
        return f"{raw} USDC"


def notice(kind: str, payload: Mapping[str, Any], code: Markup, escape: Markup) -> str:
    """The text of an outbox message that is not a transcript or an answer."""
    spaces = _spaces(payload, code)
    on = f" for {spaces}" if spaces else ""
    if kind == "payment_confirmed":
        paid = _amount(payload.get("amount", "0"))
        if payload.get("currency") == "XTR":
            paid = stars_text(payload.get("stars", 0))
        text = f"✅ Payment received: {paid}{on}. Thank you!"
        if payload.get("kind") == "transcription":
            text += " The transcript comes here as soon as it is ready."
        if payload.get("credit"):
            text += f" {_amount(payload['credit'])} became account credit (already owned)."
        return text
    if kind == "job_failed":
        return f"❌ Processing{on} failed: {escape(str(payload.get('error', '')))}"
    if kind == "refunded":
        credited = f"{_amount(payload.get('amount', '0'))} credited to your account"
        if payload.get("unanswered"):
            why = escape(str(payload.get("reason", "")))
            return f"💳 Your question{on} could not be answered ({why}): {credited}."
        return f"💳 {credited}{on}."
    if kind == "stars_refund":
        return (
            f"⭐ {stars_text(payload.get('stars', 0))} refunded{on}: "
            f"{escape(str(payload.get('reason', '')))}"
        )
    if kind == "wallet_linked":
        return f"🔗 Wallet {code(str(payload.get('address', '')))} linked."
    return f"Update{on}."


TEASER_CHAPTERS_CHARS = 600  # a teaser's chapter list is cut here ("…")


def chapter_list(v: SpaceView, limit: int = TEASER_CHAPTERS_CHARS) -> str:
    text = " · ".join(v.chapters)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def teaser(v: SpaceView, escape: Markup) -> list[str]:
    """What anyone may see of a completed Space before paying: duration, participants and
    chapter titles. Never takeaways, quotes or transcript text: those are what is sold."""
    lines = []
    if v.duration_seconds:
        lines.append(f"Duration: {hms(v.duration_seconds)}")
    if v.participants:
        lines.append(f"Participants: {escape(', '.join(v.participants))}")
    if v.chapters:
        lines.append(f"Chapters: {escape(chapter_list(v))}")
    return lines


def signed(amount: Decimal) -> str:
    return display(amount) if amount >= 0 else "-" + display(-amount)


def costs_line(r: RevenueReport) -> str:
    """Costs, margin and what the summaries' model tokens took (inside transcriptions)."""
    return (
        f"Costs {display(r.cost)} · margin {signed(r.margin)} · summaries "
        f"{r.enrichment_tokens:,} tokens ({display(r.enrichment_cost)}, in transcriptions)"
    )


def quote_notes(q: Quote, code: Markup) -> list[str]:
    """What a quote says besides its price: credit already applied, the plain-transfer way."""
    notes = [q.note] if q.note else []
    if q.credit_applied:
        notes.append(f"Your credit of {display(q.credit_applied)} is already applied.")
    if q.direct:
        notes.append(
            f"Or send exactly {display(q.direct.amount_units)} from your linked wallet "
            f"to {code(q.direct.to)}."
        )
    return notes


async def reachable_again(ctx: Context, caller: Caller) -> int:
    """The member opened a private chat with the bot: what could not be delivered to them
    before (a transcript, an answer, a notice) is sent now. Returns how many messages."""
    async with ctx.db.session() as s:
        return await outbox.release_undelivered(s, caller.platform, caller.platform_user_id)
