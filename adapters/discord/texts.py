"""Every Discord reply in one place: Markdown text, embeds, link buttons and attachments.

Text that came from outside (titles, speakers, questions, answers) is escaped, and no reply
can ping anyone (the client sends with ``AllowedMentions.none()``). Discord's limits are
kept here: 2,000 characters of content, 4,096 of embed description, 1,024 per field.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import discord
from discord.utils import escape_markdown

from core import results as res
from core.enrich.text import overview as enrichment_overview
from core.money import display
from core.pipeline.render import hms
from core.service.notices import (
    chapter_list,
    costs_line,
    product,
    quote_notes,
    stars_text,
    teaser,
)

CONTENT_MAX = 2000
DESCRIPTION_MAX = 4096
FIELD_MAX = 1024
TITLE_MAX = 256
FIELDS_MAX = 25
CHOICE_MAX = 100
COLOUR = discord.Colour.blurple()


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def esc(text: str) -> str:
    return escape_markdown(text or "", as_needed=False)


def code(text: str) -> str:
    return f"`{text.replace('`', '')}`"


@dataclass(frozen=True)
class Out:
    """One message: what ``send``/``followup.send`` takes, with the file built per send
    (a ``discord.File`` is consumed by sending it)."""

    content: str | None = None
    embed: discord.Embed | None = None
    links: tuple[tuple[str, str], ...] = ()  # (label, url) link buttons
    attachment: tuple[str, bytes] | None = None
    items: tuple[discord.ui.Item[Any], ...] = ()  # buttons the bot answers (persistent)

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.content:
            out["content"] = clip(self.content, CONTENT_MAX)
        if self.embed is not None:
            out["embed"] = self.embed
        if self.links or self.items:
            view = discord.ui.View(timeout=None)
            for label, url in self.links:
                view.add_item(discord.ui.Button(label=label, url=url))
            for item in self.items:
                view.add_item(item)
            out["view"] = view
        if self.attachment is not None:
            name, data = self.attachment
            out["file"] = discord.File(io.BytesIO(data), filename=name)
        return out


def _embed(title: str, description: str = "", url: str | None = None) -> discord.Embed:
    return discord.Embed(
        title=clip(esc(title), TITLE_MAX),
        description=clip(description, DESCRIPTION_MAX) or None,
        url=url,
        colour=COLOUR,
    )


def space_name(v: res.SpaceView) -> str:
    length = f", {hms(v.duration_seconds)}" if v.duration_seconds else ""
    return f"**{esc(v.title)}** ({code(v.space_id)}{length})"


def choice(v: res.SpaceView) -> str:
    """An autocomplete entry: the title, then the id (Discord shows at most 100 characters)."""
    tail = f" · {v.space_id}"
    return clip(v.title or "X Space", CHOICE_MAX - len(tail)) + tail


HELP = (
    "**spacescribe** turns X Spaces into transcripts, paid in USDC.\n\n"
    "`/transcribe` a Space link or id: its transcript ({transcription}), sent to you by DM\n"
    "`/unlock` a Space you own: AI chat on it ({unlock})\n"
    "`/chat` a question across your unlocked Spaces ({chat_base} + {per_space} per Space)\n"
    "`/myspaces` your Spaces (pick one to get its transcript here) · `/status` of a Space\n"
    "`/popular` · `/search` titles and speakers · `/wallet` link a wallet, see your credit\n\n"
    "Payment details are only shown to you. If your DMs are closed, I tell you here."
)


def refused(r: res.Refused) -> Out:
    return Out(content=f"⚠️ {esc(r.message)}")


def imported(summary: str) -> Out:
    return Out(content=f"✅ {esc(summary)}")


def failure() -> Out:
    return Out(content="Something went wrong on our side; nothing was charged. Try again shortly.")


def quote(q: res.Quote) -> Out:
    lines = [f"Amount: **{display(q.amount)}**"]
    until = discord.utils.format_dt(q.expires_at.replace(tzinfo=UTC), "f")  # naive UTC
    lines.append(f"Pay before {until} with the button below.")
    lines += quote_notes(q, code)
    lines.append("You get a confirmation by DM as soon as the payment is verified.")
    if q.space is not None:
        lines += ["", *teaser(q.space, esc)]
    spaces = ", ".join(code(s) for s in q.space_ids)
    title = f"{product(q.kind)}: {q.space.title if q.space else ', '.join(q.space_ids)}"
    embed = _embed(title, "\n".join(lines), q.space.url if q.space else None)
    embed.add_field(name="Spaces", value=clip(spaces, FIELD_MAX), inline=False)
    return Out(embed=embed, links=(("Pay with wallet", q.pay_url),))


def transcript(t: res.Transcript, intro: str = "") -> Out:
    """The transcript header as an embed (title, duration, speakers) with the file."""
    v = t.space
    embed = _embed(v.title or "X Space", intro, v.url)
    if v.duration_seconds:
        embed.add_field(name="Duration", value=hms(v.duration_seconds))
    if t.speakers:
        embed.add_field(name="Speakers", value=clip(esc(", ".join(t.speakers)), FIELD_MAX))
    embed.set_footer(text=f"Space {v.space_id}")
    content = None
    if t.overview is not None and t.format == "md":  # takeaways + chapters, ≤ 2,000 chars
        content = (
            enrichment_overview(t.overview, CONTENT_MAX, bold=lambda s: f"**{s}**", escape=esc)
            or None
        )
    return Out(content=content, embed=embed, attachment=(f"transcript.{t.format}", t.content))


def owned(o: res.AlreadyOwned) -> Out:
    if o.kind == "chat_unlock":
        return Out(content=f"Chat is already unlocked on {space_name(o.space)}.")
    if o.transcript is not None:
        return transcript(o.transcript, "You already own this Space: here it is again.")
    return Out(
        content=f"You already own {space_name(o.space)}. Status: **{o.space.status}**; "
        "you get it by DM as soon as it is ready."
    )


def granted(g: res.Granted) -> Out:
    spaces = ", ".join(code(s) for s in g.space_ids)
    return Out(content=f"✅ {product(g.kind)} of {spaces} paid from your account credit.")


def status(v: res.SpaceView) -> Out:
    lines = [f"Status: **{v.status}**"]
    if v.queue_position:
        lines.append(f"Position {v.queue_position} in the queue")
    if v.error:
        lines.append(f"Error: {esc(v.error)}")
    embed = _embed(v.title or "X Space", "\n".join(lines), v.url)
    embed.set_footer(text=f"Space {v.space_id}")
    return Out(embed=embed)


def my_spaces(items: list[res.OwnedSpace]) -> Out:
    if not items:
        return Out(content="You have no Spaces yet. Use `/transcribe` with a Space link.")
    rows = []
    for i in items:
        extra = " · chat unlocked" if i.chat_unlocked else ""
        rows.append(f"• {space_name(i.space)}: {i.space.status}{extra}")
    hint = (
        "\n\nPick one with `/myspaces space:` to get its transcript here "
        "(`format:` md, json, srt or vtt)."
    )
    body = clip("\n".join(rows), DESCRIPTION_MAX - len(hint)) + hint
    return Out(embed=_embed("Your Spaces", body))


def popular(items: list[res.SpaceView]) -> Out:
    if not items:
        return Out(content="No transcribed Spaces yet.")
    rows = [
        f"{n}. {space_name(v)}: {v.transcription_count} buyers" + _chapters(v)
        for n, v in enumerate(items, 1)
    ]
    return Out(embed=_embed("Popular Spaces", "\n".join(rows)))


def _chapters(v: res.SpaceView) -> str:
    return f"\n  Chapters: {esc(chapter_list(v, 300))}" if v.chapters else ""


def search(hits: list[res.SearchHit]) -> Out:
    """A field per hit: the Space, then the matching passage (only in the member's own)."""
    if not hits:
        return Out(content="Nothing found.")
    embed = _embed("Search")
    for h in hits[:FIELDS_MAX]:
        v = h.space
        passage = (
            f"[{hms(h.start or 0)}] “{esc(h.excerpt)}”"
            if h.excerpt
            else f"{v.transcription_count} buyers" + _chapters(v)
        )
        embed.add_field(
            name=clip(f"{v.title} · {v.space_id}", TITLE_MAX),
            value=clip(passage, SOURCE_MAX),
            inline=False,
        )
    return Out(embed=embed)


def wallet(w: res.WalletInfo) -> Out:
    linked = code(w.address) if w.address else "none linked yet"
    text = (
        f"Wallet: {linked}\nCredit: **{display(w.credit)}**\n"
        "Link a wallet (a one-time page, sign in with Ethereum) with the button below."
    )
    return Out(embed=_embed("Your wallet", text), links=(("Link wallet", w.link_url),))


def revenue(r: res.RevenueReport) -> Out:
    embed = _embed(f"Revenue ({r.period})")
    for line in r.lines:
        embed.add_field(
            name=line.product.replace("_", " "),
            value=f"{display(line.total)} ({line.count})\ncost {display(line.cost)}",
        )
    embed.add_field(name="Total", value=f"**{display(r.total)}**", inline=False)
    embed.add_field(name="Costs and margin", value=esc(costs_line(r)), inline=False)
    embed.add_field(name="Paying users (USDC or Stars)", value=str(r.paying_users))
    embed.add_field(name="Refunds", value=display(r.refunds))
    stars = [
        f"{st.product.replace('_', ' ')}: ⭐ {stars_text(st.stars)} ({st.count})"
        for st in r.stars_lines
    ]
    stars.append(
        f"**Total: ⭐ {stars_text(r.stars_total)}** ({r.stars_count}) · refunded "
        f"⭐ {stars_text(r.stars_refunded)} ({r.stars_refund_count})"
    )
    embed.add_field(
        name="Telegram Stars (never added to USDC)", value="\n".join(stars), inline=False
    )
    if r.top_spaces:
        top = ", ".join(esc(s.title) for s in r.top_spaces)
        embed.add_field(name="Top Spaces", value=clip(top, FIELD_MAX), inline=False)
    if r.chart_png:
        embed.set_image(url="attachment://revenue.png")
        return Out(embed=embed, attachment=("revenue.png", r.chart_png))
    return Out(embed=embed)


SOURCES_SHOWN = 8
SOURCE_MAX = 300


def answer(a: res.Answer) -> Out:
    """A paid answer: the question as title, the answer, then numbered cited sources."""
    note = ""
    if a.model == "extractive":
        note = "\n\n*No AI model is configured: these are the best matching passages.*"
    embed = _embed(clip(a.question, TITLE_MAX), clip(esc(a.answer), 3000) + note)
    for n, s in enumerate(a.sources[:SOURCES_SHOWN], 1):
        who = f"{esc(s.speaker)}: " if s.speaker else ""
        embed.add_field(
            name=f"[{n}] {s.space_id} {hms(s.start)}",
            value=clip(f"{who}“{esc(s.excerpt)}”\n{s.url}", SOURCE_MAX),
            inline=False,
        )
    return Out(embed=embed)


def dm_closed(user_id: str, space_id: str | None) -> str:
    """Said in the channel a command came from when the member's DMs are closed."""
    what = f"the transcript of {code(space_id)}" if space_id else "a message for you"
    pick = f"`/myspaces space:{space_id}`" if space_id else "`/myspaces`"
    return (
        f"<@{user_id}> I could not send you {what}: your direct messages are closed. "
        f"Get it here with {pick}, or allow DMs from this server's members."
    )


SHOW_ANSWER = "Show my answer"


def answer_dm_closed(user_id: str) -> str:
    """Said in the channel a paid question came from when its answer cannot be DMed."""
    return (
        f"<@{user_id}> I could not send you the answer you paid for: your direct messages are "
        f"closed. Press **{SHOW_ANSWER}** to see it here; only you will see it."
    )


def outcome(result: res.Refused | res.Quote | res.AlreadyOwned | res.Granted) -> Out:
    """What a purchase request answered: refused, a quote to pay, owned, or paid by credit."""
    if isinstance(result, res.Refused):
        return refused(result)
    if isinstance(result, res.Quote):
        return quote(result)
    if isinstance(result, res.AlreadyOwned):
        return owned(result)
    return granted(result)
