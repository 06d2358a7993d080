"""Account credit: the ``credits`` ledger in 6-decimal units (positive: credit, negative:
spent), per user.

Credit is spent when an invoice is made: the part it covers is reserved by a "spent" row and
given back by a "released" row if the invoice expires. Every row is idempotent by (reason,
reference). Spending is serialised per user (:func:`lock_credit`), so two purchases never
both spend the same balance.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import Credit, User, utcnow
from core.db.upsert import insert_ignore


async def credit_balance(session: AsyncSession, user_id: int) -> int:
    total = await session.scalar(
        select(func.sum(Credit.amount_units)).where(Credit.user_id == user_id)
    )
    return int(total or 0)  # no rows: NULL


async def lock_credit(session: AsyncSession, user_id: int) -> None:
    """Hold the user's credit until this transaction ends: read the balance after this and
    spend it before committing. PostgreSQL: a row lock on the user (``FOR NO KEY UPDATE``,
    which credit rows' foreign-key checks do not wait for); SQLite: every transaction
    already holds the database's write lock from its start (``BEGIN IMMEDIATE``)."""
    # pragma: no mutate block
    # (a lock only, its row unread: SQLite, the engine mutmut runs, has no row locks)
    await session.execute(select(User.id).where(User.id == user_id).with_for_update(key_share=True))


async def add_credit(
    session: AsyncSession, user_id: int, units: int, reason: str, reference: str
) -> bool:
    """One ledger row, at most once per (reason, reference). True if it was added."""
    return await insert_ignore(
        session,
        Credit,
        {
            "user_id": user_id,
            "amount_units": units,
            "reason": reason,
            "reference": reference,
            "created_at": utcnow(),
        },
        index_elements=["reason", "reference"],  # pragma: no mutate (sole unique key)
    )


async def spend_credit(
    session: AsyncSession, user_id: int, price_units: int, reference: str, *, partial: bool
) -> int:
    """Spend the user's credit on a price, under the lock: all of the balance up to the
    price, or (``partial`` False) only the whole price or nothing. Returns the units spent."""
    await lock_credit(session, user_id)
    balance = await credit_balance(session, user_id)
    use = min(balance, price_units)
    if use > 0 and (partial or use == price_units):
        await add_credit(session, user_id, -use, "spent", reference)
        return use
    return 0
