"""Space cards for a query typed anywhere (Telegram inline mode: ``@bot <link or words>``).

A Space link or id gives that Space (known or not yet requested); words give the completed
Spaces whose title or participants match; nothing gives the most bought. Only what anyone
may see is used — never transcript text, as a card is posted in somebody else's chat — and
nothing is written: buying starts from the card's button, in private.
"""

from __future__ import annotations

import unicodedata

from core.chat.terms import terms
from core.context import Context
from core.errors import InvalidInput
from core.results import Card, Refused
from core.service import catalog
from core.service.chat import titled
from core.service.views import space_view
from core.spaces import SPACE_ID_RE, parse_space

MAX_QUERY = 256  # what Telegram sends at most in an inline query
LIMIT = 10


def _looks_like_link(text: str) -> bool:
    return " " not in text and ("/" in text or "." in text)


async def cards(ctx: Context, query: str) -> list[Card] | Refused:
    """The cards for ``query``; a refusal says what is wrong with it."""
    query = query or ""
    if len(query) > MAX_QUERY:
        return Refused("query_too_long", f"Type at most {MAX_QUERY} characters.")
    if any(unicodedata.category(c) == "Cc" for c in query):
        return Refused(
            "control_characters", "Control characters are not allowed: type a link or words."
        )
    text = query.strip()
    price = ctx.settings.prices.transcription
    if not text:
        return [Card(v.space_id, price, v) for v in await catalog.popular(ctx)]
    if _looks_like_link(text):
        try:
            sid = parse_space(text)
        except InvalidInput as e:
            return Refused(e.code, str(e))
        return [await _card(ctx, sid)]
    ws = terms(text)
    bare_id = SPACE_ID_RE.fullmatch(text) is not None
    if bare_id:
        card = await _card(ctx, text)
        if card.space is not None:
            return [card]  # the id of a Space we know: that Space
    elif not ws:
        return Refused("empty_query", "Type a Space link, or words from a title or a speaker.")
    async with ctx.db.read() as s:
        spaces = await titled(s, ws, LIMIT) if ws else []
    found = [Card(sp.space_id, price, space_view(sp)) for sp in spaces]
    # a word that merely looks like an id searches too; the offer to order it comes last
    return found + [card] if bare_id else found


async def _card(ctx: Context, space_id: str) -> Card:
    async with ctx.db.read() as s:
        space = await catalog.find_space(s, space_id)
    view = space_view(space) if space is not None else None
    return Card(space_id, ctx.settings.prices.transcription, view)
