"""Telegram Stars end to end, through python-telegram-bot against the Bot API stand-in:

- a member with no wallet buys a transcript with Stars: quote with two buttons → "Pay with
  Stars" → sendInvoice (XTR, one price, no provider token) → nothing granted until Telegram's
  ``successful_payment`` → granted once, confirmed and delivered once through the outbox;
  the same ``successful_payment`` again grants nothing more;
- pre-checkout refused for an expired invoice, an owned Space, a changed price, another's
  invoice;
- a failed Space refunds its Stars payer once, in Stars (refundStarPayment), never as credit;
- so does a question paid in Stars that the model never answers (the outbox's last attempt);
- /revenue and ``spacescribe revenue`` show USDC and Stars apart, with counts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from adapters.telegram import texts
from core import outbox
from core.config import OutboxSettings
from core.context import Context
from core.db import (
    ChatSession,
    Credit,
    Invoice,
    Outbox,
    Space,
    StarPayment,
    TranscriptionPayment,
    utcnow,
)
from core.payments.account_credit import add_credit, credit_balance
from core.refunds import settle_failed_space, settle_unanswered_question
from core.service.revenue import build_report
from core.worker import Worker
from tests.chat.helpers import member
from tests.chat.test_service import two_spaces, with_openai
from tests.discord.conftest import ADMIN as DC_ADMIN
from tests.discord.conftest import endpoints  # noqa: F401 (fixture)
from tests.discord.conftest import running as discord_running
from tests.pipeline.conftest import LocalResolver
from tests.snapshot import snapshot
from tests.stand_ins.openai_chat import openai_chat
from tests.stand_ins.telegram_api import BotAPI, bot_api
from tests.telegram.test_scenarios import MEMBER, drain, running, web

SID = "1TGStars00001"
OTHER = 8


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"not after {timeout}s: {what}"
        await asyncio.sleep(0.02)


async def count(ctx: Context, model: Any, *where: Any) -> int:
    async with ctx.db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def settled(api: BotAPI, user_id: int = MEMBER) -> None:
    """Updates are handled in order: once a later /help is answered, earlier ones are done."""
    n = len(api.sent("sendMessage"))
    api.command("/help", user_id=user_id)
    await api.wait_for("sendMessage", n + 1)


async def quote_and_invoice(api: BotAPI, sid: str, user_id: int = MEMBER) -> dict[str, Any]:
    """/transcribe, then "Pay with Stars": the invoice the bot sends."""
    n = len(api.sent("sendMessage"))
    api.command(f"/transcribe {sid}", user_id=user_id)
    quote = (await api.wait_for("sendMessage", n + 1))[n]
    usdc, star = quote["reply_markup"]["inline_keyboard"][0]
    assert usdc["text"] == "Pay with USDC" and "/pay/" in usdc["url"]
    public_id = usdc["url"].rsplit("/", 1)[1]
    assert star["callback_data"] == f"stars:{public_id}", star
    assert "0.20 USDC" in quote["text"] and "15 Stars" in quote["text"], quote["text"]
    k = len(api.sent("sendInvoice"))
    api.press(star["callback_data"], user_id)
    return (await api.wait_for("sendInvoice", k + 1))[k]


async def test_transcript_bought_with_stars_delivered_once(ctx: Context, hls_url: str) -> None:
    ctx.wiring.resolver = LocalResolver(hls_url)
    async with bot_api() as api:
        bot = await running(ctx, api)
        try:
            inv = await quote_and_invoice(api, SID)
            assert inv["chat_id"] == MEMBER and inv["currency"] == "XTR"
            assert inv.get("provider_token", "") == ""
            assert inv["prices"] == [{"label": "Transcript", "amount": 15}]
            assert SID in inv["description"] and len(inv["payload"]) <= 128
            public_id = inv["payload"]
            # the invoice is sent, nothing is granted: no purchase, no receipt, no message
            assert await count(ctx, TranscriptionPayment) == 0
            assert await count(ctx, StarPayment) == 0

            answer, charge = await api.checkout(inv, MEMBER)
            assert answer["ok"] is True and charge
            await eventually(
                lambda: count(ctx, StarPayment, StarPayment.status == "credited"), "credited"
            )
            async with ctx.db.session() as s:
                tp = (await s.execute(select(TranscriptionPayment))).scalar_one()
                sp = (await s.execute(select(StarPayment))).scalar_one()
                inv_row = (
                    await s.execute(select(Invoice).where(Invoice.public_id == public_id))
                ).scalar_one()
            assert tp.amount_usdc == "0.0" and tp.transaction_hash is None  # no USDC paid
            assert (sp.currency, sp.amount, sp.telegram_payment_charge_id) == ("XTR", 15, charge)
            assert sp.invoice_id == inv_row.id and inv_row.status == "credited"
            assert sp.telegram_user_id == str(MEMBER)

            assert await drain(ctx) == 1  # the same confirmation a USDC payment gets
            confirm = api.sent("sendMessage")[-1]
            assert "Payment received: 15 Stars" in confirm["text"], confirm["text"]
            assert await Worker(ctx, worker_id="w").run_one()
            assert await drain(ctx) == 1
            (doc,) = await api.wait_for("sendDocument")
            assert doc["chat_id"] == MEMBER and "weather" in doc["document"]["content"].lower()

            # Telegram delivers the same successful_payment again: nothing more happens
            before = await snapshot(ctx)
            api.updates.append(api.payment_update(public_id, 15, MEMBER, charge_id=charge))
            await settled(api)
            assert await snapshot(ctx) == before
            assert await drain(ctx) == 0 and len(api.sent("sendDocument")) == 1
            assert await count(ctx, TranscriptionPayment) == 1
            assert api.sent("refundStarPayment") == []

            # a wallet-less buyer owns it like any other: /myspaces, no wallet shown
            n = len(api.sent("sendMessage"))
            api.command("/myspaces", user_id=MEMBER)
            mine = (await api.wait_for("sendMessage", n + 1))[n]
            assert SID in mine["text"] and "completed" in mine["text"]
            api.command("/wallet", user_id=MEMBER)
            wallet = (await api.wait_for("sendMessage", n + 2))[n + 1]
            assert "none linked yet" in wallet["text"] and "telegram:" not in wallet["text"]
        finally:
            await bot.stop()


async def test_pre_checkout_refusals(ctx: Context, hls_url: str) -> None:
    ctx.wiring.resolver = LocalResolver(hls_url)
    async with bot_api() as api:
        bot = await running(ctx, api)
        try:
            # an invoice that expired after it was sent
            expired = await quote_and_invoice(api, SID)
            async with ctx.db.session() as s:
                await s.execute(
                    update(Invoice)
                    .where(Invoice.public_id == expired["payload"])
                    .values(expires_at=utcnow() - timedelta(seconds=1))
                )
            answer, charge = await api.checkout(expired, MEMBER)
            assert answer["ok"] is False and charge is None
            assert "expired" in answer["error_message"]

            # an invoice for a Space the member came to own meanwhile
            other = "1TGStars00002"
            owned = await quote_and_invoice(api, other)
            async with ctx.db.session() as s:
                pk = (await s.execute(select(Space.id).where(Space.space_id == other))).scalar()
            if pk is None:  # the quote made no row yet: the Space exists once bought
                async with ctx.db.session() as s:
                    s.add(
                        Space(
                            space_id=other,
                            space_url=f"https://x.com/i/spaces/{other}",
                            title="t",
                            status="completed",
                        )
                    )
                async with ctx.db.session() as s:
                    pk = (await s.execute(select(Space.id).where(Space.space_id == other))).scalar()
            await member(ctx, "ann", owns=[int(pk)], platform_user_id=str(MEMBER))
            answer, charge = await api.checkout(owned, MEMBER)
            assert answer["ok"] is False and "already own" in answer["error_message"]

            # another member presses someone else's button, or pays their invoice
            third = await quote_and_invoice(api, "1TGStars00003")
            answer, _ = await api.checkout(third, OTHER)
            assert answer["ok"] is False and "somebody else" in answer["error_message"]
            n = len(api.sent("sendMessage"))
            api.press(f"stars:{third['payload']}", OTHER)
            refused = (await api.wait_for("sendMessage", n + 1))[n]
            assert refused["chat_id"] == OTHER and "somebody else" in refused["text"]

            # the operator changed the Stars price after the invoice was sent
            ctx.settings.prices.stars.transcription = 20
            answer, _ = await api.checkout(third, MEMBER)
            assert answer["ok"] is False and "price changed" in answer["error_message"]
            # a made-up payload
            api.updates.append(api.pre_checkout_update("../../etc/passwd", 15, MEMBER))
            await settled(api)
            assert "not an invoice" in api.sent("answerPreCheckoutQuery")[-1]["error_message"]

            assert api.sent("sendMessage")  # and nothing was ever charged or granted
            assert await count(ctx, StarPayment) == 0
            assert await count(ctx, Outbox, Outbox.kind == "payment_confirmed") == 0
        finally:
            await bot.stop()


async def buy(ctx: Context, api: BotAPI, sid: str) -> str:
    inv = await quote_and_invoice(api, sid)
    answer, charge = await api.checkout(inv, MEMBER)
    assert answer["ok"] is True and charge
    await eventually(
        lambda: count(ctx, StarPayment, StarPayment.telegram_payment_charge_id == charge),
        "recorded",
    )
    await settled(api)
    return charge


async def test_failed_space_refunds_stars_once(ctx: Context, hls_url: str) -> None:
    ctx.wiring.resolver = LocalResolver(hls_url)
    async with bot_api() as api:
        bot = await running(ctx, api)
        try:
            charge = await buy(ctx, api, SID)
            await drain(ctx)
            async with ctx.db.session() as s:
                await s.execute(
                    update(Space)
                    .where(Space.space_id == SID)
                    .values(status="failed", error_message="the recording is gone")
                )
                pk = (await s.execute(select(Space.id).where(Space.space_id == SID))).scalar_one()
            for _ in range(2):  # the failure is settled twice (a crash, a second worker)
                async with ctx.db.session() as s:
                    await settle_failed_space(s, ctx.settings, pk)
            assert await drain(ctx) >= 2  # job_failed + the refund
            (refund,) = api.sent("refundStarPayment")
            assert refund == {"user_id": MEMBER, "telegram_payment_charge_id": charge}
            told = [m["text"] for m in api.sent("sendMessage") if "refunded" in m["text"]]
            assert len(told) == 1 and "15 Stars refunded" in told[0], told
            async with ctx.db.session() as s:
                sp = (await s.execute(select(StarPayment))).scalar_one()
            assert sp.status == "refunded" and sp.refunded_at is not None
            assert await count(ctx, Credit) == 0  # Stars go back as Stars, not as credit
            async with ctx.db.session() as s:
                await settle_failed_space(s, ctx.settings, pk)
            assert await drain(ctx) == 0 and len(api.sent("refundStarPayment")) == 1

            # a redelivered refund message (crash after the API call) is not a second refund
            async with ctx.db.session() as s:
                await s.execute(
                    update(Outbox)
                    .where(Outbox.kind == "stars_refund")
                    .values(status="pending", available_at=utcnow())
                )
            assert await drain(ctx) == 1
            assert api.refunded == {charge} and len(api.sent("refundStarPayment")) == 2
            async with ctx.db.session() as s:
                row = (
                    await s.execute(select(Outbox).where(Outbox.kind == "stars_refund"))
                ).scalar_one()
            assert row.status == "sent"  # CHARGE_ALREADY_REFUNDED counts as done
        finally:
            await bot.stop()


async def test_revenue_reports_usdc_and_stars_apart(
    ctx: Context,
    hls_url: str,
    tmp_path: Path,
    endpoints: None,  # noqa: F811
) -> None:
    ctx.wiring.resolver = LocalResolver(hls_url)
    async with bot_api() as api:
        bot = await running(ctx, api)
        try:
            await buy(ctx, api, SID)
            async with ctx.db.session() as s:
                s.add(
                    Space(
                        space_id="1TGStarsUsdc1",
                        space_url="https://x.com/i/spaces/1TGStarsUsdc1",
                        title="paid in USDC",
                        status="completed",
                    )
                )
            async with ctx.db.session() as s:
                pk = (
                    await s.execute(select(Space.id).where(Space.space_id == "1TGStarsUsdc1"))
                ).scalar_one()
            await member(ctx, "bob", owns=[pk], platform_user_id="99")
        finally:
            await bot.stop()
    rep = await build_report(ctx, "all")
    assert not isinstance(rep, type(None)) and hasattr(rep, "lines")
    lines = {line.product: (line.total, line.count) for line in rep.lines}  # type: ignore[union-attr]
    stars = {line.product: (line.stars, line.count) for line in rep.stars_lines}  # type: ignore[union-attr]
    assert str(lines["transcriptions"][0]) == "0.2" and lines["transcriptions"][1] == 1
    assert stars["transcriptions"] == (15, 1) and stars["chat_unlocks"] == (0, 0)
    assert str(rep.total) == "0.2" and rep.stars_total == 15  # type: ignore[union-attr]
    text = texts.revenue(rep)  # type: ignore[arg-type]
    assert "transcriptions: 0.20 USDC (1)" in text and "⭐ 15 Stars (1)" in text, text
    assert rep.chart_png and rep.chart_png.startswith(b"\x89PNG")  # type: ignore[union-attr]
    # paying users: the Stars buyer (no wallet) and the USDC buyer, each once
    assert rep.paying_users == 2  # type: ignore[union-attr]
    assert "paying users 2" in text, text

    # Discord's /revenue (discord.py against its stand-in) shows the same split per product
    async with discord_running(ctx, admin_ids=[DC_ADMIN]) as (dc_api, _bot):
        got = await dc_api.reply(
            await dc_api.interact("revenue", {"period": "all"}, user_id=DC_ADMIN)
        )
    said = got.text
    assert "Total: **0.20 USDC**" in said and "transcriptions: 0.20 USDC (1)" in said, said
    assert "transcriptions: ⭐ 15 Stars (1)" in said, said
    assert "chat unlocks: ⭐ 0 Stars (0)" in said and "chat queries: ⭐ 0 Stars (0)" in said
    assert "Total: ⭐ 15 Stars** (1) · refunded ⭐ 0 Stars (0)" in said, said
    assert "Paying users (USDC or Stars)" in said and "15.2" not in said  # never summed
    fields = {f["name"]: f["value"] for f in got.data["embeds"][0]["fields"]}
    assert fields["Paying users (USDC or Stars)"] == "2", fields


FAST_LAST = OutboxSettings(retry_base_seconds=60, max_attempts=2)  # 2 tries, then give up


async def drain_with(ctx: Context, policy: OutboxSettings) -> int:
    n = 0
    while sent := await outbox.drain_once(ctx, "test", policy=policy):
        n += sent
    return n


async def due_again(ctx: Context, kind: str) -> None:
    """The row is due now: a retry's backoff is over, or it is delivered again (a crash
    after the send, an operator re-queueing it)."""
    async with ctx.db.session() as s:
        await s.execute(
            update(Outbox)
            .where(Outbox.kind == kind)
            .values(status="pending", available_at=utcnow())
        )


async def test_unanswered_question_paid_in_stars_refunded_once(ctx: Context) -> None:
    """A question paid in Stars is owed its answer; when the model gives up on the outbox's
    last attempt, the Stars go back with refundStarPayment, once, and the question is never
    answered afterwards (nor turned into USDC credit)."""
    async with openai_chat() as llm, bot_api() as api:
        shop = with_openai(ctx, llm.url)
        bot = await running(shop, api)
        try:
            pks, ids = await two_spaces(shop)
            await member(shop, "ann", owns=pks, unlocked=pks, platform_user_id=str(MEMBER))
            n = len(api.sent("sendMessage"))
            api.command(f"/chat What is the budget for project vexlumdra? {ids[0]} {ids[1]}")
            quote = (await api.wait_for("sendMessage", n + 1))[n]
            star = quote["reply_markup"]["inline_keyboard"][0][-1]
            price = 70 + 2 * 8  # chat_base + chat_per_space × 2 Spaces
            assert star["text"] == f"Pay with Stars ⭐ {price}", star
            api.press(star["callback_data"], MEMBER)
            (inv,) = await api.wait_for("sendInvoice")
            assert inv["prices"] == [{"label": "Question", "amount": price}]
            answer, charge = await api.checkout(inv, MEMBER)
            assert answer["ok"] is True and charge
            await eventually(
                lambda: count(shop, StarPayment, StarPayment.status == "credited"), "credited"
            )
            await settled(api)
            # paid: the answer is owed (produced when its message is sent)
            assert await count(shop, Outbox, Outbox.kind == "chat_answer") == 1

            # the model is down: the first attempt is retried, nothing refunded yet
            llm.faults[:] = ["500"] * 3  # the openai client's own 2 retries fail too
            await drain_with(shop, FAST_LAST)
            async with shop.db.session() as s:
                row = (
                    await s.execute(select(Outbox).where(Outbox.kind == "chat_answer"))
                ).scalar_one()
            assert (row.status, row.attempts) == ("pending", 1), (row.status, row.last_error)
            assert await count(shop, Outbox, Outbox.kind == "stars_refund") == 0

            # still down on the last attempt: refunded in Stars instead of retried forever
            llm.faults[:] = ["500"] * 3
            await due_again(shop, "chat_answer")
            await drain_with(shop, FAST_LAST)
            (refund,) = api.sent("refundStarPayment")
            assert refund == {"user_id": MEMBER, "telegram_payment_charge_id": charge}
            told = [m["text"] for m in api.sent("sendMessage") if "refunded" in m["text"]]
            assert len(told) == 1 and f"{price} Stars refunded" in told[0], told
            assert "could not be answered" in told[0]
            async with shop.db.session() as s:
                sp = (await s.execute(select(StarPayment))).scalar_one()
                row = (
                    await s.execute(select(Outbox).where(Outbox.kind == "chat_answer"))
                ).scalar_one()
            assert sp.status == "refunded" and sp.refunded_at is not None
            assert "AI model was unavailable" in (sp.refund_reason or "")
            assert row.status == "failed" and row.last_error == "unanswered_refunded"
            assert await count(shop, Credit) == 0  # Stars go back as Stars
            assert await count(shop, ChatSession) == 0

            # the model is back and the message is redelivered (a crash, an operator):
            # a refunded question is not answered after all, nor refunded again
            await due_again(shop, "chat_answer")
            await due_again(shop, "stars_refund")
            before = len(llm.requests)
            await drain_with(shop, FAST_LAST)
            assert len(llm.requests) == before and await count(shop, ChatSession) == 0
            assert len(api.sent("refundStarPayment")) == 2  # the redelivered refund message…
            assert api.refunded == {charge}  # …is CHARGE_ALREADY_REFUNDED: one refund
            async with shop.db.session() as s:
                pk = await s.execute(select(Invoice.id).where(Invoice.kind == "chat_query"))
                assert not await settle_unanswered_question(
                    s, shop.settings, pk.scalar_one(), "again"
                )
            assert await count(shop, Outbox, Outbox.kind == "stars_refund") == 1
            rep = await build_report(shop, "all")
            assert rep.stars_refunded == price and rep.stars_refund_count == 1  # type: ignore[union-attr]
        finally:
            await bot.stop()


async def quote_of(api: BotAPI, sid: str, user_id: int = MEMBER) -> dict[str, Any]:
    n = len(api.sent("sendMessage"))
    api.command(f"/transcribe {sid}", user_id=user_id)
    return (await api.wait_for("sendMessage", n + 1))[n]


def buttons(quote: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for row in quote["reply_markup"]["inline_keyboard"] for b in row]


async def said_after(api: BotAPI, push: Callable[[], None]) -> str:
    n = len(api.sent("sendMessage"))
    push()
    return str((await api.wait_for("sendMessage", n + 1))[n]["text"])


async def test_operator_switches_offer_one_method_and_refuse_the_other(
    ctx: Context, hls_url: str
) -> None:
    """telegram.stars_enabled / usdc_enabled: the quote offers only the method left on; the
    other's stale buttons, pre-checkouts and pay pages are refused with a clear message."""
    ctx.wiring.resolver = LocalResolver(hls_url)
    tg = ctx.settings.telegram
    async with bot_api() as api, web(ctx) as site:
        bot = await running(ctx, api)
        try:
            # a quote sent while both were on: both buttons, its Stars invoice opened
            old = await quote_and_invoice(api, SID)

            tg.stars_enabled = False
            quote = await quote_of(api, "1TGStars00002")
            (usdc,) = buttons(quote)
            assert usdc["text"] == "Pay with USDC" and "/pay/" in usdc["url"]
            assert "0.20 USDC" in quote["text"] and "⭐" not in quote["text"], quote["text"]
            # the old quote's Stars button and its invoice: refused, saying why
            text = await said_after(api, lambda: api.press(f"stars:{old['payload']}", MEMBER))
            assert "Telegram Stars is turned off" in text and "USDC" in text, text
            answer, charge = await api.checkout(old, MEMBER)
            assert answer["ok"] is False and charge is None
            assert "Telegram Stars is turned off" in answer["error_message"]
            assert len(api.sent("sendInvoice")) == 1  # no new invoice was sent

            tg.stars_enabled, tg.usdc_enabled = True, False
            quote = await quote_of(api, "1TGStars00003")
            (star,) = buttons(quote)
            assert star["text"] == "Pay with Stars ⭐ 15" and "url" not in star
            assert "USDC" not in quote["text"] and "15 Stars" in quote["text"], quote["text"]
            # the USDC way of a Telegram quote (its pay page) is refused, saying why
            public_id = usdc["url"].rsplit("/", 1)[1]
            r = await site.get(
                f"/pay/{public_id}/authorization", params={"payer": "0x" + "ab" * 20}
            )
            assert r.status_code == 409 and r.json()["code"] == "usdc_off", r.text
            assert "Pay with Stars" in r.json()["message"]
            # and Stars work: the quote's invoice is paid and granted
            k = len(api.sent("sendInvoice"))
            api.press(star["callback_data"], MEMBER)
            inv = (await api.wait_for("sendInvoice", k + 1))[k]
            answer, charge = await api.checkout(inv, MEMBER)
            assert answer["ok"] is True and charge
            await eventually(
                lambda: count(ctx, StarPayment, StarPayment.status == "credited"), "credited"
            )
            assert await count(ctx, TranscriptionPayment) == 1
        finally:
            await bot.stop()


