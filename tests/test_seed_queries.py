"""The seed's common queries 1–6, verbatim but for the placeholder style, on both engines."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import text

from core.context import Context
from core.db import (
    ChatSession,
    ChatUnlock,
    ProcessingJob,
    Space,
    TranscriptionPayment,
    User,
    utcnow,
)

Q1 = """SELECT s.*
FROM spaces s
JOIN transcription_payments tp ON tp.space_id = s.id
WHERE tp.user_id = ?
  AND s.status = 'completed'
ORDER BY tp.paid_at DESC;"""
Q2 = """SELECT EXISTS(
  SELECT 1
  FROM transcription_payments
  WHERE user_id = ? AND space_id = ?
) AS has_access;"""
Q3 = """SELECT
  EXISTS(SELECT 1 FROM transcription_payments WHERE user_id = ? AND space_id = ?) AS has_transcript,
  EXISTS(SELECT 1 FROM chat_unlocks WHERE user_id = ? AND space_id = ?) AS has_chat_unlock;"""
Q4 = """SELECT space_id, title, transcription_count, chat_unlock_count
FROM spaces
WHERE status = 'completed'
ORDER BY transcription_count DESC
LIMIT 10;"""
Q5 = [
    """SELECT
  SUM(CAST(amount_usdc AS REAL)) AS total_transcriptions
FROM transcription_payments
WHERE payment_verified = TRUE;""",
    """SELECT
  SUM(CAST(amount_usdc AS REAL)) AS total_chat_unlocks
FROM chat_unlocks
WHERE payment_verified = TRUE;""",
    """SELECT
  SUM(CAST(amount_usdc AS REAL)) AS total_chat_queries
FROM chat_sessions;""",
]
Q6 = """SELECT *
FROM processing_queue
WHERE status = 'queued'
  AND retry_count < max_retries
ORDER BY priority DESC, queued_at ASC
LIMIT 1;"""


def bind(sql: str, *values: object) -> tuple:  # type: ignore[type-arg]
    """Only adaptation: '?' placeholders become named bound parameters."""
    names = iter(f"p{i}" for i in range(len(values)))
    adapted = re.sub(r"\?", lambda _m: ":" + next(names), sql).rstrip(";")
    return text(adapted), {f"p{i}": v for i, v in enumerate(values)}


async def _fixture(ctx: Context) -> dict[str, int]:
    now = utcnow()
    async with ctx.db.session() as s:
        u1, u2 = User(wallet_address="0x" + "a1" * 20), User(wallet_address="0x" + "b2" * 20)
        s.add_all([u1, u2])
        sp = []
        for i, (st, n) in enumerate([("completed", 2), ("completed", 5), ("pending", 9)]):
            sid = f"1SPACE{i}AAAAAA"
            row = Space(
                space_id=sid,
                space_url=f"https://x.com/i/spaces/{sid}",
                title=f"Space {i}",
                status=st,
                transcription_count=n,
            )
            s.add(row)
            sp.append(row)
        await s.flush()
        s.add_all(
            [
                TranscriptionPayment(
                    user_id=u1.id,
                    space_id=sp[0].id,
                    amount_usdc="0.2",
                    payment_verified=True,
                    paid_at=now - timedelta(hours=2),
                ),
                TranscriptionPayment(
                    user_id=u1.id,
                    space_id=sp[1].id,
                    amount_usdc="0.2",
                    payment_verified=True,
                    paid_at=now - timedelta(hours=1),
                ),
                TranscriptionPayment(
                    user_id=u1.id,
                    space_id=sp[2].id,
                    amount_usdc="0.2",
                    payment_verified=True,
                    paid_at=now,
                ),
                TranscriptionPayment(
                    user_id=u2.id,
                    space_id=sp[1].id,
                    amount_usdc="0.2",
                    payment_verified=False,
                    paid_at=now,
                ),
                ChatUnlock(
                    user_id=u1.id, space_id=sp[1].id, amount_usdc="0.5", payment_verified=True
                ),
                ChatSession(
                    session_id="s-1",
                    user_id=u1.id,
                    space_ids='["1SPACE1AAAAAA"]',
                    question="q",
                    answer="a",
                    num_spaces=1,
                    amount_usdc="1.0",
                ),
                ChatSession(
                    session_id="s-2",
                    user_id=u1.id,
                    space_ids='["1SPACE0AAAAAA", "1SPACE1AAAAAA"]',
                    question="q",
                    answer="a",
                    num_spaces=2,
                    amount_usdc="1.1",
                ),
            ]
        )
        j_old = ProcessingJob(
            space_id=sp[0].id, status="queued", priority=0, queued_at=now - timedelta(minutes=5)
        )
        j_hi = ProcessingJob(space_id=sp[1].id, status="queued", priority=1, queued_at=now)
        j_dead = ProcessingJob(
            space_id=sp[2].id,
            status="queued",
            priority=9,
            retry_count=3,
            max_retries=3,
            queued_at=now,
        )
        s.add_all([j_old, j_hi, j_dead])
        await s.flush()
        return {
            "u1": u1.id,
            "u2": u2.id,
            "s0": sp[0].id,
            "s1": sp[1].id,
            "s2": sp[2].id,
            "j_hi": j_hi.id,
        }


async def test_seed_queries_verbatim(ctx: Context) -> None:
    ids = await _fixture(ctx)
    async with ctx.db.session() as s:
        rows = (await s.execute(*bind(Q1, ids["u1"]))).mappings().all()
        assert [r["space_id"] for r in rows] == ["1SPACE1AAAAAA", "1SPACE0AAAAAA"]

        assert (await s.execute(*bind(Q2, ids["u1"], ids["s0"]))).scalar() in (True, 1)
        assert (await s.execute(*bind(Q2, ids["u2"], ids["s0"]))).scalar() in (False, 0)

        r3 = (await s.execute(*bind(Q3, ids["u1"], ids["s1"], ids["u1"], ids["s1"]))).one()
        assert tuple(bool(x) for x in r3) == (True, True)
        r3 = (await s.execute(*bind(Q3, ids["u1"], ids["s0"], ids["u1"], ids["s0"]))).one()
        assert tuple(bool(x) for x in r3) == (True, False)

        r4 = (await s.execute(*bind(Q4))).all()
        assert [(r[0], r[2]) for r in r4] == [("1SPACE1AAAAAA", 5), ("1SPACE0AAAAAA", 2)]

        totals = [(await s.execute(*bind(q))).scalar() for q in Q5]
        # REAL arithmetic, as the seed wrote it (the app itself sums Decimals)
        assert [round(float(t), 6) for t in totals] == [0.6, 0.5, 2.1]

        job = (await s.execute(*bind(Q6))).mappings().one()
        assert job["id"] == ids["j_hi"]
