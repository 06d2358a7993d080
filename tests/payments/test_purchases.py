"""Service operations and crediting rules: quotes, ownership, unlock order, account credit,
expiry, notifications, the chat fulfiller (verify → answer → settle). Both engines, anvil."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update

from core.context import Context
from core.db import ChatSession, Credit, Invoice, Outbox, ProcessingJob, Space, utcnow
from core.money import to_units
from core.payments import (
    FunctionFulfiller,
    Paid,
    PaymentRefused,
    create_invoice,
    expire_invoices,
    pay_invoice,
)
from core.payments.invoices import credit_balance
from core.results import AlreadyOwned, Granted, Quote, Refused
from core.service.purchases import request_transcription, request_unlock
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
    assert isinstance(out, PaymentRefused) and out.code == "invoice_expired"


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
            assert isinstance(out, PaymentRefused) and out.code == "no_answer"
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
    assert isinstance(out, PaymentRefused) and out.code == "payments_unavailable", out


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
