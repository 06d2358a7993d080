"""Every Telegram text in one place (HTML parse mode; user input always escaped)."""

from __future__ import annotations

from html import escape

__all__ = ["escape"]

from core.config import Settings
from core.enrich.model import Enrichment
from core.enrich.text import overview as enrichment_overview
from core.money import display
from core.pipeline.render import hms
from core.results import (
    AlreadyOwned,
    Answer,
    Card,
    Granted,
    OwnedSpace,
    Quote,
    Refused,
    RevenueReport,
    SearchHit,
    SpaceView,
    Transcript,
    WalletInfo,
)
from core.service.notices import (
    chapter_list,
    costs_line,
    product,
    quote_notes,
    stars_text,
    teaser,
)
from core.spaces import canonical_url

MAX_MESSAGE = 4096

HELP = (
    "<b>spacescribe</b> turns X Spaces into transcripts, paid in Telegram Stars or USDC.\n\n"
    "/transcribe &lt;link&gt; — the transcript of a Space ({transcription}), sent here as "
    "a file\n"
    "/unlock &lt;space&gt; — AI chat on a Space you own ({unlock})\n"
    "/chat &lt;question&gt; &lt;space…&gt; — ask across Spaces ({chat_base} + {per_space} "
    "per Space)\n"
    "/myspaces [&lt;space&gt; md|json|srt|vtt] — your Spaces, or a transcript file · "
    "/status &lt;space&gt; — processing status\n"
    "/popular · /search &lt;words&gt; · /wallet — link your wallet, see your credit\n"
    "/terms — terms of sale · /paysupport — help with a payment"
)


def refused(r: Refused) -> str:
    return f"⚠️ {escape(r.message)}"


def space_line(v: SpaceView) -> str:
    extra = f", {hms(v.duration_seconds)}" if v.duration_seconds else ""
    return f"<b>{escape(v.title)}</b> (<code>{v.space_id}</code>{extra})"


def status(v: SpaceView) -> str:
    text = f"{space_line(v)}\nStatus: <b>{v.status}</b>"
    if v.queue_position:
        text += f" — position {v.queue_position} in the queue"
    if v.error:
        text += f"\nError: {escape(v.error)}"
    return text


def quote(q: Quote, in_stars: int | None = None, usdc: bool = True) -> str:
    """A price: in USDC and/or in Telegram Stars, whichever the operator allows."""
    what = product(q.kind)
    spaces = ", ".join(f"<code>{s}</code>" for s in q.space_ids)
    prices = ([f"<b>{display(q.amount)}</b>"] if usdc else []) + (
        [f"<b>⭐ {stars_text(in_stars)}</b>"] if in_stars is not None else []
    )
    lines = [f"<b>{what}</b> of {spaces}: {' or '.join(prices)}"]
    if q.space is not None:
        lines += [f"<b>{escape(q.space.title)}</b>", *teaser(q.space, escape)]
    lines.append(
        f"Pay before {q.expires_at:%Y-%m-%d %H:%M} UTC with "
        + ("a button below." if len(prices) > 1 else "the button below.")
    )
    if usdc:
        lines += quote_notes(q, code=lambda s: f"<code>{s}</code>")
    return "\n".join(lines)


def paysupport(contact: str) -> str:
    reach = (
        f"Write to {escape(contact)} with your payment's date and the Space."
        if contact
        else "Reply here with your payment's date and the Space, and the operator will answer."
    )
    return (
        "<b>Payment support</b>\n"
        "Paid but nothing arrived? /myspaces lists what you own, and /status &lt;space&gt; "
        "tells where a transcript is.\n"
        "Telegram Stars are refunded in Stars, automatically, when a Space cannot be "
        "transcribed or a paid question cannot be answered; USDC payments become account "
        "credit (/wallet).\n" + reach
    )


def terms(settings: Settings) -> str:
    p, s = settings.prices, settings.prices.stars
    return (
        "<b>Terms of sale</b>\n"
        "You buy digital goods: the transcript of a recorded X Space (a file sent here), AI "
        "chat on Spaces you own, and answers to questions about them.\n"
        f"Prices: transcript {display(p.transcription)} or {stars_text(s.transcription)}; "
        f"chat unlock {display(p.chat_unlock)} or {stars_text(s.chat_unlock)}; a question "
        f"{display(p.chat_base)} + {display(p.chat_per_space)} per Space, or "
        f"{stars_text(s.chat_base)} + {stars_text(s.chat_per_space)} per Space.\n"
        "Nothing is charged for what you already own. If a Space cannot be transcribed, "
        "Stars payments are refunded in Stars and USDC payments become account credit.\n"
        "Transcripts are machine-made and may contain errors. Help: /paysupport."
    )


