"""Telegram end to end, through python-telegram-bot against the Bot API stand-in:

- a member asks for a transcript in a group → the quote arrives privately → the pay page is
  paid on the local chain (EIP-3009 on anvil) → the worker transcribes the HLS recording with
  the offline backend → the transcript arrives as a document in a direct message, once;
- /chat across two Spaces → paid → the cited answer arrives in the chat;
- webhook mode: updates posted to the web server with the secret token, refused without it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from adapters.telegram.bot import TelegramBot
from bot.wiring import telegram_bot, web_app, wire
from core import outbox
from core.config import Secrets
from core.context import Context
from core.db import Database
from core.errors import ConfigError
from core.worker import Worker
from tests.chat.helpers import member
from tests.chat.test_service import two_spaces
from tests.conftest import make_settings
from tests.pay_flow import pay_via_page
from tests.payments.conftest import chain_secrets
from tests.pipeline.conftest import LocalResolver
from tests.snapshot import snapshot
from tests.stand_ins.chain import Chain
from tests.stand_ins.openai_chat import OpenAIChat, openai_chat
from tests.stand_ins.telegram_api import BOT, BotAPI, bot_api

SID = "1TGScenario01"
PUBLIC = "http://shop.test"
MEMBER, GROUP = 7, -100


def shop_context(db_url: str, tmp_path: Path, secrets: Secrets, **settings: Any) -> Context:
    s = make_settings(db_url, tmp_path / "data", web={"public_url": PUBLIC}, **settings)
    return wire(Context(s, secrets, Database(db_url), instance="test:tg"))  # as a process


@pytest.fixture
async def shop(db_url: str, tmp_path: Path, chain: Chain) -> AsyncIterator[Context]:
    """A Context on the local chain (in-process settlement by the relayer)."""
    c = shop_context(db_url, tmp_path, chain_secrets(chain), payments=chain.payment_settings())
    try:
        yield c
    finally:
        await c.close()


async def running(ctx: Context, api: BotAPI, secret: str | None = None) -> TelegramBot:
    ctx.settings.telegram.base_url = api.url
    bot = telegram_bot(ctx, api.token, secret)
    await bot.start()
    return bot


def web(ctx: Context) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=web_app(ctx)), base_url=PUBLIC)


@asynccontextmanager
async def chat_shop(
    db_url: str, tmp_path: Path, chain: Chain
) -> AsyncIterator[tuple[Context, BotAPI, OpenAIChat, list[int], list[str]]]:
    """A running bot on the local chain with the chat stand-in, two indexed Spaces, and
    MEMBER owning and having unlocked both: (context, Bot API, model, Space pks and ids)."""
    async with openai_chat() as llm, bot_api() as api:
        secrets = Secrets.model_construct(
            relayer_key=SecretStr(chain.relayer_key),
            openai_api_key=SecretStr("sk-test"),
            openai_base_url=llm.url,
        )
        ctx = shop_context(db_url, tmp_path, secrets, payments=chain.payment_settings())
        bot = await running(ctx, api)
        try:
            pks, ids = await two_spaces(ctx)
            await member(ctx, "ann", owns=pks, unlocked=pks, platform_user_id=str(MEMBER))
            yield ctx, api, llm, pks, ids
        finally:
            await bot.stop()
            await ctx.close()


async def drain(ctx: Context) -> int:
    n = 0
    while sent := await outbox.drain_once(ctx, "test"):
        n += sent
    return n


async def test_group_purchase_paid_on_chain_and_delivered_by_dm(
    shop: Context, chain: Chain, fresh_payer: Any, hls_url: str
) -> None:
    shop.wiring.resolver = LocalResolver(hls_url)
    async with bot_api() as api:
        bot = await running(shop, api)
        try:
            api.command(
                f"/transcribe https://x.com/i/spaces/{SID}",
                user_id=MEMBER,
                chat_id=GROUP,
                chat_type="group",
            )
            msgs = await api.wait_for("sendMessage", 2)
            private = next(m for m in msgs if m["chat_id"] == MEMBER)
            in_group = next(m for m in msgs if m["chat_id"] == GROUP)
            assert "privately" in in_group["text"] and "USDC" not in in_group["text"]
            assert "0.20 USDC" in private["text"] and SID in private["text"]
            pay_url = private["reply_markup"]["inline_keyboard"][0][0]["url"]
            assert pay_url.startswith(f"{PUBLIC}/pay/")

            before = chain.balance(chain.pay_to)
            async with web(shop) as client:
                page = await client.get(pay_url)
                out = await pay_via_page(client, pay_url, fresh_payer)
            public_id = pay_url.rsplit("/", 1)[1]
            back = f"https://t.me/{BOT['username']}?start=paid_{public_id}"
            assert page.status_code == 200 and back in page.text  # back to the bot
            assert out["status"] == "credited" and out["back"] == back, out
            assert chain.balance(chain.pay_to) - before == 200_000  # 0.20 USDC, on chain

            assert await drain(shop) == 1  # the payment confirmation
            confirm = [m for m in api.sent("sendMessage") if m["chat_id"] == MEMBER][-1]
            assert "Payment received" in confirm["text"]

            assert await Worker(shop, worker_id="w").run_one()  # offline STT on the HLS audio
            assert await drain(shop) == 1
            (doc,) = await api.wait_for("sendDocument")
            assert doc["chat_id"] == MEMBER and doc["document"]["filename"] == "transcript.md"
            assert "weather" in doc["document"]["content"].lower()
            assert "Weekly weather space" in doc["caption"]
            # the overview (offline: extractive) came just before the file, within 4096
            overview = [m for m in api.sent("sendMessage") if m["chat_id"] == MEMBER][-1]
            assert "<b>Chapters</b>" in overview["text"] and "extractive" in overview["text"]
            assert len(overview["text"]) <= 4096
            assert "## Overview" in doc["document"]["content"]
            assert await drain(shop) == 0 and len(api.sent("sendDocument")) == 1  # once

            # /myspaces <space> <format>: the subtitles; a wrong format is refused clearly
            api.command(f"/myspaces {SID} srt", user_id=MEMBER)
            (_, srt_doc) = await api.wait_for("sendDocument", 2)
            assert srt_doc["document"]["filename"] == "transcript.srt"
            assert "-->" in srt_doc["document"]["content"]
            n = len(api.sent("sendMessage"))
            api.command(f"/myspaces {SID} pdf", user_id=MEMBER)
            said = (await api.wait_for("sendMessage", n + 1))[-1]["text"]
            assert "Unknown format" in said and "srt" in said

            # back from the pay page: the deep link shows what the member now has
            api.command(f"/start paid_{public_id}", user_id=MEMBER)
            msgs = await api.wait_for("sendMessage", len(api.sent("sendMessage")) + 1)
            assert "Weekly weather space" in msgs[-1]["text"] and "completed" in msgs[-1]["text"]
            # asking again delivers at once, without a new invoice
            api.command(f"/transcribe {SID}", user_id=MEMBER)
            docs = await api.wait_for("sendDocument", 3)  # md, the srt above, md again
            assert len(docs) == 3 and docs[-1]["document"]["filename"] == "transcript.md"

            # X becomes unreachable: another member buys the Space from the library, is
            # quoted, pays on the pay page and gets the transcript (yt-dlp's requests fail)
            from tests.stand_ins.x_spaces import x_unreachable

            other = MEMBER + 1
            shop.wiring.resolver = None  # the production one
            async with x_unreachable():
                n = len(api.sent("sendMessage"))
                api.command(f"/transcribe {SID}", user_id=other)
                await api.wait_for("sendMessage", n + 1)
                quote = [m for m in api.sent("sendMessage") if m["chat_id"] == other][-1]
                assert "0.20 USDC" in quote["text"], quote["text"]
                pay_url = quote["reply_markup"]["inline_keyboard"][0][0]["url"]
                async with web(shop) as client:
                    out = await pay_via_page(client, pay_url, chain.new_funded_account())
                assert out["status"] == "credited", out
                await drain(shop)
                docs = [d for d in api.sent("sendDocument") if d["chat_id"] == other]
                assert len(docs) == 1 and "Weekly weather space" in docs[0]["caption"]
        finally:
            await bot.stop()


async def test_chat_across_two_spaces_answered_in_the_chat(
    db_url: str, tmp_path: Path, chain: Chain, fresh_payer: Any
) -> None:
    async with chat_shop(db_url, tmp_path, chain) as (ctx, api, llm, _pks, ids):
        api.command(f"/chat What is the budget for project vexlumdra? {ids[0]} {ids[1]}")
        (quote,) = await api.wait_for("sendMessage")
        assert "1.10 USDC" in quote["text"], quote["text"]
        pay_url = quote["reply_markup"]["inline_keyboard"][0][0]["url"]
        async with web(ctx) as client:
            out = await pay_via_page(client, pay_url, fresh_payer)
        assert out["status"] == "credited", out
        await drain(ctx)
        answers = [m["text"] for m in api.sent("sendMessage") if "<b>Q:</b>" in m["text"]]
        assert len(answers) == 1
        text = answers[0]
        assert "742 thousand" in text and f"{ids[0]} 02:4" in text  # cites Space + time
        assert f"https://x.com/i/spaces/{ids[0]}" in text
        assert len(llm.requests) == 1


async def test_question_paid_then_crashed_is_answered_after_recovery(
    shop: Context, chain: Chain, fresh_payer: Any
) -> None:
    """The paying process dies after settlement, before crediting: the recovery job credits the
    question, and its answer (owed, not lost) is produced and sent once through the outbox."""
    from sqlalchemy import func, select

    from core.db import ChatSession
    from core.payments import recover_payments
    from tests.payments.conftest import client_payload
    from tests.payments.crash_payer import pay_and_kill
    from tests.payments.test_x402_pay import _reqs

    async with bot_api() as api:
        bot = await running(shop, api)
        try:
            pks, ids = await two_spaces(shop)
            await member(shop, "ann", owns=pks, unlocked=pks, platform_user_id=str(MEMBER))
            api.command(f"/chat What is the budget for project vexlumdra? {ids[0]} {ids[1]}")
            (quote,) = await api.wait_for("sendMessage")
            public_id = quote["reply_markup"]["inline_keyboard"][0][0]["url"].rsplit("/", 1)[1]
            payload = client_payload(chain, fresh_payer, _reqs(shop, 1_100_000))
            await pay_and_kill(shop, chain, public_id, payload, "confirm")
            assert await recover_payments(shop) == 1
            await drain(shop)
            await drain(shop)
            answers = [m["text"] for m in api.sent("sendMessage") if "<b>Q:</b>" in m["text"]]
            assert len(answers) == 1 and "742 thousand" in answers[0]
            async with shop.db.session() as s:
                rows = (await s.execute(select(ChatSession))).scalars().all()
                n = await s.scalar(select(func.count()).select_from(ChatSession))
            assert n == 1 and rows[0].transaction_hash and rows[0].amount_usdc == "1.1"
        finally:
            await bot.stop()


async def test_webhook_mode_checks_the_secret_token(ctx: Context) -> None:
    ctx.settings.telegram.mode = "webhook"
    with pytest.raises(ConfigError, match="TELEGRAM_WEBHOOK_SECRET"):
        TelegramBot(ctx, "1:x", None)
    async with bot_api() as api:
        bot = await running(ctx, api, secret="webhook-secret-1")
        try:
            (hook,) = api.sent("setWebhook")
            assert hook["url"] == ctx.settings.web.public_url + "/telegram/webhook"
            assert hook["secret_token"] == "webhook-secret-1"
            scopes = {c["scope"]["type"]: c["commands"] for c in api.sent("setMyCommands")}
            private = {c["command"] for c in scopes["all_private_chats"]}
            group = {c["command"] for c in scopes["all_group_chats"]}
            assert {"wallet", "revenue", "transcribe", "chat"} <= private
            assert "transcribe" in group and not {"wallet", "revenue"} & group
            before = await snapshot(ctx)
            async with web(ctx) as client:
                path = "/telegram/webhook"
                update = api.update("/help")
                wrong = await client.post(
                    path, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "nope"}
                )
                missing = await client.post(path, json=update)
                junk = await client.post(
                    path,
                    json={"hello": 1},
                    headers={"X-Telegram-Bot-Api-Secret-Token": "webhook-secret-1"},
                )
                ok = await client.post(
                    path,
                    json=update,
                    headers={"X-Telegram-Bot-Api-Secret-Token": "webhook-secret-1"},
                )
            assert (wrong.status_code, missing.status_code, junk.status_code) == (403, 403, 400)
            assert ok.status_code == 200
            (reply,) = await api.wait_for("sendMessage")
            assert "0.20 USDC" in reply["text"]
            assert await snapshot(ctx) == before
        finally:
            await bot.stop()
    async with web(ctx) as client:  # bot stopped: the route says so
        off = await client.post("/telegram/webhook", json={"update_id": 1})
    assert off.status_code == 404 and off.json()["error"] == "webhook_off"
