"""Telegram Stars end to end, through python-telegram-bot against the Bot API stand-in:

- a member with no wallet buys a transcript with Stars: quote with two buttons → "Pay with
  Stars" → sendInvoice (XTR, one price, no provider token) → nothing granted until Telegram's
  ``successful_payment`` → granted once, confirmed and delivered once through the outbox;
  the same ``successful_payment`` again grants nothing more;
- pre-checkout refused for an expired invoice, an owned Space, a changed price, another's
  invoice;
- a failed Space refunds its Stars payer once, in Stars (refundStarPayment), never as credit;
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
from core.context import Context
from core.db import (
    Credit,
    Invoice,
    Outbox,
    Space,
    StarPayment,
    TranscriptionPayment,
    utcnow,
)
from core.pipeline import media
from core.refunds import settle_failed_space
from core.service.revenue import build_report
from core.worker import Worker
from tests.chat.helpers import member
from tests.pipeline.conftest import LocalResolver
from tests.snapshot import snapshot
from tests.stand_ins.telegram_api import BotAPI, bot_api
from tests.telegram.test_scenarios import MEMBER, drain, running

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
    media.use_resolver(LocalResolver(hls_url))
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
            media.use_resolver(None)


async def test_pre_checkout_refusals(ctx: Context, hls_url: str) -> None:
    media.use_resolver(LocalResolver(hls_url))
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
            media.use_resolver(None)


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
    media.use_resolver(LocalResolver(hls_url))
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
            media.use_resolver(None)


async def test_revenue_reports_usdc_and_stars_apart(
    ctx: Context, hls_url: str, tmp_path: Path
) -> None:
    media.use_resolver(LocalResolver(hls_url))
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
            media.use_resolver(None)
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
