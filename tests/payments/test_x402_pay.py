"""x402 exact payments through the official package, on anvil, both engines."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select

from core.context import Context
from core.db import Invoice, PaymentReceipt, ProcessingJob, Space, TranscriptionPayment, User
from core.money import to_units
from core.payments import Paid, pay_invoice
from core.payments.gateway import gateway_for
from core.results import Caller, Quote, Refused
from core.service.invoicing import create_invoice
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
    assert isinstance(out, Refused) and "amount" in out.message, out


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
        assert isinstance(out, Refused), (name, out)
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
    assert isinstance(out, Refused) and "wrong token" in out.message, out
    await _nothing_granted(pay_ctx)


async def test_reused_nonce_refused(pay_ctx: Context, chain: Chain, fresh_payer) -> None:  # type: ignore[no-untyped-def]
    q1 = await _quote(pay_ctx)
    q2 = await _quote(pay_ctx, "1YqJDqWqbNVGV")
    payload = client_payload(chain, fresh_payer, _reqs(pay_ctx))
    assert isinstance(await pay_invoice(pay_ctx, q1.invoice_id, payload), Paid)
    out = await pay_invoice(pay_ctx, q2.invoice_id, payload)
    assert isinstance(out, Refused) and "already used" in out.message, out
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
    assert isinstance(out, Refused) and out.code == "unknown_invoice"
    out = await pay_invoice(pay_ctx, "../../etc/passwd", payload)
    assert isinstance(out, Refused) and out.code == "unknown_invoice"
    q = await _quote(pay_ctx)
    snap = await snapshot(pay_ctx)
    for bad in ({"x402Version": 2}, {"foo": 1}, "garbage", None, {**payload, "x402Version": 1}):
        out = await pay_invoice(pay_ctx, q.invoice_id, bad)
        assert isinstance(out, Refused) and out.code == "invalid_payload", bad
    assert await snapshot(pay_ctx) == snap
    async with pay_ctx.db.session() as s:
        await s.execute(update(Invoice).values(expires_at=utcnow()))
    out = await pay_invoice(pay_ctx, q.invoice_id, payload)
    assert isinstance(out, Refused) and out.code == "invoice_expired"
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
    assert isinstance(out, Refused) and out.retry_later and out.code == "rpc_unavailable", out
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
    assert isinstance(out, Refused) and "another chain" in out.message, out
    await _nothing_granted(pay_ctx)


# ---------------------------------------------------------------- the demo wallet (test mode)


def _demo_typed() -> dict[str, Any]:
    """An authorization as the pay page hands it to the demo wallet: uint256 as strings."""
    from core.payments import eip3009
    from core.payments.demo import DEMO_ADDRESS

    message = {
        "from": DEMO_ADDRESS,
        "to": "0x" + "22" * 20,
        "value": "200000",
        "validAfter": "0",
        "validBefore": "1900000000",
        "nonce": "0x" + "ab" * 32,
    }
    return eip3009.typed_data("USD Coin", "2", 31337, "0x" + "33" * 20, message)


def test_demo_wallet_signs_only_in_test_mode() -> None:
    from eth_account import Account as EthAccount
    from eth_account.messages import encode_defunct, encode_typed_data

    from core.config import PaymentSettings
    from core.payments.demo import (
        DEMO_ADDRESS,
        LIVE_REFUSAL,
        demo_refusal,
        sign_demo,
        sign_demo_message,
    )
    from core.testkeys import DEMO_BUYER_KEY

    test = PaymentSettings(mode="test")
    live = test.model_copy(update={"mode": "live"})
    assert demo_refusal(test) is None
    assert demo_refusal(live) == Refused("test_mode_only", LIVE_REFUSAL)
    assert LIVE_REFUSAL == (
        "The demo wallet exists only in test mode; this server takes real USDC: "
        "pay with your own wallet."
    )

    typed = _demo_typed()
    sig = sign_demo(typed, test)
    assert typed["message"]["value"] == "200000"  # the caller's dict is left as it was
    # exactly what the demo key signs for the same authorization with numbers (deterministic)
    numbers = {
        **typed,
        "message": {
            **typed["message"],
            "value": 200_000,
            "validAfter": 0,
            "validBefore": 1_900_000_000,
        },
    }
    expected = EthAccount.sign_message(encode_typed_data(full_message=numbers), DEMO_BUYER_KEY)
    assert sig == "0x" + bytes(expected.signature).hex() and len(sig) == 132
    assert (
        EthAccount.recover_message(encode_typed_data(full_message=numbers), signature=sig)
        == DEMO_ADDRESS
    )

    text = "Sign in to spacescribe\nnonce: 42"
    msig = sign_demo_message(text, test)
    expected_msg = EthAccount.sign_message(encode_defunct(text=text), DEMO_BUYER_KEY)
    assert msig == "0x" + bytes(expected_msg.signature).hex() and len(msig) == 132
    assert EthAccount.recover_message(encode_defunct(text=text), signature=msig) == DEMO_ADDRESS

    for call in (lambda: sign_demo(typed, live), lambda: sign_demo_message(text, live)):
        try:
            call()
        except PermissionError as exc:
            assert str(exc) == LIVE_REFUSAL
        else:
            raise AssertionError("live mode must refuse the demo wallet")


# ---------------------------------------------------------------- small pieces of pay/confirm


def test_transient_errors_are_network_ones_only() -> None:
    from core.payments.pay import _transient

    class ConnectionResetByPeer(Exception):
        pass

    class ReadTimeoutError(Exception):
        pass

    for exc in (
        OSError("down"),
        ConnectionRefusedError(),
        TimeoutError(),
        ConnectionResetByPeer(),
        ReadTimeoutError(),
    ):
        assert _transient(exc) is True, exc
    for exc in (ValueError("bad signature"), RuntimeError("x"), KeyError("k")):
        assert _transient(exc) is False, exc


def test_unreadable_and_confirm_refusals_say_why() -> None:
    from core.payments.confirm import _refuse as confirm_refuse
    from core.payments.pay import unreadable

    assert unreadable("only x402 version 2 is accepted", "INV1") == Refused(
        "invalid_payload",
        "The payment could not be read: only x402 version 2 is accepted.",
        invoice_id="INV1",
    )
    assert confirm_refuse("transfer_mismatch", "INV2") == Refused(
        "transfer_mismatch",
        "The transaction does not carry the expected USDC transfer.",
        invoice_id="INV2",
    )
    assert confirm_refuse("some_new_code") == Refused("some_new_code", "some_new_code")


# ---------------------------------------------------------------- what a wallet must sign


async def test_invoice_requirements_refusals_name_the_invoice(
    pay_ctx: Context, monkeypatch: Any
) -> None:
    import datetime as dt

    from sqlalchemy import update
    from structlog.testing import capture_logs

    from core.db import utcnow
    from core.payments import invoice_requirements, pay
    from core.payments.gateway import GatewayUnavailable
    from core.payments.outcomes import MESSAGES

    def refused(code: str, public_id: str | None, retry_later: bool = False) -> Refused:
        return Refused(code, MESSAGES[code], retry_later, public_id)

    assert await invoice_requirements(pay_ctx, "NoSuchInvoiceAtAll12345") == refused(
        "unknown_invoice", None
    )
    q = await _quote(pay_ctx)
    reqs = await invoice_requirements(pay_ctx, q.invoice_id)
    assert not isinstance(reqs, Refused)
    assert (reqs.amount, reqs.pay_to) == ("200000", pay_ctx.settings.payments.pay_to)

    async def set_invoice(**values: Any) -> None:
        async with pay_ctx.db.session() as s:
            await s.execute(update(Invoice).values(**values))

    future = utcnow() + dt.timedelta(minutes=10)
    for status, code in (
        ("credited", "already_paid"),
        ("paid", "payment_in_progress"),  # another submission is being settled
        ("expired", "invoice_expired"),  # even before its time is up
    ):
        await set_invoice(status=status, expires_at=future)
        assert await invoice_requirements(pay_ctx, q.invoice_id) == refused(code, q.invoice_id)
    # open, and its time is up at this very instant
    now = utcnow()
    await set_invoice(status="open", expires_at=now)
    monkeypatch.setattr(pay, "utcnow", lambda: now)
    assert await invoice_requirements(pay_ctx, q.invoice_id) == refused(
        "invoice_expired", q.invoice_id
    )
    monkeypatch.undo()
    await set_invoice(status="open", expires_at=future)
    pay_ctx.settings.telegram.usdc_enabled = False  # quoted in Telegram
    try:
        assert await invoice_requirements(pay_ctx, q.invoice_id) == refused(
            "usdc_off", q.invoice_id
        )
    finally:
        pay_ctx.settings.telegram.usdc_enabled = True

    def unconfigured(*a: Any) -> Any:
        raise GatewayUnavailable("payments.pay_to is not set")

    def unreachable(*a: Any) -> Any:
        raise ConnectionError("facilitator down")

    monkeypatch.setattr(pay, "gateway_for", unconfigured)
    assert await invoice_requirements(pay_ctx, q.invoice_id) == refused(
        "payments_unavailable", q.invoice_id
    )
    monkeypatch.setattr(pay, "gateway_for", unreachable)
    with capture_logs() as logs:
        out = await invoice_requirements(pay_ctx, q.invoice_id)
    assert out == refused("rpc_unavailable", q.invoice_id, retry_later=True)
    assert [(e["event"], e["log_level"], e["error"]) for e in logs] == [
        ("x402 facilitator unavailable", "warning", "ConnectionError")
    ]


# ---------------------------------------------------------------- settlement outcome unknown


class _SettleRaises:
    """The real gateway, whose settle call never comes back (the facilitator went away)."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def requirements(self, amount_units: int) -> Any:
        return self.real.requirements(amount_units)

    async def verify(self, payload: Any, reqs: Any) -> Any:
        return await self.real.verify(payload, reqs)

    async def settle(self, payload: Any, reqs: Any) -> Any:
        raise TimeoutError("no answer")


