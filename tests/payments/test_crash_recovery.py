"""One payment grants once: a process killed after settlement is finished on restart.

(50 concurrent submissions and replays: ``tests/drills/test_concurrent_payments.py``.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.context import Context
from core.db import Invoice, ProcessingJob, TranscriptionPayment
from core.payments import Paid, pay_invoice, recover_payments
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
        out = await pay_invoice(ctx, q.invoice_id, payload)
        assert isinstance(out, PaymentPending) and out.code == code, out
        assert "nothing was charged" not in out.message
        assert chain.balance(chain.pay_to) == before + 200_000  # the node did take it
        assert await recover_payments(ctx) == 0  # still down: held
        assert await _counts(pay_ctx) == (0, 0, "paid")
        node.up()
        assert await recover_payments(ctx) == 1
        assert await recover_payments(ctx) == 0
    assert await _counts(pay_ctx) == (1, 1, "credited")
    assert chain.balance(chain.pay_to) == before + 200_000
