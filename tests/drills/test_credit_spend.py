"""Drill (issue 14): 50 simultaneous purchases spending one account-credit balance.

Each purchase reads the balance and reserves what it covers with a "spent" row; unless
spending is serialised per user (a row lock on the user on PostgreSQL, ``BEGIN IMMEDIATE``
on SQLite), several purchases read the same balance and each reserves it: the balance goes
negative and several purchases become free grants. Checked on both engines: the balance
never goes below zero, exactly floor(balance / price) purchases are granted from credit, one
more takes the remainder, every other one is quoted in full.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from core.accounts import get_or_create_account, get_or_create_user, link_account
from core.context import Context
from core.db import Credit, Invoice, TranscriptionPayment
from core.money import to_units
from core.payments.account_credit import add_credit, credit_balance
from core.results import Caller, Granted, Quote
from core.service.invoicing import create_invoice
from tests.drills.figures import record

N = 50
BALANCE = 1_000_000  # 1.0 USDC of account credit
PRICE = 300_000  # 0.3 USDC: 3 purchases fully covered, the 4th partly (0.1)
CAROL = Caller("telegram", "3003", "carol", chat_id="-700")
TALLY: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def _figures() -> Iterator[None]:
    yield
    for line in TALLY:
        record("credit", line)


def _space(i: int) -> str:
    return f"1Cred{i:08d}"  # 13 characters, as X's ids


async def _buy(ctx: Context, i: int) -> Quote | Granted:
    async with ctx.db.session() as s:
        return await create_invoice(
            s,
            ctx,
            caller=CAROL,
            user_id=None,
            kind="transcription",
            space_ids=[_space(i)],
            amount_units=PRICE,
        )


async def test_fifty_purchases_spend_one_balance_once(ctx: Context) -> None:
    async with ctx.db.session() as s:
        acc = await get_or_create_account(s, CAROL)
        user = await get_or_create_user(s, "0x" + "c0" * 20)
        await link_account(s, acc.id, user.id)
        await add_credit(s, user.id, BALANCE, "refund", "drill:credit")
    uid = int(user.id)

    results: list[Any] = await asyncio.gather(
        *(_buy(ctx, i) for i in range(N)), return_exceptions=True
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    granted = [r for r in results if isinstance(r, Granted)]
    quotes = [r for r in results if isinstance(r, Quote)]
    partial = [q for q in quotes if q.credit_applied > 0]

    async with ctx.db.session() as s:
        balance = await credit_balance(s, uid)
        spent = await s.scalar(
            select(func.coalesce(func.sum(Credit.amount_units), 0)).where(
                Credit.user_id == uid, Credit.reason == "spent"
            )
        )
        grants = await s.scalar(select(func.count()).select_from(TranscriptionPayment))
        reserved = await s.scalar(select(func.coalesce(func.sum(Invoice.credit_units), 0)))
    TALLY.append(
        f"{N} simultaneous purchases of {Decimal(PRICE) / 10**6} USDC on "
        f"{Decimal(BALANCE) / 10**6} USDC of credit ({ctx.db.dialect}): {len(granted)} granted "
        f"from credit (expected {BALANCE // PRICE}), {len(partial)} partly covered, balance "
        f"{Decimal(balance) / 10**6} USDC"
    )
    assert balance >= 0, f"credit spent twice: balance {balance}"
    assert len(granted) == BALANCE // PRICE and grants == BALANCE // PRICE
    assert [to_units(q.credit_applied) for q in partial] == [BALANCE % PRICE]
    assert len(quotes) == N - BALANCE // PRICE
    assert -int(spent or 0) == int(reserved or 0) == BALANCE and balance == 0
