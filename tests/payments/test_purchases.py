"""Service operations and crediting rules: quotes, ownership, unlock order, account credit,
expiry, notifications, the chat fulfiller (verify → answer → settle). Both engines, anvil."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy import insert as sa_insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts import get_or_create_account, get_or_create_user
from core.context import Context
from core.db import (
    Account,
    ChatSession,
    ChatUnlock,
    Credit,
    Invoice,
    Outbox,
    PaymentReceipt,
    ProcessingJob,
    Space,
    StarPayment,
    TranscriptionPayment,
    User,
    utcnow,
)
from core.money import from_units, to_units
from core.payments import (
    FunctionFulfiller,
    Paid,
    expire_invoices,
    pay_invoice,
    stars,
)
from core.payments.account_credit import add_credit, credit_balance
from core.payments.credit import CreditResult, credit_invoice
from core.payments.fulfil import FulfilRequest
from core.payments.invoices import (
    discard_invoice,
    get_invoice,
    insert_invoice,
    quote_for,
    valid_public_id,
)
from core.results import AlreadyOwned, Caller, DirectTransfer, Granted, Quote, Refused
from core.service.invoicing import create_invoice
from core.service.purchases import request_transcription, request_unlock
from core.spaces import canonical_url
from tests.factories import completed_space
from tests.payments.conftest import client_payload
from tests.payments.test_x402_pay import ALICE, SPACE, _reqs
from tests.snapshot import snapshot
from tests.stand_ins.chain import Chain

OTHER_SPACE = "1YqJDqWqbNVGV"


async def _pay(ctx: Context, chain: Chain, payer: Any, q: Quote) -> Paid:
    units = to_units(q.amount)
    out = await pay_invoice(ctx, q.invoice_id, client_payload(chain, payer, _reqs(ctx, units)))
    assert isinstance(out, Paid), out
    return out


async def _outbox(ctx: Context) -> list[tuple[str, str, str | None]]:
    async with ctx.db.session() as s:
        rows = await s.execute(select(Outbox.kind, Outbox.recipient, Outbox.origin_chat_id))
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_transcribe_then_unlock_flow(pay_ctx: Context, chain: Chain, fresh_payer) -> None:  # type: ignore[no-untyped-def]
    bad = await request_transcription(pay_ctx, ALICE, "https://example.com/nope")
    assert isinstance(bad, Refused) and bad.code == "invalid_space"
    early = await request_unlock(pay_ctx, ALICE, SPACE)
    assert isinstance(early, Refused) and early.code == "not_owned"
    q = await request_transcription(pay_ctx, ALICE, f"https://x.com/i/spaces/{SPACE}")
    assert isinstance(q, Quote) and q.amount == Decimal("0.2") and q.kind == "transcription"
    same = await request_transcription(pay_ctx, ALICE, SPACE)
    assert isinstance(same, Quote) and same.invoice_id == q.invoice_id
    await _pay(pay_ctx, chain, fresh_payer, q)
    owned = await request_transcription(pay_ctx, ALICE, SPACE)
    assert isinstance(owned, AlreadyOwned) and owned.space.status == "pending"
    assert ("payment_confirmed", "1001", "-500") in await _outbox(pay_ctx)
    u = await request_unlock(pay_ctx, ALICE, SPACE)
    assert isinstance(u, Quote) and u.amount == Decimal("0.5") and u.space is not None
    await _pay(pay_ctx, chain, fresh_payer, u)
    again = await request_unlock(pay_ctx, ALICE, SPACE)
    assert isinstance(again, AlreadyOwned) and again.kind == "chat_unlock"
    async with pay_ctx.db.session() as s:
        sp = (await s.execute(select(Space))).scalar_one()
        assert (sp.transcription_count, sp.chat_unlock_count) == (1, 1)


async def test_second_payment_becomes_credit_spent_next_time(
    pay_ctx: Context, chain: Chain, fresh_payer
) -> None:  # type: ignore[no-untyped-def]
    quotes = []
    for _ in range(2):
        async with pay_ctx.db.session() as s:
            q = await create_invoice(
                s,
                pay_ctx,
                caller=ALICE,
                user_id=None,
                kind="transcription",
                space_ids=[SPACE],
                amount_units=200_000,
                payload=None,
            )
        assert isinstance(q, Quote)
        quotes.append(q)
    first = await _pay(pay_ctx, chain, fresh_payer, quotes[0])
    second = await _pay(pay_ctx, chain, fresh_payer, quotes[1])
    assert first.granted == [SPACE] and second.granted == [] and second.credit_units == 200_000
    async with pay_ctx.db.session() as s:
        user_id = (await s.execute(select(Invoice.user_id))).scalars().first()
        assert user_id is not None and await credit_balance(s, user_id) == 200_000
    # the credit pays the next purchase in full: granted at once, queued
    g = await request_transcription(pay_ctx, ALICE, OTHER_SPACE)
    assert isinstance(g, Granted) and g.space_ids == [OTHER_SPACE]
    async with pay_ctx.db.session() as s:
        assert await credit_balance(s, user_id) == 0
        assert await s.scalar(select(func.count()).select_from(ProcessingJob)) == 2


async def test_partial_credit_released_on_expiry(
    pay_ctx: Context, chain: Chain, fresh_payer
) -> None:  # type: ignore[no-untyped-def]
    q = await request_transcription(pay_ctx, ALICE, SPACE)
    assert isinstance(q, Quote)
    await _pay(pay_ctx, chain, fresh_payer, q)
    async with pay_ctx.db.session() as s:
        user_id = (await s.execute(select(Invoice.user_id))).scalar_one()
        s.add(Credit(user_id=user_id, amount_units=100_000, reason="refund", reference="t:1"))
    u = await request_unlock(pay_ctx, ALICE, SPACE)
    assert (
        isinstance(u, Quote) and u.amount == Decimal("0.4") and u.credit_applied == Decimal("0.1")
    )
    async with pay_ctx.db.session() as s:
        assert await credit_balance(s, user_id) == 0
        await s.execute(update(Invoice).where(Invoice.status == "open").values(expires_at=utcnow()))
    assert await expire_invoices(pay_ctx) == 1
    assert await expire_invoices(pay_ctx) == 0
    async with pay_ctx.db.session() as s:
        assert await credit_balance(s, user_id) == 100_000
    out = await pay_invoice(
        pay_ctx, u.invoice_id, client_payload(chain, fresh_payer, _reqs(pay_ctx, 400_000))
    )
    assert isinstance(out, Refused) and out.code == "invoice_expired"


async def test_completed_space_sends_transcript_and_is_not_queued(
    pay_ctx: Context, chain: Chain, fresh_payer
) -> None:  # type: ignore[no-untyped-def]
    async with pay_ctx.db.session() as s:
        s.add(completed_space(SPACE, "Done"))
    q = await request_transcription(pay_ctx, ALICE, SPACE)
    assert isinstance(q, Quote) and q.space is not None and q.space.title == "Done"
    await _pay(pay_ctx, chain, fresh_payer, q)
    kinds = [k for k, _, _ in await _outbox(pay_ctx)]
    assert "transcript_ready" in kinds and "payment_confirmed" in kinds
    async with pay_ctx.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(ProcessingJob)) == 0


async def test_check_space_refusal_makes_no_invoice(pay_ctx: Context) -> None:
    async def live(_ctx: Context, sid: str) -> Refused:
        return Refused("space_live", f"Space {sid} is still live.")

    out = await request_transcription(pay_ctx, ALICE, SPACE, check_space=live)
    assert isinstance(out, Refused) and out.code == "space_live"
    async with pay_ctx.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Invoice)) == 0


async def test_chat_query_answer_before_settle(pay_ctx: Context, chain: Chain, fresh_payer) -> None:  # type: ignore[no-untyped-def]
    calls: list[str] = []

    async def answer(ctx: Context, req: Any) -> dict[str, Any] | Refused:
        calls.append(req.payload["question"])
        if "fail" in req.payload["question"]:
            return Refused("no_answer", "Nothing in these Spaces answers that.")
        return {"answer": "42", "sources": []}

    async def record(
        s: Any, ctx: Context, req: Any, result: dict[str, Any], user_id: int, tx: str | None
    ) -> None:
        s.add(
            ChatSession(
                session_id=req.invoice_id,
                user_id=user_id,
                space_ids=json.dumps(req.space_ids),
                question=req.payload["question"],
                answer=result["answer"],
                num_spaces=len(req.space_ids),
                amount_usdc="1.0",
                transaction_hash=tx,
                invoice_id=req.invoice_pk,
            )
        )

    pay_ctx.wiring.add_fulfiller("chat_query", FunctionFulfiller(answer, record))
    before = chain.balance(chain.pay_to)
    for question, ok in (("please fail", False), ("what is it?", True)):
        async with pay_ctx.db.session() as s:
            q = await create_invoice(
                s,
                pay_ctx,
                caller=None,
                user_id=None,
                kind="chat_query",
                space_ids=[SPACE],
                amount_units=1_000_000,
                payload={"question": question},
            )
        assert isinstance(q, Quote)
        payload = client_payload(chain, fresh_payer, _reqs(pay_ctx, 1_000_000))
        snap = await snapshot(pay_ctx)
        out = await pay_invoice(pay_ctx, q.invoice_id, payload)
        if not ok:
            assert await snapshot(pay_ctx) == snap  # unanswered: nothing kept
            assert isinstance(out, Refused) and out.code == "no_answer"
            assert chain.balance(chain.pay_to) == before  # nothing settled
            continue
        assert isinstance(out, Paid) and out.result == {"answer": "42", "sources": []}
    assert chain.balance(chain.pay_to) == before + 1_000_000
    async with pay_ctx.db.session() as s:
        cs = (await s.execute(select(ChatSession))).scalar_one()
        assert cs.answer == "42" and cs.transaction_hash and cs.question == "what is it?"
    assert calls == ["please fail", "what is it?"]


async def test_rpc_down_at_confirmation_is_finished_later(
    pay_ctx: Context, chain: Chain, fresh_payer
) -> None:  # type: ignore[no-untyped-def]
    from core.payments import PaymentPending, recover_payments
    from core.payments.onchain import ChainReader, ChainUnavailable, TxCheck

    class DownAfterSettle(ChainReader):
        async def check_transaction(self, tx_hash: str) -> TxCheck:
            raise ChainUnavailable("RPC ConnectionError")

    q = await request_transcription(pay_ctx, ALICE, SPACE)
    assert isinstance(q, Quote)
    payload = client_payload(chain, fresh_payer, _reqs(pay_ctx))
    out = await pay_invoice(
        pay_ctx, q.invoice_id, payload, reader=DownAfterSettle(pay_ctx.settings.payments)
    )
    assert isinstance(out, PaymentPending) and out.code == "rpc_unavailable"
    async with pay_ctx.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(ProcessingJob)) == 0
    assert await recover_payments(pay_ctx, DownAfterSettle(pay_ctx.settings.payments)) == 0
    assert await recover_payments(pay_ctx) == 1
    assert isinstance(await request_transcription(pay_ctx, ALICE, SPACE), AlreadyOwned)


async def test_unconfigured_payments_refused_clearly(
    ctx: Context, chain: Chain, fresh_payer
) -> None:  # type: ignore[no-untyped-def]
    q = await request_transcription(ctx, ALICE, SPACE)
    assert isinstance(q, Quote) and q.direct is None  # no pay_to: no transfer details
    reqs = _reqs_for_chain(chain)
    out = await pay_invoice(ctx, q.invoice_id, client_payload(chain, fresh_payer, reqs))
    assert isinstance(out, Refused) and out.code == "payments_unavailable", out


def _reqs_for_chain(chain: Chain) -> Any:
    from core.config import load_settings
    from core.payments.gateway import gateway_for
    from tests.payments.conftest import chain_secrets

    return gateway_for(
        load_settings(payments=chain.payment_settings()).payments, chain_secrets(chain)
    ).requirements(200_000)


async def test_purchases_follow_the_wallet_across_platforms(
    pay_ctx: Context, chain: Chain, fresh_payer
) -> None:  # type: ignore[no-untyped-def]
    from core.accounts import get_or_create_account, get_or_create_user, link_account
    from core.results import Caller

    q = await request_transcription(pay_ctx, ALICE, SPACE)
    assert isinstance(q, Quote)
    await _pay(pay_ctx, chain, fresh_payer, q)  # paying links Alice's Telegram account
    alice_discord = Caller("discord", "77", "alice#1")
    assert isinstance(await request_transcription(pay_ctx, alice_discord, SPACE), Quote)
    async with pay_ctx.db.session() as s:
        acc = await get_or_create_account(s, alice_discord)
        await link_account(s, acc.id, (await get_or_create_user(s, fresh_payer.address)).id)
    owned = await request_transcription(pay_ctx, alice_discord, SPACE)
    assert isinstance(owned, AlreadyOwned)
    # a second payment for it (the Discord quote) becomes credit, and the member is told
    async with pay_ctx.db.session() as s:
        inv = (await s.execute(select(Invoice).where(Invoice.status == "open"))).scalar_one()
        open_quote = Quote(inv.public_id, inv.kind, [SPACE], Decimal("0.2"), "", inv.expires_at)
    paid = await _pay(pay_ctx, chain, fresh_payer, open_quote)
    assert paid.granted == [] and paid.credit_units == 200_000
    async with pay_ctx.db.session() as s:
        rows = (
            (await s.execute(select(Outbox.payload).where(Outbox.platform == "discord")))
            .scalars()
            .all()
        )
    assert any(json.loads(p).get("credit") == "0.2" for p in rows), rows


async def test_pipeline_metadata_check_before_paying(
    pay_ctx: Context, chain: Chain, fresh_payer, recorded_spaces
) -> None:  # type: ignore[no-untyped-def]
    recorded_spaces.live.add(OTHER_SPACE)
    live = await request_transcription(pay_ctx, ALICE, OTHER_SPACE)  # payable, told it waits
    assert isinstance(live, Quote) and live.note and "when it ends" in live.note, live
    q = await request_transcription(pay_ctx, ALICE, SPACE)
    assert isinstance(q, Quote) and q.note is None
    await _pay(pay_ctx, chain, fresh_payer, q)
    async with pay_ctx.db.session() as s:
        sp = (await s.execute(select(Space))).scalar_one()
        assert sp.title == f"Recorded {SPACE}" and sp.status == "pending"
        assert (sp.creator, sp.audio_duration_seconds) == ("host", 600)  # from the first check
        assert await s.scalar(select(func.count()).select_from(Invoice)) == 2

    class Down:
        async def resolve(self, space_id: str) -> Any:
            raise ConnectionError("x.com unreachable")

    pay_ctx.wiring.resolver = Down()
    out = await request_transcription(pay_ctx, ALICE, "1AbCdEfGhIjKl")
    assert isinstance(out, Refused) and out.code in ("metadata_unavailable", "space_unreachable")


class _XDown:
    """X unreachable: the resolver raises a network error (as yt-dlp's would become)."""

    def __init__(self) -> None:
        self.calls = 0

    async def resolve(self, space_id: str) -> Any:
        self.calls += 1
        raise ConnectionError("x.com unreachable")


async def _complete(ctx: Context, space_id: str) -> None:
    """The Space's transcript is made (as the worker leaves it: stored in the database)."""
    from core import transcripts

    async with ctx.db.session() as s:
        pk = await s.scalar(select(Space.id).where(Space.space_id == space_id))
        assert pk is not None
        await transcripts.store(s, pk, {"md": "# transcript\n"})
        await s.execute(update(ProcessingJob).values(status="completed", completed_at=utcnow()))
        await s.execute(
            update(Space)
            .where(Space.space_id == space_id)
            .values(status="completed", completed_at=utcnow())
        )


async def test_library_space_sold_and_delivered_with_x_unreachable(
    pay_ctx: Context, chain: Chain, fresh_payer
) -> None:  # type: ignore[no-untyped-def]
    from core.results import Caller

    q = await request_transcription(pay_ctx, ALICE, SPACE)
    assert isinstance(q, Quote)
    await _pay(pay_ctx, chain, fresh_payer, q)
    await _complete(pay_ctx, SPACE)
    down = _XDown()
    pay_ctx.wiring.resolver = down
    bob = Caller("telegram", "2002", "Bob", chat_id="-700")
    q2 = await request_transcription(pay_ctx, bob, SPACE)
    assert isinstance(q2, Quote) and q2.space is not None, q2
    assert q2.space.title == f"Recorded {SPACE}" and q2.space.status == "completed"
    await _pay(pay_ctx, chain, chain.new_funded_account(), q2)
    assert ("transcript_ready", "2002", "-700") in await _outbox(pay_ctx)
    assert down.calls == 0  # X was never asked


async def test_ask_again_after_a_failure(pay_ctx: Context, chain: Chain, fresh_payer) -> None:  # type: ignore[no-untyped-def]
    from core.refunds import settle_failed_space

    q = await request_transcription(pay_ctx, ALICE, SPACE)
    assert isinstance(q, Quote)
    await _pay(pay_ctx, chain, fresh_payer, q)
    async with pay_ctx.db.session() as s:
        pk = (await s.execute(select(Space.id))).scalar_one()
        await s.execute(update(ProcessingJob).values(status="failed", completed_at=utcnow()))
        await s.execute(update(Space).values(status="failed", error_message="the replay was gone"))
        assert await settle_failed_space(s, pay_ctx.settings, pk) == 200_000
    again = await request_transcription(pay_ctx, ALICE, SPACE)
    # the refund's credit pays for the fresh attempt: granted, queued again
    assert isinstance(again, Granted), again
    async with pay_ctx.db.session() as s:
        sp = await s.get(Space, pk)
        assert sp is not None and (sp.status, sp.error_message) == ("pending", None)
        jobs = (await s.execute(select(ProcessingJob.status))).scalars().all()
        assert sorted(jobs) == ["failed", "queued"]
        # fails again: credited again (a new reference), told again
        await s.execute(
            update(ProcessingJob)
            .where(ProcessingJob.status == "queued")
            .values(status="failed", completed_at=utcnow())
        )
        await s.execute(update(Space).values(status="failed", error_message="gone again"))
        assert await settle_failed_space(s, pay_ctx.settings, pk) == 200_000
        assert await settle_failed_space(s, pay_ctx.settings, pk) == 0  # once
    kinds = [k for k, _, _ in await _outbox(pay_ctx)]
    assert kinds.count("refunded") == 2 and kinds.count("job_failed") == 2


# ------------------------------------------------- crediting, column by column (issue #22)
#
# Direct calls of credit_invoice / insert_invoice / expire_invoices with the clock fixed, so
# every column a transition writes is pinned to an exact value (mutation testing).

NOW = datetime(2026, 3, 4, 5, 6, 7)
WALLET = "0x" + "a1" * 20
TX = "0x" + "7e" * 32
# every column a transcription grant writes, in the order the tests spell them out
PAID_COLUMNS = (
    TranscriptionPayment.user_id,
    TranscriptionPayment.space_id,
    TranscriptionPayment.amount_usdc,
    TranscriptionPayment.transaction_hash,
    TranscriptionPayment.payment_verified,
    TranscriptionPayment.paid_at,
    TranscriptionPayment.verified_at,
    TranscriptionPayment.invoice_id,
    TranscriptionPayment.refunded_at,
)
A, B, C = "1AAAAAAAAAAAA", "1BBBBBBBBBBBB", "1CCCCCCCCCCCC"
D, E = "1DDDDDDDDDDDD", "1EEEEEEEEEEEE"
TG = Caller("telegram", "1001", "Alice", chat_id="-500")
TG_BOB = Caller("telegram", "2002", "Bob", chat_id="-700")


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> datetime:
    for mod in ("core.payments.credit", "core.payments.invoices", "core.payments.account_credit"):
        monkeypatch.setattr(f"{mod}.utcnow", lambda: NOW)
    return NOW


async def _new_invoice(ctx: Context, **kw: Any) -> Invoice:
    async with ctx.db.session() as s:
        values: dict[str, Any] = {"kind": "transcription", "account_id": None, "user_id": None}
        inv = await insert_invoice(s, ctx, **(values | kw))
        s.expunge(inv)
        return inv


async def _credit(ctx: Context, public_id: str, **kw: Any) -> CreditResult:
    async with ctx.db.session() as s:
        inv = (await s.execute(select(Invoice).where(Invoice.public_id == public_id))).scalar_one()
        values: dict[str, Any] = {"payer": None, "transaction_hash": None, "receipt_id": None}
        return await credit_invoice(s, ctx, inv, **(values | kw))


async def _user(ctx: Context, wallet: str = WALLET) -> int:
    async with ctx.db.session() as s:
        return int((await get_or_create_user(s, wallet)).id)


async def _rows(ctx: Context, model: Any, *cols: Any, order: Any = None) -> list[tuple[Any, ...]]:
    async with ctx.db.session() as s:
        rows = await s.execute(select(*cols).order_by(order if order is not None else model.id))
        return [tuple(r) for r in rows]


async def _space_pks(ctx: Context) -> dict[str, int]:
    async with ctx.db.session() as s:
        return {sid: pk for sid, pk in await s.execute(select(Space.space_id, Space.id))}


async def test_crediting_a_transcription_writes_every_column(
    ctx: Context, frozen: datetime
) -> None:
    ctx.settings.queue.max_retries = 7
    async with ctx.db.session() as s:
        s.add(completed_space(B, "Done"))
        s.add(
            completed_space(C, "Broken", status="failed", error_message="gone", completed_at=None)
        )
        s.add(completed_space(D, "Other", status="failed", error_message="gone", completed_at=None))
        s.add(completed_space(E, "Running", status="processing", completed_at=None))
        acc = await get_or_create_account(s, TG)
        account_id = acc.id
        bob = (await get_or_create_account(s, TG_BOB)).id  # another account, never linked here
    payload = {
        "title": "The title",
        "creator": "@creator",
        "started_at": "2026-01-02T03:04:05",
        "duration_seconds": 3600,
    }
    invs = {
        sid: await _new_invoice(
            ctx,
            account_id=account_id,
            space_ids=[sid],
            amount_units=600_000,
            payload=payload,
            origin_chat_id="-500",
        )
        for sid in (A, B, C, E)
    }
    # the first payment links the paying wallet to the account that asked
    res = await _credit(ctx, invs[A].public_id, payer=WALLET, transaction_hash=TX)
    async with ctx.db.session() as s:
        user = (await s.execute(select(User))).scalar_one()
        acc_row = await s.get(Account, account_id)
        assert acc_row is not None and (acc_row.user_id, acc_row.linked_at) == (user.id, NOW)
        bob_row = await s.get(Account, bob)
        assert bob_row is not None and (bob_row.user_id, bob_row.linked_at) == (None, None)
        assert user.wallet_address == WALLET and user.last_seen_at == NOW
        row = await s.get(Invoice, invs[A].id)
        assert row is not None
        assert (row.status, row.paid_at, row.credited_at) == ("credited", NOW, NOW)
        assert (row.payer_address, row.transaction_hash, row.user_id) == (WALLET, TX, user.id)
    assert res == CreditResult(invs[A].public_id, "transcription", user.id, [A], 0, True)
    for sid in (B, C, E):  # the account's purchases now follow its wallet, whoever pays
        res = await _credit(ctx, invs[sid].public_id, payer="0x" + "c3" * 20, transaction_hash=TX)
        assert res == CreditResult(invs[sid].public_id, "transcription", user.id, [sid], 0, True)
    pks = await _space_pks(ctx)
    assert await _rows(ctx, TranscriptionPayment, *PAID_COLUMNS) == [
        (user.id, pks[sid], "0.6", TX, True, NOW, NOW, invs[sid].id, None) for sid in (A, B, C, E)
    ]
    async with ctx.db.session() as s:
        new = (await s.execute(select(Space).where(Space.space_id == A))).scalar_one()
        assert (new.space_url, new.title, new.creator) == (
            canonical_url(A),
            "The title",
            "@creator",
        )
        assert new.space_started_at == datetime(2026, 1, 2, 3, 4, 5)
        assert (new.audio_duration_seconds, new.status, new.first_requested_at) == (
            3600,
            "pending",
            NOW,
        )
        spaces = {
            sp.space_id: (sp.status, sp.error_message, sp.transcription_count, sp.chat_unlock_count)
            for sp in (await s.execute(select(Space))).scalars()
        }
    assert spaces == {
        A: ("pending", None, 1, 0),
        B: ("completed", None, 1, 0),
        C: ("pending", None, 1, 0),  # failed, asked again: pending, queued
        D: ("failed", "gone", 0, 0),  # nobody asked
        E: ("processing", None, 1, 0),  # being transcribed: not queued again
    }
    assert await _rows(
        ctx, ProcessingJob, ProcessingJob.space_id, ProcessingJob.status, ProcessingJob.max_retries
    ) == [(pks[A], "queued", 7), (pks[C], "queued", 7)]

    def confirmed(sid: str) -> tuple[Any, ...]:
        pid = invs[sid].public_id
        body = {"invoice_id": pid, "kind": "transcription", "space_ids": [sid], "amount": "0.6"}
        return (
            "payment_confirmed",
            "telegram",
            "1001",
            "-500",
            None,
            body | {"transaction_hash": TX},
            f"payment_confirmed:{pid}",
        )

    out = [
        (k, p, r, o, sp, json.loads(pl), d)
        for k, p, r, o, sp, pl, d in await _rows(
            ctx,
            Outbox,
            Outbox.kind,
            Outbox.platform,
            Outbox.recipient,
            Outbox.origin_chat_id,
            Outbox.space_id,
            Outbox.payload,
            Outbox.dedupe_key,
        )
    ]
    ready = (
        "transcript_ready",
        "telegram",
        "1001",
        "-500",
        pks[B],
        {"invoice_id": invs[B].public_id, "kind": "transcription", "space_id": B},
        f"transcript_ready:{invs[B].public_id}:{B}",
    )
    assert out == [confirmed(A), ready, confirmed(B), confirmed(C), confirmed(E)]
    # crediting again: nothing more, and it says so
    again = await _credit(ctx, invs[A].public_id, payer=WALLET, transaction_hash=TX)
    assert again == CreditResult(invs[A].public_id, "transcription", user.id, [], 0, False)
    assert len(await _rows(ctx, Outbox, Outbox.id)) == 5


async def test_a_space_row_made_at_payment_without_what_the_check_learnt(
    ctx: Context, frozen: datetime
) -> None:
    uid = await _user(ctx)
    for sid, payload in (
        (A, None),
        (B, {"title": "", "started_at": "not a date", "duration_seconds": "3600"}),
        (C, {"started_at": 20260102, "creator": ""}),
    ):
        inv = await _new_invoice(ctx, user_id=uid, space_ids=[sid], amount_units=1, payload=payload)
        await _credit(ctx, inv.public_id)
    async with ctx.db.session() as s:
        rows = (await s.execute(select(Space).order_by(Space.id))).scalars().all()
        assert [
            (r.space_id, r.title, r.creator, r.space_started_at, r.audio_duration_seconds)
            for r in rows
        ] == [(sid, f"X Space {sid}", None, None, None) for sid in (A, B, C)]


async def test_an_unlock_of_spaces_partly_owned_credits_the_owned_share(
    ctx: Context, frozen: datetime
) -> None:
    uid = await _user(ctx)
    other = await _user(ctx, "0x" + "b2" * 20)
    async with ctx.db.session() as s:
        acc = await get_or_create_account(s, TG)
        acc.user_id = uid
        account_id = acc.id
    # B is unlocked already by this user (its transcript was refunded); A only by somebody else
    for sid, status in ((A, "completed"), (B, "completed"), (C, "failed")):
        async with ctx.db.session() as s:
            s.add(Space(space_id=sid, space_url=canonical_url(sid), title="t", status=status))
    pks = await _space_pks(ctx)
    async with ctx.db.session() as s:
        for who, sid in ((uid, B), (other, A)):
            s.add(ChatUnlock(user_id=who, space_id=pks[sid], amount_usdc="0.5"))
        s.add(
            TranscriptionPayment(user_id=uid, space_id=pks[B], amount_usdc="0.2", refunded_at=NOW)
        )
    inv = await _new_invoice(
        ctx,
        kind="chat_unlock",
        account_id=account_id,
        user_id=uid,
        space_ids=[A, B],
        amount_units=1_000_001,
    )
    res = await _credit(ctx, inv.public_id, transaction_hash=TX)
    assert res == CreditResult(inv.public_id, "chat_unlock", uid, [A], 500_000, True)
    assert isinstance(res.to_credit_units, int)
    assert await _rows(
        ctx,
        Credit,
        Credit.user_id,
        Credit.amount_units,
        Credit.reason,
        Credit.reference,
        Credit.created_at,
    ) == [(uid, 500_000, "overpaid", f"invoice:{inv.public_id}", NOW)]
    async with ctx.db.session() as s:
        assert await credit_balance(s, uid) == 500_000
        mine = (
            await s.execute(
                select(ChatUnlock).where(ChatUnlock.user_id == uid, ChatUnlock.space_id == pks[A])
            )
        ).scalar_one()
        assert (mine.amount_usdc, mine.transaction_hash, mine.payment_verified) == (
            "1.000001",
            TX,
            True,
        )
        assert (mine.unlocked_at, mine.verified_at, mine.invoice_id) == (NOW, NOW, inv.id)
        counts = {
            sp.space_id: (sp.transcription_count, sp.chat_unlock_count)
            for sp in (await s.execute(select(Space))).scalars()
        }
        assert counts == {A: (0, 1), B: (0, 0), C: (0, 0)}
        assert await s.scalar(select(func.count()).select_from(ProcessingJob)) == 0
    assert [(k, pl) for k, _, _, _, pl, _ in await _outbox_rows(ctx)] == [
        (
            "payment_confirmed",
            {
                "invoice_id": inv.public_id,
                "kind": "chat_unlock",
                "space_ids": [A],
                "amount": "1.000001",
                "transaction_hash": TX,
                "credit": "0.5",
            },
        )
    ]
    # unlocking a failed Space neither revives nor queues it
    failed = await _new_invoice(
        ctx, kind="chat_unlock", user_id=uid, space_ids=[C], amount_units=600_000
    )
    assert failed.credit_units == 500_000
    res = await _credit(ctx, failed.public_id)
    assert res == CreditResult(failed.public_id, "chat_unlock", uid, [C], 0, True)
    async with ctx.db.session() as s:
        assert await s.scalar(select(Space.status).where(Space.id == pks[C])) == "failed"
        assert await s.scalar(select(func.count()).select_from(ProcessingJob)) == 0
        assert await credit_balance(s, uid) == 0
    # everything owned already: the whole price becomes credit again
    async with ctx.db.session() as s:
        await add_credit(s, uid, 300_000, "refund", "test:1")
    whole = await _new_invoice(
        ctx, kind="chat_unlock", user_id=uid, space_ids=[B], amount_units=300_000
    )
    assert whole.credit_units == 300_000  # the balance pays it; the spent row is reserved
    res = await _credit(ctx, whole.public_id)
    assert res == CreditResult(whole.public_id, "chat_unlock", uid, [], 300_000, True)
    async with ctx.db.session() as s:
        assert await credit_balance(s, uid) == 300_000


async def test_a_refunded_transcription_bought_again_is_granted_anew(
    ctx: Context, frozen: datetime
) -> None:
    uid = await _user(ctx)
    other = await _user(ctx, "0x" + "b2" * 20)
    async with ctx.db.session() as s:
        for sid in (A, B):
            s.add(Space(space_id=sid, space_url=canonical_url(sid), title="t", status="failed"))
    pks = await _space_pks(ctx)
    old = datetime(2025, 1, 1)
    async with ctx.db.session() as s:
        for who, sid in ((uid, A), (other, A), (uid, B)):
            s.add(
                TranscriptionPayment(
                    user_id=who,
                    space_id=pks[sid],
                    amount_usdc="0.2",
                    transaction_hash="0xold",
                    payment_verified=False,
                    paid_at=old,
                    verified_at=old,
                    refunded_at=old,
                )
            )
    inv = await _new_invoice(ctx, user_id=uid, space_ids=[A], amount_units=250_000)
    res = await _credit(ctx, inv.public_id, transaction_hash=TX, payer=WALLET)
    assert res == CreditResult(inv.public_id, "transcription", uid, [A], 0, True)
    assert await _rows(ctx, TranscriptionPayment, *PAID_COLUMNS) == [
        (uid, pks[A], "0.25", TX, True, NOW, NOW, inv.id, None),
        (other, pks[A], "0.2", "0xold", False, old, old, None, old),
        (uid, pks[B], "0.2", "0xold", False, old, old, None, old),
    ]
    assert await _rows(ctx, Credit, Credit.id) == []
    async with ctx.db.session() as s:
        sp = await s.get(Space, pks[A])
        assert sp is not None and (sp.status, sp.transcription_count) == ("pending", 1)


async def test_stars_grant_records_no_usdc_and_leave_the_owned_part_to_the_caller(
    ctx: Context, frozen: datetime
) -> None:
    async with ctx.db.session() as s:
        acc = await get_or_create_account(s, TG)
        account_id = acc.id
        uid = int((await get_or_create_user(s, WALLET)).id)
        s.add(Space(space_id=B, space_url=canonical_url(B), title="t", status="processing"))
    pks = await _space_pks(ctx)
    async with ctx.db.session() as s:
        s.add(TranscriptionPayment(user_id=uid, space_id=pks[B], amount_usdc="0.2"))
    inv = await _new_invoice(
        ctx, account_id=account_id, user_id=uid, space_ids=[A, B], amount_units=400_000
    )
    res = await _credit(ctx, inv.public_id, stars=30)
    assert res == CreditResult(inv.public_id, "transcription", uid, [A], 200_000, True)
    assert await _rows(ctx, Credit, Credit.id) == []  # Stars go back as Stars, by the caller
    async with ctx.db.session() as s:
        grant = (
            await s.execute(
                select(TranscriptionPayment).where(TranscriptionPayment.invoice_id == inv.id)
            )
        ).scalar_one()
        assert (grant.amount_usdc, grant.transaction_hash) == ("0.0", None)
        payload = json.loads((await s.execute(select(Outbox.payload))).scalar_one())
    assert payload == {
        "invoice_id": inv.public_id,
        "kind": "transcription",
        "space_ids": [A],
        "amount": "0.0",
        "currency": "XTR",
        "stars": 30,
        "transaction_hash": None,
    }


def _invoice_row(public_id: str, status: str, expires_at: datetime, **kw: Any) -> dict[str, Any]:
    return {
        "public_id": public_id,
        "kind": "transcription",
        "space_ids": json.dumps([A]),
        "amount_units": 200_000,
        "credit_units": 0,
        "network": "eip155:8453",
        "token_address": "0x" + "00" * 20,
        "pay_to": "0x" + "11" * 20,
        "status": status,
        "created_at": NOW - timedelta(hours=1),
        "expires_at": expires_at,
    } | kw


async def test_expiry_expires_the_due_open_invoices_and_returns_their_credit(
    ctx: Context, frozen: datetime
) -> None:
    uid = await _user(ctx)
    second = timedelta(seconds=1)
    async with ctx.db.session() as s:
        await s.execute(
            sa_insert(Invoice),
            [
                _invoice_row("raced-invoice-0000001", "open", NOW - 2 * second),
                _invoice_row(
                    "reserved-invoice-00001", "open", NOW - second, user_id=uid, credit_units=70_000
                ),
                _invoice_row("due-now-invoice-000001", "open", NOW, user_id=uid),
                _invoice_row("future-invoice-000001", "open", NOW + second),
                _invoice_row("paid-invoice-00000001", "credited", NOW - second, user_id=uid),
            ],
        )
    fired: list[str] = []

    def paid_meanwhile(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        """The first invoice is credited between expiry's read and its conditional update."""
        if fired or not statement.lstrip().upper().startswith("UPDATE INVOICES SET STATUS"):
            return
        fired.append(statement)
        conn.execute(
            update(Invoice)
            .where(Invoice.public_id == "raced-invoice-0000001")
            .values(status="credited")
        )

    event.listen(ctx.db.engine.sync_engine, "before_cursor_execute", paid_meanwhile)
    try:
        assert await expire_invoices(ctx) == 2
    finally:
        event.remove(ctx.db.engine.sync_engine, "before_cursor_execute", paid_meanwhile)
    assert fired
    assert dict(await _rows(ctx, Invoice, Invoice.public_id, Invoice.status)) == {
        "raced-invoice-0000001": "credited",
        "reserved-invoice-00001": "expired",
        "due-now-invoice-000001": "expired",
        "future-invoice-000001": "open",
        "paid-invoice-00000001": "credited",
    }
    assert await _rows(
        ctx,
        Credit,
        Credit.user_id,
        Credit.amount_units,
        Credit.reason,
        Credit.reference,
        Credit.created_at,
    ) == [(uid, 70_000, "released", "invoice:reserved-invoice-00001", NOW)]
    assert await expire_invoices(ctx) == 0


async def test_expiry_works_in_batches_of_500_open_invoices(ctx: Context, frozen: datetime) -> None:
    past = NOW - timedelta(minutes=1)
    async with ctx.db.session() as s:
        await s.execute(
            sa_insert(Invoice),
            [_invoice_row(f"credited-{i:012d}", "credited", past) for i in range(500)]
            + [_invoice_row(f"open-inv-{i:012d}", "open", past) for i in range(501)],
        )
    assert [await expire_invoices(ctx) for _ in range(3)] == [500, 1, 0]


async def _receipt(ctx: Context, inv: Invoice, payer: str, units: int, status: str) -> int:
    async with ctx.db.session() as s:
        r = PaymentReceipt(
            invoice_id=inv.id,
            method="transfer",
            network=inv.network,
            token_address=inv.token_address,
            payer_address=payer,
            pay_to=inv.pay_to,
            amount_units=units,
            transaction_hash=TX,
            log_index=units,
            status=status,
            created_at=NOW,
        )
        s.add(r)
        await s.flush()
        return int(r.id)


async def test_receipts_are_credited_once_and_late_money_is_the_payers_credit(
    ctx: Context, frozen: datetime
) -> None:
    inv = await _new_invoice(ctx, space_ids=[A], amount_units=200_000)
    other = await _new_invoice(ctx, space_ids=[B], amount_units=200_000)
    waiting = await _receipt(ctx, other, WALLET, 7, "confirmed")  # another's: left alone
    first = await _receipt(ctx, inv, WALLET, 200_000, "confirmed")
    async with ctx.db.session() as s:  # being settled (x402): "paid", then credited
        await s.execute(update(Invoice).where(Invoice.id == inv.id).values(status="paid"))
    res = await _credit(ctx, inv.public_id, payer=WALLET, transaction_hash=TX, receipt_id=first)
    uid = await _user(ctx)
    assert res == CreditResult(inv.public_id, "transcription", uid, [A], 0, True)
    receipt_cols = (PaymentReceipt.id, PaymentReceipt.status, PaymentReceipt.credited_at)
    assert await _rows(ctx, PaymentReceipt, *receipt_cols) == [
        (waiting, "confirmed", None),
        (first, "credited", NOW),
    ]
    # the same receipt again: it is credited already, nothing happens
    res = await _credit(ctx, inv.public_id, payer=WALLET, transaction_hash=TX, receipt_id=first)
    assert res == CreditResult(inv.public_id, "transcription", uid, [], 0, False)
    # another wallet's money for the invoice already credited: that wallet's credit
    late_payer = "0x" + "d4" * 20
    late = await _receipt(ctx, inv, late_payer, 123_456, "confirmed")
    res = await _credit(ctx, inv.public_id, payer=late_payer, transaction_hash=TX, receipt_id=late)
    async with ctx.db.session() as s:
        late_uid = int((await s.execute(select(User.id).where(User.id != uid))).scalar_one())
    assert res == CreditResult(inv.public_id, "transcription", late_uid, [], 123_456, False)
    assert await _rows(ctx, PaymentReceipt, *receipt_cols) == [
        (waiting, "confirmed", None),
        (first, "credited", NOW),
        (late, "credited", NOW),
    ]
    assert await _rows(
        ctx, Credit, Credit.user_id, Credit.amount_units, Credit.reason, Credit.reference
    ) == [(late_uid, 123_456, "overpaid", f"receipt:{late}")]
    assert await _rows(ctx, TranscriptionPayment, TranscriptionPayment.user_id) == [(uid,)]
    # a receipt not (or no longer) confirmed credits nothing, whoever asked
    done = await _receipt(ctx, other, WALLET, 1, "credited")
    res = await _credit(ctx, other.public_id, payer=WALLET, transaction_hash=TX, receipt_id=done)
    assert res == CreditResult(other.public_id, "transcription", 0, [], 0, False)
    async with ctx.db.session() as s:
        assert await s.scalar(select(Invoice.status).where(Invoice.id == other.id)) == "open"
        await s.execute(update(Invoice).where(Invoice.id == other.id).values(status="expired"))
    # nor does crediting an expired invoice without a receipt
    res = await _credit(ctx, other.public_id, payer=WALLET, transaction_hash=TX)
    assert res == CreditResult(other.public_id, "transcription", 0, [], 0, False)
    assert await _rows(ctx, TranscriptionPayment, TranscriptionPayment.invoice_id) == [(inv.id,)]


async def test_the_buyer_of_an_invoice(ctx: Context, frozen: datetime) -> None:
    nobody = await _new_invoice(ctx, space_ids=[A], amount_units=1)
    with pytest.raises(
        ValueError, match="^an invoice without a buyer cannot be credited without a payer$"
    ):
        await _credit(ctx, nobody.public_id)
    # an account linked to a wallet buys for that wallet, whoever pays
    owner = await _user(ctx)
    linked_at = datetime(2025, 5, 5)
    async with ctx.db.session() as s:
        acc = await get_or_create_account(s, TG)
        acc.user_id, acc.linked_at = owner, linked_at
        account_id = acc.id
    inv = await _new_invoice(ctx, account_id=account_id, space_ids=[A], amount_units=1)
    res = await _credit(ctx, inv.public_id, payer="0x" + "e5" * 20)
    assert res.user_id == owner
    async with ctx.db.session() as s:
        acc_row = await s.get(Account, account_id)
        assert acc_row is not None and (acc_row.user_id, acc_row.linked_at) == (owner, linked_at)
        assert await s.scalar(select(func.count()).select_from(User)) == 1


async def test_a_paid_question_is_recorded_or_owed(ctx: Context, frozen: datetime) -> None:
    calls: list[tuple[Any, ...]] = []

    async def answer(ctx: Context, req: FulfilRequest) -> dict[str, Any] | Refused:
        raise AssertionError("crediting never answers")

    async def record(
        s: Any, c: Context, req: FulfilRequest, result: dict[str, Any], uid: int, tx: str | None
    ) -> None:
        assert c is ctx and isinstance(s, AsyncSession)
        calls.append(("record", req, result, uid, tx))

    async def owed(s: Any, c: Context, req: FulfilRequest, uid: int) -> None:
        assert c is ctx and isinstance(s, AsyncSession)
        calls.append(("owed", req, uid))

    uid = await _user(ctx)
    async with ctx.db.session() as s:
        acc = await get_or_create_account(s, TG)
        account_id = acc.id
    question = {"question": "Who spoke?"}
    invs = [
        await _new_invoice(
            ctx,
            kind="chat_query",
            account_id=account_id,
            user_id=uid,
            space_ids=[A, B],
            amount_units=1_100_000,
            payload=question,
            origin_chat_id="-500",
        )
        for _ in range(3)
    ]
    bare = await _new_invoice(
        ctx, kind="chat_query", user_id=uid, space_ids=[A], amount_units=1_000_000
    )
    async with ctx.db.session() as s:
        s.add(
            ChatSession(
                session_id="chat-session-1",
                user_id=uid,
                space_ids=json.dumps([A, B]),
                question="Who spoke?",
                answer="Alice",
                num_spaces=2,
                amount_usdc="1.1",
                invoice_id=invs[0].id,
            )
        )

    def req(inv: Invoice, payer: str | None) -> FulfilRequest:
        return FulfilRequest(
            inv.id, inv.public_id, "chat_query", [A, B], question, payer, 1_100_000
        )

    ctx.wiring.add_fulfiller("chat_query", FunctionFulfiller(answer, record, owed))
    fulfilment = {"answer": "Alice"}
    res = await _credit(
        ctx, invs[0].public_id, payer=WALLET, transaction_hash=TX, fulfilment=fulfilment
    )
    assert res == CreditResult(invs[0].public_id, "chat_query", uid, [], 0, True)
    res = await _credit(ctx, invs[1].public_id, payer=WALLET, transaction_hash=TX)
    assert res == CreditResult(invs[1].public_id, "chat_query", uid, [], 0, True)
    res = await _credit(ctx, bare.public_id)
    assert res == CreditResult(bare.public_id, "chat_query", uid, [], 0, True)
    ctx.wiring.fulfillers.clear()  # no fulfiller: credited all the same
    res = await _credit(ctx, invs[2].public_id, fulfilment=fulfilment)
    assert res == CreditResult(invs[2].public_id, "chat_query", uid, [], 0, True)
    assert calls == [
        ("record", req(invs[0], WALLET), fulfilment, uid, TX),
        ("owed", req(invs[1], WALLET), uid),
        (
            "owed",
            FulfilRequest(bare.id, bare.public_id, "chat_query", [A], {}, None, 1_000_000),
            uid,
        ),
    ]
    async with ctx.db.session() as s:
        assert await s.scalar(select(ChatSession.transaction_hash)) == TX
        assert await s.scalar(select(func.count()).select_from(Space)) == 0  # no grant rows
    out = [
        (k, r, o, sp, json.loads(pl), d)
        for k, r, o, sp, pl, d in await _rows(
            ctx,
            Outbox,
            Outbox.kind,
            Outbox.recipient,
            Outbox.origin_chat_id,
            Outbox.space_id,
            Outbox.payload,
            Outbox.dedupe_key,
        )
    ]
    assert out == [
        (
            "payment_confirmed",
            "1001",
            "-500",
            None,
            {
                "invoice_id": inv.public_id,
                "kind": "chat_query",
                "space_ids": [A, B],
                "amount": "1.1",
            },
            f"payment_confirmed:{inv.public_id}",
        )
        for inv in invs
    ]


async def test_an_invoice_quotes_what_is_left_after_account_credit(
    ctx: Context, frozen: datetime
) -> None:
    p = ctx.settings.payments
    p.pay_to = "0x" + "Ab" * 20
    p.network = "eip155:84532"
    p.invoice_ttl_seconds = 600
    ctx.settings.web.public_url = "https://spaces.example/"
    uid = await _user(ctx)
    caller = Caller("telegram", "1001", "Alice", chat_id="-500", back=(("bot_username", "bot"),))
    async with ctx.db.session() as s:
        acc = await get_or_create_account(s, caller)
        acc.user_id = uid
        account_id = acc.id
        await add_credit(s, uid, 50_000, "refund", "test:1")
    async with ctx.db.session() as s:
        q = await create_invoice(
            s,
            ctx,
            caller=caller,
            user_id=None,
            kind="transcription",
            space_ids=[A],
            amount_units=200_000,
            payload={"title": "T"},
        )
    assert isinstance(q, Quote)
    assert valid_public_id(q.invoice_id) and len(q.invoice_id) == 24
    token = p.token_address
    assert q == Quote(
        invoice_id=q.invoice_id,
        kind="transcription",
        space_ids=[A],
        amount=Decimal("0.15"),
        pay_url=f"https://spaces.example/pay/{q.invoice_id}",
        expires_at=NOW + timedelta(seconds=600),
        direct=DirectTransfer(
            p.pay_to,
            token,
            84532,
            150_000,
            f"ethereum:{token}@84532/transfer?address={p.pay_to}&uint256=150000",
        ),
        credit_applied=Decimal("0.05"),
    )
    async with ctx.db.session() as s:
        inv = await get_invoice(s, q.invoice_id)
        assert inv is not None
        assert (inv.kind, inv.account_id, inv.user_id, inv.space_ids) == (
            "transcription",
            account_id,
            uid,
            json.dumps([A]),
        )
        assert json.loads(inv.payload or "") == {"bot_username": "bot", "title": "T"}
        assert inv.origin_chat_id == "-500"
        assert (inv.amount_units, inv.credit_units, inv.status, inv.payer_address) == (
            200_000,
            50_000,
            "open",
            None,
        )
        assert (inv.network, inv.token_address, inv.pay_to) == (
            "eip155:84532",
            token.lower(),
            p.pay_to.lower(),
        )
        assert (inv.created_at, inv.expires_at) == (NOW, NOW + timedelta(seconds=600))
        assert await credit_balance(s, uid) == 0
    assert await _rows(
        ctx,
        Credit,
        Credit.user_id,
        Credit.amount_units,
        Credit.reason,
        Credit.reference,
        Credit.created_at,
    ) == [
        (uid, 50_000, "refund", "test:1", NOW),
        (uid, -50_000, "spent", f"invoice:{q.invoice_id}", NOW),
    ]
    # more credit than the price: the price is spent, not the balance (issue 22, mutation 5)
    async with ctx.db.session() as s:
        await add_credit(s, uid, 300_000, "refund", "test:2")
        g = await create_invoice(
            s,
            ctx,
            caller=caller,
            user_id=None,
            kind="chat_unlock",
            space_ids=[B],
            amount_units=200_000,
        )
        assert isinstance(g, Granted) and (g.kind, g.space_ids) == ("chat_unlock", [B])
        assert g.invoice_pk == await s.scalar(select(func.max(Invoice.id)))
        assert await credit_balance(s, uid) == 100_000
    # owned already: still "granted" (what was asked for is the caller's); the price returns
    async with ctx.db.session() as s:
        g = await create_invoice(
            s,
            ctx,
            caller=caller,
            user_id=None,
            kind="chat_unlock",
            space_ids=[B],
            amount_units=100_000,
        )
        assert isinstance(g, Granted) and (g.kind, g.space_ids) == ("chat_unlock", [B])
        assert await credit_balance(s, uid) == 100_000


async def test_telegram_without_usdc_spends_credit_only_on_a_whole_price(ctx: Context) -> None:
    ctx.settings.telegram.usdc_enabled = False
    uid = await _user(ctx)
    tg = Caller("telegram", "1001")
    async with ctx.db.session() as s:
        acc = await get_or_create_account(s, tg)
        acc.user_id = uid
        await add_credit(s, uid, 150_000, "refund", "test:1")

    async def buy(caller: Caller, units: int) -> Quote | Granted:
        async with ctx.db.session() as s:
            return await create_invoice(
                s,
                ctx,
                caller=caller,
                user_id=uid,
                kind="transcription",
                space_ids=[A],
                amount_units=units,
            )

    q = await buy(tg, 200_000)  # credit would pay only part: not used
    assert isinstance(q, Quote) and (q.amount, q.credit_applied) == (Decimal("0.2"), 0)
    assert q.direct is None  # no pay_to configured
    dc = Caller("discord", "2002")  # elsewhere part-payment is fine
    q = await buy(dc, 200_000)
    assert isinstance(q, Quote) and (q.amount, q.credit_applied) == (
        Decimal("0.05"),
        Decimal("0.15"),
    )
    async with ctx.db.session() as s:
        inv = await get_invoice(s, q.invoice_id)
        assert inv is not None and inv.payload is None  # nothing to remember of a bare caller
        await add_credit(s, uid, 150_000, "refund", "test:2")
    g = await buy(tg, 150_000)  # the whole price from credit: fine on Telegram too
    assert isinstance(g, Granted) and (g.kind, g.space_ids) == ("transcription", [A])


async def test_invoice_rules_and_ids(ctx: Context) -> None:
    uid = await _user(ctx)  # no credit at all: no ledger row either
    for kind, units, message in (
        ("bogus", 1, "^unknown invoice kind 'bogus'$"),
        ("transcription", 0, "^an invoice is for a positive amount$"),
    ):
        with pytest.raises(ValueError, match=message):
            await _new_invoice(ctx, kind=kind, user_id=uid, space_ids=[A], amount_units=units)
    inv = await _new_invoice(ctx, user_id=uid, space_ids=[A], amount_units=1)
    assert inv.credit_units == 0
    assert await _rows(ctx, Credit, Credit.id) == []
    for text, ok in (("a" * 15, False), ("a" * 16, True), ("a" * 64, True), ("a" * 65, False)):
        assert valid_public_id(text) is ok
    assert not valid_public_id("a" * 15 + "!") and not valid_public_id(12345678901234567)  # type: ignore[arg-type]
    assert valid_public_id("Az09-_" * 3)
    every = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert len(every) == 64 and valid_public_id(every)
    # the payload is stored with sorted keys; a single unit of credit is credit too
    async with ctx.db.session() as s:
        await add_credit(s, uid, 1, "refund", "test:1")
    inv = await _new_invoice(
        ctx, user_id=uid, space_ids=[A], amount_units=200_000, payload={"z": 1, "a": [2]}
    )
    assert inv.payload == '{"a": [2], "z": 1}' and inv.credit_units == 1
    # the direct-transfer fallback is offered for any amount still due, none when nothing is
    ctx.settings.payments.pay_to = "0x" + "ab" * 20
    for due, offered in ((1, True), (0, False)):
        inv.credit_units = inv.amount_units - due
        q = quote_for(ctx, inv)
        assert (q.direct is not None, q.amount, q.credit_applied) == (
            offered,
            from_units(due),
            from_units(200_000 - due),
        )
    async with ctx.db.session() as s:
        assert await get_invoice(s, inv.public_id) is not None
        assert await get_invoice(s, "x") is None


async def test_discarding_drops_only_a_bare_open_invoice(ctx: Context) -> None:
    uid = await _user(ctx)
    bare, other, paid, reserved, received = [
        await _new_invoice(ctx, space_ids=[A], amount_units=1) for _ in range(5)
    ]
    async with ctx.db.session() as s:
        await s.execute(update(Invoice).where(Invoice.id == paid.id).values(status="credited"))
        await s.execute(
            update(Invoice).where(Invoice.id == reserved.id).values(credit_units=1, user_id=uid)
        )
    await _receipt(ctx, received, WALLET, 1, "settling")
    for inv in (bare, paid, reserved, received):
        await discard_invoice(ctx, inv.public_id)
    left = [pid for (pid,) in await _rows(ctx, Invoice, Invoice.public_id)]
    assert left == [other.public_id, paid.public_id, reserved.public_id, received.public_id]


# ------------------------------------------------- Telegram Stars, function by function (#22)


@pytest.fixture
def stars_frozen(frozen: datetime, monkeypatch: pytest.MonkeyPatch) -> datetime:
    monkeypatch.setattr("core.payments.stars.utcnow", lambda: NOW)
    return NOW


async def _tg_invoice(
    ctx: Context, caller: Caller = TG, kind: str = "transcription", **kw: Any
) -> Invoice:
    async with ctx.db.session() as s:
        acc = await get_or_create_account(s, caller)
        account_id = acc.id
    values: dict[str, Any] = {"space_ids": [A], "amount_units": 200_000}
    return await _new_invoice(ctx, kind=kind, account_id=account_id, **(values | kw))


def test_stars_prices_and_when_they_are_offered(ctx: Context) -> None:
    prices = ctx.settings.prices
    assert stars.stars_price(prices, "transcription", 5) == 15
    assert stars.stars_price(prices, "chat_unlock", 5) == 40
    assert stars.stars_price(prices, "chat_query", 3) == 70 + 8 * 3
    assert stars.stars_price(prices, "chat_query") == 78
    assert stars.offers_stars(ctx.settings, False) is True
    assert stars.offers_stars(ctx.settings, True) is False
    ctx.settings.telegram.stars_enabled = False
    assert stars.offers_stars(ctx.settings, False) is False


async def test_a_stars_offer_and_its_refusals(ctx: Context, stars_frozen: datetime) -> None:
    msgs = stars.MESSAGES
    inv = await _tg_invoice(ctx, space_ids=[A], payload={"title": "Morning show"})
    assert await stars.offer(ctx, TG, inv.public_id) == stars.StarsOffer(
        invoice_id=inv.public_id,
        title="Transcript",
        description=f"Transcript of X Space {A} (Morning show)",
        label="Transcript",
        amount=15,
    )
    ask = await _tg_invoice(ctx, kind="chat_query", space_ids=[A, B], payload={"title": "x" * 300})
    offer = await stars.offer(ctx, TG, ask.public_id)
    assert isinstance(offer, stars.StarsOffer) and offer.amount == 86
    assert offer.description == f"Question of X Space {A}, {B} ({'x' * 300})"[:255]
    assert len(offer.description) == 255 and (offer.title, offer.label) == ("Question", "Question")
    bare = await _tg_invoice(ctx, kind="chat_unlock", space_ids=[B])
    offer = await stars.offer(ctx, TG, bare.public_id)
    assert isinstance(offer, stars.StarsOffer)
    assert (offer.description, offer.amount) == (f"Chat unlock of X Space {B}", 40)

    def refused(code: str) -> Refused:
        return Refused(code, msgs[code])

    assert await stars.offer(ctx, TG, "NoSuchInvoiceAtAll12345") == refused("unknown_invoice")
    assert await stars.offer(ctx, TG, "bad id!") == refused("unknown_invoice")
    assert await stars.offer(ctx, TG_BOB, inv.public_id) == refused("not_yours")
    async with ctx.db.session() as s:
        await get_or_create_account(s, TG_BOB)
    assert await stars.offer(ctx, TG_BOB, inv.public_id) == refused("not_yours")
    for status, code in (
        ("paid", "already_paid"),
        ("credited", "already_paid"),
        ("expired", "expired"),
    ):
        async with ctx.db.session() as s:
            await s.execute(update(Invoice).where(Invoice.id == inv.id).values(status=status))
        assert await stars.offer(ctx, TG, inv.public_id) == refused(code)
    async with ctx.db.session() as s:
        await s.execute(
            update(Invoice).where(Invoice.id == inv.id).values(status="open", expires_at=NOW)
        )
    assert await stars.offer(ctx, TG, inv.public_id) == refused("expired")
    async with ctx.db.session() as s:
        await s.execute(
            update(Invoice)
            .where(Invoice.id == inv.id)
            .values(expires_at=NOW + timedelta(seconds=1), credit_units=1)
        )
    assert await stars.offer(ctx, TG, inv.public_id) == refused("credit_applied")
    ctx.settings.telegram.stars_enabled = False
    assert await stars.offer(ctx, TG, bare.public_id) == refused("stars_off")
    assert await stars.pre_checkout(ctx, TG, bare.public_id, "XTR", 40) == refused("stars_off")


async def test_owning_the_space_stops_a_stars_payment(ctx: Context, stars_frozen: datetime) -> None:
    uid = await _user(ctx)
    async with ctx.db.session() as s:
        acc = await get_or_create_account(s, TG)
        acc.user_id = uid  # linked: the invoice itself names no user
        for sid in (A, B):
            s.add(Space(space_id=sid, space_url=canonical_url(sid), title="t", status="completed"))
    pks = await _space_pks(ctx)
    async with ctx.db.session() as s:
        s.add(TranscriptionPayment(user_id=uid, space_id=pks[B], amount_usdc="0.2"))
        s.add(ChatUnlock(user_id=uid, space_id=pks[A], amount_usdc="0.5"))
        other = int((await get_or_create_user(s, "0x" + "b2" * 20)).id)
        s.add(TranscriptionPayment(user_id=other, space_id=pks[A], amount_usdc="0.2"))
    owned = Refused("owned", stars.MESSAGES["owned"])
    for kind, sid, expected in (
        ("transcription", B, owned),
        ("transcription", A, None),  # unlocked, and bought by somebody else: not owned
        ("chat_unlock", A, owned),
        ("chat_unlock", B, None),
    ):
        inv = await _tg_invoice(ctx, kind=kind, space_ids=[sid])
        price = 15 if kind == "transcription" else 40
        assert await stars.pre_checkout(ctx, TG, inv.public_id, "XTR", price) == expected, (
            kind,
            sid,
        )


async def test_pre_checkout_answers(ctx: Context, stars_frozen: datetime) -> None:
    inv = await _tg_invoice(ctx)
    assert await stars.pre_checkout(ctx, TG, inv.public_id, "XTR", 15) is None
    assert await stars.pre_checkout(ctx, TG, inv.public_id, "XTR", 14) == Refused(
        "price_changed", stars.MESSAGES["price_changed"]
    )
    assert await stars.pre_checkout(ctx, TG, inv.public_id, "USD", 15) == Refused(
        "currency", stars.MESSAGES["currency"]
    )
    assert await stars.pre_checkout(ctx, TG_BOB, inv.public_id, "XTR", 15) == Refused(
        "not_yours", stars.MESSAGES["not_yours"]
    )


async def _star_rows(ctx: Context) -> list[tuple[Any, ...]]:
    return await _rows(
        ctx,
        StarPayment,
        StarPayment.telegram_payment_charge_id,
        StarPayment.provider_payment_charge_id,
        StarPayment.invoice_id,
        StarPayment.telegram_user_id,
        StarPayment.currency,
        StarPayment.amount,
        StarPayment.status,
        StarPayment.refund_reason,
        StarPayment.created_at,
        StarPayment.credited_at,
        StarPayment.refunded_at,
    )


async def _outbox_rows(ctx: Context) -> list[tuple[Any, ...]]:
    return [
        (k, p, r, o, json.loads(pl), d)
        for k, p, r, o, pl, d in await _rows(
            ctx,
            Outbox,
            Outbox.kind,
            Outbox.platform,
            Outbox.recipient,
            Outbox.origin_chat_id,
            Outbox.payload,
            Outbox.dedupe_key,
        )
    ]


async def test_a_stars_payment_grants_once(ctx: Context, stars_frozen: datetime) -> None:
    inv = await _tg_invoice(ctx, origin_chat_id="-500")
    async with ctx.db.session() as s:
        await s.execute(update(Invoice).where(Invoice.id == inv.id).values(expires_at=NOW))
    # approved at pre-checkout a moment ago: the expiry since then does not matter
    kw: dict[str, Any] = {"payload": inv.public_id, "currency": "XTR", "total_amount": 15}
    out = await stars.paid(ctx, TG, charge_id="charge-1", provider_charge_id="prov-1", **kw)
    assert out == stars.StarsPaid("granted", inv.public_id)
    async with ctx.db.session() as s:
        acc = (await s.execute(select(Account))).scalar_one()
        user_id = acc.user_id
        assert user_id is not None  # the account's own wallet-less user is the buyer
        row = await s.get(Invoice, inv.id)
        assert row is not None and (row.status, row.user_id) == ("credited", user_id)
        grant = (await s.execute(select(TranscriptionPayment))).scalar_one()
        assert (grant.user_id, grant.amount_usdc, grant.invoice_id) == (user_id, "0.0", inv.id)
    assert await _star_rows(ctx) == [
        ("charge-1", "prov-1", inv.id, "1001", "XTR", 15, "credited", None, NOW, NOW, None)
    ]
    again = await stars.paid(ctx, TG, charge_id="charge-1", **kw)
    assert again == stars.StarsPaid("duplicate", inv.public_id)
    assert [k for k, *_ in await _outbox_rows(ctx)] == ["payment_confirmed"]
    for bad in ("", "c" * 257):
        with pytest.raises(ValueError, match="carries a telegram_payment_charge_id"):
            await stars.paid(ctx, TG, charge_id=bad, **kw)
    longest = await stars.paid(ctx, TG, charge_id="c" * 256, **kw)
    assert longest.outcome == "refunded"  # a second payment of a paid invoice goes back


async def test_a_stars_payment_that_cannot_be_honoured_is_refunded_in_stars(
    ctx: Context, stars_frozen: datetime
) -> None:
    inv = await _tg_invoice(ctx, space_ids=[A])
    msgs = stars.MESSAGES
    cases = (
        ("c-currency", TG, inv.public_id, "USD", 15, msgs["currency"]),
        ("c-price", TG, inv.public_id, "XTR", 16, msgs["price_changed"]),
        ("c-other", TG_BOB, inv.public_id, "XTR", 16, msgs["not_yours"]),
        ("c-unknown", TG_BOB, "NoSuchInvoiceAtAll12345", "XTR", 9, msgs["unknown_invoice"]),
        ("c-junk", TG_BOB, "junk!", "XTR", 9, msgs["unknown_invoice"]),
    )
    for charge, who, payload, currency, amount, reason in cases:
        out = await stars.paid(
            ctx, who, payload=payload, currency=currency, total_amount=amount, charge_id=charge
        )
        known = inv.public_id if payload == inv.public_id else None
        assert out == stars.StarsPaid("refunded", known, reason), charge
    rows = await _star_rows(ctx)
    assert [r[:8] for r in rows] == [
        (
            charge,
            None,
            inv.id if payload == inv.public_id else None,
            who.platform_user_id,
            currency,
            amount,
            "refund_due",
            reason,
        )
        for charge, who, payload, currency, amount, reason in cases
    ]
    assert await _outbox_rows(ctx) == [
        (
            "stars_refund",
            "telegram",
            who.platform_user_id,
            who.chat_id,
            {"charge_id": charge, "stars": amount, "reason": reason}
            | ({"space_id": A} if payload == inv.public_id else {}),
            f"stars_refund:{charge}",
        )
        for charge, who, payload, currency, amount, reason in cases
    ]
    async with ctx.db.session() as s:
        assert await s.scalar(select(Invoice.status).where(Invoice.id == inv.id)) == "open"
    again = await stars.paid(
        ctx, TG_BOB, payload="junk!", currency="XTR", total_amount=9, charge_id="c-junk"
    )
    assert again == stars.StarsPaid("duplicate", None)
    # Telegram confirms the refund: refunded, once
    await stars.mark_refunded(ctx, "c-price")
    await stars.mark_refunded(ctx, "no-such-charge")
    rows = {r[0]: (r[6], r[10]) for r in await _star_rows(ctx)}
    assert rows["c-price"] == ("refunded", NOW) and rows["c-currency"] == ("refund_due", None)


async def test_stars_of_failed_purchases_go_back_once(ctx: Context, stars_frozen: datetime) -> None:
    invs = [await _tg_invoice(ctx, space_ids=[sid]) for sid in (A, B, C)]
    for i, inv in enumerate(invs):
        out = await stars.paid(
            ctx, TG, payload=inv.public_id, currency="XTR", total_amount=15, charge_id=f"ch-{i}"
        )
        assert out.outcome == "granted"
    pks = [inv.id for inv in invs]
    refused = await _tg_invoice(ctx, space_ids=[D])
    out = await stars.paid(
        ctx, TG, payload=refused.public_id, currency="XTR", total_amount=16, charge_id="ch-bad"
    )
    assert out.outcome == "refunded"
    async with ctx.db.session() as s:
        assert await stars.refund_for_invoices(s, [], "why") == {}
        assert await stars.refund_for_invoices(s, [refused.id], "why") == {}
        assert await stars.stars_invoice_pks(s, []) == set()
        assert await stars.stars_invoice_pks(s, [*pks, refused.id, 999]) == set(pks)
        assert await stars.stars_invoice_pks(s, [pks[1]]) == {pks[1]}
        assert await stars.refund_for_invoices(s, pks[:2], "The Space failed.") == {
            pks[0]: 15,
            pks[1]: 15,
        }
        assert await stars.refund_for_invoices(s, pks[:2], "again") == {}
        # refunded ones were paid in Stars all the same
        assert await stars.stars_invoice_pks(s, pks) == set(pks)
        # a reason is stored to 500 characters, and told in full
        assert await stars.refund_for_invoices(s, [pks[2]], "y" * 600) == {pks[2]: 15}
    rows = await _star_rows(ctx)
    assert [(r[0], r[6], r[7]) for r in rows] == [
        ("ch-0", "refund_due", "The Space failed."),
        ("ch-1", "refund_due", "The Space failed."),
        ("ch-2", "refund_due", "y" * 500),
        ("ch-bad", "refund_due", stars.MESSAGES["price_changed"]),
    ]
    refunds = [r for r in await _outbox_rows(ctx) if r[0] == "stars_refund"]
    assert refunds[1:] == [
        (
            "stars_refund",
            "telegram",
            "1001",
            None,
            {"charge_id": f"ch-{i}", "stars": 15, "reason": reason, "space_id": sid},
            f"stars_refund:ch-{i}",
        )
        for i, sid, reason in (
            (0, A, "The Space failed."),
            (1, B, "The Space failed."),
            (2, C, "y" * 600),
        )
    ]


async def test_crediting_reads_the_space_afresh_under_its_lock(
    ctx: Context, frozen: datetime
) -> None:
    """The session may hold an older copy of the Space (read before the lock was taken): the
    grant acts on the row as it is now, completed since, not on that copy."""
    inv = await _tg_invoice(ctx, space_ids=[C])
    async with ctx.db.session() as s:
        s.add(completed_space(C, "Was failing", status="failed", completed_at=None))
    async with ctx.db.session() as s:
        stale = (await s.execute(select(Space).where(Space.space_id == C))).scalar_one()
        assert stale.status == "failed"
        await s.execute(
            update(Space)
            .where(Space.space_id == C)
            .values(status="completed")
            .execution_options(synchronize_session=False)
        )
        row = (await s.execute(select(Invoice).where(Invoice.id == inv.id))).scalar_one()
        res = await credit_invoice(s, ctx, row, payer=WALLET, transaction_hash=TX, receipt_id=None)
    assert res.granted == [C]
    async with ctx.db.session() as s:
        assert await s.scalar(select(Space.status)) == "completed"
        assert await s.scalar(select(func.count()).select_from(ProcessingJob)) == 0
    assert [k for k, *_ in await _outbox_rows(ctx)] == ["transcript_ready", "payment_confirmed"]


async def test_a_stars_payment_overtaken_by_another_is_refunded(
    ctx: Context, stars_frozen: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checked, then overtaken before the grant (paid meanwhile, or the Space bought
    meanwhile): the crediting itself tells, and the Stars go back."""
    uid = await _user(ctx)
    async with ctx.db.session() as s:
        acc = await get_or_create_account(s, TG)
        acc.user_id = uid
        s.add(Space(space_id=B, space_url=canonical_url(B), title="t", status="completed"))
    paid_meanwhile = await _tg_invoice(ctx, space_ids=[A])
    await _credit(ctx, paid_meanwhile.public_id)
    owned_meanwhile = await _tg_invoice(ctx, space_ids=[B])
    async with ctx.db.session() as s:
        s.add(
            TranscriptionPayment(
                user_id=uid, space_id=(await _space_pks(ctx))[B], amount_usdc="0.2"
            )
        )

    async def overtaken(*_: Any, **__: Any) -> None:
        return None  # what the check saw a moment before

    monkeypatch.setattr("core.payments.stars._problem", overtaken)
    for charge, inv, why in (
        ("late-1", paid_meanwhile, "already_paid"),
        ("late-2", owned_meanwhile, "owned"),
    ):
        out = await stars.paid(
            ctx, TG, payload=inv.public_id, currency="XTR", total_amount=15, charge_id=charge
        )
        assert out == stars.StarsPaid("refunded", inv.public_id, stars.MESSAGES[why])
    assert [(r[0], r[6], r[7], r[9]) for r in await _star_rows(ctx)] == [
        ("late-1", "refund_due", stars.MESSAGES["already_paid"], None),
        ("late-2", "refund_due", stars.MESSAGES["owned"], None),
    ]
    assert await _rows(ctx, Credit, Credit.id) == []  # Stars go back as Stars, not as credit


async def test_a_function_fulfiller(ctx: Context) -> None:
    seen: list[tuple[Any, ...]] = []

    async def answer(c: Context, req: FulfilRequest) -> dict[str, Any] | Refused:
        seen.append((c, req))
        return {"answer": 42}

    req = FulfilRequest(1, "x" * 24, "chat_query", [A], {}, None, 1)
    bare = FunctionFulfiller(answer)
    assert await bare.answer(ctx, req) == {"answer": 42} and seen == [(ctx, req)]
    async with ctx.db.session() as s:  # without record or owed functions: nothing to do
        await bare.record(s, ctx, req, {}, 1, None)
        await bare.owed(s, ctx, req, 1)
    assert ctx.wiring.fulfiller_for("test_kind") is None
    ctx.wiring.add_fulfiller("test_kind", bare)
    assert ctx.wiring.fulfiller_for("test_kind") is bare


async def test_stars_refunded_meanwhile_are_not_refunded_again(
    ctx: Context, stars_frozen: datetime
) -> None:
    inv = await _tg_invoice(ctx, space_ids=[E])
    out = await stars.paid(
        ctx, TG, payload=inv.public_id, currency="XTR", total_amount=15, charge_id="ch-e"
    )
    assert out.outcome == "granted"
    fired: list[str] = []

    def refunded_meanwhile(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        """Another process refunds the payment between the read and the conditional update."""
        if fired or not statement.lstrip().upper().startswith("UPDATE STAR_PAYMENTS"):
            return
        fired.append(statement)
        conn.execute(update(StarPayment).values(status="refund_due", refund_reason="other"))

    event.listen(ctx.db.engine.sync_engine, "before_cursor_execute", refunded_meanwhile)
    try:
        async with ctx.db.session() as s:
            assert await stars.refund_for_invoices(s, [inv.id], "The Space failed.") == {}
    finally:
        event.remove(ctx.db.engine.sync_engine, "before_cursor_execute", refunded_meanwhile)
    assert fired
    assert [(r[6], r[7]) for r in await _star_rows(ctx)] == [("refund_due", "other")]
    assert [k for k, *_ in await _outbox_rows(ctx)] == ["payment_confirmed"]