async def test_settle_without_answer_keeps_the_claim_for_recovery(
    pay_ctx: Context, chain: Chain, fresh_payer: Any
) -> None:
    from core.payments import PaymentPending
    from core.payments.outcomes import MESSAGES

    q = await _quote(pay_ctx)
    payload = client_payload(chain, fresh_payer, _reqs(pay_ctx))
    gw = _SettleRaises(gateway_for(pay_ctx.settings.payments, pay_ctx.secrets))
    before = chain.balance(chain.pay_to)
    out = await pay_invoice(pay_ctx, q.invoice_id, payload, gateway=gw)
    assert out == PaymentPending(
        q.invoice_id, None, "settlement_unknown", MESSAGES["settlement_unknown"]
    )
    assert chain.balance(chain.pay_to) == before
    async with pay_ctx.db.session() as s:
        inv = (await s.execute(select(Invoice))).scalar_one()
        r = (await s.execute(select(PaymentReceipt))).scalar_one()
    assert inv.status == "paid"
    assert (r.status, r.transaction_hash, r.payer_address, r.amount_units) == (
        "settling",
        None,
        fresh_payer.address.lower(),
        200_000,
    )
    assert r.authorization_nonce == payload["payload"]["authorization"]["nonce"].lower()


# ---------------------------------------------------------------- a chat answer before settlement


