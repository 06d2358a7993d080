"""The HTTP status each route family answers for a refusal, through the real web app (httpx's
ASGI transport), on both engines. These are public API: they were written down from the
routes before their statuses moved to one table (``adapters.web.refusals``) and must not
change. No chain: what needs none (invalid input, unknown things, payments unconfigured)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update
from x402.http.utils import encode_payment_signature_header
from x402.schemas import PaymentPayload, PaymentRequirements

from bot.wiring import web_app
from core.context import Context
from core.db import Invoice, utcnow
from core.money import to_units
from core.pipeline.errors import SpaceUnavailable
from core.pipeline.xspaces import Outcome, XRefusesUs, error_for
from core.results import Caller, Quote
from core.service.invoicing import create_invoice

PUBLIC = "http://127.0.0.1:8080"  # the default web.public_url
SID = "1RDxlAoOeQRKL"
PRIVATE, REFUSING, BROKEN = "1PrivateSpace", "1XRefusesUsAa", "1BrokenResolv"
TOKEN = "A" * 32  # shaped like a link token, issued to no one
PAYER = "0x" + "11" * 20
ALICE = Caller("discord", "700000000000000001", "alice", chat_id="700000000000000003")


class _Resolver:
    """X as the Space check sees it, without the network."""

    async def resolve(self, space_id: str) -> object:
        if space_id == PRIVATE:
            raise error_for(Outcome.PRIVATE)
        if space_id == REFUSING:
            raise XRefusesUs("X refuses this server.")
        if space_id == BROKEN:
            raise RuntimeError("the resolver broke")
        raise SpaceUnavailable("Not in this test.")


@pytest.fixture
async def web(ctx: Context) -> AsyncIterator[httpx.AsyncClient]:
    ctx.wiring.resolver = _Resolver()  # type: ignore[assignment]
    transport = httpx.ASGITransport(app=web_app(ctx))
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC, timeout=30) as c:
        yield c


def _code(r: httpx.Response) -> str | None:
    """The refusal code of a JSON answer (``code`` or ``error``), or of a storefront page."""
    if r.headers.get("content-type", "").startswith("application/json"):
        data = r.json()
        return data.get("code") or data.get("error")
    return None


def _payment(extensions: dict[str, object] | None = None) -> str:
    """A PAYMENT-SIGNATURE header that names a payer (its signature is never checked here)."""
    accepted = PaymentRequirements(
        scheme="exact",
        network="eip155:31337",
        asset="0x" + "22" * 20,
        amount="500000",
        pay_to="0x" + "33" * 20,
        max_timeout_seconds=300,
        extra={"name": "USD Coin", "version": "2"},
    )
    auth = {
        "from": PAYER,
        "to": "0x" + "33" * 20,
        "value": "500000",
        "validAfter": "0",
        "validBefore": "9999999999",
        "nonce": "0x" + "44" * 32,
    }
    p = PaymentPayload(
        x402_version=2,
        accepted=accepted,
        payload={"authorization": auth, "signature": "0x" + "55" * 65},
        extensions=extensions,
    )
    return encode_payment_signature_header(p)


async def test_storefront(web: httpx.AsyncClient) -> None:
    assert (await web.get("/spaces", params={"link": "nope"})).status_code == 400  # invalid_space
    r = await web.get(f"/spaces/{SID}/transcript.md")  # not_signed_in
    assert r.status_code == 401 and "not_signed_in" in r.text
    assert (await web.get(f"/spaces/{SID}/a/b")).status_code == 404  # unknown_page
    assert (await web.get("/", params={"q": "w" * 201})).status_code == 400  # query_too_long
    r = await web.post(f"/spaces/{SID}/buy", headers={"sec-fetch-site": "cross-site"})
    assert r.status_code == 403 and "cross_site" in r.text
    r = await web.get("/session/challenge", params={"address": "nope"})
    assert (r.status_code, _code(r)) == (400, "invalid_address")
    r = await web.post("/session", json={}, headers={"sec-fetch-site": "cross-site"})
    assert (r.status_code, _code(r)) == (403, "cross_site")


async def test_sign_in(web: httpx.AsyncClient) -> None:
    r = await web.post("/session", json={})
    assert (r.status_code, _code(r)) == (401, "invalid_siwx_header")
    r = await web.get(f"/api/spaces/{SID}/transcript", headers={"SIGN-IN-WITH-X": "garbage"})
    assert (r.status_code, _code(r)) == (401, "invalid_siwx_header")


async def test_link_pages(web: httpx.AsyncClient) -> None:
    assert (await web.get("/link/not-a-token!")).status_code == 404
    assert (await web.get(f"/link/{TOKEN}")).status_code == 404  # unknown_link
    r = await web.get(f"/link/{TOKEN}/nonce", params={"address": PAYER})
    assert (r.status_code, _code(r)) == (404, "unknown_link")
    r = await web.get(f"/link/{TOKEN}/nonce", params={"address": "nope"})
    assert (r.status_code, _code(r)) == (400, "invalid_address")
    r = await web.post(f"/link/{TOKEN}", json={"signature": "0x"})
    assert (r.status_code, _code(r)) == (400, "malformed_message")
    r = await web.post(f"/link/{TOKEN}", json={"message": "hello"})
    assert (r.status_code, _code(r)) == (400, "invalid_signature")


async def test_pay_page(ctx: Context, web: httpx.AsyncClient) -> None:
    async with ctx.db.session() as s:
        q = await create_invoice(
            s,
            ctx,
            caller=ALICE,
            user_id=None,
            kind="chat_unlock",
            space_ids=[SID],
            amount_units=to_units("0.5"),
        )
    assert isinstance(q, Quote)
    path = f"/pay/{q.invoice_id}"
    r = await web.get(f"{path}/authorization", params={"payer": "nope"})
    assert (r.status_code, _code(r)) == (400, "invalid_address")
    r = await web.get(f"{path}/authorization", params={"payer": PAYER})  # no relayer key here
    assert (r.status_code, _code(r)) == (409, "payments_unavailable")
    r = await web.post(path, content=b"{not json", headers={"content-type": "application/json"})
    assert (r.status_code, _code(r)) == (400, "invalid_payload")
    unknown = path.replace(q.invoice_id[-4:], "zzzz")
    r = await web.get(f"{unknown}/authorization", params={"payer": PAYER})
    assert (r.status_code, _code(r)) == (404, "unknown_invoice")
    r = await web.post("/pay/not-an-invoice!", json={})
    assert (r.status_code, _code(r)) == (404, "unknown_invoice")
    async with ctx.db.session() as s:
        await s.execute(
            update(Invoice)
            .where(Invoice.public_id == q.invoice_id)
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    r = await web.get(f"{path}/authorization", params={"payer": PAYER})
    assert (r.status_code, _code(r)) == (409, "invoice_expired")


async def test_api(web: httpx.AsyncClient) -> None:
    async def expect(r: httpx.Response, status: int, code: str) -> None:
        assert (r.status_code, _code(r)) == (status, code), r.text

    await expect(await web.post("/x402/transcribe", json={"space": "nope"}), 400, "invalid_space")
    await expect(await web.post("/x402/transcribe", json={"space": PRIVATE}), 422, "space_private")
    await expect(await web.post("/x402/transcribe", json={"space": REFUSING}), 503, "x_refuses_us")
    await expect(
        await web.post("/x402/transcribe", json={"space": BROKEN}), 503, "metadata_unavailable"
    )
    # no relayer key or facilitator here: the 402 cannot be made
    await expect(await web.post("/x402/unlock", json={"space": SID}), 503, "payments_unavailable")
    await expect(
        await web.post("/x402/chat", json={"question": "q" * 5000, "spaces": [SID]}),
        400,
        "question_too_long",
    )
    await expect(await web.get(f"/api/spaces/{SID}"), 404, "unknown_space")
    await expect(await web.get("/api/spaces/a/b/c"), 400, "invalid_space")
    await expect(
        await web.get(f"/api/spaces/{SID}/transcript", params={"format": "pdf"}),
        400,
        "invalid_format",
    )
    wallet = {"X-Wallet-Address": PAYER, "X-Wallet-Timestamp": "1"}
    await expect(
        await web.get(f"/api/spaces/{SID}/transcript", headers=wallet),
        400,
        "incomplete_wallet_proof",
    )
    bad = {**wallet, "X-Wallet-Address": "nope", "X-Wallet-Signature": "0x00"}
    await expect(await web.get(f"/api/spaces/{SID}/transcript", headers=bad), 400, "invalid_wallet")
    stale = {**wallet, "X-Wallet-Signature": "0x00"}
    await expect(
        await web.get(f"/api/spaces/{SID}/transcript", headers=stale), 401, "stale_signature"
    )
    # the sale (core.service.x402_sale): refused before any money moves
    sig = {"PAYMENT-SIGNATURE": "garbage"}
    await expect(
        await web.post("/x402/unlock", json={"space": SID}, headers=sig),
        400,
        "invalid_payment_header",
    )
    bad_id = {"payment-identifier": {"info": {"id": "x"}}}
    sig = {"PAYMENT-SIGNATURE": _payment(bad_id)}
    await expect(
        await web.post("/x402/unlock", json={"space": SID}, headers=sig),
        400,
        "invalid_payment_identifier",
    )
    sig = {"PAYMENT-SIGNATURE": _payment()}
    await expect(await web.post("/x402/unlock", json={"space": SID}, headers=sig), 403, "not_owned")
