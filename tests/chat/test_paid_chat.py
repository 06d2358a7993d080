"""Done-when, end to end: a member who owns and unlocked two Spaces asks about the last hour
of one; quote 1.1 USDC; paid with the official x402 client on anvil; answered (cited) before
settlement; charged exactly once; recorded once. With no OpenAI key: the extractive answer.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from core.config import Secrets
from core.context import Context
from core.db import ChatSession, Database, Outbox
from core.money import to_units
from core.payments import Paid, pay_invoice
from core.results import Granted, Quote, Refused
from core.service import chat
from core.service.chat import asking
from tests.chat.helpers import member
from tests.chat.test_service import LAST_HOUR_FACT, two_spaces
from tests.conftest import make_settings
from tests.payments.conftest import chain_secrets, client_payload
from tests.payments.test_x402_pay import _reqs
from tests.stand_ins.chain import Chain
from tests.stand_ins.openai_chat import openai_chat

QUESTION = "What is the budget for project vexlumdra?"


@pytest.fixture
async def chat_ctx(db_url: str, tmp_path: Path, chain: Chain) -> AsyncIterator[Context]:
    settings = make_settings(
        db_url,
        tmp_path / "data",
        payments=chain.payment_settings(),
        web={"public_url": "http://127.0.0.1:8080"},
    )
    c = Context(settings, chain_secrets(chain), Database(db_url), instance="test:chat")
    c.wiring.add_fulfiller("chat_query", chat.fulfiller())  # as the wiring does
    try:
        yield c
    finally:
        await c.close()


@pytest.mark.parametrize("with_key", [True, False], ids=["openai", "extractive"])
async def test_two_space_question_answered_cited_and_charged_once(
    chat_ctx: Context,
    chain: Chain,
    fresh_payer: Any,
    with_key: bool,
) -> None:
    pks, ids = await two_spaces(chat_ctx)
    caller, _ = await member(chat_ctx, "ann", owns=pks, unlocked=pks)
    async with openai_chat() as stand_in:
        secrets = chat_ctx.secrets
        if with_key:
            secrets = Secrets.model_construct(
                relayer_key=chat_ctx.secrets.relayer_key,
                openai_api_key=SecretStr("sk-test"),
                openai_base_url=stand_in.url,
            )
        ctx = replace(chat_ctx, secrets=secrets)  # the same process, maybe with a model
        q = await chat.ask(ctx, caller, QUESTION, ids)
        assert isinstance(q, Quote) and q.kind == "chat_query" and q.amount == Decimal("1.1")
        before = chain.balance(chain.pay_to)
        units = to_units(q.amount)
        out = await pay_invoice(
            ctx, q.invoice_id, client_payload(chain, fresh_payer, _reqs(ctx, units))
        )
        assert isinstance(out, Paid) and out.result is not None, out
        again = await pay_invoice(
            ctx, q.invoice_id, client_payload(chain, fresh_payer, _reqs(ctx, units))
        )
    assert isinstance(again, Refused) and again.code == "already_paid"
    result = out.result
    assert LAST_HOUR_FACT in result["sources"][0]["excerpt"]
    assert result["sources"][0]["spaceId"] == ids[0]
    assert 2 * 3600 + 46 * 60 <= result["sources"][0]["start"] <= 2 * 3600 + 48 * 60
    if with_key:
        assert "742 thousand" in result["answer"] and "[" in result["answer"]
        assert result["model"] == "gpt-4o" and stand_in.requests[0]["prompt_tokens"] <= 4000
        assert stand_in.errors == [] and len(stand_in.requests) == 1
    else:
        assert (
            result["answer"].startswith("No AI model is configured")
            and result["model"] == "extractive"
        )
        assert stand_in.requests == []
    assert chain.balance(chain.pay_to) - before == 1_100_000  # charged 1.1 USDC, once
    async with ctx.db.session() as s:
        rows = (await s.execute(select(ChatSession))).scalars().all()
    assert len(rows) == 1
    row = rows[0]
    assert (
        row.amount_usdc == "1.1"
        and row.num_spaces == 2
        and row.transaction_hash == out.transaction_hash
    )
    assert json.loads(row.space_ids) == ids and row.session_id == result["session_id"]


async def test_question_paid_from_credit_is_answered_first(chat_ctx: Context) -> None:
    from core.payments.account_credit import add_credit, credit_balance

    pks, ids = await two_spaces(chat_ctx)
    caller, uid = await member(chat_ctx, "ann", owns=pks, unlocked=pks)
    async with chat_ctx.db.session() as s:
        await add_credit(s, uid, 2_000_000, "refund", "test:credit")
    out = await chat.ask(chat_ctx, caller, QUESTION, ids)
    assert isinstance(out, Granted) and out.kind == "chat_query", out
    async with chat_ctx.db.session() as s:
        row = (await s.execute(select(ChatSession))).scalar_one()
        assert await credit_balance(s, uid) == 2_000_000 - 1_100_000
        msg = (await s.execute(select(Outbox).where(Outbox.kind == "chat_answer"))).scalar_one()
    assert row.amount_usdc == "1.1" and row.invoice_id is not None and row.model == "extractive"
    assert LAST_HOUR_FACT in json.loads(row.sources or "[]")[0]["excerpt"]
    assert json.loads(msg.payload) == {"session_id": row.session_id}
    shown = await chat.answer_of(chat_ctx, row.session_id)
    assert shown is not None and shown.sources[0].space_id == ids[0]


async def test_question_quoted_after_its_credit_went_is_answered_when_paid_by_transfer(
    chat_ctx: Context, chain: Chain, fresh_payer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: the credit covered the question when ask() looked, then a concurrent
    purchase spent it while the answer was being produced: the question is quoted instead.
    Paid by a plain transfer, its answer is owed, produced and delivered — not skipped as
    "answered from credit"."""
    from sqlalchemy import update

    from core.db import Invoice, User
    from core.payments import Paid
    from core.payments.account_credit import add_credit, credit_balance
    from core.payments.transfers import submit_transaction_hash

    pks, ids = await two_spaces(chat_ctx)
    caller, uid = await member(chat_ctx, "ann", owns=pks, unlocked=pks)
    async with chat_ctx.db.session() as s:
        await s.execute(
            update(User).where(User.id == uid).values(wallet_address=fresh_payer.address.lower())
        )
        await add_credit(s, uid, 1_100_000, "refund", "test:credit")
    produce = chat.answer
    spent: list[bool] = []

    async def spent_meanwhile(*args: Any, **kw: Any) -> Any:
        if not spent:  # another purchase of ann's spends the credit first
            spent.append(True)
            async with chat_ctx.db.session() as s:
                await add_credit(s, uid, -1_100_000, "spent", "invoice:elsewhere")
        return await produce(*args, **kw)

    monkeypatch.setattr(asking, "answer", spent_meanwhile)  # what ask() calls
    q = await chat.ask(chat_ctx, caller, QUESTION, ids)
    assert isinstance(q, Quote) and q.amount == Decimal("1.1") and spent, q
    async with chat_ctx.db.session() as s:
        assert await credit_balance(s, uid) == 0
    h = chain.transfer(fresh_payer, chain.pay_to, 1_100_000)
    out = await submit_transaction_hash(chat_ctx, q.invoice_id, h)
    assert isinstance(out, Paid), out
    async with chat_ctx.db.session() as s:
        inv = (
            await s.execute(select(Invoice).where(Invoice.public_id == q.invoice_id))
        ).scalar_one()
        msgs = (await s.execute(select(Outbox).where(Outbox.kind == "chat_answer"))).scalars().all()
    assert inv.status == "credited"
    assert [json.loads(m.payload) for m in msgs] == [{"invoice_id": q.invoice_id}]
    shown = await chat.delivered_answer(chat_ctx, json.loads(msgs[0].payload))
    assert shown is not None and not isinstance(shown, Refused), shown
    assert shown.sources[0].space_id == ids[0] and LAST_HOUR_FACT in shown.sources[0].excerpt
    async with chat_ctx.db.session() as s:
        row = (await s.execute(select(ChatSession))).scalar_one()
    assert row.invoice_id == inv.id and row.transaction_hash == h.lower()