async def test_chat_answer_is_kept_on_the_receipt_and_recorded(
    pay_ctx: Context, chain: Chain, fresh_payer: Any
) -> None:
    import datetime as dt
    import json

    from x402.schemas import PaymentPayload

    from core.payments import FunctionFulfiller

    at = dt.datetime(2026, 1, 2, 3, 4, 5)
    recorded: list[Any] = []

    async def answer(ctx: Context, req: Any) -> dict[str, Any]:
        return {"answer": "Alice spoke", "at": at}

    async def record(s: Any, ctx: Context, req: Any, result: Any, uid: int, tx: Any) -> None:
        recorded.append((req.invoice_id, result, tx))

    async with pay_ctx.db.session() as s:
        q = await create_invoice(
            s,
            pay_ctx,
            caller=ALICE,
            user_id=None,
            kind="chat_query",
            space_ids=[SPACE],
            amount_units=1_000_000,
            payload={"question": "who spoke?"},
        )
    assert isinstance(q, Quote)
    payload = client_payload(chain, fresh_payer, _reqs(pay_ctx, 1_000_000))
    pay_ctx.wiring.add_fulfiller("chat_query", FunctionFulfiller(answer, record))
    out = await pay_invoice(pay_ctx, q.invoice_id, payload)
    assert isinstance(out, Paid), out
    assert out.result == {"answer": "Alice spoke", "at": at}
    async with pay_ctx.db.session() as s:
        r = (await s.execute(select(PaymentReceipt))).scalar_one()
    assert json.loads(r.payload) == {
        "payment": PaymentPayload.model_validate(payload).model_dump(mode="json"),
        "fulfilment": {"answer": "Alice spoke", "at": str(at)},
    }
    assert recorded == [
        (q.invoice_id, {"answer": "Alice spoke", "at": str(at)}, out.transaction_hash)
    ]


