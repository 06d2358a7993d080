"""``/wallet``: the caller's linked wallet, account credit, and a one-time link page."""

from __future__ import annotations

from core.accounts import get_or_create_account, is_wallet
from core.context import Context
from core.db import User
from core.money import from_units
from core.payments.account_credit import credit_balance
from core.results import Caller, WalletInfo
from core.wallet_link import create_link


async def wallet(ctx: Context, caller: Caller) -> WalletInfo:
    async with ctx.db.session() as s:
        acc = await get_or_create_account(s, caller)
        address = None
        credit = 0
        if acc.user_id is not None:
            user = await s.get(User, acc.user_id)
            address = user.wallet_address if user and is_wallet(user.wallet_address) else None
            credit = await credit_balance(s, acc.user_id)
        url = await create_link(s, ctx, acc.id)
    return WalletInfo(address=address, credit=from_units(max(0, credit)), link_url=url)
