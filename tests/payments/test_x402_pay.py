"""x402 exact payments through the official package, on anvil, both engines."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from core.context import Context
from core.db import Invoice, PaymentReceipt, ProcessingJob, Space, TranscriptionPayment, User
from core.money import to_units
from core.payments import Paid, PaymentRefused, create_invoice, pay_invoice
from core.payments.gateway import gateway_for
from core.results import Caller, Quote
from tests.payments.conftest import client_payload
from tests.stand_ins.chain import Chain

SPACE = "1RDxlAoOeQRKL"
ALICE = Caller("telegram", "1001", "alice", chat_id="-500")


async def _quote(ctx: Context, space: str = SPACE, caller: Caller | None = ALICE) -> Quote:
    async with ctx.db.session() as s:
        q = await create_invoice(
            s,
            ctx,
            caller=caller,
            user_id=None,
            kind="transcription",
            space_ids=[space],
            amount_units=to_units("0.2"),
            payload=None,
        )
    assert isinstance(q, Quote)
    return q


def _reqs(ctx: Context, units: int = 200_000) -> Any:
    return gateway_for(ctx.settings.payments, ctx.secrets).requirements(units)


async def test_official_client_payload_credits_once(
    pay_ctx: Context, chain: Chain, fresh_payer
) -> None:  # type: ignore[no-untyped-def]
    q = await _quote(pay_ctx)
    assert q.pay_url.startswith("http://127.0.0.1:8080/pay/")
    assert q.direct is not None and q.direct.eip681_uri.startswith("ethereum:")
    before = chain.balance(chain.pay_to)
    payload = client_payload(chain, fresh_payer, _reqs(pay_ctx))
    out = await pay_invoice(pay_ctx, q.invoice_id, payload)
    assert isinstance(out, Paid), out
    assert out.granted == [SPACE] and out.transaction_hash
    assert chain.balance(chain.pay_to) == before + 200_000
    again = await pay_invoice(pay_ctx, q.invoice_id, payload)
    assert isinstance(again, Paid) and again.already
    async with pay_ctx.db.session() as s:
        tp = (await s.execute(select(TranscriptionPayment))).scalar_one()
        assert tp.amount_usdc == "0.2" and tp.payment_verified and tp.transaction_hash
        user = await s.get(User, tp.user_id)
        assert user is not None and user.wallet_address == fresh_payer.address.lower()
        space = (await s.execute(select(Space))).scalar_one()
        assert space.transcription_count == 1 and space.title == f"X Space {SPACE}"
        assert await s.scalar(select(func.count()).select_from(ProcessingJob)) == 1
        inv = (await s.execute(select(Invoice))).scalar_one()
        assert inv.status == "credited"
        assert (await s.execute(select(PaymentReceipt))).scalar_one().status == "credited"
    assert chain.balance(chain.pay_to) == before + 200_000


async def test_wrong_amount_refused_nothing_changes(
    pay_ctx: Context, chain: Chain, fresh_payer
) -> None:  # type: ignore[no-untyped-def]
    q = await _quote(pay_ctx)
    payload = client_payload(chain, fresh_payer, _reqs(pay_ctx, 100_000))
    out = await pay_invoice(pay_ctx, q.invoice_id, payload)
    assert isinstance(out, PaymentRefused), out
    print(out)
