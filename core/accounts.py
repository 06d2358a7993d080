"""Platform accounts and users (wallets).

A ``users`` row is a wallet, created on first payment (the seed). A member who pays in
Telegram Stars without a wallet gets a wallet-less ``users`` row whose ``wallet_address`` is
``telegram:<user id>`` (never an address, so it can never match a wallet); linking a wallet
later moves its purchases to the wallet's row (:func:`adopt_walletless`). An ``accounts`` row is a
Discord / Telegram identity; linking it to a user (by a verified wallet signature) makes
the person's purchases follow them across platforms.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from core.db import (
    Account,
    ChatSession,
    ChatUnlock,
    Credit,
    Invoice,
    TranscriptionPayment,
    User,
    utcnow,
)
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


def walletless_key(platform: str, platform_user_id: str) -> str:
    return f"{platform}:{platform_user_id}"


def is_wallet(address: str | None) -> bool:
    """A real wallet address, not the key of a wallet-less (Stars) buyer."""
    return bool(address) and str(address).startswith("0x")


async def buyer_for_account(session: AsyncSession, acc: Account) -> int:
    """The user an account's purchases belong to: its linked wallet, or else a wallet-less
    user of its own (made once, race-safe), which the account is linked to."""
    if acc.user_id is not None:
        return int(acc.user_id)
    key = walletless_key(acc.platform, acc.platform_user_id)
    now = utcnow()
    await insert_ignore(
        session,
        User,
        {"wallet_address": key, "created_at": now, "last_seen_at": now},
        index_elements=["wallet_address"],
    )
    uid = int(
        (await session.execute(select(User.id).where(User.wallet_address == key))).scalar_one()
    )
    await session.execute(
        update(Account).where(Account.id == acc.id, Account.user_id.is_(None)).values(user_id=uid)
    )
    linked = await session.scalar(select(Account.user_id).where(Account.id == acc.id))
    return int(linked if linked is not None else uid)


async def adopt_walletless(session: AsyncSession, old_user_id: int, new_user_id: int) -> None:
    """A wallet-less buyer linked a wallet: their purchases, answers and credit follow it
    (a Space both already own stays where it is: UNIQUE (user_id, space_id))."""
    old = await session.get(User, old_user_id)
    if old is None or is_wallet(old.wallet_address) or old_user_id == new_user_id:
        return
    grants: tuple[type[TranscriptionPayment] | type[ChatUnlock], ...] = (
        TranscriptionPayment,
        ChatUnlock,
    )
    for model in grants:
        mine: Any = aliased(model)
        await session.execute(
            update(model)
            .where(
                model.user_id == old_user_id,
                ~exists().where(mine.user_id == new_user_id, mine.space_id == model.space_id),
            )
            .values(user_id=new_user_id)
        )
    for other in (ChatSession, Credit, Invoice):
        await session.execute(
            update(other).where(other.user_id == old_user_id).values(user_id=new_user_id)
        )
