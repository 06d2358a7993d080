"""The x402 HTTP API on a real socket (uvicorn on a free port), paid by the official client."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import requests
import uvicorn
from eth_account import Account
from eth_account.messages import encode_defunct
from sqlalchemy import func, select, update
from x402.http.clients.requests import wrapRequestsWithPayment
from x402.http.utils import decode_payment_response_header

from bot.wiring import web_app
from core.context import Context
from core.db import ProcessingJob, Space, TranscriptionPayment
from core.payments.wallet_proof import transcript_message
from core.results import Refused
from tests.factories import completed_space
from tests.payments.conftest import make_client
from tests.stand_ins.chain import Chain, free_port

SPACE = "1RDxlAoOeQRKL"


@pytest.fixture
async def server(pay_ctx: Context) -> AsyncIterator[str]:
    port = free_port()
    cfg = uvicorn.Config(
        web_app(pay_ctx), host="127.0.0.1", port=port, log_config=None, lifespan="off"
    )
    srv = uvicorn.Server(cfg)
    task = asyncio.create_task(srv.serve())
    while not srv.started:
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        await task


def _pay(
    base: str, chain: Chain, account: Any, path: str, body: dict[str, Any]
) -> requests.Response:
    session = wrapRequestsWithPayment(requests.Session(), make_client(chain, account))
    return session.post(base + path, json=body, timeout=30)


async def test_official_client_pays_transcribe_and_space_is_queued(
    server: str,
    pay_ctx: Context,
    chain: Chain,
    fresh_payer,  # type: ignore[no-untyped-def]
) -> None:
    before = chain.balance(chain.pay_to)
    r = await asyncio.to_thread(
        _pay,
        server,
        chain,
        fresh_payer,
        "/x402/transcribe",
        {"space": f"https://x.com/i/spaces/{SPACE}"},
    )
    assert r.status_code == 200, r.text
    settle = decode_payment_response_header(r.headers["PAYMENT-RESPONSE"])
    assert settle.success and settle.transaction
    data = r.json()
    assert (
        data["paid"]
        and data["space"]["status"] == "pending"
        and data["space"]["queue_position"] == 1
    )
    assert chain.balance(chain.pay_to) == before + 200_000
    async with pay_ctx.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(ProcessingJob)) == 1
        assert await s.scalar(select(func.count()).select_from(TranscriptionPayment)) == 1
    # paying again for what the wallet owns charges nothing
    r2 = await asyncio.to_thread(
        _pay, server, chain, fresh_payer, "/x402/transcribe", {"space": SPACE}
    )
    assert r2.status_code == 200 and r2.json()["already_owned"] is True
    assert chain.balance(chain.pay_to) == before + 200_000
    async with httpx.AsyncClient(base_url=server) as c:
        info = await c.get(f"/api/spaces/{SPACE}")
        assert info.status_code == 200 and info.json()["status"] == "pending"
        # transcript: owner proves the wallet; not ready yet → 409, stranger → 403
        ts = int(time.time())
        sig = Account.sign_message(
            encode_defunct(text=transcript_message(SPACE, ts)), fresh_payer.key
        )
        h = {
            "X-Wallet-Address": fresh_payer.address,
            "X-Wallet-Timestamp": str(ts),
            "X-Wallet-Signature": "0x" + sig.signature.hex(),
        }
        assert (await c.get(f"/api/spaces/{SPACE}/transcript", headers=h)).status_code == 409
        other = {**h, "X-Wallet-Address": chain.other.address}
        assert (await c.get(f"/api/spaces/{SPACE}/transcript", headers=other)).status_code == 401
        async with pay_ctx.db.session() as s:
            await s.execute(update(Space).values(status="completed"))
        path = pay_ctx.spaces_dir / SPACE / "transcript.md"
        path.parent.mkdir(parents=True)
        path.write_text("# Transcript\n\nhello\n")
        got = await c.get(f"/api/spaces/{SPACE}/transcript", headers=h)
        assert got.status_code == 200 and "hello" in got.text
        # the other formats: subtitles beside the md; an unknown format is a clear 400
        (path.parent / "transcript.vtt").write_text(
            "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nhello\n"
        )
        vtt = await c.get(f"/api/spaces/{SPACE}/transcript?format=vtt", headers=h)
        assert vtt.status_code == 200 and vtt.headers["content-type"].startswith("text/vtt")
        assert f'filename="{SPACE}.vtt"' in vtt.headers["content-disposition"]
        missing = await c.get(f"/api/spaces/{SPACE}/transcript?format=srt", headers=h)
        assert missing.status_code == 409
        bad = await c.get(f"/api/spaces/{SPACE}/transcript?format=pdf", headers=h)
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_format"
        sig2 = Account.sign_message(
            encode_defunct(text=transcript_message(SPACE, ts)), chain.other.key
        )
        h2 = {
            **h,
            "X-Wallet-Address": chain.other.address,
            "X-Wallet-Signature": "0x" + sig2.signature.hex(),
        }
        assert (await c.get(f"/api/spaces/{SPACE}/transcript", headers=h2)).status_code == 403


async def test_402_and_bad_requests(
    server: str, pay_ctx: Context, chain: Chain, recorded_spaces
) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=server) as c:
        r = await c.post("/x402/transcribe", json={"space": SPACE})
        assert r.status_code == 402
        required = json.loads(base64.b64decode(r.headers["PAYMENT-REQUIRED"]))
        acc = required["accepts"][0]
        assert acc["amount"] == "200000" and acc["network"] == "eip155:31337"
        assert acc["payTo"] == chain.pay_to and acc["extra"]["name"] == "USD Coin"
        bad = await c.post("/x402/transcribe", json={"space": "https://evil.com/i/spaces/x"})
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_space"
        big = await c.post(
            "/x402/transcribe",
            content=b"{" + b" " * 70_000 + b"}",
            headers={"content-type": "application/json"},
        )
        assert big.status_code == 413
        hdr = await c.post(
            "/x402/transcribe", json={"space": SPACE}, headers={"PAYMENT-SIGNATURE": "A" * 20_000}
        )
        assert hdr.status_code == 431
        junk = await c.post(
            "/x402/transcribe", json={"space": SPACE}, headers={"PAYMENT-SIGNATURE": "not-base64!!"}
        )
        assert junk.status_code == 400 and junk.json()["error"] == "invalid_payment_header"
        recorded_spaces.live.add("1YqJDqWqbNVGV")
        live = await c.post("/x402/transcribe", json={"space": "1YqJDqWqbNVGV"})
        assert live.status_code == 402  # payable; it will be transcribed when it ends
        assert "when it ends" in live.headers["X-Spacescribe-Note"]
        extra = await c.post("/x402/transcribe", json={"space": SPACE, "x": 1})
        assert extra.status_code == 422
        unlock = await c.post("/x402/unlock", json={"space": SPACE})
        assert unlock.status_code == 402
        assert (await c.get("/api/spaces/..%2F..%2Fetc")).status_code in (400, 404)
        assert (await c.get("/api/spaces/1RDxlAoOeQRKL")).status_code == 404
        spec = (await c.get("/openapi.json")).json()
        for route in ("/x402/transcribe", "/x402/unlock", "/x402/chat", "/api/spaces/{space_id}"):
            assert route in spec["paths"]
    async with pay_ctx.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(TranscriptionPayment)) == 0


async def test_unlock_and_chat_paid_over_http(
    server: str, pay_ctx: Context, chain: Chain, fresh_payer
) -> None:  # type: ignore[no-untyped-def]
    from core.payments import FunctionFulfiller, invoice_requirements

    async def answer(ctx: Context, req: Any) -> dict[str, Any]:
        return {"answer": f"about {req.space_ids[0]}: {req.payload['question']}"}

    pay_ctx.wiring.add_fulfiller("chat_query", FunctionFulfiller(answer))
    before = chain.balance(chain.pay_to)
    for path, body in (
        ("/x402/transcribe", {"space": SPACE}),
        ("/x402/unlock", {"space": SPACE}),
        ("/x402/chat", {"question": "who spoke?", "spaces": [SPACE]}),
    ):
        r = await asyncio.to_thread(_pay, server, chain, fresh_payer, path, body)
        assert r.status_code == 200, (path, r.text)
    assert r.json()["answer"] == {"answer": f"about {SPACE}: who spoke?"}
    assert chain.balance(chain.pay_to) == before + 200_000 + 500_000 + 1_000_000
    async with httpx.AsyncClient(base_url=server) as c:
        too_many = await c.post("/x402/chat", json={"question": "q", "spaces": [SPACE] * 11})
        assert too_many.status_code == 400 and too_many.json()["error"] == "too_many_spaces"
    unknown = await invoice_requirements(pay_ctx, "NoSuchInvoiceAtAll12345")
    assert getattr(unknown, "code", None) == "unknown_invoice"


async def test_unlock_without_transcript_is_refused_before_charging(
    server: str, chain: Chain, fresh_payer
) -> None:  # type: ignore[no-untyped-def]
    before = chain.balance(chain.pay_to)
    r = await asyncio.to_thread(_pay, server, chain, fresh_payer, "/x402/unlock", {"space": SPACE})
    assert r.status_code == 403 and r.json()["error"] == "not_owned"
    assert chain.balance(chain.pay_to) == before


async def test_unconfigured_payments_answer_503(ctx: Context) -> None:
    """No relayer key and no facilitator URL: a clear 503, never a 500, nothing recorded."""
    transport = httpx.ASGITransport(app=web_app(ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.post("/x402/transcribe", json={"space": SPACE})
    assert r.status_code == 503 and r.json()["error"] == "payments_unavailable"


async def test_library_space_sold_over_http_with_x_unreachable(
    server: str,
    pay_ctx: Context,
    chain: Chain,
    fresh_payer,  # type: ignore[no-untyped-def]
) -> None:
    """A completed Space is quoted, paid and delivered while X's hosts refuse connections
    (the production extractor's own network error); X unreachable refuses the rest (503)."""
    from tests.stand_ins.x_spaces import x_unreachable

    async with pay_ctx.db.session() as s:
        s.add(completed_space(SPACE, "Held in the library"))
    path = pay_ctx.spaces_dir / SPACE / "transcript.md"
    path.parent.mkdir(parents=True)
    path.write_text("# Transcript\n\nfrom the library\n")
    pay_ctx.wiring.resolver = None  # yt-dlp's real extractor, whose requests to X fail
    async with x_unreachable():
        async with httpx.AsyncClient(base_url=server, timeout=60) as c:
            other = await c.post("/x402/transcribe", json={"space": "1YqJDqWqbNVGV"})
            assert other.status_code == 503 and other.json()["error"] == "space_unreachable"
            quote = await c.post("/x402/transcribe", json={"space": SPACE})
            assert quote.status_code == 402
        r = await asyncio.to_thread(
            _pay, server, chain, fresh_payer, "/x402/transcribe", {"space": SPACE}
        )
        assert r.status_code == 200, r.text
        assert r.json()["space"]["status"] == "completed"
        ts = int(time.time())
        sig = Account.sign_message(
            encode_defunct(text=transcript_message(SPACE, ts)), fresh_payer.key
        )
        h = {
            "X-Wallet-Address": fresh_payer.address,
            "X-Wallet-Timestamp": str(ts),
            "X-Wallet-Signature": "0x" + sig.signature.hex(),
        }
        async with httpx.AsyncClient(base_url=server) as c:
            got = await c.get(f"/api/spaces/{SPACE}/transcript", headers=h)
        assert got.status_code == 200 and "from the library" in got.text


# --- the wallet proof itself (core.payments.wallet_proof), without the HTTP layer ---

_PROVER = Account.from_key("0x" + "11" * 32)


def _proof(message: str, key: Any = _PROVER) -> str:
    return "0x" + Account.sign_message(encode_defunct(text=message), key.key).signature.hex()


def test_wallet_proof_names_the_lower_case_wallet_within_five_minutes_either_way() -> None:
    from core.payments.wallet_proof import MAX_AGE_SECONDS, verify_wallet_proof

    assert MAX_AGE_SECONDS == 300
    msg = transcript_message(SPACE, 1_000_000)
    assert msg == f"spacescribe transcript {SPACE} 1000000"
    sig = _proof(msg)
    for now in (1_000_000, 1_000_300, 999_700):  # the bounds themselves are accepted
        assert verify_wallet_proof(msg, _PROVER.address, 1_000_000, sig, now=now) == (
            _PROVER.address.lower()
        )
    # a checksummed or lower-case address alike
    assert verify_wallet_proof(msg, _PROVER.address.lower(), 1_000_000, sig, now=1_000_000) == (
        _PROVER.address.lower()
    )
    # without ``now``, the clock: a timestamp of now passes, one of an hour ago does not
    t = int(time.time())
    fresh = transcript_message(SPACE, t)
    assert verify_wallet_proof(fresh, _PROVER.address, t, _proof(fresh)) == _PROVER.address.lower()
    old = transcript_message(SPACE, t - 3600)
    stale = verify_wallet_proof(old, _PROVER.address, t - 3600, _proof(old))
    assert isinstance(stale, Refused) and stale.code == "stale_signature"


def test_wallet_proof_refusals_say_which_header_is_wrong() -> None:
    from core.payments.wallet_proof import verify_wallet_proof

    msg = transcript_message(SPACE, 1_000_000)
    sig = _proof(msg)
    cases = {
        ("not-an-address", 1_000_000, sig, 1_000_000): (
            "invalid_wallet",
            "X-Wallet-Address is not an Ethereum address.",
        ),
        (_PROVER.address, 1_000_000, sig, 1_000_301): (
            "stale_signature",
            "X-Wallet-Timestamp is more than 5 minutes off.",
        ),
        (_PROVER.address, 1_000_000, sig, 999_699): (
            "stale_signature",
            "X-Wallet-Timestamp is more than 5 minutes off.",
        ),
        (_PROVER.address, 1_000_000, "0x1234", 1_000_000): (
            "invalid_signature",
            "X-Wallet-Signature could not be verified.",
        ),
        (_PROVER.address, 1_000_000, _proof(msg, Account.from_key("0x" + "22" * 32)), 1_000_000): (
            "invalid_signature",
            "The signature is not from X-Wallet-Address.",
        ),
        # signed, but over another message (another Space or time): not this proof
        (_PROVER.address, 1_000_000, _proof(msg + "0"), 1_000_000): (
            "invalid_signature",
            "The signature is not from X-Wallet-Address.",
        ),
    }
    for (address, ts, signature, now), (code, message) in cases.items():
        got = verify_wallet_proof(msg, address, ts, signature, now=now)
        assert got == Refused(code, message), (address, ts, now, got)
