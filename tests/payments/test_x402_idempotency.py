"""Idempotent x402 retries (payment-identifier) and Sign-In-With-X re-access, end to end:
the official x402 client and SIWX helpers against the app under uvicorn, paying on anvil."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select, update
from x402.extensions.payment_identifier import (
    PAYMENT_IDENTIFIER,
    append_payment_identifier_to_extensions,
)
from x402.extensions.sign_in_with_x import (
    SIGN_IN_WITH_X,
    create_siwx_payload,
    encode_siwx_header,
)
from x402.http.utils import encode_payment_signature_header
from x402.schemas import PaymentRequired

from bot.wiring import web_app
from core.context import Context
from core.db import Database, PaymentReceipt, SiwxNonce, Space, X402Request
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
        assert pr.extensions[SIGN_IN_WITH_X]["supportedChains"][0]["chainId"] == chain.anvil.network  # type: ignore[index]
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
        signed = await _siwx(fresh_payer, pr, url=PUBLIC + "/x402/chat", nonce="otherq00000000001")
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
