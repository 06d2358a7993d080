"""Paid answers delivered and shown again: the ``chat_answer`` message's answer (an owed
one produced then), ``answer_for`` (to its buyer only, when its DM failed) and the
buyer's answers on a Space page.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import exists, select

from core import refunds
from core.accounts import user_id_for
from core.context import Context
from core.db import ChatSession, Invoice, PaymentReceipt, StarPayment
from core.logging import get_logger
from core.money import parse_usdc
from core.results import Answer, Caller, Refused, Source
from core.service.chat.asking import answer
from core.service.chat.recording import record_answer
from core.spaces import canonical_url
from core.statuses import InvoiceStatus

_ANSWER_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

log = get_logger("spacescribe.chat")


UNANSWERED = "unanswered_refunded"  # a delivered_answer refusal that is final


async def delivered_answer(
    ctx: Context, payload: dict[str, Any], last_attempt: bool = False
) -> Answer | Refused | None:
    """The answer a ``chat_answer`` message carries. An owed answer (paid, credited without
    one) is produced and recorded now, once per invoice (``chat_sessions.invoice_id`` is
    unique); a Refused means "not now" (the model is down) and the message is retried —
    except on the outbox's ``last_attempt``, or when the question can no longer be answered
    at all: then the payer is refunded (Stars in Stars, USDC as account credit, once) and the
    Refused's code is :data:`UNANSWERED` (do not retry). A refunded question is never
    answered afterwards."""
    if payload.get("session_id"):
        return await answer_of(ctx, str(payload["session_id"]))
    public_id = str(payload.get("invoice_id") or "")
    async with ctx.db.session() as s:
        inv = (
            await s.execute(select(Invoice).where(Invoice.public_id == public_id))
        ).scalar_one_or_none()
        if inv is None or inv.user_id is None or inv.status != InvoiceStatus.CREDITED:
            return None
        done = await s.scalar(
            select(ChatSession.session_id).where(ChatSession.invoice_id == inv.id)
        )
        tx = await s.scalar(
            select(PaymentReceipt.transaction_hash).where(PaymentReceipt.invoice_id == inv.id)
        )
        in_stars = await s.scalar(  # a Stars purchase records 0 USDC
            select(exists().where(StarPayment.invoice_id == inv.id))
        )
        refunded = await refunds.question_refunded(s, inv)
    if done:
        return await answer_of(ctx, done)
    if refunded:
        return _unanswered()
    data = json.loads(inv.payload) if inv.payload else {}
    ids: list[str] = json.loads(inv.space_ids)
    draft = await answer(ctx, int(inv.user_id), str(data.get("question") or ""), ids)
    if isinstance(draft, Refused):
        if draft.code == "answer_unavailable" and not last_attempt:
            return draft  # the model may be back at the next attempt
        reason = (
            "the AI model was unavailable" if draft.code == "answer_unavailable" else draft.message
        )
        async with ctx.db.session() as s:
            await refunds.settle_unanswered_question(s, ctx.settings, inv.id, reason)
        log.warning("paid question not answered; refunded", invoice=inv.public_id, why=draft.code)
        return _unanswered()
    async with ctx.db.session() as s:
        sid = await record_answer(
            s,
            user_id=int(inv.user_id),
            question=str(data.get("question") or ""),
            space_ids=ids,
            draft=draft,
            amount_units=0 if in_stars else int(inv.amount_units),
            transaction_hash=tx,
            invoice_pk=inv.id,
        )
    return await answer_of(ctx, sid)


def _unanswered() -> Refused:
    return Refused(UNANSWERED, "This paid question could not be answered; it was refunded.")


async def answer_of(ctx: Context, session_id: str) -> Answer | None:
    """A recorded answer as the adapters render it (the ``chat_answer`` message)."""
    async with ctx.db.session() as s:
        row = (
            await s.execute(select(ChatSession).where(ChatSession.session_id == session_id))
        ).scalar_one_or_none()
    return _answer_view(row) if row is not None else None


def valid_answer_id(text: str) -> bool:
    """An answer's id is its ``chat_sessions.session_id``: a lower-case UUID (36 characters,
    so ``answer_<id>`` fits a Telegram start payload and a Discord custom_id)."""
    return isinstance(text, str) and _ANSWER_ID.fullmatch(text) is not None


async def answer_for(ctx: Context, caller: Caller, answer_id: str) -> Answer | Refused:
    """A paid answer again, for the member who paid for it: the way back to an answer whose
    direct message could not be delivered (Telegram deep link, Discord button).

    Only the buyer of the answer's credited invoice gets it (the caller's linked user, as
    for transcripts); an unknown id and someone else's get the same refusal, so ids cannot
    be probed. A malformed id is refused before the database is asked anything.
    """
    if not valid_answer_id(answer_id):
        return Refused(
            "invalid_answer_id",
            "That is not an answer id: it has 36 characters, like "
            "0f8fad5b-d9cb-469f-a165-70867728950e. Use the link or button the bot posted.",
        )
    async with ctx.db.session() as s:
        user_id = await user_id_for(s, caller)
        row = None
        if user_id is not None:
            row = (
                await s.execute(
                    select(ChatSession)
                    .join(Invoice, Invoice.id == ChatSession.invoice_id)
                    .where(
                        ChatSession.session_id == answer_id,
                        Invoice.kind == "chat_query",
                        Invoice.status == InvoiceStatus.CREDITED,
                        Invoice.user_id == user_id,
                    )
                )
            ).scalar_one_or_none()
    if row is None:
        return Refused(
            "unknown_answer",
            "You have no answer with this id: an answer is shown only to the member who "
            "paid for it.",
        )
    return _answer_view(row)


def _answer_view(row: ChatSession) -> Answer:
    return Answer(
        session_id=row.session_id,
        question=row.question,
        answer=row.answer,
        sources=[
            Source(
                space_id=src["spaceId"],
                start=float(src.get("start") or 0.0),
                end=float(src.get("end") or 0.0),
                speaker=src.get("speaker"),
                excerpt=src["excerpt"],
                url=src.get("url") or canonical_url(src["spaceId"]),
            )
            for src in json.loads(row.sources or "[]")
        ],
        model=row.model or "",
        amount=parse_usdc(row.amount_usdc),
        space_ids=json.loads(row.space_ids),
    )


async def answers_on(ctx: Context, caller: Caller, space_id: str, limit: int = 5) -> list[Answer]:
    """The caller's latest paid answers over ``space_id`` (a validated id), newest first:
    what the storefront's Space page shows its buyer."""
    async with ctx.db.read() as s:
        uid = await user_id_for(s, caller)
        if uid is None:
            return []
        rows = await s.execute(
            select(ChatSession)
            .where(
                ChatSession.user_id == uid,
                ChatSession.space_ids.contains(json.dumps(space_id), autoescape=True),
            )
            .order_by(ChatSession.id.desc())
            .limit(limit)
        )
        return [_answer_view(r) for r in rows.scalars()]
