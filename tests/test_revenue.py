"""/revenue: exact Decimal totals by product, counts, payers, refunds, costs, chart, admin-only."""

from datetime import timedelta
from decimal import Decimal

from core.context import Context
from core.db import ChatSession, ChatUnlock, Credit, Space, TranscriptionPayment, User, utcnow
from core.results import Caller, Refused
from core.service.revenue import report

ADMIN = Caller("telegram", "1", is_admin=True)


async def _populate(ctx: Context) -> None:
    now = utcnow()
    async with ctx.db.session() as s:
        users = [User(wallet_address=f"0x{i:040x}") for i in range(1, 4)]
        s.add_all(users)
        sp = Space(
            space_id="1AAAAAAAAAAAA",
            space_url="https://x.com/i/spaces/1AAAAAAAAAAAA",
            title="Big one",
            status="completed",
            audio_duration_seconds=3600,
            completed_at=now,
        )
        old = Space(
            space_id="1BBBBBBBBBBBB",
            space_url="https://x.com/i/spaces/1BBBBBBBBBBBB",
            title="Old",
            status="completed",
        )
        s.add_all([sp, old])
        await s.flush()
        # 0.1 + 0.2 style sums are where REAL arithmetic goes wrong
        for u in users:
            s.add(
                TranscriptionPayment(
                    user_id=u.id,
                    space_id=sp.id,
                    amount_usdc="0.1",
                    payment_verified=True,
                    paid_at=now,
                )
            )
        s.add(
            TranscriptionPayment(
                user_id=users[0].id,
                space_id=old.id,
                amount_usdc="0.2",
                payment_verified=True,
                paid_at=now - timedelta(days=40),
            )
        )
        s.add(
            TranscriptionPayment(
                user_id=users[1].id,
                space_id=old.id,
                amount_usdc="0.2",
                payment_verified=False,
                paid_at=now,
            )
        )
        s.add(
            ChatUnlock(
                user_id=users[0].id,
                space_id=sp.id,
                amount_usdc="0.5",
                payment_verified=True,
                unlocked_at=now,
            )
        )
        for i, amt in enumerate(["1.0", "1.1", "1.2"]):
            s.add(
                ChatSession(
                    session_id=f"s{i}",
                    user_id=users[0].id,
                    space_ids="[]",
                    question="q",
                    answer="a",
                    num_spaces=i + 1,
                    amount_usdc=amt,
                    tokens_used=1000,
                    queried_at=now,
                )
            )
        s.add(
            Credit(
                user_id=users[2].id,
                amount_units=200_000,
                reason="refund",
                reference="r1",
                created_at=now,
            )
        )


async def test_exact_totals_week_and_all(ctx: Context) -> None:
    await _populate(ctx)
    rep = await report(ctx, ADMIN, "week")
    assert not isinstance(rep, Refused)
    by = {line.product: line for line in rep.lines}
    assert by["transcriptions"].total == Decimal("0.3") and by["transcriptions"].count == 3
    assert by["chat_unlocks"].total == Decimal("0.5")
    assert by["chat_queries"].total == Decimal("3.3") and by["chat_queries"].count == 3
    assert rep.total == Decimal("4.1")
    assert rep.paying_users == 3 and rep.refunds == Decimal("0.2")
    assert by["transcriptions"].cost == Decimal("0.36")  # 60 min × 0.006
    assert by["chat_queries"].cost == Decimal("0.015")  # 3,000 tokens × 0.005 / 1k
    assert [s.space_id for s in rep.top_spaces] == ["1AAAAAAAAAAAA"]
    assert rep.chart_png and rep.chart_png.startswith(b"\x89PNG")
    rep_all = await report(ctx, ADMIN, "all", chart=False)
    assert not isinstance(rep_all, Refused)
    assert rep_all.total == Decimal("4.3") and rep_all.chart_png is None


async def test_admins_only_and_bad_period(ctx: Context) -> None:
    r = await report(ctx, Caller("telegram", "2"), "week")
    assert isinstance(r, Refused) and r.code == "not_admin"
    r = await report(ctx, ADMIN, "fortnight")
    assert isinstance(r, Refused) and r.code == "invalid_period"
