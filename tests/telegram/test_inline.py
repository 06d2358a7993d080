"""Inline mode through python-telegram-bot against the Bot API stand-in: ``@bot <link or
words>`` in any chat answers Space cards (title, duration, price, chapter titles) whose Buy
button opens the private quote; bad queries are answered with what is wrong; nothing changes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import update

from adapters.telegram.bot import TelegramBot
from core.context import Context
from core.db import Space
from tests.chat.helpers import add_space, space_id_for
from tests.snapshot import snapshot
from tests.stand_ins.telegram_api import BOT, BotAPI, bot_api

SEGMENTS = [{"start": 1.0, "end": 4.0, "speaker": "alice", "text": "Welcome to the weekly space."}]
Tg = tuple[BotAPI, TelegramBot]


async def completed(
    ctx: Context, i: int, title: str, chapters: list[str] | None = None, seconds: int = 3723
) -> str:
    pk = await add_space(ctx, i, SEGMENTS, title=title, participants=["alice", "bob"])
    async with ctx.db.session() as s:
        await s.execute(
            update(Space)
            .where(Space.id == pk)
            .values(
                audio_duration_seconds=seconds,
                chapter_titles=json.dumps(chapters) if chapters is not None else None,
            )
        )
    return space_id_for(i)


async def ask(api: BotAPI, query: str, **kw: Any) -> list[dict[str, Any]]:
    answer = await api.inline_answer(api.inline_query(query, **kw))
    assert answer["is_personal"] is False and answer["cache_time"] == 30
    results: list[dict[str, Any]] = answer["results"]
    return results


async def test_a_space_link_gives_its_card_with_a_buy_button(ctx: Context, tg: Tg) -> None:
    api, _ = tg
    sid = await completed(ctx, 1, "Rates & <b>bonds</b>", ["Opening", "The Fed's call"])
    before = await snapshot(ctx)
    (card,) = await ask(api, f"https://x.com/i/spaces/{sid}?s=20")
    assert card["type"] == "article" and card["id"] == sid
    assert card["title"] == "Rates & <b>bonds</b>"  # plain text: shown as typed
    assert card["description"] == (
        "01:02:03 · transcribed · transcript 0.20 USDC · Chapters: Opening · The Fed's call"
    )
    msg = card["input_message_content"]
    assert msg["parse_mode"] == "HTML"  # the stand-in parsed it as Telegram does
    text = msg["message_text"]
    assert "Rates &amp; &lt;b&gt;bonds&lt;/b&gt;" in text and "Chapters: Opening" in text
    assert "Duration: 01:02:03" in text and "Transcript: <b>0.20 USDC</b>" in text
    (button,) = card["reply_markup"]["inline_keyboard"][0]
    assert button["url"] == f"https://t.me/{BOT['username']}?start=buy_{sid}"
    assert await snapshot(ctx) == before


async def test_words_find_titles_and_speakers_nothing_gives_the_most_bought(
    ctx: Context, tg: Tg
) -> None:
    api, _ = tg
    a = await completed(ctx, 1, "Bitcoin weekly", ["Halving"])
    b = await completed(ctx, 2, "Rates and bonds")
    await add_space(ctx, 3, [], title="Bitcoin pending", status="pending")  # not a result
    assert [c["id"] for c in await ask(api, "bitcoin", chat_type="private")] == [a]
    assert [c["id"] for c in await ask(api, "bonds")] == [b]
    assert {c["id"] for c in await ask(api, "alice")} == {a, b}  # a speaker
    assert {c["id"] for c in await ask(api, "")} == {a, b}
    (none,) = await ask(api, "volcano")
    assert none["title"] == "No Space matches" and "volcano" in str(none)
    assert "reply_markup" not in none


async def test_a_word_that_looks_like_an_id_searches_and_offers_that_id_last(
    ctx: Context, tg: Tg
) -> None:
    api, _ = tg
    sid = await completed(ctx, 1, "Decentralized finance", ["Opening"])
    found = await ask(api, "Decentralized")  # 13 letters: the shape of a Space id too
    assert [c["id"] for c in found] == [sid, "Decentralized"]
    assert found[1]["description"].startswith("Not requested yet")


async def test_a_long_card_stays_one_valid_message(ctx: Context, tg: Tg) -> None:
    api, _ = tg
    pk = await add_space(
        ctx, 1, [], title="Crowded", participants=[f"speaker&{i}<x>" for i in range(900)]
    )
    async with ctx.db.session() as s:
        await s.execute(
            update(Space).where(Space.id == pk).values(chapter_titles=json.dumps(["A&B"] * 400))
        )
    (card,) = await ask(api, space_id_for(1))  # accepted: under 4096, and the HTML parses
    text = card["input_message_content"]["message_text"]
    assert "Participants: speaker&amp;0&lt;x&gt;" in text and "Chapters: A&amp;B" in text


async def test_an_unknown_space_is_offered_to_order_and_nothing_is_written(
    ctx: Context, tg: Tg
) -> None:
    api, _ = tg
    before = await snapshot(ctx)
    (card,) = await ask(api, "1UNKNOWNSPACE")
    assert card["title"] == "Space 1UNKNOWNSPACE"
    assert card["description"] == "Not requested yet · transcript 0.20 USDC"
    assert "Not transcribed yet" in card["input_message_content"]["message_text"]
    assert card["reply_markup"]["inline_keyboard"][0][0]["url"].endswith("start=buy_1UNKNOWNSPACE")
    assert await snapshot(ctx) == before


async def test_bad_queries_say_what_is_wrong_and_change_nothing(ctx: Context, tg: Tg) -> None:
    api, _ = tg
    await completed(ctx, 1, "Bitcoin weekly")
    before = await snapshot(ctx)
    cases = {
        "https://evil.com/i/spaces/1RDxlAoOeQRKL": "Only X (Twitter) Space links",
        "x.com/i/spaces/not-an-id": "does not contain a valid Space id",
        "bitcoin\x00weekly": "Control characters are not allowed",
        "bitcoin\x1b[31m": "Control characters are not allowed",
        "bitcoin " * 40: "at most 256 characters",
        "?? !!": "Type a Space link, or words",
    }
    for query, expected in cases.items():
        (r,) = await ask(api, query)
        assert r["id"] == "refused" and expected in r["title"], (query, r)
        assert expected in r["input_message_content"]["message_text"]
        assert "reply_markup" not in r
    assert await snapshot(ctx) == before


async def test_the_buy_button_opens_the_private_quote(ctx: Context, tg: Tg) -> None:
    api, _ = tg
    sid = await completed(ctx, 1, "Bitcoin weekly", ["Halving"])
    (card,) = await ask(api, sid)
    url = card["reply_markup"]["inline_keyboard"][0][0]["url"]
    api.command("/start " + url.split("?start=")[1], user_id=9)  # Telegram: Start pressed
    (quote,) = await api.wait_for("sendMessage")
    assert quote["chat_id"] == 9 and sid in quote["text"] and "0.20 USDC" in quote["text"]
    assert "Chapters: Halving" in quote["text"]
    pay = quote["reply_markup"]["inline_keyboard"][0][0]
    assert pay["url"].startswith(ctx.settings.web.public_url + "/pay/")
    api.command("/start buy_../../etc", user_id=9)
    msgs = await api.wait_for("sendMessage", 2)
    assert "Space" in msgs[1]["text"] and "etc" not in msgs[1]["text"]


async def test_the_stand_in_refuses_what_telegram_refuses(tg: Tg) -> None:
    """The checks the answers above passed can fail: an answer Telegram would refuse."""
    api, _ = tg
    qid = api.inline_query("x")
    await api.inline_answer(qid)
    article = {
        "type": "article",
        "id": "a",
        "title": "t",
        "input_message_content": {"message_text": "<b>open", "parse_mode": "HTML"},
    }
    assert api._answer_inline({"inline_query_id": qid, "results": []}) is not None  # answered
    for results in (
        [article],
        [{**article, "input_message_content": {"message_text": "a < b", "parse_mode": "HTML"}}],
        [{**article, "input_message_content": {"message_text": "ok"}}] * 2,
        [{**article, "id": "x" * 65, "input_message_content": {"message_text": "ok"}}],
        [{**article, "title": "", "input_message_content": {"message_text": "ok"}}],
    ):
        api.inline_queries["fresh"] = {}
        assert api._answer_inline({"inline_query_id": "fresh", "results": results}), results


async def test_a_bot_without_inline_mode_says_how_to_turn_it_on(
    ctx: Context, capsys: pytest.CaptureFixture[str]
) -> None:
    async with bot_api() as api:
        api.inline = False  # BotFather's /setinline not done: getMe says so
        ctx.settings.telegram.base_url = api.url
        bot = TelegramBot(ctx, api.token)
        await bot.start()
        await bot.stop()
    assert "telegram inline mode is off; BotFather /setinline" in capsys.readouterr().out
