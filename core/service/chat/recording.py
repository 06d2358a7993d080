"""A paid answer's traces: its ``chat_sessions`` row and the ``chat_answer`` message.

``record_answer`` writes ``chat_sessions`` in the crediting transaction (once per invoice:
``chat_sessions.invoice_id`` is unique); ``tell_answer`` queues the message that brings
the answer to a member who asked from Telegram/Discord.
"""

from __future__ import annotations

import json
import uuid

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core import outbox
from core.chat.answer import AnswerDraft
from core.db import Account, ChatSession, Invoice
from core.money import canonical_units


async def tell_answer(session: AsyncSession, inv: Invoice, session_id: str | None) -> None:
    """Queue the ``chat_answer`` message for a member who asked from Telegram/Discord.
    Without a session id the answer is still owed: it is produced when the message is sent."""
    acc = await session.get(Account, inv.account_id) if inv.account_id else None
    if acc is None:
        return
    await outbox.add_message(
        session,
        kind="chat_answer",
        platform=acc.platform,
        recipient=acc.platform_user_id,
        payload={"session_id": session_id} if session_id else {"invoice_id": inv.public_id},
        dedupe_key=f"chat_answer:{inv.public_id}",
        origin_chat_id=inv.origin_chat_id,
    )


async def record_answer(
    session: AsyncSession,
    *,
    user_id: int,
    question: str,
    space_ids: list[str],
    draft: AnswerDraft,
    amount_units: int,
    transaction_hash: str | None,
    invoice_pk: int | None = None,
    session_id: str | None = None,
) -> str:
    """Insert the ``chat_sessions`` row exactly per the seed; returns its session_id."""
    sid = session_id or str(uuid.uuid4())
    await session.execute(
        insert(ChatSession).values(
            session_id=sid,
            user_id=user_id,
            space_ids=json.dumps(space_ids),
            question=question,
            answer=draft.answer,
            sources=json.dumps([src.as_json() for src in draft.sources], ensure_ascii=False),
            num_spaces=len(space_ids),
            amount_usdc=canonical_units(amount_units),
            transaction_hash=transaction_hash,
            model=draft.model,
            tokens_used=draft.tokens_used,
            invoice_id=invoice_pk,
        )
    )
    return sid
