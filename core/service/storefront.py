"""What the web storefront shows: the library (recent and popular completed Spaces) and one
Space's page for a visitor or a signed-in buyer. Read-only; buying, unlocking and asking go
through :mod:`core.service.purchases` and :mod:`core.service.chat` like the bots'."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select

from core import transcripts
from core.accounts import user_id_for
from core.context import Context
from core.db import Space
from core.money import chat_price
from core.queue import position
from core.results import Answer, Caller, Refused, SpaceView
from core.service.catalog import find_space, owns, parse_or_refuse, popular
from core.service.chat import answers_on
from core.service.demo_space import is_demo
from core.service.purchases import unlocked
from core.service.views import space_view
from core.spaces import canonical_url
from core.statuses import SpaceStatus

RECENT_LIMIT = 12


@dataclass(frozen=True)
class Library:
    recent: list[SpaceView]
    popular: list[SpaceView]


@dataclass(frozen=True)
class Prices:
    transcription: Decimal
    chat_unlock: Decimal
    question: Decimal  # one question over this one Space


@dataclass(frozen=True)
class SpacePage:
    space_id: str
    url: str
    view: SpaceView | None  # None: not in the library yet (it can still be ordered)
    prices: Prices
    demo: bool
    owned: bool = False
    chat_unlocked: bool = False
    formats: list[str] = field(default_factory=list)  # transcript formats held, if owned
    answers: list[Answer] = field(default_factory=list)


async def recent(ctx: Context, limit: int = RECENT_LIMIT) -> list[SpaceView]:
    """The latest completed Spaces (``idx_completed_at``)."""
    async with ctx.db.read() as s:
        rows = await s.execute(
            select(Space)
            .where(Space.status == SpaceStatus.COMPLETED)
            .order_by(Space.completed_at.desc(), Space.id.desc())
            .limit(limit)
        )
        return [space_view(sp) for sp in rows.scalars()]


async def library(ctx: Context) -> Library:
    return Library(await recent(ctx), await popular(ctx))


def prices(ctx: Context) -> Prices:
    p = ctx.settings.prices
    return Prices(p.transcription, p.chat_unlock, chat_price(1, p))


async def space_page(ctx: Context, caller: Caller | None, text: str) -> SpacePage | Refused:
    """One Space as its page shows it: metadata, status (queue position), prices, and for
    its owner the transcript files, the chat unlock and the answers they paid for."""
    sid = parse_or_refuse(text)
    if isinstance(sid, Refused):
        return sid
    async with ctx.db.read() as s:
        space = await find_space(s, sid)
        if space is None:
            return SpacePage(sid, canonical_url(sid), None, prices(ctx), is_demo(sid))
        pos = await position(s, space.id) if space.status == SpaceStatus.PENDING else None
        view = space_view(space, pos)
        uid = await user_id_for(s, caller) if caller is not None else None
        owned = await owns(s, uid, space.id)
        is_unlocked = owned and await unlocked(s, uid, space.id)
        formats = []
        if owned and space.status == SpaceStatus.COMPLETED:
            formats = await transcripts.formats(s, ctx.spaces_dir, space)
    answers = await answers_on(ctx, caller, sid) if caller is not None and owned else []
    return SpacePage(
        sid,
        view.url,
        view,
        prices(ctx),
        is_demo(sid),
        owned=owned,
        chat_unlocked=is_unlocked,
        formats=formats,
        answers=answers,
    )