async def test_quote_with_usdc_credit_applied_offers_usdc_only(ctx: Context, hls_url: str) -> None:
    """Account credit (USDC) pays part of a quote: the rest is USDC, so no Stars button, and
    Stars for that invoice are refused; with USDC turned off no credit is reserved at all."""
    ctx.wiring.resolver = LocalResolver(hls_url)
    async with bot_api() as api:
        bot = await running(ctx, api)
        try:
            _caller, uid = await member(ctx, "ann", platform_user_id=str(MEMBER))
            async with ctx.db.session() as s:
                await add_credit(s, uid, 50_000, "overpaid", "test:credit")  # 0.05 USDC

            quote = await quote_of(api, SID)
            (usdc,) = buttons(quote)
            assert usdc["text"] == "Pay with USDC", quote["reply_markup"]
            assert "0.15 USDC" in quote["text"] and "0.05 USDC is already applied" in quote["text"]
            assert "⭐" not in quote["text"], quote["text"]
            public_id = usdc["url"].rsplit("/", 1)[1]
            # a Stars press or pre-checkout for it anyway (a forged update): refused
            text = await said_after(api, lambda: api.press(f"stars:{public_id}", MEMBER))
            assert "credit is already applied" in text and "USDC" in text, text
            api.updates.append(api.pre_checkout_update(public_id, 15, MEMBER))
            await settled(api)
            refused = api.sent("answerPreCheckoutQuery")[-1]
            assert (
                refused["ok"] is False and "credit is already applied" in refused["error_message"]
            )
            assert api.sent("sendInvoice") == [] and await count(ctx, StarPayment) == 0

            # USDC off on Telegram: the credit cannot pay a part (the rest would be USDC),
            # so none is reserved and the quote is the whole price in Stars
            async with ctx.db.session() as s:  # (the first quote reserved all of it)
                await add_credit(s, uid, 50_000, "overpaid", "test:credit2")
            ctx.settings.telegram.usdc_enabled = False
            quote = await quote_of(api, "1TGStars00002")
            (star,) = buttons(quote)
            assert star["text"] == "Pay with Stars ⭐ 15" and "applied" not in quote["text"]
            async with ctx.db.session() as s:
                inv = (
                    await s.execute(
                        select(Invoice).where(Invoice.public_id == star["callback_data"][6:])
                    )
                ).scalar_one()
            assert inv.credit_units == 0
            async with ctx.db.session() as s:
                assert await credit_balance(s, uid) == 50_000  # still the member's
        finally:
            await bot.stop()
