"""Drill (issue 9): outages of the RPC node, OpenAI, Telegram and Discord, then recovery.

Each peer is reached through a proxy (``tests/stand_ins/outage.py``) that refuses
connections, then answers 503, then forwards again; the peer itself keeps running. The code
under test runs as in production: the real clients (web3, x402, openai, python-telegram-bot,
discord.py), the worker, the outbox drain, the payment jobs. For every peer: nothing is
delivered or credited while it is down (delayed), everything arrives once it is back
(nothing lost), and nothing arrives twice (no duplicates) — counted at the peer.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import func, insert, select, update
from web3.logs import DISCARD
from x402.http.utils import encode_payment_signature_header
from x402.schemas import PaymentPayload

from adapters.discord.bot import DiscordBot
from bot.wiring import wire
from core import outbox, queue
from core.config import OutboxSettings, Secrets
from core.context import Context
from core.db import (
    ChatSession,
    Database,
    Invoice,
    Outbox,
    PaymentReceipt,
    ProcessingJob,
    Space,
    TranscriptionPayment,
    User,
    utcnow,
)
from core.money import to_units
from core.payments import (
    Paid,
    PaymentPending,
    pay_invoice,
    recover_payments,
    submit_transaction_hash,
    watch_transfers,
)
from core.pipeline.transcribe import openai_stt
from core.results import Caller, Quote, Refused
from core.service import chat
from core.spaces import canonical_url
from core.worker import Worker
from tests.chat.helpers import add_space, member, space_id_for
from tests.conftest import make_settings
from tests.discord.conftest import SEGMENTS, endpoints, started  # noqa: F401
from tests.drills.figures import record
from tests.pay_flow import pay_via_page
from tests.payments.conftest import RecordedSpaces, chain_secrets, client_payload
from tests.payments.test_transfers import _link
from tests.payments.test_x402_pay import _quote, _reqs
from tests.pipeline.conftest import LocalResolver, hls_root, hls_url, speech  # noqa: F401
from tests.stand_ins.chain import Chain
from tests.stand_ins.discord_api import discord_api
from tests.stand_ins.openai_audio import openai_audio
from tests.stand_ins.openai_chat import openai_chat
from tests.stand_ins.outage import Proxy, proxy
from tests.stand_ins.telegram_api import bot_api
from tests.telegram.test_scenarios import MEMBER, running, shop_context, web

PRICE = 200_000  # 0.20 USDC: a transcript
OUTAGE_SECONDS = 2.0  # at least this long down, however fast the failures come


def engine(db_url: str) -> str:
    return "sqlite" if db_url.startswith("sqlite") else "postgresql"


async def until(
    check: Callable[[], Awaitable[bool]], timeout: float = 30.0, what: str = ""
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what or check}")
        await asyncio.sleep(0.05)


async def outage(
    peer: Proxy,
    failed_once: Callable[[], Awaitable[bool]],
    failed_twice: Callable[[], Awaitable[bool]],
    work: Callable[[], Awaitable[Any]] | None = None,
    cut_after: bytes | None = None,
) -> float:
    """The peer goes down (at once, or ``cut_after`` the first request carrying those bytes),
    ``work`` arrives; connections are refused until every item failed once, then answered
    503 until every item failed again (and ``OUTAGE_SECONDS`` passed); then the peer is back.
    Returns how long it was down."""
    start = time.monotonic()
    if cut_after is None:
        peer.down("refuse")
    else:
        peer.cut_after(cut_after)
    if work is not None:
        await work()
    if cut_after is not None:
        await until(lambda: _true(peer.mode == "refuse"), what="the peer taken down mid-request")
    await until(failed_once, what="every item tried while refused")
    peer.down("503")
    await until(failed_twice, what="every item tried again while answering 503")
    rest = OUTAGE_SECONDS - (time.monotonic() - start)
    if rest > 0:
        await asyncio.sleep(rest)
    peer.up()
    return time.monotonic() - start


async def _true(value: bool) -> bool:
    return value


# The outbox's backoff (5 s, 10 s, 20 s … by default) shortened to 0.2 s, 0.4 s … 1 s.
FAST_RETRY = OutboxSettings(retry_base_seconds=0.2, retry_max_seconds=1.0)


@asynccontextmanager
async def draining(ctx: Context) -> AsyncIterator[None]:
    """The scheduler's outbox job, every 50 ms."""
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            await outbox.drain_once(ctx, "drill", policy=FAST_RETRY)
            try:
                await asyncio.wait_for(stop.wait(), 0.05)
            except TimeoutError:
                pass

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        stop.set()
        await task


