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
from tests.snapshot import snapshot
from tests.stand_ins.chain import Chain

SPACE = "1RDxlAoOeQRKL"
ALICE = Caller("telegram", "1001", "alice", chat_id="-500")


async def _quote(
    ctx: Context,
    space: str = SPACE,
    caller: Caller | None = ALICE,
    payload: dict[str, Any] | None = None,
) -> Quote:
    """A transcription invoice at 0.20 USDC for ``caller``."""
    async with ctx.db.session() as s:
        q = await create_invoice(
            s,
            ctx,
            caller=caller,
            user_id=None,
            kind="transcription",
            space_ids=[space],
            amount_units=to_units("0.2"),
            payload=payload,
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
    assert isinstance(out, PaymentRefused) and "amount" in out.message, out


async def _nothing_granted(ctx: Context) -> None:
    async with ctx.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(TranscriptionPayment)) == 0
        assert await s.scalar(select(func.count()).select_from(ProcessingJob)) == 0
        assert await s.scalar(select(func.count()).select_from(User)) == 0
        statuses = (await s.execute(select(Invoice.status))).scalars().all()
        assert all(st in ("open", "expired") for st in statuses)


BAD = {
    "wrong_recipient": ({"to": "other"}, "recipient"),
    "signed_for_other_chain": ({"chain_id": 1}, "signature"),
    "signed_for_other_token": ({"token": "0x" + "11" * 20}, "signature"),
    "expired": ({"valid_before": "past"}, "expired"),
    "not_yet_valid": ({"valid_after": "future"}, "not valid yet"),
    "forged_signature": ({"signer": "other"}, "signature"),
    "wrong_value_signed": ({"value": 1}, "amount"),
}


async def test_bad_authorizations_refused(
    pay_ctx: Context, chain: Chain, fresh_payer, sign_auth
) -> None:  # type: ignore[no-untyped-def]
    import time

    now = int(time.time())
    before = chain.balance(chain.pay_to)
    for name, (kw, words) in BAD.items():
        q = await _quote(pay_ctx)
        args = dict(kw)
        if args.get("to") == "other" or args.get("signer") == "other":
            args = {k: (chain.other.address if k == "to" else chain.other) for k in args}
        if args.get("valid_before") == "past":
            args["valid_before"] = now - 30
        if args.get("valid_after") == "future":
            args["valid_after"] = now + 3600
        payload = sign_auth(fresh_payer, _reqs(pay_ctx), **args)
        snap = await snapshot(pay_ctx)
        out = await pay_invoice(pay_ctx, q.invoice_id, payload)
        assert await snapshot(pay_ctx) == snap, name  # nothing changed
        assert isinstance(out, PaymentRefused), (name, out)
        assert words in out.message, (name, out)
        assert not out.retry_later
    await _nothing_granted(pay_ctx)
    assert chain.balance(chain.pay_to) == before


async def test_wrong_asset_in_requirements_refused(
    pay_ctx: Context, chain: Chain, fresh_payer, sign_auth
) -> None:  # type: ignore[no-untyped-def]
    q = await _quote(pay_ctx)
    reqs = _reqs(pay_ctx).model_copy(update={"asset": chain.other.address})
    out = await pay_invoice(
        pay_ctx, q.invoice_id, sign_auth(fresh_payer, reqs, token=chain.other.address)
    )
    assert isinstance(out, PaymentRefused) and "wrong token" in out.message, out
    await _nothing_granted(pay_ctx)


async def test_reused_nonce_refused(pay_ctx: Context, chain: Chain, fresh_payer) -> None:  # type: ignore[no-untyped-def]
    q1 = await _quote(pay_ctx)
    q2 = await _quote(pay_ctx, "1YqJDqWqbNVGV")
    payload = client_payload(chain, fresh_payer, _reqs(pay_ctx))
    assert isinstance(await pay_invoice(pay_ctx, q1.invoice_id, payload), Paid)
    out = await pay_invoice(pay_ctx, q2.invoice_id, payload)
    assert isinstance(out, PaymentRefused) and "already used" in out.message, out
    async with pay_ctx.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(TranscriptionPayment)) == 1
        inv2 = (
            await s.execute(select(Invoice).where(Invoice.public_id == q2.invoice_id))
        ).scalar_one()
        assert inv2.status == "open"


async def test_unknown_expired_and_malformed(pay_ctx: Context, chain: Chain, fresh_payer) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    from core.db import utcnow

    payload = client_payload(chain, fresh_payer, _reqs(pay_ctx))
    out = await pay_invoice(pay_ctx, "NoSuchInvoiceAtAll12345", payload)
    assert isinstance(out, PaymentRefused) and out.code == "unknown_invoice"
    out = await pay_invoice(pay_ctx, "../../etc/passwd", payload)
    assert isinstance(out, PaymentRefused) and out.code == "unknown_invoice"
    q = await _quote(pay_ctx)
    snap = await snapshot(pay_ctx)
    for bad in ({"x402Version": 2}, {"foo": 1}, "garbage", None, {**payload, "x402Version": 1}):
        out = await pay_invoice(pay_ctx, q.invoice_id, bad)
        assert isinstance(out, PaymentRefused) and out.code == "invalid_payload", bad
    assert await snapshot(pay_ctx) == snap
    async with pay_ctx.db.session() as s:
        await s.execute(update(Invoice).values(expires_at=utcnow()))
    out = await pay_invoice(pay_ctx, q.invoice_id, payload)
    assert isinstance(out, PaymentRefused) and out.code == "invoice_expired"
    await _nothing_granted(pay_ctx)


async def test_rpc_down_nothing_granted(pay_ctx: Context, chain: Chain, fresh_payer) -> None:  # type: ignore[no-untyped-def]
    from tests.stand_ins.chain import free_port

    q = await _quote(pay_ctx)
    payload = client_payload(chain, fresh_payer, _reqs(pay_ctx))
    dead = pay_ctx.settings.payments.model_copy(
        update={"rpc_url": f"http://127.0.0.1:{free_port()}"}
    )
    down = Context(
        pay_ctx.settings.model_copy(update={"payments": dead}), pay_ctx.secrets, pay_ctx.db
    )
    snap = await snapshot(pay_ctx)
    out = await pay_invoice(down, q.invoice_id, payload)
    assert await snapshot(pay_ctx) == snap
    assert isinstance(out, PaymentRefused) and out.retry_later and out.code == "rpc_unavailable", (
        out
    )
    await _nothing_granted(pay_ctx)
    # the chain is back: the same signed payment goes through
    assert isinstance(await pay_invoice(pay_ctx, q.invoice_id, payload), Paid)


async def test_payload_for_other_network_refused(
    pay_ctx: Context, chain: Chain, fresh_payer
) -> None:  # type: ignore[no-untyped-def]
    q = await _quote(pay_ctx)
    payload = client_payload(chain, fresh_payer, _reqs(pay_ctx))
    payload["accepted"]["network"] = "eip155:8453"
    out = await pay_invoice(pay_ctx, q.invoice_id, payload)
    assert isinstance(out, PaymentRefused) and "another chain" in out.message, out
    await _nothing_granted(pay_ctx)
