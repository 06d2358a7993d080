"""Platform accounts and users (wallets).

A ``users`` row is a wallet, created on first payment (the seed). An ``accounts`` row is a
Discord / Telegram identity; linking it to a user (by a verified wallet signature) makes
the person's purchases follow them across platforms.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import Account, User, utcnow
from core.db.upsert import insert_ignore
from core.results import Caller


def normalize_wallet(address: str) -> str:
    """Wallet addresses are stored lower-case (0x + 40 hex), so lookups never miss."""
    a = address.strip().lower()
    if len(a) != 42 or not a.startswith("0x") or any(c not in "0123456789abcdef" for c in a[2:]):
        raise ValueError("not an Ethereum address")
    return a


async def get_or_create_account(session: AsyncSession, caller: Caller) -> Account:
    """The caller's account row, created on first sight (race-safe: ON CONFLICT DO NOTHING)."""
    await insert_ignore(
        session,
        Account,
        {
            "platform": caller.platform,
            "platform_user_id": caller.platform_user_id,
            "display_name": caller.display_name,
            "created_at": utcnow(),
        },
        index_elements=["platform", "platform_user_id"],
    )
    acc = (
        await session.execute(
            select(Account).where(
                Account.platform == caller.platform,
                Account.platform_user_id == caller.platform_user_id,
            )
        )
    ).scalar_one()
    return acc


async def find_account(session: AsyncSession, caller: Caller) -> Account | None:
    return (
        await session.execute(
            select(Account).where(
                Account.platform == caller.platform,
                Account.platform_user_id == caller.platform_user_id,
            )
        )
    ).scalar_one_or_none()


async def user_id_for(session: AsyncSession, caller: Caller) -> int | None:
    """The users.id whose purchases the caller may use (their linked wallet), if any."""
    acc = await find_account(session, caller)
    return acc.user_id if acc else None


async def get_or_create_user(session: AsyncSession, wallet_address: str) -> User:
    wallet = normalize_wallet(wallet_address)
    now = utcnow()
    await insert_ignore(
        session,
        User,
        {"wallet_address": wallet, "created_at": now, "last_seen_at": now},
        index_elements=["wallet_address"],
    )
    user = (await session.execute(select(User).where(User.wallet_address == wallet))).scalar_one()
    return user


async def user_id_of_wallet(session: AsyncSession, wallet_address: str) -> int | None:
    """The user a wallet is (whatever its checksum casing), if it has ever paid or linked."""
    wallet = normalize_wallet(wallet_address)
    return await session.scalar(select(User.id).where(User.wallet_address == wallet))


async def link_account(session: AsyncSession, account_id: int, user_id: int) -> None:
    await session.execute(
        update(Account).where(Account.id == account_id).values(user_id=user_id, linked_at=utcnow())
    )


async def accounts_of_user(session: AsyncSession, user_id: int) -> list[Account]:
    rows = await session.execute(
        select(Account).where(Account.user_id == user_id).order_by(Account.id)
    )
    return list(rows.scalars())
