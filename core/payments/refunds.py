"""Refunds when processing a Space fails for good (SPEC §2, ``payments.refund_policy``).

Every verified transcription payment of the Space becomes account credit (idempotent by
reference ``transcription_payments:<id>``) and each linked account is told.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import outbox
from core.context import Context
from core.db import Account, Space, TranscriptionPayment
from core.money import to_units
from core.payments.invoices import add_credit


async def refund_space(session: AsyncSession, ctx: Context, space_pk: int) -> int:
    """Credit every payer of a failed Space, in the caller's transaction. Returns the
    number of payers newly credited (0 when the policy is "none" or all were credited)."""
    if ctx.settings.payments.refund_policy != "credit":
        return 0
    space = await session.get(Space, space_pk)
    rows = (
        (
            await session.execute(
                select(TranscriptionPayment).where(
                    TranscriptionPayment.space_id == space_pk,
                    TranscriptionPayment.payment_verified.is_(True),
                )
            )
        )
        .scalars()
        .all()
    )
    n = 0
    for tp in rows:
        units = to_units(tp.amount_usdc)
        if units <= 0:
            continue
        ref = f"transcription_payments:{tp.id}"
        if not await add_credit(session, tp.user_id, units, "refund", ref):
            continue
        n += 1
        accounts = await session.execute(select(Account).where(Account.user_id == tp.user_id))
        for acc in accounts.scalars():
            await outbox.add_message(
                session,
                kind="refunded",
                platform=acc.platform,
                recipient=acc.platform_user_id,
                payload={
                    "space_id": space.space_id if space else None,
                    "credit": tp.amount_usdc,
                    "error": space.error_message if space else None,
                },
                dedupe_key=f"refunded:{ref}:{acc.id}",
                space_pk=space_pk,
            )
    return n