# ---------------------------------------------------------------- small pure pieces


def test_reason_messages_tx_hashes_and_typed_data() -> None:
    from core.payments import eip3009
    from core.payments.onchain import normalize_tx_hash
    from core.payments.outcomes import reason_message

    assert reason_message(None) == "The payment was refused."
    assert reason_message("something_new", "detail") == "The payment was refused."
    assert reason_message("NETWORK_MISMATCH") == "The payment is for another chain."
    assert reason_message("nonce_used") == "This payment authorization was already used."

    h = "AB" * 32
    assert normalize_tx_hash(f"  {h} ") == "0x" + h.lower()
    assert normalize_tx_hash("0x" + h) == "0x" + h.lower()
    for bad in ("0x" + "ab" * 31, "0x" + "ab" * 33, "0xg" + "a" * 63, "0x" + "a" * 63 + "z"):
        try:
            normalize_tx_hash(bad)
        except ValueError as exc:
            assert str(exc) == "a transaction hash is 0x followed by 64 hex digits"
        else:
            raise AssertionError(bad)

    msg = {"from": "0x" + "11" * 20}
    assert eip3009.typed_data("USD Coin", "2", 8453, "0x" + "22" * 20, msg) == {
        "types": eip3009.TYPES,
        "primaryType": "TransferWithAuthorization",
        "domain": {
            "name": "USD Coin",
            "version": "2",
            "chainId": 8453,
            "verifyingContract": "0x" + "22" * 20,
        },
        "message": msg,
    }


# ---------------------------------------------------------------- the chain reader


async def test_transfers_to_reads_only_transfers_to_pay_to(
    pay_ctx: Context, chain: Chain, fresh_payer: Any
) -> None:
    from core.payments.onchain import reader_for_settings

    reader = reader_for_settings(pay_ctx.settings.payments)
    start = await reader.block_number() + 1
    ours = chain.transfer(fresh_payer, chain.pay_to, 123_456)
    chain.transfer(fresh_payer, chain.other.address, 654_321)
    head = await reader.block_number()
    got = await reader.transfers_to(chain.pay_to, start, head)
    assert [(t.transaction_hash, t.sender, t.recipient, t.value, t.token) for t in got] == [
        (
            ours.lower(),
            fresh_payer.address.lower(),
            chain.pay_to.lower(),
            123_456,
            pay_ctx.settings.payments.token_address.lower(),
        )
    ]


# ---------------------------------------------------------------- reading a payload