# ---------------------------------------------------------------- the RPC node


async def _count(ctx: Context, model: Any, *where: Any) -> int:
    async with ctx.db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _onchain_transfer(chain: Chain, tx: str) -> tuple[str, str, int]:
    """(from, to, value) of the token's Transfer log in transaction ``tx``, read from the node."""
    receipt = chain.w3.eth.get_transaction_receipt(tx)  # type: ignore[arg-type]
    assert receipt["status"] == 1, tx
    (ev,) = chain.token.events.Transfer().process_receipt(receipt, errors=DISCARD)
    return ev["args"]["from"].lower(), ev["args"]["to"].lower(), int(ev["args"]["value"])


async def test_rpc_node_outage_delays_payments_and_loses_none(
    db_url: str, tmp_path: Path, chain: Chain
) -> None:
    """Four payments meet a node that goes away: one is being settled at that moment (the
    node took the transaction, its answer never came back), three are submitted while it is
    down (pay page, x402 API, a plain transfer). None is credited while the node is away;
    each is credited once when it is back; the chain and the database agree to the unit."""
    payers = [chain.new_funded_account() for _ in range(4)]
    page_payer, api_payer, transfer_payer, settling_payer = payers
    bob = Caller("telegram", "2002", "bob", chat_id="-600")
    with proxy(chain.anvil.rpc_url) as node:
        settings = make_settings(
            db_url,
            tmp_path / "data",
            payments=chain.payment_settings(rpc_url=node.url),
            web={"public_url": "http://shop.test"},
        )
        ctx = wire(Context(settings, chain_secrets(chain), Database(db_url), instance="drill:rpc"))
        ctx.wiring.resolver = RecordedSpaces()
        try:
            async with web(ctx) as client:
                await _link(ctx, bob, transfer_payer.address)
                q_page = await _quote(ctx, "1OutagePage01")
                q_transfer = await _quote(ctx, "1OutageXfer01", bob)
                q_settling = await _quote(ctx, "1OutageSett01", Caller("telegram", "3003"))
                before = {a.address: chain.balance(a.address) for a in payers}
                shop_before = chain.balance(chain.pay_to)

                # the node goes away while a settlement is on its way: it takes the
                # transaction, and its answer never comes back
                start = time.monotonic()
                node.cut_after(b"eth_sendRawTransaction")
                settling = client_payload(chain, settling_payer, _reqs(ctx))
                out = await pay_invoice(ctx, q_settling.invoice_id, settling)
                assert isinstance(out, PaymentPending), out
                assert out.code == "settlement_unknown" and "credited automatically" in out.message
                assert node.mode == "refuse"

                # while it is down: the pay page, the x402 API and a plain transfer
                header = encode_payment_signature_header(
                    PaymentPayload.model_validate(client_payload(chain, api_payer, _reqs(ctx)))
                )
                sent = chain.transfer(transfer_payer, chain.pay_to, PRICE)  # the payer's wallet
                page, api, submitted, watched, recovered = await asyncio.gather(
                    pay_via_page(client, q_page.pay_url, page_payer),
                    client.post(
                        "/x402/transcribe",
                        json={"space": "1OutageApi001"},
                        headers={"PAYMENT-SIGNATURE": header},
                    ),
                    submit_transaction_hash(ctx, q_transfer.invoice_id, sent),
                    watch_transfers(ctx),
                    recover_payments(ctx),
                )
                assert page["status"] == "refused" and page["code"] == "rpc_unavailable", page
                assert "nothing was charged" in page["message"] and "Try again" in page["message"]
                assert api.status_code == 503 and api.json()["error"] == "rpc_unavailable"
                assert isinstance(submitted, Refused) and submitted.retry_later
                assert "try again later" in submitted.message
                assert (watched, recovered) == (0, 0)
                # delayed: nothing credited, nothing granted while the node is away
                assert await _count(ctx, TranscriptionPayment) == 0
                assert await _count(ctx, PaymentReceipt, PaymentReceipt.status == "credited") == 0
                rest = OUTAGE_SECONDS - (time.monotonic() - start)
                await asyncio.sleep(max(0.0, rest))
                node.up()
                down_for = time.monotonic() - start

                # back: the jobs finish what was held, the payers' retries go through once
                assert await recover_payments(ctx) == 1  # the settlement the node swallowed
                assert await watch_transfers(ctx) == 1  # the plain transfer
                page = await pay_via_page(client, q_page.pay_url, page_payer)
                assert page["status"] == "credited", page
                api = await client.post(
                    "/x402/transcribe",
                    json={"space": "1OutageApi001"},
                    headers={"PAYMENT-SIGNATURE": header},
                )
                assert api.status_code == 200 and api.json()["paid"], api.text
                again = await submit_transaction_hash(ctx, q_transfer.invoice_id, sent)
                assert isinstance(again, Refused) and again.code == "already_paid"
                replay = await pay_invoice(ctx, q_settling.invoice_id, settling)
                assert isinstance(replay, Paid) and replay.already
                assert (await recover_payments(ctx), await watch_transfers(ctx)) == (0, 0)

            # the chain and the database agree: four payments, each credited once
            for a in payers:
                assert before[a.address] - chain.balance(a.address) == PRICE, a.address
            assert chain.balance(chain.pay_to) - shop_before == 4 * PRICE
            async with ctx.db.session() as s:
                receipts = (await s.execute(select(PaymentReceipt))).scalars().all()
                credited = (
                    await s.execute(select(Invoice.public_id).where(Invoice.status == "credited"))
                ).scalars()
                assert set(credited) >= {q_page.invoice_id, q_transfer.invoice_id}
            assert [r.status for r in receipts] == ["credited"] * 4
            assert len({r.transaction_hash for r in receipts}) == 4
            assert sum(int(r.amount_units) for r in receipts) == 4 * PRICE
            for r in receipts:
                sender, to, value = _onchain_transfer(chain, str(r.transaction_hash))
                assert (sender, to, value) == (
                    r.payer_address.lower(),
                    chain.pay_to.lower(),
                    int(r.amount_units),
                )
            assert await _count(ctx, TranscriptionPayment) == 4
            assert await _count(ctx, ProcessingJob) == 4
        finally:
            await ctx.close()
    record(
        "outages",
        f"RPC node down {down_for:.1f}s ({engine(db_url)}): 4 payments delayed (1 being settled "
        "when it went away, 3 submitted while down: pay page, x402 API, plain transfer), "
        "4 credited once after recovery, 0 lost, 0 double credits; chain = database "
        f"(+{4 * PRICE / 1e6:.2f} USDC, 4 receipts)",
    )


