"""A paid answer whose direct message Telegram refuses is not a dead end, through
python-telegram-bot against the Bot API stand-in, paid on the local chain, answered by the
real openai client against the chat stand-in:

/chat in a group → quote in private → paid through the pay page → the member blocks the
bot → the DM is refused (403) → the group is told, with a deep link ``?start=answer_<id>`` →
the member opens it → the answer they paid for, once per /start, no new model call;
another member with the same link gets the not-found refusal; malformed ids get a specific
refusal, and neither changes anything.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from sqlalchemy import select

from adapters.telegram import texts
from core.db import ChatSession, Outbox
from core.service import chat
from tests.chat.helpers import member
from tests.pay_flow import pay_via_page
from tests.snapshot import snapshot
from tests.stand_ins.chain import Chain
from tests.stand_ins.telegram_api import BOT, BotAPI
from tests.telegram.test_scenarios import GROUP, MEMBER, chat_shop, drain, web

OTHER = 8  # another member of the group, who bought and unlocked the same Spaces
QUESTION = "What is the budget for project vexlumdra?"
LINK = re.compile(rf"https://t\.me/{BOT['username']}\?start=([A-Za-z0-9_-]{{1,64}})")


def said(api: BotAPI, chat_id: int) -> list[str]:
    return [m["text"] for m in api.sent("sendMessage") if int(m["chat_id"]) == chat_id]


async def ask(
    api: BotAPI, text: str, user_id: int, chat_id: int | None = None, replies: int = 1
) -> list[str]:
    """Send a command and wait for (at least) ``replies`` messages from the bot (any chat)."""
    n = len(api.sent("sendMessage"))
    kind = "group" if chat_id else "private"
    api.command(text, user_id=user_id, chat_id=chat_id, chat_type=kind)
    await api.wait_for("sendMessage", n + replies)
    return [m["text"] for m in api.sent("sendMessage")[n:]]


async def test_refused_answer_dm_is_reached_through_the_deep_link(
    db_url: str, tmp_path: Path, chain: Chain, fresh_payer: Any
) -> None:
    async with chat_shop(db_url, tmp_path, chain) as (ctx, api, llm, pks, ids):
        await member(ctx, "bob", owns=pks, unlocked=pks, platform_user_id=str(OTHER))
        await ask(api, f"/chat {QUESTION} {ids[0]} {ids[1]}", MEMBER, GROUP)
        (quote,) = [m for m in api.sent("sendMessage") if m["chat_id"] == MEMBER]
        assert "1.10 USDC" in quote["text"]
        async with web(ctx) as client:
            paid = await pay_via_page(
                client, quote["reply_markup"]["inline_keyboard"][0][0]["url"], fresh_payer
            )
        assert paid["status"] == "credited", paid

        api.blocked.add(str(MEMBER))  # the member blocked the bot after paying
        assert await drain(ctx) == 2  # the answer and the payment confirmation
        async with ctx.db.session() as s:
            rows = {r.kind: r for r in (await s.execute(select(Outbox))).scalars()}
            (row,) = (await s.execute(select(ChatSession))).scalars()
        assert rows["chat_answer"].status == "fallback"
        assert rows["chat_answer"].last_error == "Forbidden: bot was blocked by the user"
        assert json.loads(rows["chat_answer"].payload) == {"session_id": row.session_id}
        # the stand-in records calls it refuses too: one attempt, answered 403
        assert len([t for t in said(api, MEMBER) if "<b>Q:</b>" in t]) == 1

        told = said(api, GROUP)[1:]  # after "I sent you the payment details privately"
        (fallback,) = [t for t in told if "answer you paid for" in t]
        (payload,) = set(LINK.findall(fallback))
        assert payload == f"answer_{row.session_id}" and len(payload) <= 64
        assert QUESTION not in fallback and "742 thousand" not in fallback  # nothing leaks
        (notice,) = [t for t in told if t is not fallback]
        assert "start=help" in notice and "transcript" not in notice

        # the member opens the bot (which unblocks it) and presses Start
        api.blocked.clear()
        recorded = await chat.answer_of(ctx, row.session_id)
        assert recorded is not None
        expected = texts.answer(recorded)
        assert "742 thousand" in expected and f"{ids[0]} 02:4" in expected
        before = await snapshot(ctx)
        for _ in range(2):  # once per request, every time
            assert await ask(api, f"/start {payload}", MEMBER) == [expected]
        # typed in the group, it still goes to the member only
        replies = await ask(api, f"/start {payload}", MEMBER, GROUP, replies=2)
        assert len(replies) == 2 and replies[0] == expected
        assert said(api, GROUP)[-1] == "I sent you your answer privately."
        assert [t for t in said(api, MEMBER) if "<b>Q:</b>" in t][1:] == [expected] * 3
        assert len(llm.requests) == 1  # shown again, never answered (or charged) again

        # another member with the same link: the not-found refusal, nothing of the answer
        (refusal,) = await ask(api, f"/start {payload}", OTHER)
        assert "no answer with this id" in refusal and "742 thousand" not in refusal
        unknown = "answer_0f8fad5b-d9cb-469f-a165-70867728950e"
        assert await ask(api, f"/start {unknown}", MEMBER) == [refusal]
        # malformed ids: refused, saying what an answer id looks like
        for bad in (
            "answer_",
            "answer_../../etc/passwd",
            f"answer_{row.session_id.upper()}",
            payload + "0",
        ):
            (reply,) = await ask(api, f"/start {bad}", MEMBER)
            assert reply.startswith("⚠️ That is not an answer id"), (bad, reply)
        assert await snapshot(ctx) == before
        assert not api.sent("sendDocument")

        # pressing Start in private also sends what could not be delivered: once, only once
        replies = await ask(api, "/start", MEMBER, replies=2)
        assert replies[-1] == "📬 Sending you now the 2 messages I could not deliver before."
        assert await drain(ctx) == 2
        assert [t for t in said(api, MEMBER) if "<b>Q:</b>" in t][4:] == [expected]
        assert "payment" in said(api, MEMBER)[-1].lower()  # the notice the group pointed to
        await ask(api, "/start", OTHER)
        await ask(api, "/start", MEMBER)
        await ask(api, "/help", MEMBER)  # updates run in order: both /start are handled
        assert sum(t.startswith("📬") for t in said(api, MEMBER) + said(api, OTHER)) == 1
        assert await drain(ctx) == 0
        async with ctx.db.session() as s:
            statuses = (await s.execute(select(Outbox.status))).scalars().all()
        assert set(statuses) == {"sent"}
