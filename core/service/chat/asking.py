"""/chat: the checks every entry point shares, the quote, and the paid answer itself.

Access (seed queries 2 and 3), limits and price are decided here, before any model sees a
transcript, so nothing inside a transcript can change them. ``answer`` re-checks a question
and produces its paid answer: after the payment is verified and before it is settled (the
fulfiller, :mod:`core.service.chat.fulfilment`), when an owed answer is delivered
(:mod:`core.service.chat.delivery`), or at once when account credit pays (``ask``).
"""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts import user_id_for
from core.chat import answer as backends
from core.chat.answer import AnswerDraft, AnswerUnavailable
from core.chat.prompt import SpaceRef
from core.chat.retrieve import retrieve
from core.context import Context
from core.db import ChatUnlock, Invoice, Space, TranscriptionPayment
from core.errors import InvalidInput
from core.money import chat_price, to_units
from core.payments.account_credit import credit_balance, lock_credit
from core.results import Caller, Granted, Quote, Refused
from core.service.chat.recording import record_answer, tell_answer
from core.service.invoicing import create_invoice
from core.spaces import parse_space
from core.statuses import SpaceStatus

RETRIEVE_LIMIT = 24


@dataclass(frozen=True)
class Checked:
    user_id: int
    question: str
    spaces: list[SpaceRef]


def clean_question(text: str) -> str:
    """The question with control characters (NUL, ESC, …) as spaces, invisible formatting
    characters (zero-width spaces, bidi overrides) dropped and whitespace collapsed: what is
    left is what a reader sees, so a question of only such characters is an empty one."""
    kept = (" " if unicodedata.category(c) == "Cc" else c for c in text or "")
    return " ".join("".join(c for c in kept if unicodedata.category(c) != "Cf").split())


def _ref(space: Space) -> SpaceRef:
    return SpaceRef(space.id, space.space_id, space.title, space.space_url)


async def validate(
    session: AsyncSession, ctx: Context, user_id: int | None, question: str, spaces: list[str]
) -> Checked | Refused:
    cfg = ctx.settings.chat
    q = clean_question(question)
    if not q:
        return Refused("empty_question", "Ask a question, e.g. /chat what was decided? <space>")
    if len(q) > cfg.max_question_chars:
        return Refused(
            "question_too_long",
            f"Your question has {len(q)} characters; the limit is {cfg.max_question_chars}.",
        )
    if not spaces:
        return Refused("no_spaces", "Name at least one Space (link or id) to ask about.")
    if len(spaces) > cfg.max_spaces:
        return Refused(
            "too_many_spaces",
            f"One question may name at most {cfg.max_spaces} Spaces; you named {len(spaces)}.",
        )
    ids: list[str] = []
    for raw in spaces:
        try:
            sid = parse_space(raw)
        except InvalidInput as e:
            return Refused(e.code, str(e))
        if sid in ids:
            return Refused("duplicate_spaces", f"Space {sid} is named twice; name each once.")
        ids.append(sid)
    rows = (await session.execute(select(Space).where(Space.space_id.in_(ids)))).scalars()
    by_id = {sp.space_id: sp for sp in rows}
    refs: list[SpaceRef] = []
    for sid in ids:
        sp = by_id.get(sid)
        if sp is None:
            return Refused("unknown_space", f"Space {sid} has not been transcribed here.")
        if sp.status != SpaceStatus.COMPLETED:
            return Refused(
                "not_completed",
                f"Space {sid} is not transcribed yet (status: {sp.status}); ask once it is.",
            )
        owned = user_id is not None and await session.scalar(
            select(
                exists().where(
                    TranscriptionPayment.user_id == user_id, TranscriptionPayment.space_id == sp.id
                )
            )
        )
        if not owned:
            return Refused(
                "not_owned",
                f"You have not bought the transcript of Space {sid}. Use /transcribe {sid} first.",
            )
        unlocked = await session.scalar(
            select(exists().where(ChatUnlock.user_id == user_id, ChatUnlock.space_id == sp.id))
        )
        if not unlocked:
            return Refused(
                "not_unlocked",
                f"Chat is not unlocked for Space {sid}. Use /unlock {sid} first.",
            )
        refs.append(_ref(sp))
    assert user_id is not None  # owned implies a user
    return Checked(user_id, q, refs)


async def ask(
    ctx: Context, caller: Caller, question: str, spaces: list[str]
) -> Refused | Quote | Granted:
    """Validate, then quote ``chat_price(n)`` through the payments core's invoice.

    When the caller's account credit covers the price, the payments core grants at once
    (no on-chain payment, so no fulfiller step): the answer is produced FIRST, outside any
    transaction, and recorded in the very transaction that spends the credit — a question
    the model cannot answer spends nothing.
    """
    async with ctx.db.session() as s:
        uid = await user_id_for(s, caller)
        checked = await validate(s, ctx, uid, question, spaces)
        if isinstance(checked, Refused):
            return checked
        units = to_units(chat_price(len(checked.spaces), ctx.settings.prices))
        covered = await credit_balance(s, checked.user_id) >= units
        if not covered:
            return await _invoice(s, ctx, caller, checked, units, {})
    ids = [r.space_id for r in checked.spaces]
    draft = await answer(ctx, checked.user_id, checked.question, ids)
    if isinstance(draft, Refused):
        return draft
    session_id = str(uuid.uuid4())
    async with ctx.db.session() as s:
        # The credit may have been spent while the answer was produced. Under the credit
        # lock the balance cannot change before the invoice spends it, so a session id
        # (which tells the fulfiller "answered from credit") goes only with a Granted; a
        # quote without one is owed its answer when it is paid, by whatever means.
        await lock_credit(s, checked.user_id)
        if await credit_balance(s, checked.user_id) < units:
            return await _invoice(s, ctx, caller, checked, units, {})
        result = await _invoice(s, ctx, caller, checked, units, {"session_id": session_id})
        if isinstance(result, Granted):
            inv = await s.get(Invoice, result.invoice_pk)
            assert inv is not None  # created in this very transaction
            await record_answer(
                s,
                user_id=checked.user_id,
                question=checked.question,
                space_ids=ids,
                draft=draft,
                amount_units=units,
                transaction_hash=None,
                invoice_pk=inv.id,
                session_id=session_id,
            )
            await tell_answer(s, inv, session_id)
        return result


async def _invoice(
    session: AsyncSession,
    ctx: Context,
    caller: Caller,
    checked: Checked,
    units: int,
    extra: dict[str, Any],
) -> Quote | Granted:
    result: Quote | Granted = await create_invoice(
        session,
        ctx,
        caller=caller,
        user_id=checked.user_id,
        kind="chat_query",
        space_ids=[r.space_id for r in checked.spaces],
        amount_units=units,
        payload={"question": checked.question, **extra},
    )
    return result


async def answer(
    ctx: Context, user_id: int, question: str, space_ids: list[str]
) -> AnswerDraft | Refused:
    """The paid answer, produced before settlement: re-checked, retrieved, answered."""
    async with ctx.db.session() as s:
        checked = await validate(s, ctx, user_id, question, space_ids)
        if isinstance(checked, Refused):
            return checked
        hits = await retrieve(s, [r.pk for r in checked.spaces], checked.question, RETRIEVE_LIMIT)
    refs = {r.pk: r for r in checked.spaces}
    try:
        return await backends.answer(ctx, checked.question, hits, refs)
    except AnswerUnavailable:
        return Refused(
            "answer_unavailable",
            "The AI model could not answer right now; you have not been charged. Try again later.",
        )