# ---------------------------------------------------------------- OpenAI


def _openai_secrets(url: str, **more: Any) -> Secrets:
    return Secrets.model_construct(
        openai_api_key=SecretStr("sk-drill"), openai_base_url=url + "/v1", **more
    )


async def _jobs(ctx: Context) -> list[ProcessingJob]:
    async with ctx.db.session() as s:
        return list((await s.execute(select(ProcessingJob).order_by(ProcessingJob.id))).scalars())


async def test_openai_outage_transcription_jobs_retried_and_completed_once(
    db_url: str,
    tmp_path: Path,
    hls_url: str,  # noqa: F811 (the fixture imported above)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two queued Spaces meet a speech-to-text API that is down: their jobs fail and are
    queued again with backoff, none completes while it is down; after it is back both
    complete, every chunk transcribed exactly once (counted at the API)."""
    # the client's own retries (5 in production) would ride out a short outage by
    # themselves; one retry leaves the rest to the queue, which is what is drilled here
    monkeypatch.setattr(openai_stt, "MAX_RETRIES", 1)
    async with openai_audio() as stt:
        with proxy(stt.url.removesuffix("/v1")) as api:
            settings = make_settings(
                db_url,
                tmp_path / "data",
                # the whole upload sent (no VAD): the stand-in's one segment per request
                # then lands in its own chunk, so "each chunk's text once" can be counted
                transcription={
                    "backend": "openai",
                    "chunk_seconds": 4,
                    "overlap_seconds": 1,
                    "vad": False,
                },
                queue={
                    "backoff_base_seconds": 0.2,
                    "backoff_max_seconds": 1.0,
                    "poll_seconds": 0.1,
                    "max_retries": 10,
                    "concurrency": 2,
                },
            )
            ctx = wire(Context(settings, _openai_secrets(api.url), Database(db_url), "drill:stt"))
            ctx.wiring.resolver = LocalResolver(hls_url)
            worker = Worker(ctx, worker_id="drill")
            try:
                ids = ["1OutageStt001", "1OutageStt002"]
                async with ctx.db.session() as s:
                    for sid in ids:
                        pk = await s.scalar(
                            insert(Space)
                            .values(
                                space_id=sid,
                                space_url=canonical_url(sid),
                                title=f"X Space {sid}",
                                first_requested_at=utcnow(),
                            )
                            .returning(Space.id)
                        )
                        await queue.enqueue(s, int(pk or 0), max_retries=10)

                async def failed(times: int) -> bool:
                    return all(j.retry_count >= times for j in await _jobs(ctx))

                await worker.start()
                down_for = await outage(api, lambda: failed(1), lambda: failed(2))
                # delayed: no chunk reached the API, no transcript, nothing completed
                assert stt.requests == []
                assert not list(ctx.spaces_dir.glob("*/transcript.md"))
                assert all(j.status != "completed" for j in await _jobs(ctx))

                async def all_done() -> bool:
                    return all(j.status == "completed" for j in await _jobs(ctx))

                await until(all_done, what="both jobs completed after the API came back")
                jobs = await _jobs(ctx)
            finally:
                await worker.stop()
                await ctx.close()
    assert [j.retry_count >= 2 for j in jobs] == [True, True]
    texts: list[str] = []
    for sid in ids:
        doc = json.loads((ctx.spaces_dir / sid / "transcript.json").read_text())
        texts += [seg["text"] for seg in doc["segments"]]
    # every chunk once: as many API calls as chunk segments, each text seen once
    assert sorted(texts) == sorted(f"chunk {n} says hello" for n in range(len(stt.requests)))
    record(
        "outages",
        f"OpenAI speech-to-text down {down_for:.1f}s ({engine(db_url)}): 2 jobs delayed "
        f"(retried {sum(j.retry_count for j in jobs)} times with backoff), 2 completed after "
        f"recovery, {len(stt.requests)} chunks transcribed once each, 0 lost, 0 duplicates",
    )


async def _outbox(ctx: Context, *where: Any) -> list[Outbox]:
    async with ctx.db.session() as s:
        return list((await s.execute(select(Outbox).where(*where).order_by(Outbox.id))).scalars())


def _tried(ctx: Context, times: int, *where: Any) -> Callable[[], Awaitable[bool]]:
    """Every matching outbox row was attempted ``times`` times and is not sent."""

    async def check() -> bool:
        rows = await _outbox(ctx, *where)
        return bool(rows) and all(r.attempts >= times and r.status == "pending" for r in rows)

    return check


async def test_openai_outage_paid_question_answered_once_after_recovery(
    db_url: str, tmp_path: Path, chain: Chain, fresh_payer: Any
) -> None:
    """While the chat model is down, a question paid on the pay page is refused before
    settlement (nothing charged) and a question paid by plain transfer is credited with its
    answer owed; once the model is back that answer is produced and delivered once."""
    async with openai_chat() as llm, bot_api() as tg:
        with proxy(llm.url.removesuffix("/v1")) as model:
            secrets = _openai_secrets(model.url, relayer_key=SecretStr(chain.relayer_key))
            ctx = shop_context(db_url, tmp_path, secrets, payments=chain.payment_settings())
            bot = await running(ctx, tg)
            try:
                pk = await add_space(ctx, 1, SEGMENTS)
                sid = space_id_for(1)
                caller, uid = await member(
                    ctx, "ann", owns=[pk], unlocked=[pk], platform_user_id=str(MEMBER)
                )
                wallet = chain.new_funded_account()  # the member's linked wallet
                async with ctx.db.session() as s:
                    await s.execute(
                        update(User)
                        .where(User.id == uid)
                        .values(wallet_address=wallet.address.lower())
                    )
                shop_before = chain.balance(chain.pay_to)
                owed_id = ""

                async def questions() -> None:
                    nonlocal owed_id
                    on_page = await chat.ask(ctx, caller, "What is the launch date?", [sid])
                    assert isinstance(on_page, Quote)
                    async with web(ctx) as client:
                        out = await pay_via_page(client, on_page.pay_url, fresh_payer)
                    assert out["status"] == "refused" and out["code"] == "answer_unavailable"
                    assert "not been charged" in out["message"], out
                    by_transfer = await chat.ask(ctx, caller, "Who welcomes everyone?", [sid])
                    assert isinstance(by_transfer, Quote)
                    owed_id = by_transfer.invoice_id
                    tx = chain.transfer(wallet, chain.pay_to, to_units(by_transfer.amount))
                    paid = await submit_transaction_hash(ctx, owed_id, tx)
                    assert isinstance(paid, Paid), paid

                answers = Outbox.kind == "chat_answer"
                async with draining(ctx):
                    down_for = await outage(
                        model, _tried(ctx, 1, answers), _tried(ctx, 2, answers), questions
                    )
                    # delayed: no answer recorded, none sent; the payment was confirmed
                    said = [str(m["text"]) for m in tg.sent("sendMessage")]
                    assert not [t for t in said if "<b>Q:</b>" in t]
                    assert [t for t in said if "Payment received" in t]
                    assert await _count(ctx, ChatSession) == 0

                    async def delivered() -> bool:
                        return [r.status for r in await _outbox(ctx, answers)] == ["sent"]

                    await until(delivered, what="the owed answer delivered after recovery")
            finally:
                await bot.stop()
                await ctx.close()
    said = [str(m["text"]) for m in tg.sent("sendMessage") if str(m["chat_id"]) == str(MEMBER)]
    answered = [t for t in said if "<b>Q:</b>" in t]
    assert len(answered) == 1 and "Who welcomes everyone?" in answered[0]
    assert "Welcome to the weekly space" in answered[0]  # from the transcript
    assert len(llm.requests) == 1  # the model answered once, after it was back
    async with ctx.db.session() as s:
        sessions = (await s.execute(select(ChatSession))).scalars().all()
        owed = (await s.execute(select(Invoice).where(Invoice.public_id == owed_id))).scalar_one()
    assert [c.invoice_id for c in sessions] == [owed.id] and sessions[0].transaction_hash
    assert chain.balance(chain.pay_to) - shop_before == int(owed.amount_units)  # one charge
    record(
        "outages",
        f"OpenAI chat down {down_for:.1f}s ({engine(db_url)}): 1 question on the pay page "
        "refused before settlement (0 charged); 1 paid by transfer, its answer owed and "
        "delivered once after recovery (1 model call, 1 message), 0 lost, 0 duplicates",
    )


# ---------------------------------------------------------------- Telegram and Discord


async def _notices(ctx: Context, platform: str, recipients: list[str]) -> int:
    """Two direct messages for each recipient, as payments and refunds write them."""
    async with ctx.db.session() as s:
        for r in recipients:
            await outbox.add_message(
                s,
                kind="payment_confirmed",
                platform=platform,
                recipient=r,
                payload={"kind": "transcription", "space_ids": ["1OutageNote01"], "amount": "0.2"},
                dedupe_key=f"drill:paid:{platform}:{r}",
            )
            await outbox.add_message(
                s,
                kind="refunded",
                platform=platform,
                recipient=r,
                payload={"space_id": "1OutageNote02", "amount": "0.2", "reason": "failed"},
                dedupe_key=f"drill:refund:{platform}:{r}",
            )
    return 2 * len(recipients)


async def test_telegram_outage_messages_delivered_once_after_recovery(ctx: Context) -> None:
    """The Bot API goes away: six outbox messages and a member's command wait; when it is
    back each message arrives once and the command is answered once."""
    recipients = ["7001", "7002", "7003"]
    asker = 7004
    async with bot_api() as tg:
        with proxy(tg.url) as api:
            tg.url = api.url  # the bot reaches Telegram through the proxy
            bot = await running(ctx, tg)
            try:
                n = 0

                async def work() -> None:
                    nonlocal n
                    n = await _notices(ctx, "telegram", recipients)
                    tg.command("/help", user_id=asker)  # waits at Telegram until polled

                async with draining(ctx):
                    down_for = await outage(api, _tried(ctx, 1), _tried(ctx, 2), work)
                    assert tg.sent("sendMessage") == []  # delayed: nothing got through

                    async def done() -> bool:
                        sent = {r.status for r in await _outbox(ctx)}
                        return sent == {"sent"} and len(tg.sent("sendMessage")) >= n + 1

                    await until(done, what="every message delivered and /help answered")
                    await asyncio.sleep(0.3)  # a duplicate would show up now
            finally:
                await bot.stop()
    per_chat: dict[str, int] = {}
    for m in tg.sent("sendMessage"):
        per_chat[str(m["chat_id"])] = per_chat.get(str(m["chat_id"]), 0) + 1
    assert per_chat == {**{r: 2 for r in recipients}, str(asker): 1}, per_chat
    assert all(r.attempts >= 3 for r in await _outbox(ctx))  # refused, 503, then sent
    record(
        "outages",
        f"Telegram Bot API down {down_for:.1f}s ({engine(ctx.db.url)}): {n} messages and "
        f"1 command delayed, {n} delivered and 1 answered once after recovery, 0 lost, "
        "0 duplicates",
    )


@pytest.mark.usefixtures("endpoints")
async def test_discord_outage_messages_delivered_once_after_recovery(ctx: Context) -> None:
    """Discord goes away just as the first DM reaches it (its answer never comes back), and
    stays away while six DMs wait; when it is back each arrives once: the DM that got through
    is sent again with the same nonce and Discord keeps one."""
    users = [9001, 9002, 9003]
    async with discord_api() as dc:
        with proxy(dc.url) as api:
            dc.url = api.url  # REST and gateway through the proxy
            ctx.settings.discord.api_url = dc.api_url
            async with started(DiscordBot(ctx, dc.token)):
                n = 0

                async def work() -> None:
                    nonlocal n
                    n = await _notices(ctx, "discord", [str(u) for u in users])

                async with draining(ctx):
                    down_for = await outage(
                        api, _tried(ctx, 1), _tried(ctx, 2), work, cut_after=b"/messages"
                    )
                    reached = sum(len(dc.dms(u)) for u in users)
                    assert reached == 1  # the one that got through as Discord went away

                    async def done() -> bool:
                        return {r.status for r in await _outbox(ctx)} == {"sent"}

                    await until(done, what="every DM delivered after recovery")
                    await asyncio.sleep(0.3)  # a duplicate would show up now
    assert {u: len(dc.dms(u)) for u in users} == {u: 2 for u in users}
    posts = dc.sent("POST", r"/channels/\d+/messages")
    assert len(posts) == n + 1  # the DM whose answer was lost was posted twice, kept once
    record(
        "outages",
        f"Discord down {down_for:.1f}s ({engine(ctx.db.url)}): {n} DMs delayed (1 reached "
        f"Discord as it went away, its answer lost), {n} delivered once after recovery "
        "(the re-sent one kept once by its nonce), 0 lost, 0 duplicates",
    )