def test_unreadable_authorizations_say_which_field() -> None:
    from core.payments.eip3009 import authorization_problem
    from core.payments.pay import parse_payload

    good = {
        "from": "0x" + "11" * 20,
        "to": "0x" + "2A" * 20,
        "value": "200000",
        "validAfter": "0",
        "validBefore": str(2**256 - 1),
        "nonce": "0x" + "3c" * 32,
    }
    sig = "0x" + "ab" * 65
    assert authorization_problem(good, sig) is None
    assert authorization_problem(good, "0x" + "ab" * 97) is None  # a smart wallet's, longer
    fields = "the authorization must have exactly the fields " + (
        "from, to, value, validAfter, validBefore, nonce"
    )
    uint = "must be a uint256 written in decimal digits"
    cases: list[tuple[Any, Any, str]] = [
        (None, sig, fields),
        ({k: v for k, v in good.items() if k != "nonce"}, sig, fields),
        ({**good, "extra": "1"}, sig, fields),
        ({**good, "from": "0x" + "11" * 19}, sig, "authorization.from is not an Ethereum address"),
        ({**good, "to": 12}, sig, "authorization.to is not an Ethereum address"),
        ({**good, "to": "0x" + "zz" * 20}, sig, "authorization.to is not an Ethereum address"),
        ({**good, "value": 200000}, sig, f"authorization.value {uint}"),
        ({**good, "value": "2e5"}, sig, f"authorization.value {uint}"),
        ({**good, "value": "-1"}, sig, f"authorization.value {uint}"),
        ({**good, "validAfter": "0.5"}, sig, f"authorization.validAfter {uint}"),
        ({**good, "validBefore": str(2**256)}, sig, f"authorization.validBefore {uint}"),
        ({**good, "validBefore": "1" * 79}, sig, f"authorization.validBefore {uint}"),
        (
            {**good, "nonce": "0x" + "3c" * 31},
            sig,
            "authorization.nonce must be 0x and 64 hex digits",
        ),
        ({**good, "nonce": 7}, sig, "authorization.nonce must be 0x and 64 hex digits"),
        (good, "0x" + "ab" * 64, "the signature must be 0x and at least 130 hex digits"),
        (good, "0x" + "ab" * 65 + "a", "the signature must be 0x and at least 130 hex digits"),
        (good, None, "the signature must be 0x and at least 130 hex digits"),
    ]
    for auth, signature, problem in cases:
        assert authorization_problem(auth, signature) == problem, (auth, signature)
    accepted = {
        "scheme": "exact",
        "network": "eip155:31337",
        "asset": "0x" + "44" * 20,
        "amount": "200000",
        "payTo": "0x" + "2a" * 20,
        "maxTimeoutSeconds": 600,
        "extra": {"name": "USD Coin", "version": "2"},
    }
    raw = {
        "x402Version": 2,
        "accepted": accepted,
        "payload": {"authorization": good, "signature": sig},
    }
    parsed = parse_payload(raw)
    assert not isinstance(parsed, str) and parse_payload(parsed) is parsed
    bad = {**raw, "payload": {"authorization": {**good, "value": "1.5"}, "signature": sig}}
    assert parse_payload(bad) == f"authorization.value {uint}"
    assert parse_payload({**raw, "x402Version": 1}) == "only x402 version 2 is accepted"
    assert parse_payload({"x402Version": 2}) == "it is not an x402 payment payload"
    assert parse_payload("garbage") == "it is not an x402 payment payload"
    assert parse_payload({**raw, "payload": {}}) == fields


def test_accepted_terms_checked_one_by_one(pay_ctx: Context, sign_auth: Any) -> None:
    from eth_account import Account as EthAccount

    from core.payments.pay import _accepted_mismatch, parse_payload

    reqs = _reqs(pay_ctx)
    payer = EthAccount.create()
    raw = sign_auth(payer, reqs)
    ok = parse_payload(raw)
    assert not isinstance(ok, str)
    assert _accepted_mismatch(ok, reqs) is None
    upper = {**raw["accepted"], "asset": reqs.asset.upper().replace("0X", "0x")}
    upper["payTo"] = reqs.pay_to.lower()
    same = parse_payload({**raw, "accepted": upper})
    assert not isinstance(same, str) and _accepted_mismatch(same, reqs) is None  # any case
    for key, value, code in (
        ("scheme", "upto", "unsupported_scheme"),
        ("network", "eip155:8453", "network_mismatch"),
        ("asset", "0x" + "55" * 20, "asset_mismatch"),
        ("payTo", "0x" + "66" * 20, "invalid_exact_evm_payload_recipient_mismatch"),
        ("amount", "200001", "invalid_exact_evm_payload_authorization_value_mismatch"),
    ):
        p = parse_payload({**raw, "accepted": {**raw["accepted"], key: value}})
        assert not isinstance(p, str) and _accepted_mismatch(p, reqs) == code, key


