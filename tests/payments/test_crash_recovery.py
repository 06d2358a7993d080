"""One payment grants once: a process killed after settlement is finished on restart.

(50 concurrent submissions and replays: ``tests/drills/test_concurrent_payments.py``.)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from structlog.testing import capture_logs

from core.context import Context
from core.db import Invoice, PaymentReceipt, ProcessingJob, TranscriptionPayment
from core.payments import Paid, pay_invoice, recover_payments
from core.payments.gateway import SettleResult, gateway_for
from tests.payments.conftest import client_payload
from tests.payments.crash_payer import pay_and_kill
from tests.payments.test_x402_pay import _quote, _reqs
from tests.stand_ins.chain import Chain

ROOT = Path(__file__).resolve().parents[2]


async def _counts(ctx: Context) -> tuple[int, int, str]:
    async with ctx.db.session() as s:
        grants = await s.scalar(select(func.count()).select_from(TranscriptionPayment))
        jobs = await s.scalar(select(func.count()).select_from(ProcessingJob))
        status = (await s.execute(select(Invoice.status))).scalar_one()
    return int(grants or 0), int(jobs or 0), status


@pytest.mark.parametrize("stage", ["settle", "confirm"])
async def test_killed_after_settlement_is_credited_once_on_restart(
    pay_ctx: Context,
    chain: Chain,
    fresh_payer,
    stage: str,  # type: ignore[no-untyped-def]
) -> None:
    q = await _quote(pay_ctx)
    payload = client_payload(chain, fresh_payer, _reqs(pay_ctx))
    before = chain.balance(chain.pay_to)
    await pay_and_kill(pay_ctx, chain, q.invoice_id, payload, stage)
    # money moved, nothing granted yet
    assert chain.balance(chain.pay_to) == before + 200_000
    assert (await _counts(pay_ctx))[:2] == (0, 0)
    # the restarted process finishes it, exactly once, however often recovery runs
    assert await recover_payments(pay_ctx) == 1
    assert await recover_payments(pay_ctx) == 0
    assert await _counts(pay_ctx) == (1, 1, "credited")
    again = await pay_invoice(pay_ctx, q.invoice_id, payload)
    assert isinstance(again, Paid) and again.already
    assert chain.balance(chain.pay_to) == before + 200_000


@pytest.mark.parametrize(
    ("lost", "code"),
    [
        (b"eth_sendRawTransaction", "settlement_unknown"),  # the broadcast's answer
        (b"eth_getTransactionReceipt", "rpc_unavailable"),  # the wait for its receipt
    ],
)
async def test_node_gone_during_settlement_is_held_then_credited_once(
    pay_ctx: Context,
    chain: Chain,
    fresh_payer,  # type: ignore[no-untyped-def]
    lost: bytes,
    code: str,
) -> None:
    """The node takes the settlement and goes away before answering: the claim is kept (not
    released as "failed"), the payer is told it is pending, and recovery credits it once."""
    from core.payments import PaymentPending
    from tests.stand_ins.outage import proxy

    q = await _quote(pay_ctx)
    payload = client_payload(chain, fresh_payer, _reqs(pay_ctx))
    before = chain.balance(chain.pay_to)
    with proxy(chain.anvil.rpc_url) as node:
        p = pay_ctx.settings.payments.model_copy(update={"rpc_url": node.url})
        ctx = Context(
            pay_ctx.settings.model_copy(update={"payments": p}), pay_ctx.secrets, pay_ctx.db
        )
        node.cut_after(lost)
        with capture_logs() as logs:
            out = await pay_invoice(ctx, q.invoice_id, payload)
        assert isinstance(out, PaymentPending) and out.code == code, out
        # what the operator reads: which of the two, for which invoice, with the hash or why
        said = [e for e in logs if str(e["event"]).startswith("x402 settle")]
        assert [(e["event"], e["log_level"], e["invoice"]) for e in said] == [
            (
                "x402 settlement unconfirmed"
                if code == "rpc_unavailable"
                else "x402 settlement outcome unknown",
                "warning",
                q.invoice_id,
            )
        ]
        if code == "rpc_unavailable":
            assert len(said[0]["tx"]) == 66 and said[0]["tx"].startswith("0x"), said
        else:
            assert said[0]["error"], said
        assert "nothing was charged" not in out.message
        assert chain.balance(chain.pay_to) == before + 200_000  # the node did take it
        assert await recover_payments(ctx) == 0  # still down: held
        assert await _counts(pay_ctx) == (0, 0, "paid")
        node.up()
        assert await recover_payments(ctx) == 1
        assert await recover_payments(ctx) == 0
    assert await _counts(pay_ctx) == (1, 1, "credited")
    assert chain.balance(chain.pay_to) == before + 200_000


class _Died(BaseException):
    """The process dying at this point: no ``except Exception`` below it runs, and what was
    not committed is lost (the subprocess tests above kill a real one; these run in-process)."""


class _DiesInSettle:
    """A facilitator whose process dies inside settle, after the transfer was broadcast
    (``sent``) or before anything reached the chain."""

    def __init__(self, real: Any, *, sent: bool) -> None:
        self.real, self.sent = real, sent
        self.result: SettleResult | None = None

    def requirements(self, amount_units: int) -> Any:
        return self.real.requirements(amount_units)

    async def verify(self, payload: Any, reqs: Any) -> Any:
        return await self.real.verify(payload, reqs)

    async def settle(self, payload: Any, reqs: Any) -> SettleResult:
        if self.sent:
            self.result = await self.real.settle(payload, reqs)
        raise _Died


async def _receipts(ctx: Context) -> list[tuple[str, str | None]]:
    async with ctx.db.session() as s:
        rows = await s.execute(select(PaymentReceipt.status, PaymentReceipt.transaction_hash))
    return [(st, tx) for st, tx in rows.all()]


async def _die_in_settle(ctx: Context, chain: Chain, payer: Any, *, sent: bool) -> Any:
    q = await _quote(ctx)
    payload = client_payload(chain, payer, _reqs(ctx))
    gw = _DiesInSettle(gateway_for(ctx.settings.payments, ctx.secrets), sent=sent)
    with pytest.raises(_Died):
        await pay_invoice(ctx, q.invoice_id, payload, gateway=gw)
    # the claim was committed before settling; the transaction's hash never was
    assert await _receipts(ctx) == [("settling", None)]
    assert await _counts(ctx) == (0, 0, "paid")
    return q, payload, gw


async def test_settled_but_never_recorded_is_found_by_its_authorization(
    pay_ctx: Context,
    chain: Chain,
    fresh_payer: Any,
) -> None:
    """Died after broadcasting: recovery finds the transaction by the token's AuthorizationUsed
    log for the stored nonce, records its hash and credits once."""
    before = chain.balance(chain.pay_to)
    q, payload, gw = await _die_in_settle(pay_ctx, chain, fresh_payer, sent=True)
    assert gw.result is not None and gw.result.ok and gw.result.transaction
    assert chain.balance(chain.pay_to) == before + 200_000
    assert await recover_payments(pay_ctx) == 1
    assert await _receipts(pay_ctx) == [("credited", gw.result.transaction)]
    assert await _counts(pay_ctx) == (1, 1, "credited")
    assert await recover_payments(pay_ctx) == 0
    again = await pay_invoice(pay_ctx, q.invoice_id, payload)
    assert isinstance(again, Paid) and again.already
    assert again.transaction_hash == gw.result.transaction
    assert chain.balance(chain.pay_to) == before + 200_000


async def test_never_settled_is_held_until_its_authorization_expires_then_released(
    pay_ctx: Context,
    chain: Chain,
    fresh_payer: Any,
) -> None:
    """Died before anything reached the chain: while the authorization could still be used
    the claim is held (the payer is not charged twice); once its validBefore has passed the
    claim is dropped and the invoice can be paid again."""
    before = chain.balance(chain.pay_to)
    q, payload, _ = await _die_in_settle(pay_ctx, chain, fresh_payer, sent=False)
    assert await recover_payments(pay_ctx) == 0
    assert await _receipts(pay_ctx) == [("settling", None)]  # still valid: held
    assert await _counts(pay_ctx) == (0, 0, "paid")

    # time passes beyond the stored authorization's validBefore (one second ago)
    async with pay_ctx.db.session() as s:
        stored = json.loads((await s.execute(select(PaymentReceipt.payload))).scalar_one())
        auth = stored["payment"]["payload"]["authorization"]
        auth["validBefore"] = str(int(time.time()) - 1)
        await s.execute(update(PaymentReceipt).values(payload=json.dumps(stored)))
    assert await recover_payments(pay_ctx) == 0
    assert await _receipts(pay_ctx) == []  # the claim dropped: nothing was settled
    assert await _counts(pay_ctx) == (0, 0, "open")
    assert chain.balance(chain.pay_to) == before

    paid = await pay_invoice(pay_ctx, q.invoice_id, payload)  # nothing was lost: pay again
    assert isinstance(paid, Paid) and not paid.already
    assert await _counts(pay_ctx) == (1, 1, "credited")
    assert chain.balance(chain.pay_to) == before + 200_000


async def test_another_wallets_use_of_the_same_nonce_is_not_taken_for_this_payment(
    pay_ctx: Context,
    chain: Chain,
    fresh_payer: Any,
) -> None:
    """EIP-3009 nonces are the authorizer's own: a second wallet may sign the same nonce. A
    claim that died before settling is not "found" by the first wallet's settled transfer."""
    from tests.payments.conftest import signed_payload

    nonce = "0x" + "ab" * 32
    other = chain.new_funded_account()
    q1 = await _quote(pay_ctx)
    first = signed_payload(chain, other, _reqs(pay_ctx), nonce=nonce)
    assert isinstance(await pay_invoice(pay_ctx, q1.invoice_id, first), Paid)

    q2 = await _quote(pay_ctx, space="1OwGWwnoLRpGQ")
    payload = signed_payload(chain, fresh_payer, _reqs(pay_ctx), nonce=nonce)
    gw = _DiesInSettle(gateway_for(pay_ctx.settings.payments, pay_ctx.secrets), sent=False)
    with pytest.raises(_Died):
        await pay_invoice(pay_ctx, q2.invoice_id, payload, gateway=gw)
    assert await recover_payments(pay_ctx) == 0
    async with pay_ctx.db.session() as s:
        rows = await s.execute(
            select(PaymentReceipt.payer_address, PaymentReceipt.status).order_by(PaymentReceipt.id)
        )
        assert rows.all() == [
            (other.address.lower(), "credited"),
            (fresh_payer.address.lower(), "settling"),  # held: its authorization is unused
        ]
