"""Test set-up for chat: completed, indexed Spaces and members who bought and unlocked them."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, insert, select

from core.accounts import get_or_create_account, get_or_create_user, link_account
from core.chat.index import index_segments
from core.context import Context
from core.db import ChatSession, ChatUnlock, Invoice, Space, TranscriptionPayment, utcnow
from core.results import Caller
from core.spaces import canonical_url


def space_id_for(i: int) -> str:
    return f"1Space{i:06d}X"  # 13 characters like X's ids


async def add_space(
    ctx: Context,
    i: int,
    segments: list[dict[str, Any]],
    *,
    title: str | None = None,
    status: str = "completed",
    participants: list[str] | None = None,
) -> int:
    sid = space_id_for(i)
    async with ctx.db.session() as s:
        res = await s.execute(
            insert(Space)
            .values(
                space_id=sid,
                space_url=canonical_url(sid),
                title=title or f"Space number {i}",
                status=status,
                participants=json.dumps(participants or []),
                completed_at=utcnow() if status == "completed" else None,
            )
            .returning(Space.id)
        )
        pk = int(res.scalar_one())
        if segments:
            await index_segments(s, pk, segments)
    return pk


async def member(
    ctx: Context,
    name: str,
    owns: list[int] = (),  # type: ignore[assignment]
    unlocked: list[int] = (),  # type: ignore[assignment]
    platform_user_id: str | None = None,
    caller: Caller | None = None,
) -> tuple[Caller, int]:
    uid = platform_user_id or f"tg-{name}"
    caller = caller or Caller("telegram", uid, display_name=name, chat_id=f"chat-{name}")
    wallet = "0x" + (name.encode().hex() * 40)[:40]
    async with ctx.db.session() as s:
        acc = await get_or_create_account(s, caller)
        user = await get_or_create_user(s, wallet)
        await link_account(s, acc.id, user.id)
        for pk in owns:
            await s.execute(
                insert(TranscriptionPayment).values(
                    user_id=user.id, space_id=pk, amount_usdc="0.2", payment_verified=True
                )
            )
        for pk in unlocked:
            await s.execute(
                insert(ChatUnlock).values(
                    user_id=user.id, space_id=pk, amount_usdc="0.5", payment_verified=True
                )
            )
    return caller, int(user.id)


async def counts(ctx: Context) -> tuple[int, int]:
    """(chat_sessions, invoices): what a refused question must leave unchanged."""
    async with ctx.db.session() as s:
        a = await s.scalar(select(func.count()).select_from(ChatSession))
        b = await s.scalar(select(func.count()).select_from(Invoice))
    return int(a or 0), int(b or 0)
