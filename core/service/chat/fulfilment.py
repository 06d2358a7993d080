"""Payments' "chat_query" fulfiller: verify → answer → settle → record.

``_fulfil_answer`` produces the answer after the payment is verified and before it is
settled (an unanswered question is not charged); ``_fulfil_record`` records it inside the
crediting transaction; ``_fulfil_owed`` arranges for an answer paid but credited without
one to be produced when its message is delivered.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts import user_id_of_wallet
from core.chat import answer as backends
from core.chat.answer import AnswerDraft
from core.context import Context
from core.db import Invoice
from core.logging import get_logger
from core.results import Refused
from core.service.chat.asking import answer
from core.service.chat.recording import record_answer, tell_answer

if TYPE_CHECKING:  # the payments core imports service modules itself
    from core.payments.fulfil import FulfilRequest, FunctionFulfiller

log = get_logger("spacescribe.chat")


def draft_to_json(draft: AnswerDraft) -> dict[str, Any]:
    return {
        "answer": draft.answer,
        "sources": [s.as_json() for s in draft.sources],
        "model": draft.model,
        "tokens_used": draft.tokens_used,
    }


def draft_from_json(data: dict[str, Any]) -> AnswerDraft:
    return AnswerDraft(
        answer=str(data["answer"]),
        sources=[
            backends.SourceDraft(
                space_id=s["spaceId"],
                start=float(s["start"]),
                end=float(s["end"]),
                speaker=s.get("speaker"),
                excerpt=s["excerpt"],
                url=s["url"],
            )
            for s in data.get("sources", [])
        ],
        model=str(data["model"]),
        tokens_used=int(data.get("tokens_used") or 0),
    )


async def _fulfil_answer(ctx: Context, req: FulfilRequest) -> dict[str, Any] | Refused:
    async with ctx.db.session() as s:
        inv = await s.get(Invoice, req.invoice_pk)
        uid = inv.user_id if inv is not None else None
        if uid is None and inv is not None and inv.account_id is None and req.payer:
            # an x402 buyer is their wallet: what it bought is what it may ask about
            uid = await user_id_of_wallet(s, req.payer)
            if uid is None:
                sid = req.space_ids[0]
                return Refused(
                    "not_owned", f"This wallet has not bought the transcript of Space {sid}."
                )
    if uid is None:
        return Refused("not_linked", "Link your wallet before asking about your Spaces.")
    question = str(req.payload.get("question") or "")
    draft = await answer(ctx, int(uid), question, list(req.space_ids))
    if isinstance(draft, Refused):
        return draft
    # the session id is fixed here so the paid HTTP result and the recorded row agree
    return {"session_id": str(uuid.uuid4()), "question": question, **draft_to_json(draft)}


async def _fulfil_record(
    session: AsyncSession,
    ctx: Context,
    req: FulfilRequest,
    result: dict[str, Any],
    user_id: int,
    transaction_hash: str | None,
) -> None:
    sid = await record_answer(
        session,
        user_id=user_id,
        question=str(result["question"]),
        space_ids=list(req.space_ids),
        draft=draft_from_json(result),
        amount_units=req.amount_units,
        transaction_hash=transaction_hash,
        invoice_pk=req.invoice_pk,
        session_id=result.get("session_id"),
    )
    # members who asked in Telegram/Discord get the answer delivered (once per invoice)
    inv = await session.get(Invoice, req.invoice_pk)
    if inv is not None:
        await tell_answer(session, inv, sid)


async def _fulfil_owed(
    session: AsyncSession, ctx: Context, req: FulfilRequest, user_id: int
) -> None:
    inv = await session.get(Invoice, req.invoice_pk)
    if inv is None:
        return
    if req.payload.get("session_id") and int(inv.credit_units) >= int(inv.amount_units):
        return  # paid from credit by ask(), which records its answer in this transaction
    await tell_answer(session, inv, None)
    log.warning("paid question credited without its answer; answer owed", invoice=req.invoice_id)


def fulfiller() -> FunctionFulfiller:
    """Payments' "chat_query" fulfiller: verify → this answer → settle → record (the wiring
    adds it to ``ctx.wiring.fulfillers``)."""
    from core.payments.fulfil import FunctionFulfiller

    return FunctionFulfiller(_fulfil_answer, _fulfil_record, _fulfil_owed)