async def test_a_hosted_facilitator_verifies_and_settles_over_http(
    pay_ctx: Context, chain: Chain, fresh_payer: Any
) -> None:
    """``payments.facilitator_url`` without a relayer key: the official HTTP facilitator
    client asks the hosted facilitator (a stand-in on a socket) to verify and settle."""

    from core.config import Secrets
    from tests.stand_ins.facilitator import Facilitator, serve_facilitator

    f = Facilitator(chain.relayer_key, chain.anvil.rpc_url, chain.anvil.network)
    with serve_facilitator(f) as url:
        p = pay_ctx.settings.payments.model_copy(update={"facilitator_url": url})
        ctx = Context(
            pay_ctx.settings.model_copy(update={"payments": p}),
            Secrets.model_construct(relayer_key=None),
            pay_ctx.db,
        )
        q = await _quote(ctx)
        reqs = gateway_for(ctx.settings.payments, ctx.secrets).requirements(200_000)
        before = chain.balance(chain.pay_to)
        out = await pay_invoice(ctx, q.invoice_id, client_payload(chain, fresh_payer, reqs))
    assert isinstance(out, Paid) and out.transaction_hash, out
    assert chain.balance(chain.pay_to) == before + 200_000
    assert f.calls == ["GET /supported", "POST /verify", "POST /settle"]


def test_a_gateway_without_a_way_to_settle_says_which_setting_is_missing(chain: Chain) -> None:
    from core.config import PaymentSettings
    from core.payments.gateway import GatewayUnavailable, X402Gateway

    settings = PaymentSettings(**chain.payment_settings())
    with pytest.raises(GatewayUnavailable) as e:
        X402Gateway(settings, None)
    assert str(e.value) == "payments need SPACESCRIBE_RELAYER_KEY or payments.facilitator_url"
    no_pay_to = PaymentSettings(**chain.payment_settings(pay_to=""))
    with pytest.raises(GatewayUnavailable) as e:
        X402Gateway(no_pay_to, chain.relayer_key)
    assert str(e.value) == "payments.pay_to is not set"


async def test_a_credited_invoice_answers_its_own_payment_again_and_refuses_another(
    pay_ctx: Context, chain: Chain, fresh_payer: Any
) -> None:
    """Paying a credited invoice again: its own authorization gets the first answer back (the
    same transaction and payer); any other authorization is refused and nothing moves."""
    from core.payments.outcomes import MESSAGES

    q = await _quote(pay_ctx)
    payload = client_payload(chain, fresh_payer, _reqs(pay_ctx))
    first = await pay_invoice(pay_ctx, q.invoice_id, payload)
    assert isinstance(first, Paid) and not first.already and first.transaction_hash
    again = await pay_invoice(pay_ctx, q.invoice_id, payload)
    assert again == Paid(
        q.invoice_id,
        "transcription",
        first.transaction_hash,
        fresh_payer.address.lower(),
        already=True,
    )
    before = chain.balance(chain.pay_to)
    other = await pay_invoice(
        pay_ctx, q.invoice_id, client_payload(chain, fresh_payer, _reqs(pay_ctx))
    )
    assert other == Refused("already_paid", MESSAGES["already_paid"], invoice_id=q.invoice_id)
    assert chain.balance(chain.pay_to) == before


async def test_a_node_that_never_answers_reads_as_unavailable_within_the_timeout(
    chain: Chain,
) -> None:
    """The RPC timeout is the reader's own (not the HTTP library's default of minutes): a
    node that takes the connection and never answers is "unreachable" after it."""
    import socket

    from core.config import PaymentSettings
    from core.payments.onchain import ChainReader, ChainUnavailable

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts (the kernel does), never answers
    try:
        port = silent.getsockname()[1]
        settings = PaymentSettings(**chain.payment_settings(rpc_url=f"http://127.0.0.1:{port}"))
        reader = ChainReader(settings, timeout=0.5)
        assert reader.chain_id == chain.anvil.chain_id
        with pytest.raises(ChainUnavailable):
            await asyncio.wait_for(reader.block_number(), 10)
    finally:
        silent.close()
