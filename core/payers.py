"""The payers of a Space: who bought its transcript, and the messages that tell them.

The queue knows jobs, not people. When a job ends, the caller that ended it tells the
Space's payers in the same transaction (``transcript_ready`` here; a failure's messages and
refunds in :mod:`core.refunds`), so a completion and its messages commit together or not at
all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from sqlalchemy import ARRAY, Executable, Integer, Table, any_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import Account, Invoice, Space, TranscriptionPayment
from core.db.upsert import dialect_name
from core.outbox import add_messages, message_row


@dataclass(frozen=True)
class Payer:
    """An account to notify about a Space, and the chat its purchase came from."""

    user_id: int
    platform: str
    recipient: str
    origin_chat_id: str | None


# pragma: no mutate start
def _payers_stmt(postgres: bool) -> Executable:
    tp, acc, inv, sp = (
        cast(Table, m.__table__) for m in (TranscriptionPayment, Account, Invoice, Space)
    )
    if postgres:
        where = tp.c.space_id == any_(bindparam("space_ids", type_=ARRAY(Integer())))
    else:
        where = tp.c.space_id.in_(bindparam("space_ids", expanding=True))
    return (
        select(
            tp.c.space_id,
            sp.c.space_id,
            tp.c.user_id,
            acc.c.platform,
            acc.c.platform_user_id,
            inv.c.origin_chat_id,  # the chat the purchase came from
        )
        .join(sp, sp.c.id == tp.c.space_id)
        .join(acc, acc.c.user_id == tp.c.user_id)
        .outerjoin(inv, inv.c.id == tp.c.invoice_id)
        .where(where, tp.c.refunded_at.is_(None))  # refunded: no longer a payer
        .order_by(tp.c.space_id, tp.c.id, acc.c.id)
    )


_PAYERS = {"postgresql": _payers_stmt(True), "sqlite": _payers_stmt(False)}
# pragma: no mutate end


async def payers_of(
    session: AsyncSession, space_pks: list[int]
) -> dict[int, tuple[str, list[Payer]]]:
    """Space pk → (public Space id, its payers), for the Spaces that have any."""
    out: dict[int, tuple[str, list[Payer]]] = {}
    if not space_pks:
        return out
    rows = await session.execute(_PAYERS[dialect_name(session)], {"space_ids": list(space_pks)})
    for pk, sid, user_id, platform, recipient, origin in rows:
        out.setdefault(pk, (sid, []))[1].append(Payer(user_id, platform, recipient, origin))
    return out


async def payers(session: AsyncSession, space_pk: int) -> list[Payer]:
    """Every platform account that bought the Space's transcript (via its linked user)."""
    found = (await payers_of(session, [space_pk])).get(space_pk)
    return found[1] if found else []


async def notify(
    session: AsyncSession, space_pks: list[int], kind: str, payload: dict[str, object]
) -> int:
    """One outbox message of ``kind`` per payer of each Space, all in one statement."""
    rows = [
        message_row(
            kind=kind,
            platform=p.platform,
            recipient=p.recipient,
            payload={"space_id": sid, **payload},
            dedupe_key=f"{kind}:{sid}:{p.platform}:{p.recipient}",
            origin_chat_id=p.origin_chat_id,
            space_pk=pk,
        )
        for pk, (sid, people) in (await payers_of(session, space_pks)).items()
        for p in people
    ]
    return await add_messages(session, rows)


async def transcript_ready(session: AsyncSession, space_pks: list[int]) -> int:
    """Queue ``transcript_ready`` for every payer of each Space whose job completed now; call
    it in the transaction that completed them. Returns how many messages were added."""
    return await notify(session, space_pks, "transcript_ready", {})
