"""``chat.answer_for``: a paid answer shown again, to the member who paid for it and nobody else.

The answer is paid for the real way (account credit covers the price, so ``ask`` answers,
records and charges in one go); the same person on another platform, linked to the same
wallet, gets it too; another member who owns and unlocked the same Spaces does not; unknown
and foreign ids get the same refusal; malformed ids are refused before any SQL is sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, select

from core.context import Context
from core.db import ChatSession
from core.payments.account_credit import add_credit
from core.results import Answer, Caller, Granted, Refused
from core.service import chat
from tests.chat.helpers import member
from tests.chat.test_service import LAST_HOUR_FACT, two_spaces
from tests.snapshot import snapshot

QUESTION = "What is the budget for project vexlumdra?"


@contextmanager
def statements(ctx: Context) -> Iterator[list[str]]:
    """Every SQL statement sent to the database while the block runs."""
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(str(args[2]))

    engine = ctx.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def _paid_answer(ctx: Context) -> tuple[Caller, str, list[int]]:
    ctx.settings.payments.pay_to = "0x" + "22" * 20
    pks, ids = await two_spaces(ctx)
    ann, uid = await member(ctx, "ann", owns=pks, unlocked=pks)
    async with ctx.db.session() as s:
        await add_credit(s, uid, 1_100_000, "refund", "test:credit")
    assert isinstance(await chat.ask(ctx, ann, QUESTION, ids), Granted)
    async with ctx.db.session() as s:
        session_id = (await s.execute(select(ChatSession.session_id))).scalar_one()
    return ann, session_id, pks


async def test_the_payer_gets_the_answer_again_on_any_linked_platform(ctx: Context) -> None:
    ann, sid, _ = await _paid_answer(ctx)
    shown = await chat.answer_for(ctx, ann, sid)
    assert isinstance(shown, Answer), shown
    assert shown == await chat.answer_of(ctx, sid)  # exactly the recorded answer
    assert shown.question == QUESTION and LAST_HOUR_FACT in shown.sources[0].excerpt
    # the same person on Discord, linked to the same wallet: purchases follow the wallet
    ann_on_discord, _ = await member(ctx, "ann", caller=Caller("discord", "7001"))
    assert await chat.answer_for(ctx, ann_on_discord, sid) == shown


async def test_foreign_unknown_and_malformed_ids_are_refused_and_change_nothing(
    ctx: Context,
) -> None:
    ann, sid, pks = await _paid_answer(ctx)
    # bob owns and unlocked the very same Spaces, but did not pay for this answer
    bob, _ = await member(ctx, "bob", owns=pks, unlocked=pks)
    stranger = Caller("telegram", "never-seen")  # no account at all
    before = await snapshot(ctx)
    refusals = [
        await chat.answer_for(ctx, bob, sid),
        await chat.answer_for(ctx, stranger, sid),
        await chat.answer_for(ctx, ann, str(uuid.uuid4())),
    ]
    assert {type(r) for r in refusals} == {Refused}
    assert len(set(refusals)) == 1  # foreign and unknown look alike: ids cannot be probed
    assert refusals[0].code == "unknown_answer"  # type: ignore[union-attr]

    malformed = [
        "",
        "answer",
        sid.upper(),  # ids are lower-case, as recorded
        sid + " ",
        sid[:-1],
        sid + "0",
        "../" + sid[3:],
        "x' OR '1'='1",
        sid.replace("-", ""),
    ]
    with statements(ctx) as sent:
        out = [await chat.answer_for(ctx, ann, m) for m in malformed]
    assert sent == []  # refused before the database is asked anything
    assert {(r.code, r.message) for r in out if isinstance(r, Refused)} == {
        ("invalid_answer_id", out[0].message)  # type: ignore[union-attr]
    }
    assert len(out) == len(malformed) and "36 characters" in out[0].message  # type: ignore[union-attr]
    assert await snapshot(ctx) == before
