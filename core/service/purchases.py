"""Buying: /transcribe and /unlock for chat members, and the same for x402 API payers.

A member never pays twice for what they own (AlreadyOwned), an unlock needs the transcript
first (seed query 3), and a Space that cannot be recorded is refused before any invoice is
made (``check_space``, provided by the pipeline; a no-op until it exists).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts import normalize_wallet, user_id_of_wallet
from core.context import Context
from core.db import ChatUnlock, Invoice, utcnow
from core.logging import get_logger
from core.money import chat_price, to_units
from core.payments import pay_invoice
from core.payments.invoices import discard_invoice, quote_for
from core.payments.outcomes import PaymentOutcome
from core.results import AlreadyOwned, Caller, Granted, Quote, Refused, Transcript
from core.service.catalog import find_space, ownership, owns, parse_or_refuse
from core.service.invoicing import create_invoice
from core.service.views import format_problem, space_view, transcript_of
from core.statuses import InvoiceStatus, SpaceStatus

log = get_logger("spacescribe.purchases")


class _Titled(Protocol):
    @property
    def title(self) -> str: ...


# The metadata check before paying: a Refused (not found / private / no replay / X refuses
# us / unreachable), or what we know of the Space (``core.pipeline.run.Checked``: its
# metadata names the new ``spaces`` row, its ``note`` is told to the buyer), or None.
SpaceCheck = Callable[[Context, str], Awaitable[Refused | _Titled | None]]


def checked_payload(checked: object) -> dict[str, Any] | None:
    """The metadata an invoice carries to the ``spaces`` row (title, creator, start...)."""
    payload = getattr(checked, "payload", None)
    if callable(payload):
        return dict(payload())
    title = getattr(checked, "title", None)
    return {"title": title} if title else None


async def pipeline_check_space(ctx: Context, space_id: str) -> Refused | _Titled | None:
    """``core.pipeline.run.check_space`` as a value: library first (a Space we hold is never
    asked about), then X; a Space that cannot be transcribed is refused before any invoice;
    if X cannot be asked right now, nobody is asked to pay."""
    from core.pipeline.errors import SpaceUnavailable
    from core.pipeline.run import check_space

    try:
        return await check_space(ctx, space_id)
    except SpaceUnavailable as exc:
        return Refused(exc.code, str(exc))
    except Exception as exc:
        log.warning("space metadata unavailable", space=space_id, error=type(exc).__name__)
        return Refused(
            "metadata_unavailable",
            f"Space {space_id} could not be checked right now; try again in a minute.",
        )


def default_check_space() -> SpaceCheck:
    return pipeline_check_space


async def unlocked(session: AsyncSession, user_id: int | None, space_pk: int) -> bool:
    if user_id is None:
        return False
    return bool(
        await session.scalar(
            select(exists().where(ChatUnlock.user_id == user_id, ChatUnlock.space_id == space_pk))
        )
    )


async def _open_quote(
    session: AsyncSession, ctx: Context, caller: Caller, kind: str, sid: str
) -> Quote | None:
    """The caller's still-open invoice for the same thing: one price, one pay link."""
    from core.accounts import find_account

    acc = await find_account(session, caller)
    if acc is None:
        return None
    inv = (
        await session.execute(
            select(Invoice)
            .where(
                Invoice.account_id == acc.id,
                Invoice.kind == kind,
                Invoice.space_ids == json.dumps([sid]),
                Invoice.status == InvoiceStatus.OPEN,
                Invoice.expires_at > utcnow(),
            )
            .order_by(Invoice.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    return quote_for(ctx, inv) if inv is not None else None


async def _quote(
    ctx: Context,
    caller: Caller,
    kind: str,
    sid: str,
    price: Decimal,
    payload: dict[str, Any] | None = None,
) -> Quote | Granted:
    """The caller's open invoice for this, or a new one (paid from credit when it covers it)."""
    async with ctx.db.session() as s:
        return await _open_quote(s, ctx, caller, kind, sid) or await create_invoice(
            s,
            ctx,
            caller=caller,
            user_id=None,
            kind=kind,
            space_ids=[sid],
            amount_units=to_units(price),
            payload=payload,
        )


async def request_transcription(
    ctx: Context, caller: Caller, text: str, *, check_space: SpaceCheck | None = None
) -> Refused | AlreadyOwned | Quote | Granted:
    sid = parse_or_refuse(text)
    if isinstance(sid, Refused):
        return sid
    async with ctx.db.session() as s:
        space, _user_id, owned = await ownership(s, caller, sid)
        if space is not None and owned:
            if (
                space.status == SpaceStatus.FAILED
            ):  # paid, never refunded (no credit policy): again, free
                await retry_failed_space(s, ctx, space.id)
                space.status, space.error_message = SpaceStatus.PENDING, None
            return AlreadyOwned(
                "transcription", space_view(space), await transcript_of(s, ctx, space)
            )
    checked = await (check_space or default_check_space())(ctx, sid)
    if isinstance(checked, Refused):
        return checked
    payload = checked_payload(checked) if checked is not None else None
    if space is not None and space.status != SpaceStatus.FAILED:
        payload = {**(payload or {}), "title": space.title}
    price = ctx.settings.prices.transcription
    result = await _quote(ctx, caller, "transcription", sid, price, payload)
    if isinstance(result, Quote):
        if space is not None:
            result = dataclasses.replace(result, space=space_view(space))
        note = getattr(checked, "note", None)
        if note:
            result = dataclasses.replace(result, note=note)
    return result


async def retry_failed_space(session: AsyncSession, ctx: Context, space_pk: int) -> bool:
    """A Space that failed for good gets a fresh attempt (ask again after a failure)."""
    from sqlalchemy import update

    from core import queue
    from core.db import Space

    moved = await session.execute(
        update(Space)
        .where(Space.id == space_pk, Space.status == SpaceStatus.FAILED)
        .values(status=SpaceStatus.PENDING, error_message=None)
    )
    if not getattr(moved, "rowcount", 0):
        return False
    await queue.enqueue(session, space_pk, max_retries=ctx.settings.queue.max_retries)
    return True


async def request_unlock(
    ctx: Context, caller: Caller, text: str
) -> Refused | AlreadyOwned | Quote | Granted:
    sid = parse_or_refuse(text)
    if isinstance(sid, Refused):
        return sid
    async with ctx.db.session() as s:
        space, user_id, owned = await ownership(s, caller, sid)
        if space is None or not owned:
            return Refused(
                "not_owned",
                f"Chat needs the transcript first: buy it with /transcribe {sid}.",
            )
        if await unlocked(s, user_id, space.id):
            return AlreadyOwned("chat_unlock", space_view(space))
    result = await _quote(ctx, caller, "chat_unlock", sid, ctx.settings.prices.chat_unlock)
    if isinstance(result, Quote):
        result = dataclasses.replace(result, space=space_view(space))
    return result


# ---------------------------------------------------------------- x402 API buyers


def price_units(ctx: Context, kind: str, n_spaces: int = 1) -> int:
    p = ctx.settings.prices
    if kind == "transcription":
        return to_units(p.transcription)
    if kind == "chat_unlock":
        return to_units(p.chat_unlock)
    return to_units(chat_price(n_spaces, p))


async def x402_preflight(
    ctx: Context, kind: str, space_ids: list[str], payer: str | None
) -> Refused | AlreadyOwned | None:
    """Before anything is charged: is the request refused, or does the payer own it?"""
    async with ctx.db.session() as s:
        user_id = await user_id_of_wallet(s, payer) if payer else None
        if kind == "transcription":
            space = await find_space(s, space_ids[0])
            if space is not None and await owns(s, user_id, space.id):
                return AlreadyOwned(
                    "transcription", space_view(space), await transcript_of(s, ctx, space)
                )
            return None
        if kind == "chat_unlock":
            space = await find_space(s, space_ids[0])
            if space is None or not await owns(s, user_id, space.id):
                return Refused(
                    "not_owned", f"Chat needs the transcript first: buy {space_ids[0]} first."
                )
            if await unlocked(s, user_id, space.id):
                return AlreadyOwned("chat_unlock", space_view(space))
    return None


async def x402_buy(
    ctx: Context,
    kind: str,
    space_ids: list[str],
    payer: str,
    payment_payload: Any,
    payload: dict[str, Any] | None = None,
) -> PaymentOutcome:
    """Invoice for the payer and pay it with their x402 payload, in one go."""
    async with ctx.db.session() as s:
        q = await create_invoice(
            s,
            ctx,
            caller=None,
            user_id=None,
            kind=kind,
            space_ids=space_ids,
            amount_units=price_units(ctx, kind, len(space_ids)),
            payload=payload,
            payer_address=normalize_wallet(payer),
        )
    assert isinstance(q, Quote)  # no caller, no account credit: always a quote
    outcome = await pay_invoice(ctx, q.invoice_id, payment_payload)
    if isinstance(outcome, Refused):  # a refused payment leaves nothing behind
        await discard_invoice(ctx, q.invoice_id)
    return outcome


async def transcript_for_wallet(
    ctx: Context, space_id: str, wallet: str, fmt: str = "md"
) -> Transcript | Refused:
    """The transcript (md, json, srt or vtt) for an x402 buyer identified by a proven wallet."""
    if bad := format_problem(fmt):
        return bad
    async with ctx.db.read() as s:
        space = await find_space(s, space_id)
        user_id = await user_id_of_wallet(s, wallet)
        if space is None or not await owns(s, user_id, space.id):
            return Refused("not_owned", f"This wallet has not bought Space {space_id}.")
        t = await transcript_of(s, ctx, space, fmt)
    if t is None:
        return Refused("not_ready", f"The transcript is not ready (status: {space.status}).")
    return t
