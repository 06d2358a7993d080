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