def owned(o: AlreadyOwned) -> str:
    if o.kind == "chat_unlock":
        return f"Chat is already unlocked on {space_line(o.space)}."
    if o.transcript:
        return f"You already own {space_line(o.space)}: here it is again."
    return (
        f"You already own {space_line(o.space)}. Status: <b>{o.space.status}</b>; "
        "you will get it here as soon as it is ready."
    )


def granted(g: Granted) -> str:
    return "Paid from your credit: " + ", ".join(f"<code>{s}</code>" for s in g.space_ids)


def overview(e: Enrichment) -> str:
    """Takeaways and chapters, sent before the file (a caption holds only 1024 characters)."""
    return enrichment_overview(e, MAX_MESSAGE, bold=lambda s: f"<b>{s}</b>", escape=escape)


def chapters_line(v: SpaceView) -> str:
    return f"\n  Chapters: {escape(chapter_list(v, 300))}" if v.chapters else ""


def transcript_caption(t: Transcript) -> str:
    speakers = f"\nSpeakers: {escape(', '.join(t.speakers))}" if t.speakers else ""
    return f"{space_line(t.space)}{speakers}"[:1024]


def my_spaces(items: list[OwnedSpace]) -> str:
    if not items:
        return "You have no Spaces yet. Send /transcribe with a Space link."
    return "\n".join(
        f"• {space_line(i.space)} — {i.space.status}"
        + (" · chat unlocked" if i.chat_unlocked else "")
        for i in items
    )


def back_from_payment(items: list[OwnedSpace]) -> str:
    return "Thanks! Here is what you have now:\n" + my_spaces(items)


def start_private_first(bot_username: str) -> str:
    link = f"https://t.me/{bot_username}?start=help"
    return (
        f'Start a private chat with me first, then ask again: <a href="{link}">{escape(link)}</a>'
    )


def popular(items: list[SpaceView]) -> str:
    if not items:
        return "No transcribed Spaces yet."
    return "\n".join(
        f"{n}. {space_line(v)} — {v.transcription_count} buyers{chapters_line(v)}"
        for n, v in enumerate(items, 1)
    )


ANSWER_START = "answer_"  # /start payload (deep link) that shows a paid answer again
BUY_START = "buy_"  # /start payload of a card's button: the private quote for that Space


def buy_link(bot_username: str, space_id: str) -> str:
    return f"https://t.me/{bot_username}?start={BUY_START}{space_id}"


# ---------------------------------------------------------------- inline mode: Space cards

TEASER_CHARS = 600  # each teaser line of a card: a card stays one message
_STATE = {"pending": "being transcribed", "processing": "being transcribed", "failed": "failed"}


def card_title(c: Card) -> str:
    return c.space.title if c.space is not None else f"Space {c.space_id}"


def card_description(c: Card) -> str:
    """The line under a card's title in the inline results (plain text)."""
    v, price = c.space, f"transcript {display(c.price)}"
    if v is None:
        return f"Not requested yet · {price}"
    parts = [hms(v.duration_seconds)] if v.duration_seconds else []
    parts += [_STATE.get(v.status, "transcribed"), price]
    if v.chapters:
        parts.append(f"Chapters: {chapter_list(v, 120)}")
    return " · ".join(parts)


def card(c: Card) -> str:
    """The message a card posts in the chat it is chosen in."""
    v = c.space
    if v is None:
        lines = [
            f"<b>X Space</b> <code>{c.space_id}</code>",
            "Not transcribed yet: the first buyer orders it.",
        ]
    else:
        lines = [
            f"<b>{escape(v.title)}</b> (<code>{v.space_id}</code>)",
            f"Status: <b>{_STATE.get(v.status, 'transcribed')}</b>",
        ]
        lines += teaser(v, lambda t: escape(t[:TEASER_CHARS]))  # cut before escaping
    lines.append(f"Transcript: <b>{display(c.price)}</b> — tap Buy to get your private quote.")
    lines.append(canonical_url(c.space_id))
    return "\n".join(lines)


BUY_BUTTON = "Buy the transcript"
NO_CARDS = "No Space matches"


def no_cards(query: str) -> str:
    return f"{NO_CARDS} “{escape(query.strip()[:64])}”. Try other words, or a Space link."


def _start_link(bot_username: str, payload: str) -> str:
    """A deep link that opens the private chat and sends ``/start <payload>``."""
    link = f"https://t.me/{bot_username}?start={payload}"
    return f'<a href="{link}">{escape(link)}</a>'


