"""``settle_failed_space``: exactly the failed Space's verified payments come back as credit,
once, and every payer is told what failed and how much came back (both engines)."""

from __future__ import annotations

import json

from sqlalchemy import select, update

from core.context import Context
from core.db import Credit, Outbox, Space, TranscriptionPayment
from core.refunds import settle_failed_space
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
