"""``settle_failed_space``: exactly the failed Space's verified payments come back as credit,
once, and every payer is told what failed and how much came back (both engines)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select, update

from core import accounts
from core.context import Context
from core.db import (
    ChatSession,
    Credit,
    Invoice,
    Outbox,
    ProcessingJob,
    Space,
    StarPayment,
    TranscriptionPayment,
    utcnow,
)
from core.refunds import question_refunded, settle_failed_space, settle_unanswered_question
from core.results import Caller
from tests.queue.test_queue import _space


async def _rows(ctx: Context) -> tuple[list[tuple[int, int, str, str]], list[tuple[str, dict]]]:  # type: ignore[type-arg]
    async with ctx.db.session() as s:
        credits = [
            (r.user_id, r.amount_units, r.reason, r.reference)
            for r in (await s.execute(select(Credit).order_by(Credit.id))).scalars()
        ]
        msgs = [
            (m.kind, json.loads(m.payload))
            for m in (await s.execute(select(Outbox).order_by(Outbox.id))).scalars()
        ]
    return credits, msgs


async def test_only_the_failed_space_is_refunded_once_and_told(ctx: Context) -> None:
    failed = await _space(ctx, 1, payers=2)
    other = await _space(ctx, 2, payers=1)  # another Space's payment is not refunded
    async with ctx.db.session() as s:
        await s.execute(update(Space).where(Space.id == failed).values(status="failed"))
        # an unverified payment gives nothing back
        tps = (
            (
                await s.execute(
                    select(TranscriptionPayment)
                    .where(TranscriptionPayment.space_id == failed)
                    .order_by(TranscriptionPayment.id)
                )
            )
            .scalars()
            .all()
        )
        paid, unverified = tps
        unverified.payment_verified = False
        await s.flush()
        paid_id, paid_user = paid.id, paid.user_id
        unverified_user = unverified.user_id
    async with ctx.db.session() as s:
        assert await settle_failed_space(s, ctx.settings, failed) == 200_000
    credits, msgs = await _rows(ctx)
    assert credits == [(paid_user, 200_000, "refund", f"refund:transcription_payment:{paid_id}")]
    sid = "1Q00000000001"
    assert sorted((k, json.dumps(p, sort_keys=True)) for k, p in msgs) == sorted(
        (k, json.dumps(p, sort_keys=True))
        for k, p in [
            ("job_failed", {"space_id": sid, "error": "processing failed"}),
            ("job_failed", {"space_id": sid, "error": "processing failed"}),
            ("refunded", {"space_id": sid, "reason": "processing failed", "amount": "0.2"}),
            ("refunded", {"space_id": sid, "reason": "processing failed", "amount": "0.0"}),
        ]
    )
    assert unverified_user != paid_user
    # once: settling again credits nothing and tells nobody twice
    async with ctx.db.session() as s:
        assert await settle_failed_space(s, ctx.settings, failed) == 0
    assert await _rows(ctx) == (credits, msgs)
    async with ctx.db.session() as s:
        assert await settle_failed_space(s, ctx.settings, 10_000) == 0  # no such Space
        assert other != failed


async def test_the_error_is_told_and_no_credit_without_the_credit_policy(ctx: Context) -> None:
    pk = await _space(ctx, 3, payers=1)
    async with ctx.db.session() as s:
        await s.execute(
            update(Space).where(Space.id == pk).values(status="failed", error_message="HTTP 404")
        )
    ctx.settings.payments.refund_policy = "none"
    async with ctx.db.session() as s:
        assert await settle_failed_space(s, ctx.settings, pk) == 0
    credits, msgs = await _rows(ctx)
    assert credits == []
    assert msgs == [("job_failed", {"space_id": "1Q00000000003", "error": "HTTP 404"})]


# --- every column the settlements write, Stars and repeated failures included (found by
# `make mutants`)

TOKEN = "0x" + "11" * 20


async def _payer(s: Any, tg: str) -> tuple[int, int]:
    """A user with a linked Telegram account: (user id, account id)."""
    user = await accounts.get_or_create_user(s, "0x" + tg.encode().hex().rjust(40, "0"))
    acc = await accounts.get_or_create_account(s, Caller("telegram", tg))
    await accounts.link_account(s, acc.id, user.id)
    return user.id, acc.id


def _invoice(public_id: str, **kw: Any) -> Invoice:
    values: dict[str, Any] = {
        "public_id": public_id,
        "kind": "transcription",
        "space_ids": '["1Q00000000005"]',
        "amount_units": 200_000,
        "network": "eip155:31337",
        "token_address": TOKEN,
        "pay_to": TOKEN,
        "status": "credited",
        "expires_at": utcnow(),
    }
    values.update(kw)
    return Invoice(**values)


def _stars(invoice_id: int, charge: str, tg: str, status: str = "credited") -> StarPayment:
    return StarPayment(
        telegram_payment_charge_id=charge,
        invoice_id=invoice_id,
        telegram_user_id=tg,
        currency="XTR",
        amount=50,
        status=status,
        credited_at=utcnow(),
    )


async def _outbox(ctx: Context) -> list[tuple[Any, ...]]:
    async with ctx.db.session() as s:
        return [
            (
                m.kind,
                m.platform,
                m.recipient,
                m.dedupe_key,
                m.origin_chat_id,
                m.space_id,
                json.loads(m.payload),
            )
            for m in (await s.execute(select(Outbox).order_by(Outbox.id))).scalars()
        ]


async def _credits(ctx: Context) -> list[tuple[Any, ...]]:
    async with ctx.db.session() as s:
        return [
            (c.user_id, c.amount_units, c.reason, c.reference, c.created_at is not None)
            for c in (await s.execute(select(Credit).order_by(Credit.id))).scalars()
        ]


async def test_a_failed_space_gives_usdc_back_as_credit_and_stars_as_stars(ctx: Context) -> None:
    sid = "1Q00000000005"
    pk = await _space(ctx, 5)
    other = await _space(ctx, 7, payers=1)  # failed too, and never touched here
    async with ctx.db.session() as s:
        await s.execute(
            update(Space).where(Space.id == pk).values(status="failed", error_message="HTTP 500")
        )
        s.add_all(
            [
                ProcessingJob(space_id=pk, status="completed"),  # an earlier, finished job
                ProcessingJob(space_id=pk, status="failed"),  # its first failure
                ProcessingJob(space_id=other, status="failed"),
                ProcessingJob(space_id=other, status="failed"),
            ]
        )
        stars_user, _ = await _payer(s, "t2")
        usdc_user, _ = await _payer(s, "t1")
        usdc_user2, _ = await _payer(s, "t4")
        usdc_inv = _invoice("inv_usdc_1", origin_chat_id="-100")
        stars_inv = _invoice("inv_stars_1")
        s.add_all([usdc_inv, stars_inv])
        await s.flush()
        s.add(_stars(stars_inv.id, "charge-2", "t2"))
        tp2 = TranscriptionPayment(  # the Stars payment first: the loops go on past it
            user_id=stars_user,
            space_id=pk,
            amount_usdc="0.5",
            payment_verified=True,
            invoice_id=stars_inv.id,
        )
        s.add(tp2)
        await s.flush()
        tp1 = TranscriptionPayment(
            user_id=usdc_user,
            space_id=pk,
            amount_usdc="0.2",
            payment_verified=True,
            invoice_id=usdc_inv.id,
        )
        s.add(tp1)
        await s.flush()
        tp4 = TranscriptionPayment(
            user_id=usdc_user2, space_id=pk, amount_usdc="0.25", payment_verified=True
        )
        s.add(tp4)
        await s.flush()
        tp1_id, tp2_id, tp4_id = tp1.id, tp2.id, tp4.id
    before = utcnow()
    async with ctx.db.session() as s:
        total = await settle_failed_space(s, ctx.settings, pk)
    assert total == 450_000 and type(total) is int
    assert await _credits(ctx) == [
        (usdc_user, 200_000, "refund", f"refund:transcription_payment:{tp1_id}", True),
        (usdc_user2, 250_000, "refund", f"refund:transcription_payment:{tp4_id}", True),
    ]
    async with ctx.db.session() as s:
        refunded_at = [
            (await s.get(TranscriptionPayment, i)).refunded_at  # type: ignore[union-attr]
            for i in (tp1_id, tp2_id, tp4_id)
        ]
        untouched = (
            await s.execute(
                select(TranscriptionPayment.refunded_at).where(
                    TranscriptionPayment.space_id == other
                )
            )
        ).scalar_one()
        star = (await s.execute(select(StarPayment))).scalar_one()
        credit_at = (await s.execute(select(Credit.created_at).limit(1))).scalar_one()
    assert untouched is None
    assert refunded_at[0] is not None and len(set(refunded_at)) == 1
    assert refunded_at[0] == credit_at and refunded_at[0] >= before
    assert (star.status, star.refund_reason) == ("refund_due", f"Space {sid}: HTTP 500")
    failed = {"space_id": sid, "error": "HTTP 500"}
    assert await _outbox(ctx) == [
        ("job_failed", "telegram", "t2", f"job_failed:{sid}:telegram:t2", None, pk, failed),
        ("job_failed", "telegram", "t1", f"job_failed:{sid}:telegram:t1", "-100", pk, failed),
        ("job_failed", "telegram", "t4", f"job_failed:{sid}:telegram:t4", None, pk, failed),
        (
            "stars_refund",
            "telegram",
            "t2",
            "stars_refund:charge-2",
            None,
            None,
            {"charge_id": "charge-2", "stars": 50, "reason": f"Space {sid}: HTTP 500"}
            | {"space_id": sid},
        ),
        (
            "refunded",
            "telegram",
            "t1",
            f"refunded:{sid}:telegram:t1",
            "-100",
            pk,
            {"space_id": sid, "reason": "HTTP 500", "amount": "0.2"},
        ),
        (
            "refunded",
            "telegram",
            "t4",
            f"refunded:{sid}:telegram:t4",
            None,
            pk,
            {"space_id": sid, "reason": "HTTP 500", "amount": "0.25"},
        ),
    ]
    told = await _outbox(ctx)

    # asked again, paid again (in USDC; the same payment row), failed again: a second
    # failure, with its own keys; what was refunded before stays as it was
    async with ctx.db.session() as s:
        s.add(ProcessingJob(space_id=pk, status="failed"))
        await s.execute(
            update(TranscriptionPayment)
            .where(TranscriptionPayment.id == tp1_id)
            .values(amount_usdc="0.3", refunded_at=None)
        )
    async with ctx.db.session() as s:
        assert await settle_failed_space(s, ctx.settings, pk) == 300_000
    assert (await _credits(ctx))[2:] == [
        (usdc_user, 300_000, "refund", f"refund:transcription_payment:{tp1_id}:2", True)
    ]
    async with ctx.db.session() as s:
        again = [
            (await s.get(TranscriptionPayment, i)).refunded_at  # type: ignore[union-attr]
            for i in (tp2_id, tp4_id)
        ]
    assert again == refunded_at[1:]
    assert (await _outbox(ctx))[len(told) :] == [
        ("job_failed", "telegram", "t1", f"job_failed:{sid}:telegram:t1:2", "-100", pk, failed),
        (
            "refunded",
            "telegram",
            "t1",
            f"refunded:{sid}:telegram:t1:2",
            "-100",
            pk,
            {"space_id": sid, "reason": "HTTP 500", "amount": "0.3"},
        ),
    ]


async def _question(ctx: Context, public_id: str, **kw: Any) -> tuple[int, int]:
    """A credited USDC question over two Spaces: (invoice pk, user id)."""
    async with ctx.db.session() as s:
        user, acc = await _payer(s, "q-" + public_id)
        values: dict[str, Any] = {
            "kind": "chat_query",
            "account_id": acc,
            "user_id": user,
            "space_ids": '["1Qa", "1Qb"]',
            "amount_units": 1_100_000,
            "payload": '{"question": "who?"}',
            "origin_chat_id": "-7",
        }
        values.update(kw)
        inv = _invoice(public_id, **values)
        s.add(inv)
        await s.flush()
        return inv.id, user


async def _settle_question(ctx: Context, pk: int, reason: str = "the model gave up") -> bool:
    async with ctx.db.session() as s:
        return await settle_unanswered_question(s, ctx.settings, pk, reason)


async def _refunded(ctx: Context, pk: int) -> bool:
    async with ctx.db.session() as s:
        inv = await s.get(Invoice, pk)
        assert inv is not None
        return await question_refunded(s, inv)


async def test_an_unanswered_usdc_question_becomes_credit_once(ctx: Context) -> None:
    pk, user = await _question(ctx, "inv_q_1")
    assert await _refunded(ctx, pk) is False
    assert await _settle_question(ctx, pk) is True
    assert await _credits(ctx) == [
        (user, 1_100_000, "unanswered", "unanswered:invoice:inv_q_1", True)
    ]
    assert await _outbox(ctx) == [
        (
            "refunded",
            "telegram",
            "q-inv_q_1",
            "refunded:question:inv_q_1",
            "-7",
            None,
            {
                "space_ids": ["1Qa", "1Qb"],
                "amount": "1.1",
                "reason": "the model gave up",
                "unanswered": True,
            },
        )
    ]
    assert await _refunded(ctx, pk) is True
    assert await _settle_question(ctx, pk) is False  # once
    assert len(await _credits(ctx)) == 1 and len(await _outbox(ctx)) == 1
    # no account to tell, no origin chat: credited all the same
    bare, user2 = await _question(
        ctx, "inv_q_2", account_id=None, payload=None, origin_chat_id=None
    )
    assert await _refunded(ctx, bare) is False  # another question's credit is not its own
    assert await _settle_question(ctx, bare) is True
    assert (await _credits(ctx))[1] == (
        user2,
        1_100_000,
        "unanswered",
        "unanswered:invoice:inv_q_2",
        True,
    )
    assert len(await _outbox(ctx)) == 1
    quiet, _ = await _question(ctx, "inv_q_3", payload=None, origin_chat_id=None)
    assert await _settle_question(ctx, quiet) is True
    assert (await _outbox(ctx))[-1][3:5] == ("refunded:question:inv_q_3", None)


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "transcription"},
        {"status": "paid"},
        {"user_id": None},
        {"policy": "none"},
        {"answered": True},
        {"missing": True},
    ],
)
async def test_a_question_not_refunded(ctx: Context, change: dict[str, Any]) -> None:
    fields = {k: v for k, v in change.items() if k in ("kind", "status", "user_id")}
    pk, user = await _question(ctx, "inv_q_9", **fields)
    if "policy" in change:
        ctx.settings.payments.refund_policy = change["policy"]
    if "answered" in change:
        async with ctx.db.session() as s:
            s.add(
                ChatSession(
                    session_id="cs-1",
                    user_id=user,
                    space_ids='["1Qa", "1Qb"]',
                    question="who?",
                    answer="them",
                    num_spaces=2,
                    amount_usdc="1.1",
                    invoice_id=pk,
                )
            )
    if "missing" in change:
        pk = pk + 1000
    assert await _settle_question(ctx, pk) is False
    assert await _credits(ctx) == [] and await _outbox(ctx) == []


async def test_an_unanswered_stars_question_goes_back_as_stars(ctx: Context) -> None:
    pk, user = await _question(ctx, "inv_q_4")
    other, _ = await _question(ctx, "inv_q_5")
    async with ctx.db.session() as s:
        s.add(_stars(pk, "charge-q", "q-inv_q_4"))
        s.add(_stars(other, "charge-o", "q-inv_q_5", status="refunded"))
        # a credit under its reference but for another reason is no unanswered refund
        s.add(
            Credit(
                user_id=user,
                amount_units=1,
                reason="refund",
                reference="unanswered:invoice:inv_q_4",
            )
        )
    assert await _refunded(ctx, pk) is False  # credited Stars: not refunded (yet)
    assert await _settle_question(ctx, pk, "no model") is True
    async with ctx.db.session() as s:
        star = (
            await s.execute(
                select(StarPayment).where(StarPayment.telegram_payment_charge_id == "charge-q")
            )
        ).scalar_one()
    assert (star.status, star.refund_reason) == (
        "refund_due",
        "your question could not be answered (no model)",
    )
    assert [c[2] for c in await _credits(ctx)] == ["refund"]
    assert [m[0] for m in await _outbox(ctx)] == ["stars_refund"]
    assert await _refunded(ctx, pk) is True
    assert await _settle_question(ctx, pk) is False
    async with ctx.db.session() as s:
        await s.execute(
            update(StarPayment)
            .where(StarPayment.telegram_payment_charge_id == "charge-q")
            .values(status="refunded")
        )
    assert await _refunded(ctx, pk) is True
