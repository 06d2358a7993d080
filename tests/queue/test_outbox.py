"""The outbox drain: sent once, retried on 429-style answers, fallbacks, crash recovery."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from core import outbox
from core.config import OutboxSettings
from core.context import Context
from core.db import Outbox, utcnow
from core.outbox_contract import Delivery, OutboundMessage


class ScriptedSender:
    platform = "telegram"

    def __init__(self, answers: dict[str, list[Delivery | Exception]]) -> None:
        self.answers = answers
        self.seen: list[OutboundMessage] = []

    async def deliver(self, message: OutboundMessage) -> Delivery:
        self.seen.append(message)
        queue = self.answers.get(message.recipient, [])
        answer = queue.pop(0) if queue else Delivery("sent")
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def sender(ctx: Context) -> ScriptedSender:
    s = ScriptedSender({})
    ctx.wiring.add_sender(s)
    return s


async def _add(ctx: Context, recipient: str, platform: str = "telegram") -> None:
    async with ctx.db.session() as s:
        await outbox.add_message(
            s,
            kind="transcript_ready",
            platform=platform,
            recipient=recipient,
            payload={"space_id": "1AAAAAAAAAAAA"},
            dedupe_key=f"k:{platform}:{recipient}",
            origin_chat_id="-100",
        )


async def _status(ctx: Context) -> dict[str, str]:
    async with ctx.db.session() as s:
        return dict((await s.execute(select(Outbox.recipient, Outbox.status))).tuples().all())


async def _make_due(ctx: Context) -> None:
    async with ctx.db.session() as s:
        await s.execute(update(Outbox).values(available_at=utcnow()))


async def test_outcomes(ctx: Context, sender: ScriptedSender) -> None:
    sender.answers = {
        "ok": [Delivery("sent")],
        "busy": [Delivery("retry", retry_after=3600, detail="429")],
        "blocked": [Delivery("undeliverable", detail="403 bot blocked")],
        "buggy": [RuntimeError("adapter bug")],
        "gone": [Delivery("failed", detail="chat not found")],
    }
    for r in sender.answers:
        await _add(ctx, r)
    await _add(ctx, "elsewhere", platform="discord")  # no sender here: left alone
    assert await outbox.drain_once(ctx, "d1") == 5
    assert await _status(ctx) == {
        "ok": "sent",
        "busy": "pending",
        "blocked": "fallback",
        "buggy": "pending",
        "gone": "failed",
        "elsewhere": "pending",
    }
    assert sender.seen[0].origin_chat_id == "-100"
    # nothing is due: the 429 waits for retry_after, the bug for its backoff
    assert await outbox.drain_once(ctx, "d1") == 0
    await _make_due(ctx)
    assert await outbox.drain_once(ctx, "d1") == 2
    st = await _status(ctx)
    assert st["busy"] == "sent" and st["buggy"] == "sent" and st["ok"] == "sent"
    assert [m.recipient for m in sender.seen].count("ok") == 1


async def test_crash_mid_send_is_retried_after_the_lease(
    ctx: Context, sender: ScriptedSender
) -> None:
    await _add(ctx, "r1")
    async with ctx.db.session() as s:  # a drainer claimed it, then died before recording
        rows = await outbox._claim(s, "dead", ["telegram"], 10)
        assert len(rows) == 1
    assert await outbox.drain_once(ctx, "d2") == 0  # still leased
    await _make_due(ctx)  # the lease ends
    assert await outbox.drain_once(ctx, "d2") == 1
    assert (await _status(ctx))["r1"] == "sent"
    async with ctx.db.session() as s:
        row = (await s.execute(select(Outbox))).scalar_one()
        assert row.attempts == 2 and row.locked_by is None


async def test_gives_up_after_max_attempts(ctx: Context, sender: ScriptedSender) -> None:
    sender.answers = {
        "r": [Delivery("retry", retry_after=0)] * (outbox.DEFAULT_POLICY.max_attempts + 2)
    }
    await _add(ctx, "r")
    for _ in range(outbox.DEFAULT_POLICY.max_attempts):
        await _make_due(ctx)
        await outbox.drain_once(ctx, "d3")
    assert (await _status(ctx))["r"] == "failed"


async def test_the_configured_retry_policy_is_followed(
    ctx: Context, sender: ScriptedSender
) -> None:
    policy = OutboxSettings(retry_base_seconds=30, retry_max_seconds=50, max_attempts=3)
    assert [outbox.retry_delay(n, policy) for n in (1, 2, 3)] == [30, 50, 50]
    assert [outbox.retry_delay(n) for n in (1, 2, 10)] == [5, 10, 900]  # the defaults
    sender.answers = {"r": [Delivery("retry", detail="503")] * 5}
    await _add(ctx, "r")
    for attempt in (1, 2):
        await outbox.drain_once(ctx, "d4", policy=policy)
        async with ctx.db.session() as s:
            row = (await s.execute(select(Outbox))).scalar_one()
        assert row.status == "pending" and row.attempts == attempt
        wait = (row.available_at - utcnow()).total_seconds()
        assert wait == pytest.approx(outbox.retry_delay(attempt, policy), abs=2)
        await _make_due(ctx)
    await outbox.drain_once(ctx, "d4", policy=policy)
    assert (await _status(ctx))["r"] == "failed"  # the third attempt was the last
