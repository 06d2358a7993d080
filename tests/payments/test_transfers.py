"""Direct USDC transfers on anvil: the watcher and submitted hashes, credited once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from core.accounts import get_or_create_account, get_or_create_user, link_account
from core.context import Context
from core.db import Invoice, PaymentReceipt, TranscriptionPayment
from core.payments import Paid, PaymentPending, PaymentRefused
from core.payments.transfers import submit_transaction_hash, watch_transfers
from core.results import Caller, Quote
from tests.payments.test_x402_pay import ALICE, _quote
from tests.snapshot import snapshot
from tests.stand_ins.chain import Chain


async def _link(ctx: Context, caller: Caller, wallet: str) -> None:
    async with ctx.db.session() as s:
        acc = await get_or_create_account(s, caller)
        user = await get_or_create_user(s, wallet)
        await link_account(s, acc.id, user.id)


async def _grants(ctx: Context) -> int:
    async with ctx.db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(TranscriptionPayment)) or 0)


async def test_watcher_credits_a_linked_transfer_once(
    pay_ctx: Context, chain: Chain, fresh_payer
) -> None:  # type: ignore[no-untyped-def]
    await _link(pay_ctx, ALICE, fresh_payer.address)
    q = await _quote(pay_ctx)
    assert q.direct is not None and q.direct.amount_units == 200_000
    assert q.direct.eip681_uri == (
        f"ethereum:{chain.token_address}@31337/transfer?address={chain.pay_to}&uint256=200000"
    )
    h = chain.transfer(fresh_payer, chain.pay_to, 200_000)
    assert await watch_transfers(pay_ctx) == 1
    assert await watch_transfers(pay_ctx) == 0
    assert await _grants(pay_ctx) == 1
    out = await submit_transaction_hash(pay_ctx, q.invoice_id, h)
    assert isinstance(out, PaymentRefused) and out.code == "already_paid"
    async with pay_ctx.db.session() as s:
        inv = (await s.execute(select(Invoice))).scalar_one()
        assert inv.status == "credited" and inv.transaction_hash == h.lower()


async def test_submitted_hash_checks(pay_ctx: Context, chain: Chain, fresh_payer) -> None:  # type: ignore[no-untyped-def]
    await _link(pay_ctx, ALICE, fresh_payer.address)
    q: Quote = await _quote(pay_ctx)
    snap = await snapshot(pay_ctx)
    # someone else's transfer (a wallet not linked to Alice)
    theirs = chain.transfer(chain.other, chain.pay_to, 200_000)
    out = await submit_transaction_hash(pay_ctx, q.invoice_id, theirs)
    assert isinstance(out, PaymentRefused) and out.code == "not_your_transfer", out
    # wrong amount, wrong recipient
    wrong = chain.transfer(fresh_payer, chain.pay_to, 199_999)
    out = await submit_transaction_hash(pay_ctx, q.invoice_id, wrong)
    assert isinstance(out, PaymentRefused) and out.code == "wrong_amount", out
    elsewhere = chain.transfer(fresh_payer, chain.other.address, 200_000)
    out = await submit_transaction_hash(pay_ctx, q.invoice_id, elsewhere)
    assert isinstance(out, PaymentRefused) and out.code == "no_matching_transfer", out
    # reverted: more than the balance, mined with a fixed gas limit
    tx = chain.token.functions.transfer(chain.pay_to, 10**15).build_transaction(
        {"from": fresh_payer.address, "gas": 100_000}
    )
    bad = chain.send(fresh_payer, {"to": tx["to"], "data": tx["data"], "gas": 100_000})
    chain.w3.eth.wait_for_transaction_receipt(bad)  # type: ignore[arg-type]
    out = await submit_transaction_hash(pay_ctx, q.invoice_id, bad)
    assert isinstance(out, PaymentRefused) and out.code == "tx_reverted", out
    for junk, code in (("0x1234", "invalid_tx_hash"), ("0x" + "ab" * 32, "tx_not_found")):
        out = await submit_transaction_hash(pay_ctx, q.invoice_id, junk)
        assert isinstance(out, PaymentRefused) and out.code == code, out
    out = await submit_transaction_hash(pay_ctx, "NoSuchInvoiceAtAll12345", wrong)
    assert isinstance(out, PaymentRefused) and out.code == "unknown_invoice"
    assert await _grants(pay_ctx) == 0
    assert await snapshot(pay_ctx) == snap  # every refusal changed nothing
    # the right one, then a replay of it on another invoice
    good = chain.transfer(fresh_payer, chain.pay_to, 200_000)
    out = await submit_transaction_hash(pay_ctx, q.invoice_id, good)
    assert isinstance(out, Paid), out
    q2 = await _quote(pay_ctx, "1YqJDqWqbNVGV")
    out = await submit_transaction_hash(pay_ctx, q2.invoice_id, good)
    assert isinstance(out, PaymentRefused) and out.code == "tx_already_used", out
    assert await _grants(pay_ctx) == 1
    async with pay_ctx.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(PaymentReceipt)) == 1


async def test_unconfirmed_transfer_waits(pay_ctx: Context, chain: Chain, fresh_payer) -> None:  # type: ignore[no-untyped-def]
    await _link(pay_ctx, ALICE, fresh_payer.address)
    pay_ctx.settings.payments.confirmations = 3
    q = await _quote(pay_ctx)
    h = chain.transfer(fresh_payer, chain.pay_to, 200_000)
    out: Any = await submit_transaction_hash(pay_ctx, q.invoice_id, h)
    assert isinstance(out, PaymentPending) and out.code == "unconfirmed"
    assert await watch_transfers(pay_ctx) == 0
    assert await _grants(pay_ctx) == 0
    chain.anvil.mine(2)
    assert await watch_transfers(pay_ctx) == 1
    assert await _grants(pay_ctx) == 1


async def test_scheduler_role_registers_payment_jobs(
    pay_ctx: Context, chain: Chain, fresh_payer
) -> None:  # type: ignore[no-untyped-def]
    from bot.runtime import Scheduler, _scheduler_role
    from core.payments.jobs import payment_jobs

    sched = Scheduler()
    _, lines = _scheduler_role(pay_ctx, sched)
    ids = {j.id for j in sched.scheduler.get_jobs()}
    assert {"payments_recover", "payments_watch", "invoices_expire"} <= ids
    assert "payments_watch" in lines[0].why
    # the jobs themselves run and do the work: a linked transfer is credited by the watch job
    await _link(pay_ctx, ALICE, fresh_payer.address)
    await _quote(pay_ctx)
    chain.transfer(fresh_payer, chain.pay_to, 200_000)
    jobs = {j.id: j for j in payment_jobs(pay_ctx)}
    assert await jobs["payments_recover"].run() == 0
    assert await jobs["payments_watch"].run() == 1
    assert await _grants(pay_ctx) == 1