def redelivering(n: int) -> str:
    what = "message" if n == 1 else f"{n} messages"
    return f"📬 Sending you now the {what} I could not deliver before."


def blocked_fallback(bot_username: str, space_id: str | None) -> str:
    if not space_id:  # a notice (payment received, refund…): the member must reopen us
        return (
            "I could not send you a direct message. Open the bot and press Start so that I "
            f"can reach you: {_start_link(bot_username, 'help')} (/myspaces shows your Spaces)."
        )
    return (
        "I could not send you a direct message. Open the bot and press Start, then your "
        f"transcript is re-sent: {_start_link(bot_username, f'resend_{space_id}')} "
        "(or use /myspaces)."
    )


def answer_blocked_fallback(bot_username: str, answer_id: str) -> str:
    link = _start_link(bot_username, ANSWER_START + answer_id)
    return (
        "I could not send you the answer you paid for in a direct message. Open the bot and "
        f"press Start, and it is shown to you there: {link}"
    )


IMPORT_HOWTO = (
    "Send the recording as an audio file or a document with the caption "
    "<code>/import &lt;space link or id&gt; [title]</code>. Telegram lets bots fetch files "
    "of at most 20 MB; larger ones: <code>spacescribe import</code> on the server."
)
TOO_BIG_FOR_TELEGRAM = (
    "Telegram does not let bots fetch this file (bots may fetch at most 20 MB). Import it "
    "with spacescribe import on the server."
)


def imported(summary: str) -> str:
    return f"✅ {escape(summary)}"


def usage(command: str, args: str) -> str:
    return f"Usage: /{command} {escape(args)}"


def chunks(text: str) -> list[str]:
    """Split on line breaks to respect Telegram's message limit."""
    out, cur = [], ""
    for line in text.split("\n"):
        if len(cur) + len(line) + 1 > MAX_MESSAGE and cur:
            out.append(cur)
            cur = ""
        cur = f"{cur}\n{line}" if cur else line[:MAX_MESSAGE]
    return out + ([cur] if cur else [])


def answer(a: Answer) -> str:
    lines = [f"<b>Q:</b> {escape(a.question)}", "", escape(a.answer), ""]
    for n, s in enumerate(a.sources, 1):
        who = f" {escape(s.speaker)}:" if s.speaker else ""
        lines.append(
            f'[{n}] <a href="{escape(s.url)}">{s.space_id} {hms(s.start)}</a>{who} '
            f"“{escape(s.excerpt)}”"
        )
    if a.model == "extractive":
        lines.append("\n<i>No AI model is configured: these are the best matching passages.</i>")
    return "\n".join(lines)


def search(hits: list[SearchHit]) -> str:
    if not hits:
        return "Nothing found."
    out = []
    for h in hits:
        line = f"• {space_line(h.space)}{chapters_line(h.space)}"
        if h.excerpt:
            at = f" [{hms(h.start)}]" if h.start is not None else ""
            line += f"\n  {at} “{escape(h.excerpt)}”"
        out.append(line)
    return "\n".join(out)


def wallet(w: WalletInfo) -> str:
    addr = f"<code>{w.address}</code>" if w.address else "none linked yet"
    return (
        f"Wallet: {addr}\nCredit: <b>{display(w.credit)}</b>\n"
        "Link a wallet (one-time link, sign in with Ethereum) with the button below."
    )


def revenue(r: RevenueReport) -> str:
    lines = [f"<b>Revenue</b> ({r.period})"]
    for line in r.lines:
        lines.append(
            f"{line.product.replace('_', ' ')}: {display(line.total)} "
            f"({line.count}), cost {display(line.cost)}"
        )
    lines.append(escape(costs_line(r)))
    lines.append(
        f"<b>Total: {display(r.total)}</b> · paying users {r.paying_users} · "
        f"refunds {display(r.refunds)}"
    )
    lines.append("<b>Telegram Stars</b> (never added to USDC)")
    for st in r.stars_lines:
        lines.append(f"{st.product.replace('_', ' ')}: ⭐ {stars_text(st.stars)} ({st.count})")
    lines.append(
        f"<b>Total: ⭐ {stars_text(r.stars_total)}</b> ({r.stars_count}) · refunded "
        f"⭐ {stars_text(r.stars_refunded)} ({r.stars_refund_count})"
    )
    if r.top_spaces:
        lines.append("Top: " + ", ".join(escape(s.title) for s in r.top_spaces))
    return "\n".join(lines)
