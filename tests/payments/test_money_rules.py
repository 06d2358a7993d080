"""Money rules that only the slow drills used to notice, each with a fast, direct test on
both engines and the real anvil chain (issue 22):

- ``/x402/chat`` priced and charged per Space asked (0.9 + 0.1 × n), in the 402 and on chain;
- the transfer watcher credits only the exact amount due (not one unit short or over);
- a ``Transfer`` of another EIP-3009 token to pay-to pays nothing;
- a settled x402 transaction whose transfer went elsewhere is a ``transfer_mismatch``;
- account credit larger than the price pays the price and keeps the rest;
- an x402 payload whose ``accepted.payTo`` is not ours is refused before anything moves;
- ``/unlock`` by someone who does not own an existing Space is refused, no invoice made;
- an authorization nonce already claimed by another submission is refused (``nonce_used``).
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from web3 import Web3

from core.context import Context
from core.db import Credit, Invoice, PaymentReceipt, TranscriptionPayment
from core.payments import Paid, pay_invoice
from core.payments.account_credit import credit_balance
from core.payments.confirm import finish_receipt
from core.payments.onchain import reader_for_settings
from core.payments.transfers import submit_transaction_hash, watch_transfers
from core.results import Caller, Granted, Quote, Refused
from core.service.purchases import request_transcription, request_unlock, x402_preflight
from tests.payments.conftest import client_payload
from tests.payments.test_transfers import _link
from tests.payments.test_x402_api import _pay, server  # noqa: F401  (fixture)
from tests.payments.test_x402_pay import ALICE, SPACE, _quote, _reqs
from tests.snapshot import snapshot
from tests.stand_ins.chain import USDC, Chain, deploy_token

BOB = Caller("telegram", "2002", "bob", chat_id="-600")
SPACES = [SPACE, "1YqJDqWqbNVGV", "1OwxWzpPqjyJQ"]


@pytest.fixture(scope="session")
def second_token(chain: Chain) -> Any:
    """Another EIP-3009 token on the same chain (same name and version as ours)."""
    return deploy_token(chain.w3, chain.relayer)


async def _count(ctx: Context, model: Any) -> int:
    async with ctx.db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


# ---------------------------------------------------------------- 1. chat price per Space


async def test_x402_chat_over_three_spaces_costs_1_2(
    server: str,  # noqa: F811
    pay_ctx: Context,
    chain: Chain,
    fresh_payer: Any,
) -> None:
    from core.payments import FunctionFulfiller

    async def answer(ctx: Context, req: Any) -> dict[str, Any]:
        return {"answer": f"over {len(req.space_ids)} Spaces"}

    body = {"question": "who spoke?", "spaces": SPACES}
    async with httpx.AsyncClient(base_url=server) as c:
        r = await c.post("/x402/chat", json=body)
    assert r.status_code == 402
    required = json.loads(base64.b64decode(r.headers["PAYMENT-REQUIRED"]))
    assert [a["amount"] for a in required["accepts"]] == ["1200000"]
    pay_ctx.wiring.add_fulfiller("chat_query", FunctionFulfiller(answer))
    before = chain.balance(chain.pay_to)
    paid = await asyncio.to_thread(_pay, server, chain, fresh_payer, "/x402/chat", body)
    assert paid.status_code == 200, paid.text
    assert paid.json()["answer"] == {"answer": "over 3 Spaces"}
    assert chain.balance(chain.pay_to) == before + 1_200_000
    async with pay_ctx.db.session() as s:
        inv = (await s.execute(select(Invoice))).scalar_one()
    assert (inv.kind, inv.amount_units, inv.status) == ("chat_query", 1_200_000, "credited")


# ---------------------------------------------------------------- 2. watcher: exact amount


async def test_watcher_ignores_a_transfer_one_unit_short_or_over(
    pay_ctx: Context, chain: Chain, fresh_payer: Any
) -> None:
    await _link(pay_ctx, ALICE, fresh_payer.address)
    q = await _quote(pay_ctx)
    assert await watch_transfers(pay_ctx) == 0  # the watcher's cursor starts here
    chain.transfer(fresh_payer, chain.pay_to, 199_999)
    chain.transfer(fresh_payer, chain.pay_to, 200_001)
    assert await watch_transfers(pay_ctx) == 0
    async with pay_ctx.db.session() as s:
        inv = (await s.execute(select(Invoice))).scalar_one()
    assert inv.status == "open" and await _count(pay_ctx, TranscriptionPayment) == 0
    exact = chain.transfer(fresh_payer, chain.pay_to, 200_000)
    assert await watch_transfers(pay_ctx) == 1
    async with pay_ctx.db.session() as s:
        inv = (await s.execute(select(Invoice))).scalar_one()
    assert (inv.public_id, inv.status, inv.transaction_hash) == (
        q.invoice_id,
        "credited",
        exact.lower(),
    )


# ---------------------------------------------------------------- 3. another token


async def test_a_transfer_of_another_token_pays_nothing(
    pay_ctx: Context, chain: Chain, fresh_payer: Any, second_token: Any
) -> None:
    await _link(pay_ctx, ALICE, fresh_payer.address)
    q = await _quote(pay_ctx)
    assert await watch_transfers(pay_ctx) == 0
    mint = second_token.functions.mint(fresh_payer.address, 10 * USDC).build_transaction(
        {"from": chain.relayer.address}
    )
    chain.w3.eth.wait_for_transaction_receipt(  # type: ignore[arg-type]
        chain.send(chain.relayer, {"to": mint["to"], "data": mint["data"]})
    )
    tx = second_token.functions.transfer(chain.pay_to, 200_000).build_transaction(
        {"from": fresh_payer.address}
    )
    h = chain.send(fresh_payer, {"to": tx["to"], "data": tx["data"]})
    chain.w3.eth.wait_for_transaction_receipt(h)  # type: ignore[arg-type]
    other = second_token.functions.balanceOf(Web3.to_checksum_address(chain.pay_to)).call()
    assert other >= 200_000  # the other token did arrive at pay_to
    assert await watch_transfers(pay_ctx) == 0
    snap = await snapshot(pay_ctx)
    check = await reader_for_settings(pay_ctx.settings.payments).check_transaction(h)
    assert (check.status, check.transfers) == ("ok", [])
    out = await submit_transaction_hash(pay_ctx, q.invoice_id, h)
    assert isinstance(out, Refused) and out.code == "no_matching_transfer", out
    assert await snapshot(pay_ctx) == snap


# ---------------------------------------------------------------- 4. confirmation recipient


async def _settled_receipt(ctx: Context, q: Quote, payer: str, tx: str) -> int:
    """What a settled x402 claim leaves: the invoice ``paid``, a ``settled`` receipt."""
    return await _claimed(
        ctx, q, "0x" + tx[-64:], "settled", payer=payer.lower(), transaction_hash=tx.lower()
    )


async def test_a_settled_transfer_to_someone_else_is_a_mismatch(
    pay_ctx: Context, chain: Chain, fresh_payer: Any
) -> None:
    reader = reader_for_settings(pay_ctx.settings.payments)
    q = await _quote(pay_ctx)
    elsewhere = chain.transfer(fresh_payer, chain.other.address, 200_000)
    rid = await _settled_receipt(pay_ctx, q, fresh_payer.address, elsewhere)
    out = await finish_receipt(pay_ctx, rid, reader)
    assert isinstance(out, Refused) and out.code == "transfer_mismatch", out
    async with pay_ctx.db.session() as s:
        assert await s.scalar(select(PaymentReceipt.status)) == "mismatch"
    assert await _count(pay_ctx, TranscriptionPayment) == 0
    # the same receipt shape with the transfer to pay_to is credited (the check above is
    # the recipient's, not the set-up's)
    q2 = await _quote(pay_ctx, SPACES[1])
    ours = chain.transfer(fresh_payer, chain.pay_to, 200_000)
    rid2 = await _settled_receipt(pay_ctx, q2, fresh_payer.address, ours)
    assert isinstance(await finish_receipt(pay_ctx, rid2, reader), Paid)
    assert await _count(pay_ctx, TranscriptionPayment) == 1


# ---------------------------------------------------------------- 5. credit over the price


async def test_credit_over_the_price_pays_the_price_and_keeps_the_rest(
    pay_ctx: Context,
) -> None:
    await _link(pay_ctx, ALICE, "0x" + "a1" * 20)
    from core.accounts import user_id_of_wallet

    async with pay_ctx.db.session() as s:
        user_id = await user_id_of_wallet(s, "0x" + "a1" * 20)
        assert user_id is not None
        s.add(Credit(user_id=user_id, amount_units=500_000, reason="refund", reference="t:1"))
    g = await request_transcription(pay_ctx, ALICE, SPACE)
    assert isinstance(g, Granted) and g.space_ids == [SPACE], g
    async with pay_ctx.db.session() as s:
        assert await credit_balance(s, user_id) == 300_000
        spent = await s.execute(select(Credit.amount_units).where(Credit.reason == "spent"))
        assert spent.scalars().all() == [-200_000]
        inv = (await s.execute(select(Invoice))).scalar_one()
        assert (inv.amount_units, inv.credit_units, inv.status) == (200_000, 200_000, "credited")
    # the rest pays most of the next purchase (0.5 unlock: 0.3 credit, 0.2 due)
    u = await request_unlock(pay_ctx, ALICE, SPACE)
    assert isinstance(u, Quote) and str(u.credit_applied) == "0.3" and str(u.amount) == "0.2", u


# ---------------------------------------------------------------- x402 accepted.payTo


async def test_accepted_pay_to_not_ours_is_refused(
    pay_ctx: Context, chain: Chain, fresh_payer: Any
) -> None:
    q = await _quote(pay_ctx)
    payload = client_payload(chain, fresh_payer, _reqs(pay_ctx))
    # the authorization still pays pay_to; only the terms the payer says it accepted differ
    payload["accepted"]["payTo"] = chain.other.address
    before = chain.balance(chain.pay_to), chain.balance(fresh_payer.address)
    snap = await snapshot(pay_ctx)
    out = await pay_invoice(pay_ctx, q.invoice_id, payload)
    assert isinstance(out, Refused), out
    assert out.code == "invalid_exact_evm_payload_recipient_mismatch", out
    assert await snapshot(pay_ctx) == snap
    assert (chain.balance(chain.pay_to), chain.balance(fresh_payer.address)) == before


# ---------------------------------------------------------------- /unlock by a non-owner


async def test_unlock_of_an_existing_space_by_a_non_owner_is_refused(
    pay_ctx: Context,
) -> None:
    alice_wallet, bob_wallet = "0x" + "a2" * 20, "0x" + "b2" * 20
    await _link(pay_ctx, ALICE, alice_wallet)
    await _link(pay_ctx, BOB, bob_wallet)
    from core.accounts import user_id_of_wallet

    async with pay_ctx.db.session() as s:
        alice = await user_id_of_wallet(s, alice_wallet)
        s.add(Credit(user_id=alice, amount_units=200_000, reason="refund", reference="t:2"))
    assert isinstance(await request_transcription(pay_ctx, ALICE, SPACE), Granted)
    snap = await snapshot(pay_ctx)
    for who in (BOB, Caller("discord", "3003")):  # linked, and not even linked
        out = await request_unlock(pay_ctx, who, SPACE)
        assert isinstance(out, Refused) and out.code == "not_owned", out
    pre = await x402_preflight(pay_ctx, "chat_unlock", [SPACE], bob_wallet)
    assert isinstance(pre, Refused) and pre.code == "not_owned", pre
    assert await snapshot(pay_ctx) == snap  # no invoice, nothing else
    assert isinstance(await request_unlock(pay_ctx, ALICE, SPACE), Quote)  # the owner may


# ---------------------------------------------------------------- x402 nonce conflict


async def test_a_nonce_claimed_by_another_submission_is_refused(
    pay_ctx: Context, chain: Chain, fresh_payer: Any
) -> None:
    q1, q2 = await _quote(pay_ctx), await _quote(pay_ctx, SPACES[1])
    payload = client_payload(chain, fresh_payer, _reqs(pay_ctx))
    nonce = payload["payload"]["authorization"]["nonce"].lower()
    p = pay_ctx.settings.payments
    async with pay_ctx.db.session() as s:  # another submission is settling it for q1
        inv1 = (
            await s.execute(select(Invoice).where(Invoice.public_id == q1.invoice_id))
        ).scalar_one()
        inv1.status = "paid"
        s.add(
            PaymentReceipt(
                invoice_id=inv1.id,
                method="x402",
                network=p.network,
                token_address=p.token_address.lower(),
                payer_address=fresh_payer.address.lower(),
                pay_to=p.pay_to.lower(),
                amount_units=200_000,
                authorization_nonce=nonce,
                status="settling",
            )
        )
    before = chain.balance(chain.pay_to)
    snap = await snapshot(pay_ctx)
    out = await pay_invoice(pay_ctx, q2.invoice_id, payload)
    assert isinstance(out, Refused) and out.code == "nonce_used", out
    assert await snapshot(pay_ctx) == snap
    assert chain.balance(chain.pay_to) == before
    async with pay_ctx.db.session() as s:
        st = await s.scalar(select(Invoice.status).where(Invoice.public_id == q2.invoice_id))
        assert st == "open"


# ---------------------------------------------------------------- releasing a claim


async def _claimed(
    ctx: Context,
    q: Quote,
    nonce: str,
    status: str = "settling",
    payer: str = "0x" + "c3" * 20,
    transaction_hash: str | None = None,
) -> int:
    """What a claim leaves: the invoice ``paid``, a receipt ``status`` (before settlement,
    no transaction hash yet)."""
    p = ctx.settings.payments
    async with ctx.db.session() as s:
        inv = (
            await s.execute(select(Invoice).where(Invoice.public_id == q.invoice_id))
        ).scalar_one()
        inv.status = "paid"
        r = PaymentReceipt(
            invoice_id=inv.id,
            method="x402",
            network=p.network,
            token_address=p.token_address.lower(),
            payer_address=payer,
            pay_to=p.pay_to.lower(),
            amount_units=200_000,
            transaction_hash=transaction_hash,
            authorization_nonce=nonce,
            status=status,
        )
        s.add(r)
        await s.flush()
        return r.id


async def _states(ctx: Context) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    async with ctx.db.session() as s:
        invs = (await s.execute(select(Invoice.public_id, Invoice.status))).all()
        rs = (
            await s.execute(select(PaymentReceipt.authorization_nonce, PaymentReceipt.status))
        ).all()
    return sorted((a, b) for a, b in invs), sorted((a or "", b) for a, b in rs)


async def test_release_claim_drops_only_its_own_unsettled_claim(pay_ctx: Context) -> None:
    from core.payments.confirm import release_claim

    q1, q2, q3 = [await _quote(pay_ctx, sid) for sid in SPACES]
    r1 = await _claimed(pay_ctx, q1, "0x" + "01" * 32)
    await _claimed(pay_ctx, q2, "0x" + "02" * 32)
    r3 = await _claimed(pay_ctx, q3, "0x" + "03" * 32, "settled")
    async with pay_ctx.db.session() as s:
        inv1 = await s.scalar(select(Invoice.id).where(Invoice.public_id == q1.invoice_id))
        inv3 = await s.scalar(select(Invoice.id).where(Invoice.public_id == q3.invoice_id))
    assert inv1 is not None and inv3 is not None
    await release_claim(pay_ctx, inv1, r1)  # q2's claim (same state) stays as it was
    # a settled receipt is never dropped, nor its invoice reopened: its money may be on chain
    await release_claim(pay_ctx, inv3, r3)
    invs, rs = await _states(pay_ctx)
    assert invs == sorted(
        [(q1.invoice_id, "open"), (q2.invoice_id, "paid"), (q3.invoice_id, "paid")]
    )
    assert rs == [("0x" + "02" * 32, "settling"), ("0x" + "03" * 32, "settled")]
    # a credited invoice is never reopened, even when its claim is released
    r4 = await _claimed(pay_ctx, q1, "0x" + "04" * 32)
    async with pay_ctx.db.session() as s:
        inv = await s.get(Invoice, inv1)
        assert inv is not None
        inv.status = "credited"
    await release_claim(pay_ctx, inv1, r4)
    invs, rs = await _states(pay_ctx)
    assert (q1.invoice_id, "credited") in invs
    assert rs == [("0x" + "02" * 32, "settling"), ("0x" + "03" * 32, "settled")]


# ---------------------------------------------------------------- recovery of a confirmed receipt


async def test_recovery_credits_a_confirmed_receipt_with_its_stored_answer(
    pay_ctx: Context,
) -> None:
    """A crash between "confirmed" and "credited": recovery credits from the receipt alone
    (payer, hash, the fulfiller's stored answer), without asking the chain."""
    from core.db import User
    from core.payments import FunctionFulfiller, recover_payments
    from core.service.invoicing import create_invoice

    recorded: list[tuple[Any, ...]] = []

    async def answer(ctx: Context, req: Any) -> dict[str, Any]:
        raise AssertionError("recovery never asks again")

    async def record(s: Any, ctx: Context, req: Any, result: Any, uid: int, tx: Any) -> None:
        recorded.append(("record", req.invoice_id, req.payer, result, uid, tx))

    async def owed(s: Any, ctx: Context, req: Any, uid: int) -> None:
        recorded.append(("owed", req.invoice_id, uid))

    async with pay_ctx.db.session() as s:
        chat = await create_invoice(
            s,
            pay_ctx,
            caller=ALICE,
            user_id=None,
            kind="chat_query",
            space_ids=[SPACE],
            amount_units=1_000_000,
            payload={"question": "who spoke?"},
        )
    assert isinstance(chat, Quote)
    tq = await _quote(pay_ctx, SPACES[1])
    payer = "0x" + "d4" * 20
    tx_chat, tx_tq = "0x" + "e5" * 32, "0x" + "f6" * 32
    p = pay_ctx.settings.payments
    async with pay_ctx.db.session() as s:
        ids = {}
        for q, tx, nonce, fulfilment in (
            (chat, tx_chat, "0x" + "07" * 32, {"answer": "Alice and Bob"}),
            (tq, tx_tq, "0x" + "08" * 32, None),
        ):
            inv = (
                await s.execute(select(Invoice).where(Invoice.public_id == q.invoice_id))
            ).scalar_one()
            inv.status = "paid"
            stored: dict[str, Any] = {"payment": {}}
            if fulfilment is not None:
                stored["fulfilment"] = fulfilment
            r = PaymentReceipt(
                invoice_id=inv.id,
                method="x402",
                network=p.network,
                token_address=p.token_address.lower(),
                payer_address=payer,
                pay_to=p.pay_to.lower(),
                amount_units=int(inv.amount_units),
                authorization_nonce=nonce,
                transaction_hash=tx,
                log_index=0,
                status="confirmed",
                payload=json.dumps(stored),
            )
            s.add(r)
            await s.flush()
            ids[q.invoice_id] = (inv.id, r.id)
    pay_ctx.wiring.add_fulfiller("chat_query", FunctionFulfiller(answer, record, owed))
    assert await recover_payments(pay_ctx) == 2
    assert await recover_payments(pay_ctx) == 0  # nothing left to finish
    async with pay_ctx.db.session() as s:
        user = (await s.execute(select(User))).scalar_one()
        assert user.wallet_address == payer
        for q, tx in ((chat, tx_chat), (tq, tx_tq)):
            inv_pk, rid = ids[q.invoice_id]
            inv = await s.get(Invoice, inv_pk)
            r = await s.get(PaymentReceipt, rid)
            assert inv is not None and r is not None
            assert (inv.status, inv.payer_address, inv.transaction_hash, inv.user_id) == (
                "credited",
                payer,
                tx,
                user.id,
            )
            assert r.status == "credited" and r.credited_at is not None
        tp = (await s.execute(select(TranscriptionPayment))).scalar_one()
        assert (tp.user_id, tp.transaction_hash, tp.invoice_id) == (
            user.id,
            tx_tq,
            ids[tq.invoice_id][0],
        )
    assert recorded == [
        ("record", chat.invoice_id, payer, {"answer": "Alice and Bob"}, user.id, tx_chat)
    ]


# ---------------------------------------------------------------- the scheduler's payment jobs


async def test_payment_jobs_run_guarded_with_their_names(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from structlog.testing import capture_logs

    from core.payments import jobs

    calls: list[tuple[str, Any]] = []
    broken = {"now": True}

    def fake(name: str) -> Any:
        async def run(ctx: Any) -> Any:
            calls.append((name, ctx))
            if broken["now"]:
                raise RuntimeError(f"{name} broke")
            return f"{name} done"

        return run

    ctx: Any = SimpleNamespace(
        settings=SimpleNamespace(
            payments=SimpleNamespace(pay_to="0x" + "99" * 20, watch_interval_seconds=7.5)
        )
    )
    monkeypatch.setattr(jobs, "recover_payments", fake("recover"))
    monkeypatch.setattr(jobs, "watch_transfers", fake("watch"))
    monkeypatch.setattr(jobs, "expire_invoices", fake("expire"))
    made = jobs.payment_jobs(ctx)
    assert [(j.id, j.every_seconds, j.at_start) for j in made] == [
        ("payments_recover", 30.0, True),
        ("payments_watch", 7.5, True),
        ("invoices_expire", 60.0, False),
    ]
    assert all(type(j.at_start) is bool for j in made)
    with capture_logs() as logs:
        failed = [await j.run() for j in made]
    assert failed == [None, None, None]  # a failure is logged, never raised
    assert [(e["event"], e["log_level"], e["job"], e["error"]) for e in logs] == [
        ("payment job failed", "error", name, f"RuntimeError: {name} broke")
        for name in ("recover", "watch", "expire")
    ]
    broken["now"] = False
    with capture_logs() as logs:
        assert [await j.run() for j in made] == ["recover done", "watch done", "expire done"]
    assert logs == []
    assert calls == [(name, ctx) for name in ("recover", "watch", "expire")] * 2
    ctx.settings.payments.pay_to = ""
    assert jobs.payment_jobs(ctx) == []  # no pay-to address: no payment jobs


# ---------------------------------------------------------------- what confirmation reads


class _Reader:
    """A chain reader that answers ``check_transaction`` with what the test sets."""

    def __init__(self) -> None:
        self.answer: Any = None
        self.asked: list[str] = []

    async def check_transaction(self, tx_hash: str) -> Any:
        self.asked.append(tx_hash)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


async def test_finish_receipt_follows_what_the_chain_says(pay_ctx: Context, chain: Chain) -> None:
    from structlog.testing import capture_logs

    from core.payments import PaymentPending
    from core.payments.onchain import ChainUnavailable, TransferLog, TxCheck
    from core.payments.outcomes import MESSAGES

    reader: Any = _Reader()
    p = pay_ctx.settings.payments
    payer = "0x" + "b7" * 20
    assert await finish_receipt(pay_ctx, 987_654, reader) == Refused(
        "unknown_invoice", MESSAGES["unknown_invoice"]
    )
    q = await _quote(pay_ctx)
    rid = await _claimed(pay_ctx, q, "0x" + "09" * 32)  # settling: no hash yet
    assert await finish_receipt(pay_ctx, rid, reader) == PaymentPending(q.invoice_id, None)
    tx = "0x" + "9a" * 32
    async with pay_ctx.db.session() as s:
        r = await s.get(PaymentReceipt, rid)
        assert r is not None
        r.status, r.transaction_hash, r.payer_address = "settled", tx, payer
    reader.answer = ChainUnavailable("RPC ConnectionError")
    assert await finish_receipt(pay_ctx, rid, reader) == PaymentPending(
        q.invoice_id, tx, "rpc_unavailable", MESSAGES["confirm_unavailable"]
    )
    for status in ("pending", "unconfirmed", "not_found"):
        reader.answer = TxCheck(status, [])
        assert await finish_receipt(pay_ctx, rid, reader) == PaymentPending(q.invoice_id, tx)
    right = TransferLog(tx, 3, 77, p.token_address.lower(), payer, p.pay_to.lower(), 200_000)
    wrong = [
        TransferLog(tx, 1, 77, "0x" + "01" * 20, payer, p.pay_to.lower(), 200_000),
        TransferLog(
            tx, 1, 77, p.token_address.lower(), "0x" + "02" * 20, p.pay_to.lower(), 200_000
        ),
        TransferLog(tx, 1, 77, p.token_address.lower(), payer, "0x" + "03" * 20, 200_000),
        TransferLog(tx, 1, 77, p.token_address.lower(), payer, p.pay_to.lower(), 199_999),
    ]
    # a transfer that is not ours is never credited, even with the chain saying "ok" ...
    reader.answer = TxCheck("unconfirmed", [right])
    assert isinstance(await finish_receipt(pay_ctx, rid, reader), PaymentPending)
    async with pay_ctx.db.session() as s:
        assert await s.scalar(select(PaymentReceipt.status)) == "settled"
    # ... and the first matching one is credited, with its log index and block
    reader.answer = TxCheck("ok", [*wrong, right], 77, 1)
    paid = await finish_receipt(pay_ctx, rid, reader)
    assert paid == Paid(q.invoice_id, "transcription", tx, payer, [SPACE], 0, already=False)
    async with pay_ctx.db.session() as s:
        r = await s.get(PaymentReceipt, rid)
        assert r is not None and (r.status, r.log_index, r.block_number) == ("credited", 3, 77)
    assert set(reader.asked) == {tx}
    reader.answer = ChainUnavailable("RPC ConnectionError")  # credited: the chain is not asked
    again = await finish_receipt(pay_ctx, rid, reader)
    assert again == Paid(q.invoice_id, "transcription", tx, payer, already=True)
    # wrong transfers only, or a reverted transaction: kept for the operator, logged
    for status, kept in (("ok", "mismatch"), ("reverted", "reverted")):
        q2 = await _quote(pay_ctx, SPACES[1] if status == "ok" else SPACES[2])
        rid2 = await _claimed(pay_ctx, q2, "0x" + ("0a" if status == "ok" else "0b") * 32)
        async with pay_ctx.db.session() as s:
            r = await s.get(PaymentReceipt, rid2)
            assert r is not None
            r.status, r.transaction_hash, r.payer_address = "settled", tx, payer
        # a reverted transaction pays nothing, whatever logs it carries
        reader.answer = TxCheck(status, wrong if status == "ok" else [right])
        with capture_logs() as logs:
            out = await finish_receipt(pay_ctx, rid2, reader)
        assert out == Refused(
            "transfer_mismatch", MESSAGES["transfer_mismatch"], invoice_id=q2.invoice_id
        )
        assert [(e["event"], e["log_level"], e["invoice"], e["status"]) for e in logs] == [
            ("settled payment not confirmed", "error", q2.invoice_id, status)
        ]
        async with pay_ctx.db.session() as s:
            r = await s.get(PaymentReceipt, rid2)
            inv = await s.get(Invoice, r.invoice_id if r else 0)
            assert r is not None and inv is not None and (r.status, inv.status) == (kept, "paid")
