"""Idempotent x402 retries (payment-identifier) and Sign-In-With-X re-access, end to end:
the official x402 client and SIWX helpers against the app under uvicorn, paying on anvil."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from eth_account import Account as EthAccount
from sqlalchemy import func, select, update
from x402.extensions.payment_identifier import (
    PAYMENT_IDENTIFIER,
    append_payment_identifier_to_extensions,
    declare_payment_identifier_extension,
)
from x402.extensions.sign_in_with_x import (
    SIGN_IN_WITH_X,
    SIWxValidationResult,
    build_siwx_schema,
    create_siwx_payload,
    encode_siwx_header,
)
from x402.http.utils import encode_payment_signature_header
from x402.schemas import PaymentPayload, PaymentRequired, PaymentRequirements

from bot.wiring import web_app
from core.context import Context
from core.db import Database, PaymentReceipt, SiwxNonce, Space, X402Request, utcnow
from core.payments import idempotency as idem
from core.payments import siwx
from core.results import Refused
from tests.payments.conftest import chain_secrets, make_client
from tests.stand_ins.chain import Chain, free_port

SPACE = "1RDxlAoOeQRKL"
PUBLIC = "http://127.0.0.1:8080"  # pay_ctx's web.public_url: what SIWX messages bind to


async def _serve(ctx: Context) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    port = free_port()
    cfg = uvicorn.Config(web_app(ctx), host="127.0.0.1", port=port, log_config=None)
    cfg.lifespan = "off"
    srv = uvicorn.Server(cfg)
    task = asyncio.create_task(srv.serve())
    while not srv.started:
        await asyncio.sleep(0.02)
    return srv, task, f"http://127.0.0.1:{port}"


@pytest.fixture
async def server(pay_ctx: Context) -> AsyncIterator[str]:
    srv, task, base = await _serve(pay_ctx)
    try:
        yield base
    finally:
        srv.should_exit = True
        await task


def _required(r: httpx.Response) -> PaymentRequired:
    assert r.status_code == 402, r.text
    return PaymentRequired.model_validate(
        json.loads(base64.b64decode(r.headers["PAYMENT-REQUIRED"]))
    )


def _signature(
    chain: Chain, account: Any, pr: PaymentRequired, payment_id: str | None
) -> tuple[str, Any]:
    """What the official client sends, with the payment-identifier appended to the server's
    declared extensions (``append_payment_identifier_to_extensions``)."""
    pr = pr.model_copy(deep=True)
    if payment_id is not None:
        pr.extensions = append_payment_identifier_to_extensions(
            dict(pr.extensions or {}), payment_id
        )
    payload = make_client(chain, account).create_payment_payload(pr)
    return encode_payment_signature_header(payload), payload


def _same(a: httpx.Response, b: httpx.Response) -> bool:
    return (
        a.status_code == b.status_code
        and a.content == b.content
        and a.headers.get("PAYMENT-RESPONSE") == b.headers.get("PAYMENT-RESPONSE")
    )


async def test_retries_replay_the_first_answer_and_charge_once(
    server: str, pay_ctx: Context, chain: Chain, fresh_payer, db_url: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    before = chain.balance(chain.pay_to)
    body = {"space": SPACE}
    async with httpx.AsyncClient(base_url=server, timeout=60) as c:
        pr = _required(await c.post("/x402/transcribe", json=body))
        assert PAYMENT_IDENTIFIER in (pr.extensions or {})
        assert SIGN_IN_WITH_X in (pr.extensions or {})
        header, payload = _signature(chain, fresh_payer, pr, "pay_retry_test_000000001")
        first = await c.post("/x402/transcribe", json=body, headers={"PAYMENT-SIGNATURE": header})
        assert first.status_code == 200 and first.json()["paid"] is True, first.text
        assert first.headers["PAYMENT-RESPONSE"]
        # the answer was lost: the client retries, twice at once
        again = await asyncio.gather(
            *(
                c.post("/x402/transcribe", json=body, headers={"PAYMENT-SIGNATURE": header})
                for _ in range(2)
            )
        )
        assert all(_same(first, r) for r in again)
        # the same authorization re-sent without its id: the same answer, not "used"
        bare = payload.model_copy(deep=True)
        bare.extensions = None
        plain = await c.post(
            "/x402/transcribe",
            json=body,
            headers={"PAYMENT-SIGNATURE": encode_payment_signature_header(bare)},
        )
        assert _same(first, plain), plain.text
        # the same id with another payment (a new authorization): 409, nothing charged
        other, _ = _signature(chain, fresh_payer, pr, "pay_retry_test_000000001")
        clash = await c.post("/x402/transcribe", json=body, headers={"PAYMENT-SIGNATURE": other})
        assert clash.status_code == 409 and clash.json()["error"] == "payment_id_conflict"
        # the same payment for another request body: 409 too
        moved = await c.post(
            "/x402/transcribe",
            json={"space": "1YqJDqWqbNVGV"},
            headers={"PAYMENT-SIGNATURE": header},
        )
        assert moved.status_code == 409 and moved.json()["error"] == "payment_id_conflict"
        bad_id = append_payment_identifier_to_extensions(dict(pr.extensions or {}), "x" * 16)
        bad_id[PAYMENT_IDENTIFIER]["info"]["id"] = "short"
        bad = payload.model_copy(deep=True)
        bad.extensions = bad_id
        refused = await c.post(
            "/x402/transcribe",
            json=body,
            headers={"PAYMENT-SIGNATURE": encode_payment_signature_header(bad)},
        )
        assert (
            refused.status_code == 400 and refused.json()["error"] == "invalid_payment_identifier"
        )
    assert chain.balance(chain.pay_to) == before + 200_000
    # a restart: a new app on the same database answers the retry the same way
    ctx2 = Context(pay_ctx.settings, chain_secrets(chain), Database(db_url), instance="test:2")
    srv2, task2, base2 = await _serve(ctx2)
    try:
        async with httpx.AsyncClient(base_url=base2, timeout=60) as c:
            after = await c.post(
                "/x402/transcribe", json=body, headers={"PAYMENT-SIGNATURE": header}
            )
        assert _same(first, after)
    finally:
        srv2.should_exit = True
        await task2
        await ctx2.close()
    assert chain.balance(chain.pay_to) == before + 200_000
    async with pay_ctx.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(PaymentReceipt)) == 1
        rows = (await s.execute(select(X402Request))).scalars().all()
        assert [(r.state, r.response_status) for r in rows] == [("done", 200)]


async def test_a_request_whose_process_died_is_answered_from_its_receipt(
    server: str, pay_ctx: Context, chain: Chain, fresh_payer
) -> None:  # type: ignore[no-untyped-def]
    """The first process paid and died before storing its answer (its lease ran out): a
    retry takes the reservation over, finds the credited receipt and charges nothing."""
    before = chain.balance(chain.pay_to)
    body = {"space": SPACE}
    async with httpx.AsyncClient(base_url=server, timeout=60) as c:
        pr = _required(await c.post("/x402/transcribe", json=body))
        header, _ = _signature(chain, fresh_payer, pr, "pay_dead_process_0000001")
        first = await c.post("/x402/transcribe", json=body, headers={"PAYMENT-SIGNATURE": header})
        assert first.status_code == 200
        async with pay_ctx.db.session() as s:  # as if it had died before finishing
            await s.execute(
                update(X402Request).values(
                    state="unknown",
                    response_status=None,
                    response_body=None,
                    lease_until=datetime(2000, 1, 1),
                )
            )
        retry = await c.post("/x402/transcribe", json=body, headers={"PAYMENT-SIGNATURE": header})
        assert retry.status_code == 200, retry.text
        assert retry.json()["transaction"] == first.json()["transaction"]
        assert retry.headers["PAYMENT-RESPONSE"]
        again = await c.post("/x402/transcribe", json=body, headers={"PAYMENT-SIGNATURE": header})
        assert _same(retry, again)
    assert chain.balance(chain.pay_to) == before + 200_000


async def _siwx(account: Any, pr: PaymentRequired, *, url: str, **change: Any) -> str:
    ext = (pr.extensions or {})[SIGN_IN_WITH_X]
    chain_id = ext["supportedChains"][0]["chainId"]
    info = {**ext["info"], "chainId": chain_id, "type": "eip191", **change}
    return encode_siwx_header(await create_siwx_payload(info, account, url))


async def test_sign_in_with_x_returns_what_the_wallet_bought(
    server: str, pay_ctx: Context, chain: Chain, fresh_payer
) -> None:  # type: ignore[no-untyped-def]
    from core.payments import FunctionFulfiller

    async def answer(ctx: Context, req: Any) -> dict[str, Any]:
        return {"answer": f"about {req.space_ids[0]}: {req.payload['question']}"}

    pay_ctx.wiring.add_fulfiller("chat_query", FunctionFulfiller(answer))
    path = f"/api/spaces/{SPACE}/transcript"
    try:
        async with httpx.AsyncClient(base_url=server, timeout=60) as c:
            # buy the transcript and one answer
            pr = _required(await c.post("/x402/transcribe", json={"space": SPACE}))
            h, _ = _signature(chain, fresh_payer, pr, None)
            assert (
                await c.post(
                    "/x402/transcribe", json={"space": SPACE}, headers={"PAYMENT-SIGNATURE": h}
                )
            ).status_code == 200
            q = {"question": "who spoke?", "spaces": [SPACE]}
            pr = _required(await c.post("/x402/chat", json=q))
            assert SIGN_IN_WITH_X in (pr.extensions or {})
            h, _ = _signature(chain, fresh_payer, pr, None)
            paid = await c.post("/x402/chat", json=q, headers={"PAYMENT-SIGNATURE": h})
            assert paid.status_code == 200, paid.text
            async with pay_ctx.db.session() as s:
                await s.execute(update(Space).values(status="completed"))
            doc = pay_ctx.spaces_dir / SPACE / "transcript.md"
            doc.parent.mkdir(parents=True, exist_ok=True)
            doc.write_text("# Transcript\n\nhello\n")
            spent = chain.balance(chain.pay_to)

            # the transcript: 402 with a SIWX challenge bound to web.public_url
            pr = _required(await c.get(path))
            info = pr.extensions[SIGN_IN_WITH_X]["info"]  # type: ignore[index]
            assert info["domain"] == "127.0.0.1:8080" and info["uri"] == PUBLIC + path
            assert (
                pr.extensions[SIGN_IN_WITH_X]["supportedChains"][0]["chainId"]
                == chain.anvil.network
            )  # type: ignore[index]
            signed = await _siwx(fresh_payer, pr, url=PUBLIC + path)
            got = await c.get(path, headers={"SIGN-IN-WITH-X": signed})
            assert got.status_code == 200 and "hello" in got.text
            # replayed, expired, wrong domain, wrong chain: each its own refusal
            replay = await c.get(path, headers={"SIGN-IN-WITH-X": signed})
            assert replay.status_code == 401 and replay.json()["error"] == "invalid_siwx_nonce_used"
            now = datetime.now(UTC)
            old = await _siwx(
                fresh_payer,
                pr,
                url=PUBLIC + path,
                nonce="expired0000000001",
                issuedAt=(now - timedelta(seconds=30)).isoformat().replace("+00:00", "Z"),
                expirationTime=(now - timedelta(seconds=1)).isoformat().replace("+00:00", "Z"),
            )
            r = await c.get(path, headers={"SIGN-IN-WITH-X": old})
            assert r.status_code == 401 and r.json()["error"] == "invalid_siwx_expired"
            stale = await _siwx(
                fresh_payer,
                pr,
                url=PUBLIC + path,
                nonce="stale000000000001",
                issuedAt=(now - timedelta(minutes=6)).isoformat().replace("+00:00", "Z"),
                expirationTime=None,
            )
            r = await c.get(path, headers={"SIGN-IN-WITH-X": stale})
            assert r.status_code == 401 and r.json()["error"] == "invalid_siwx_issued_at_too_old"
            evil = "http://evil.example"
            wrong = await _siwx(
                fresh_payer, pr, url=evil + path, domain="evil.example", uri=evil + path
            )
            r = await c.get(path, headers={"SIGN-IN-WITH-X": wrong})
            assert r.status_code == 401 and r.json()["error"] == "invalid_siwx_domain_mismatch"
            mainnet = await _siwx(fresh_payer, pr, url=PUBLIC + path, chainId="eip155:1")
            r = await c.get(path, headers={"SIGN-IN-WITH-X": mainnet})
            assert r.status_code == 401 and r.json()["error"] == "invalid_siwx_chain_mismatch"
            forged = json.loads(base64.b64decode(await _siwx(fresh_payer, pr, url=PUBLIC + path)))
            forged["address"] = chain.other.address  # someone else's wallet, our signature
            r = await c.get(
                path,
                headers={"SIGN-IN-WITH-X": base64.b64encode(json.dumps(forged).encode()).decode()},
            )
            assert r.status_code == 401 and r.json()["error"] == "invalid_siwx_signature"
            # a stranger signs in fine but owns nothing: 402, pay to get it
            stranger = await _siwx(chain.other, pr, url=PUBLIC + path, nonce="stranger000000001")
            r = await c.get(path, headers={"SIGN-IN-WITH-X": stranger})
            assert r.status_code == 402 and "not bought" in r.json()["error"]

            # the paid answer, again, by signing in on /x402/chat
            pr = _required(await c.post("/x402/chat", json=q))
            signed = await _siwx(fresh_payer, pr, url=PUBLIC + "/x402/chat")
            again = await c.post("/x402/chat", json=q, headers={"SIGN-IN-WITH-X": signed})
            assert again.status_code == 200 and again.content == paid.content
            # a question it did not pay for: 402
            signed = await _siwx(
                fresh_payer, pr, url=PUBLIC + "/x402/chat", nonce="otherq00000000001"
            )
            other_q = {"question": "what else?", "spaces": [SPACE]}
            assert (
                await c.post("/x402/chat", json=other_q, headers={"SIGN-IN-WITH-X": signed})
            ).status_code == 402
            # the transcript purchase route: already owned, no payment
            pr = _required(await c.post("/x402/transcribe", json={"space": SPACE}))
            signed = await _siwx(fresh_payer, pr, url=PUBLIC + "/x402/transcribe")
            owned = await c.post(
                "/x402/transcribe", json={"space": SPACE}, headers={"SIGN-IN-WITH-X": signed}
            )
            assert owned.status_code == 200 and owned.json()["already_owned"] is True
            assert owned.json()["transcript_url"] == path
        assert chain.balance(chain.pay_to) == spent
        async with pay_ctx.db.session() as s:
            assert await s.scalar(select(func.count()).select_from(SiwxNonce)) == 5
    finally:
        pay_ctx.wiring.fulfillers.pop("chat_query", None)


# --- the reservation record itself, without a chain or a server (fast; found by `make mutants`)

PAYER = "0xAbCdEf0000000000000000000000000000000001"
TOKEN = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
NETWORK = "eip155:84532"


def _payload(
    nonce: str | None = "0xABCDEF",
    payment_id: str | None = None,
    amount: str = "200000",
    signed: bool = True,
) -> PaymentPayload:
    auth: dict[str, Any] = {"from": PAYER, "value": amount}
    if nonce is not None:
        auth["nonce"] = nonce
    inner: dict[str, Any] = {"signature": "0x00"}
    if signed:
        inner["authorization"] = auth
    ext = None
    if payment_id is not None:
        ext = append_payment_identifier_to_extensions(
            {PAYMENT_IDENTIFIER: declare_payment_identifier_extension()}, payment_id
        )
    return PaymentPayload(
        x402_version=2,
        payload=inner,
        accepted=PaymentRequirements(
            scheme="exact",
            network=NETWORK,
            asset=TOKEN,
            amount=amount,
            pay_to="0x00000000000000000000000000000000000000aa",
            max_timeout_seconds=60,
            extra={},
        ),
        extensions=ext,
    )


def _key(payment_id: str | None = None, body: dict[str, Any] | None = None, **kw: Any) -> Any:
    p = _payload(payment_id=payment_id, **kw)
    return idem.request_key("/x402/transcribe", body or {"space": SPACE}, p, PAYER, payment_id)


async def _row(ctx: Context, row_id: int) -> X402Request:
    async with ctx.db.session() as s:
        row = await s.get(X402Request, row_id)
        assert row is not None
        return row


def test_payment_identifier_none_valid_or_malformed() -> None:
    assert idem.payment_identifier(_payload()) is None
    assert idem.payment_identifier(_payload(payment_id="pay_0123456789abcdef")) == (
        "pay_0123456789abcdef"
    )
    bad = _payload(payment_id="pay_0123456789abcdef")
    assert bad.extensions is not None
    bad.extensions[PAYMENT_IDENTIFIER]["info"]["id"] = "short"
    assert idem.payment_identifier(bad) == idem.Conflict(
        "invalid_payment_identifier",
        "The payment-identifier extension is malformed: its id must be 16-128 characters of "
        "letters, digits, '-' and '_'.",
    )


def test_request_key_names_the_authorization_and_hashes_the_request() -> None:
    body = {"space": SPACE, "a": 1}
    p = _payload(payment_id="pay_0123456789abcdef")
    k = idem.request_key("/x402/chat", body, p, PAYER, "pay_0123456789abcdef")
    assert k.payment_id == "pay_0123456789abcdef"
    assert k.authorization_key == f"{NETWORK}:{TOKEN.lower()}:{PAYER.lower()}:0xabcdef"
    assert (k.route, k.payer, k.nonce) == ("/x402/chat", PAYER.lower(), "0xabcdef")
    text = '{"body":{"a":1,"space":"' + SPACE + '"},"route":"/x402/chat"}'
    assert k.body_hash == hashlib.sha256(text.encode()).hexdigest()
    assert idem.body_hash("/x402/chat", {"a": 1, "space": SPACE}) == k.body_hash
    signed = p.model_dump(mode="json", by_alias=True, exclude_none=True)
    signed.pop("extensions")
    assert "x402Version" in signed and "payTo" in signed["accepted"]
    text = json.dumps(
        {"route": "/x402/chat", "body": body, "payment": signed},
        sort_keys=True,
        separators=(",", ":"),
    )
    assert k.request_hash == hashlib.sha256(text.encode()).hexdigest()
    # the payment-identifier is not part of the request; the payment and the body are
    bare = idem.request_key("/x402/chat", body, _payload(), PAYER, None)
    assert bare.request_hash == k.request_hash and bare.payment_id is None
    assert _key(amount="300000").request_hash != _key().request_hash
    assert _key(body={"space": "1YqJDqWqbNVGV"}).request_hash != _key().request_hash
    # an authorization without a nonce still names one key (an empty nonce)
    assert _key(nonce=None).authorization_key == f"{NETWORK}:{TOKEN.lower()}:{PAYER.lower()}:"
    assert _key(nonce=None).nonce == ""
    assert _key(signed=False).authorization_key == f"{NETWORK}:{TOKEN.lower()}:{PAYER.lower()}:"


async def test_writes_touch_only_their_own_row(ctx: Context) -> None:
    """Two reservations that happen to share a lease instant: each write names its row."""
    lease = utcnow() - timedelta(seconds=1)
    ids = []
    async with ctx.db.session() as s:
        for n in (1, 2):
            row = X402Request(
                authorization_key=f"k{n}",
                request_hash=f"r{n}",
                body_hash="b",
                route="/x402/chat",
                payer_address=PAYER.lower(),
                state="unknown",
                lease_until=lease,
            )
            s.add(row)
            await s.flush()
            ids.append(row.id)
    assert await idem._set(ctx, idem.Reserved(ids[1], lease), state="in_flight") is True
    assert ((await _row(ctx, ids[0])).state, (await _row(ctx, ids[1])).state) == (
        "unknown",
        "in_flight",
    )
    first = await _row(ctx, ids[0])
    assert await idem._take_over(ctx, first, utcnow() + timedelta(seconds=60)) is True
    assert (await _row(ctx, ids[1])).lease_until == lease
    async with ctx.db.session() as s:
        await s.execute(update(X402Request).values(lease_until=lease))
    await idem.release(ctx, idem.Reserved(ids[0], lease))
    async with ctx.db.session() as s:
        assert await s.get(X402Request, ids[0]) is None
        assert await s.get(X402Request, ids[1]) is not None


async def test_reserve_writes_the_row_and_fences_every_later_write(ctx: Context) -> None:
    key = _key("pay_0123456789abcdef")
    t0 = utcnow()
    held = await idem.reserve(ctx, key, wait_seconds=0)
    assert isinstance(held, idem.Reserved) and held.taken_over is False
    assert timedelta(seconds=119) < held.lease - t0 < timedelta(seconds=121)
    row = await _row(ctx, held.row_id)
    assert (
        row.payment_id,
        row.authorization_key,
        row.request_hash,
        row.body_hash,
        row.route,
        row.payer_address,
        row.state,
        row.lease_until,
        row.response_status,
    ) == (
        "pay_0123456789abcdef",
        key.authorization_key,
        key.request_hash,
        key.body_hash,
        "/x402/transcribe",
        PAYER.lower(),
        "in_flight",
        held.lease,
        None,
    )
    assert row.created_at is not None and t0 <= row.created_at <= utcnow()
    assert row.updated_at is not None and t0 <= row.updated_at <= utcnow()
    # the same request while it is held: in progress, retry in 2 s
    again = await idem.reserve(ctx, key, wait_seconds=0)
    assert again == idem.InProgress()
    assert (again.code, again.retry_after) == ("request_in_progress", 2)
    assert again.message == (
        "The first request with this payment is still being processed; retry with the same "
        "payment to get its answer."
    )
    # a stale lease writes nothing
    stale = idem.Reserved(held.row_id, held.lease - timedelta(seconds=1))
    assert await idem._set(ctx, stale, state="unknown") is False
    await idem.mark_unknown(ctx, stale)
    await idem.finish(ctx, stale, idem.StoredResponse(500, b"x", {}))
    await idem.still_unknown(ctx, stale)
    await idem.release(ctx, stale)
    row = await _row(ctx, held.row_id)
    assert (row.state, row.lease_until, row.response_status) == ("in_flight", held.lease, None)
    # the owner's writes land
    await idem.mark_unknown(ctx, held)
    assert (await _row(ctx, held.row_id)).state == "unknown"
    before = utcnow()
    await idem.finish(ctx, held, idem.StoredResponse(201, b'{"ok":1}', {"X-A": "b"}))
    row = await _row(ctx, held.row_id)
    assert (row.state, row.response_status, row.response_body, row.response_headers) == (
        "done",
        201,
        '{"ok":1}',
        '{"X-A": "b"}',
    )
    assert row.lease_until == held.lease and row.updated_at is not None
    assert row.updated_at >= before
    assert await idem._set(ctx, held, state="done") is True
    # every retry now gets exactly that answer, under the id or the bare authorization
    want = idem.Replay(idem.StoredResponse(201, b'{"ok":1}', {"X-A": "b"}))
    assert await idem.reserve(ctx, key, wait_seconds=0) == want
    assert await idem.reserve(ctx, _key(None), wait_seconds=0) == want


async def test_a_stored_answer_defaults_to_an_empty_200(ctx: Context) -> None:
    held = await idem.reserve(ctx, _key(), wait_seconds=0)
    assert isinstance(held, idem.Reserved)
    await idem._set(ctx, held, state="done")
    got = await idem.reserve(ctx, _key(), wait_seconds=0)
    assert got == idem.Replay(idem.StoredResponse(200, b"", {}))


async def test_conflicts_name_the_id_or_the_authorization(ctx: Context) -> None:
    held = await idem.reserve(ctx, _key("pay_0123456789abcdef"), wait_seconds=0)
    assert isinstance(held, idem.Reserved)
    by_id = await idem.reserve(
        ctx, _key("pay_0123456789abcdef", nonce="0x01"), wait_seconds=0
    )  # same id, another authorization
    assert by_id == idem.Conflict(
        "payment_id_conflict",
        "This payment-identifier was already used for a different request or payment; "
        "use a new id for a new payment.",
    )
    other_body = _key(body={"space": "1YqJDqWqbNVGV"})  # same authorization, no id
    assert await idem.reserve(ctx, other_body, wait_seconds=0) == idem.Conflict(
        "authorization_conflict",
        "This payment authorization was already used for a different request; sign a new one.",
    )
    other_id = _key("pay_fedcba9876543210", body={"space": "1YqJDqWqbNVGV"})
    got = await idem.reserve(ctx, other_id, wait_seconds=0)
    assert isinstance(got, idem.Conflict) and got.code == "authorization_conflict"
    # an id and an authorization held by two different rows, even of the very same request:
    # a conflict, never a replay
    both = _key("pay_second_0000000001")  # the first row's authorization, another id
    async with ctx.db.session() as s:
        s.add(
            X402Request(
                payment_id="pay_second_0000000001",
                authorization_key="another",
                request_hash=both.request_hash,
                body_hash=both.body_hash,
                route=both.route,
                payer_address=both.payer,
                state="in_flight",
                lease_until=held.lease,
            )
        )
    got = await idem.reserve(ctx, both, wait_seconds=0)
    assert isinstance(got, idem.Conflict)
    assert isinstance(await idem.reserve(ctx, _key(), wait_seconds=0), idem.InProgress)


async def test_a_dead_owners_row_is_taken_over_once(ctx: Context) -> None:
    key = _key("pay_0123456789abcdef")
    held = await idem.reserve(ctx, key, wait_seconds=0)
    assert isinstance(held, idem.Reserved)
    await idem.still_unknown(ctx, held)  # paid, not confirmed: the lease ends now
    row = await _row(ctx, held.row_id)
    assert row.state == "unknown" and row.lease_until <= utcnow()
    t0 = utcnow()
    took = await idem.reserve(ctx, key, wait_seconds=0)
    assert isinstance(took, idem.Reserved)
    assert (took.row_id, took.taken_over) == (held.row_id, True)
    assert timedelta(seconds=119) < took.lease - t0 < timedelta(seconds=121)
    row2 = await _row(ctx, held.row_id)
    assert (row2.lease_until, row2.state) == (took.lease, "unknown")
    assert row2.updated_at is not None and row2.updated_at >= t0
    # the old owner is fenced out; a second claim on the old lease loses
    assert await idem._take_over(ctx, row, utcnow()) is False
    assert await idem._set(ctx, held, state="done") is False
    assert isinstance(await idem.reserve(ctx, key, wait_seconds=0), idem.InProgress)
    # a done row is never taken over, even with its lease gone
    await idem.finish(ctx, took, idem.StoredResponse(200, b"{}", {}))
    done = await _row(ctx, held.row_id)
    assert await idem._take_over(ctx, done, utcnow()) is False
    assert (await _row(ctx, held.row_id)).lease_until == took.lease


async def test_release_forgets_and_a_waiting_retry_then_owns(ctx: Context) -> None:
    key = _key("pay_0123456789abcdef")
    held = await idem.reserve(ctx, key, wait_seconds=0)
    assert isinstance(held, idem.Reserved)

    async def release_soon() -> None:
        await asyncio.sleep(0.15)
        await idem.release(ctx, held)

    waiter, _ = await asyncio.gather(idem.reserve(ctx, key, wait_seconds=10), release_soon())
    assert isinstance(waiter, idem.Reserved)
    assert waiter.row_id != held.row_id and waiter.taken_over is False
    async with ctx.db.session() as s:
        assert await s.get(X402Request, held.row_id) is None
    await idem.release(ctx, waiter)
    async with ctx.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(X402Request)) == 0


async def _receipt(ctx: Context, **kw: Any) -> None:
    values: dict[str, Any] = {
        "method": "x402",
        "network": NETWORK,
        "token_address": TOKEN.lower(),
        "payer_address": PAYER.lower(),
        "pay_to": "0x00000000000000000000000000000000000000aa",
        "amount_units": 200_000,
        "authorization_nonce": "0xabcdef",
        "status": "credited",
        "transaction_hash": "0x" + "ab" * 32,
    }
    values.update(kw)
    async with ctx.db.session() as s:
        s.add(PaymentReceipt(**values))


async def test_prior_payment_reads_the_authorizations_receipt(ctx: Context) -> None:
    key = _key()
    assert await idem.prior_payment(ctx, key, NETWORK) is None
    await _receipt(ctx, network="eip155:1", payload='{"fulfilment": {"x": 1}}')
    await _receipt(ctx, payer_address="0x" + "11" * 20, payload='{"fulfilment": {"x": 2}}')
    await _receipt(ctx, authorization_nonce="0x01", payload='{"fulfilment": {"x": 3}}')
    assert await idem.prior_payment(ctx, key, NETWORK) is None
    await _receipt(ctx, payload='{"fulfilment": {"answer": "hi"}, "other": 1}')
    assert await idem.prior_payment(ctx, key, NETWORK) == idem.PriorPayment(
        "credited", "0x" + "ab" * 32, PAYER.lower(), {"answer": "hi"}
    )
    assert await idem.prior_payment(ctx, key, "eip155:1") == idem.PriorPayment(
        "credited", "0x" + "ab" * 32, PAYER.lower(), {"x": 1}
    )


@pytest.mark.parametrize("payload", [None, "not json", "{}"])
async def test_prior_payment_without_a_stored_answer(ctx: Context, payload: str | None) -> None:
    await _receipt(ctx, status="settling", transaction_hash=None, payload=payload)
    assert await idem.prior_payment(ctx, _key(), NETWORK) == idem.PriorPayment(
        "settling", None, PAYER.lower(), None
    )


async def test_paid_answer_is_the_wallets_latest_finished_one_for_that_body(
    ctx: Context,
) -> None:
    """Only a paid answer is finished (``x402_sale``): the latest done row of this wallet,
    route and body."""
    bh = idem.body_hash("/x402/chat", {"q": 1})
    n = 0

    async def row(**kw: Any) -> None:
        nonlocal n
        n += 1
        values: dict[str, Any] = {
            "payment_id": None,
            "authorization_key": f"k{n}",
            "request_hash": f"r{n}",
            "body_hash": bh,
            "route": "/x402/chat",
            "payer_address": PAYER.lower(),
            "state": "done",
            "lease_until": utcnow(),
            "response_status": 200,
            "response_body": f'{{"n": {n}}}',
            "response_headers": '{"H": "v"}',
        }
        values.update(kw)
        async with ctx.db.session() as s:
            s.add(X402Request(**values))

    assert await idem.paid_answer(ctx, "/x402/chat", PAYER, bh) is None
    await row()  # n=1: the one to find, until a later one is stored
    await row(route="/x402/transcribe")
    await row(payer_address="0x" + "11" * 20)
    await row(body_hash="other")
    await row(state="unknown")
    want = idem.StoredResponse(200, b'{"n": 1}', {"H": "v"})
    assert await idem.paid_answer(ctx, "/x402/chat", PAYER, bh) == want
    await row()  # n=6
    got = await idem.paid_answer(ctx, "/x402/chat", PAYER.upper().replace("0X", "0x"), bh)
    assert got == idem.StoredResponse(200, b'{"n": 6}', {"H": "v"})


# --- Sign-In-With-X itself, without a server (fast; found by `make mutants`)

WALLET = EthAccount.from_key("0x" + "42" * 32)
SIWX_PATH = "/api/spaces/1RDxlAoOeQRKL/transcript"


async def _signed(ctx: Context, account: Any = WALLET, **change: Any) -> dict[str, Any]:
    decl = siwx.declaration(ctx, SIWX_PATH)
    info = {**decl["info"], "chainId": ctx.settings.payments.network, "type": "eip191", **change}
    payload = await create_siwx_payload(info, account, info["uri"])
    return payload.model_dump(by_alias=True, exclude_none=True)


def _header(doc: dict[str, Any], size: int | None = None) -> str:
    raw = json.dumps(doc)
    if size is not None:  # pad the JSON with spaces to a header of exactly `size` characters
        raw += " " * (size * 3 // 4 - len(raw.encode()))
    return base64.b64encode(raw.encode()).decode()


@pytest.fixture
def far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local time zone 9 hours away from UTC."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_siwx_declaration_is_a_fresh_challenge(ctx: Context, far_from_utc: None) -> None:
    assert siwx.origin(ctx) == "http://127.0.0.1:8080"
    before = datetime.now(UTC)
    decl = siwx.declaration(ctx, SIWX_PATH)
    info = decl["info"]
    uri = "http://127.0.0.1:8080" + SIWX_PATH
    assert {k: v for k, v in info.items() if k not in ("nonce", "issuedAt", "expirationTime")} == {
        "domain": "127.0.0.1:8080",
        "uri": uri,
        "statement": "Sign in to spacescribe to get what this wallet already paid for.",
        "version": "1",
        "resources": [uri],
    }
    assert len(info["nonce"]) == 32 and int(info["nonce"], 16) >= 0
    assert info["nonce"] != siwx.declaration(ctx, SIWX_PATH)["info"]["nonce"]
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    assert len(info["issuedAt"]) == len("2026-01-01T00:00:00.000Z")
    issued = datetime.strptime(info["issuedAt"], fmt).replace(tzinfo=UTC)
    expires = datetime.strptime(info["expirationTime"], fmt).replace(tzinfo=UTC)
    assert before - timedelta(seconds=1) <= issued <= datetime.now(UTC)
    assert expires - issued == timedelta(seconds=300)
    assert decl["supportedChains"] == [{"chainId": "eip155:8453", "type": "eip191"}]
    assert decl["schema"] == build_siwx_schema()


async def test_siwx_sign_in_once_per_message(ctx: Context) -> None:
    doc = await _signed(ctx)
    header = _header(doc, size=8192)  # the longest header read
    assert len(header) == 8192
    assert await siwx.sign_in(ctx, header) == WALLET.address.lower()
    async with ctx.db.session() as s:
        row = (await s.execute(select(SiwxNonce))).scalar_one()
    assert (row.nonce, row.wallet_address) == (doc["nonce"], WALLET.address.lower())
    assert row.used_at is not None and abs(row.used_at - utcnow()) < timedelta(seconds=60)
    assert await siwx.sign_in(ctx, _header(doc)) == Refused(
        "invalid_siwx_nonce_used", "This signed message was already used; sign a new one."
    )


@pytest.mark.parametrize(
    ("case", "code", "message"),
    [
        ("too_long", "invalid_siwx_header", siwx.MESSAGES["invalid_siwx_header"]),
        ("not_base64", "invalid_siwx_header", siwx.MESSAGES["invalid_siwx_header"]),
        ("not_a_payload", "invalid_siwx_header", siwx.MESSAGES["invalid_siwx_header"]),
        ("domain", "invalid_siwx_domain_mismatch", "The signed message is for another website."),
        (
            "chain",
            "invalid_siwx_chain_mismatch",
            "The signed message is for another chain than this server's.",
        ),
        (
            "forged",
            "invalid_siwx_signature",
            "The signature does not match the message's address.",
        ),
        (
            "wallet",
            "invalid_wallet",
            "The signed message's address is not an Ethereum address.",
        ),
    ],
)
async def test_siwx_refusals(ctx: Context, case: str, code: str, message: str) -> None:
    if case == "too_long":
        header = _header(await _signed(ctx), size=8196)
    elif case == "not_base64":
        header = "not base64 at all!"
    elif case == "not_a_payload":
        header = base64.b64encode(b'{"hello": 1}').decode()
    elif case == "domain":
        evil = "http://evil.example" + SIWX_PATH
        header = _header(await _signed(ctx, domain="evil.example", uri=evil))
    elif case == "chain":
        header = _header(await _signed(ctx, chainId="eip155:1"))
    elif case == "forged":
        doc = await _signed(ctx)
        doc["address"] = EthAccount.from_key("0x" + "43" * 32).address
        header = _header(doc)
    else:
        doc = await _signed(ctx)
        doc["address"] = "0x1234"
        header = _header(doc)
    assert await siwx.sign_in(ctx, header) == Refused(code, message)
    async with ctx.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(SiwxNonce)) == 0


def test_siwx_unknown_reasons_read_as_a_bad_signature() -> None:
    assert siwx._refuse("invalid_siwx_something_new") == Refused(
        "invalid_siwx_something_new", "The signature does not match the message's address."
    )
    assert siwx._refuse("invalid_siwx_expired") == Refused(
        "invalid_siwx_expired", "The signed message has expired; sign again."
    )


async def test_siwx_a_refusal_without_a_reason_reads_as_a_bad_signature(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def invalid(*_: Any) -> SIWxValidationResult:
        return SIWxValidationResult(is_valid=False)

    monkeypatch.setattr(siwx, "validate_siwx_message", invalid)
    assert await siwx.sign_in(ctx, _header(await _signed(ctx))) == Refused(
        "invalid_siwx_signature", "The signature does not match the message's address."
    )
