"""Pay and link endpoints over HTTP (no browser): malformed input is refused, nothing changes."""

from __future__ import annotations

import json

import httpx

from bot.wiring import web_app
from core.context import Context
from core.money import to_units
from core.results import Caller, Quote
from core.service.invoicing import create_invoice
from tests.snapshot import snapshot

ALICE = Caller("discord", "700000000000000001", "alice", chat_id="700000000000000003")


async def test_malformed_pay_and_link_requests(ctx: Context) -> None:
    async with ctx.db.session() as s:
        q = await create_invoice(
            s,
            ctx,
            caller=ALICE,
            user_id=None,
            kind="chat_unlock",
            space_ids=["1PayPageTestB"],
            amount_units=to_units("0.5"),
            payload={"guild_id": "700000000000000002"},
        )
        q2 = await create_invoice(
            s,
            ctx,
            caller=ALICE,
            user_id=None,
            kind="chat_query",
            space_ids=["1PayPageTestB"],
            amount_units=to_units("1.0"),
            payload={"question": "<script>alert(1)</script> who spoke?", "title": "<b>x</b>"},
        )
    assert isinstance(q, Quote) and isinstance(q2, Quote)
    app = web_app(ctx)
    before = await snapshot(ctx)
    good_auth = {
        "from": "0x" + "11" * 20,
        "to": "0x" + "22" * 20,
        "value": "500000",
        "validAfter": "0",
        "validBefore": "9999999999",
        "nonce": "0x" + "33" * 32,
    }
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        page = await c.get(f"/pay/{q.invoice_id}")
        assert page.status_code == 200 and "Chat unlock" in page.text
        assert "https://discord.com/channels/700000000000000002/700000000000000003" in page.text
        assert "<script>" not in page.text  # scripts only from /static
        page2 = await c.get(f"/pay/{q2.invoice_id}")
        assert "&lt;script&gt;alert(1)&lt;/script&gt; who spoke?" in page2.text
        assert "<script>alert" not in page2.text and "<b>x</b>" not in page2.text
        assert "1.0 USDC" in page2.text
        for path in ("/static/pay.js", "/static/wallet.js", "/static/link.js", "/static/style.css"):
            assert (await c.get(path)).status_code == 200
        url = f"/pay/{q.invoice_id}"
        bad_bodies = [
            b"not json",
            b"[]",
            json.dumps({"authorization": good_auth}).encode(),
            json.dumps(
                {"authorization": {**good_auth, "value": "-1"}, "signature": "0x" + "ab" * 65}
            ).encode(),
            json.dumps(
                {"authorization": {**good_auth, "nonce": "0x12"}, "signature": "0x" + "ab" * 65}
            ).encode(),
            json.dumps(
                {"authorization": {**good_auth, "extra": "1"}, "signature": "0x" + "ab" * 65}
            ).encode(),
            json.dumps({"authorization": good_auth, "signature": "0x" + "ab" * 10}).encode(),
            b"{" + b" " * 20_000 + b"}",
        ]
        for body in bad_bodies:
            r = await c.post(url, content=body, headers={"content-type": "application/json"})
            assert r.status_code == 400 and r.json()["code"] == "invalid_payload", body[:40]
        r = await c.post(
            url,
            content=json.dumps({"authorization": good_auth, "signature": "0x" + "ab" * 65}),
            headers={"content-type": "text/plain"},
        )
        assert r.status_code == 400 and r.json()["code"] == "invalid_payload"
        r = await c.get(f"{url}/authorization", params={"payer": "0x123"})
        assert r.status_code == 400 and r.json()["code"] == "invalid_address"
        r = await c.post(
            "/pay/" + "Z" * 24, json={"authorization": good_auth, "signature": "0x" + "ab" * 65}
        )
        assert r.status_code == 404 and r.json()["code"] == "unknown_invoice"
        assert (await c.get("/pay/" + "Z" * 24 + "/qr.svg")).status_code == 404
        r = await c.get("/link/" + "Q" * 32 + "/nonce", params={"address": "0x" + "11" * 20})
        assert r.status_code == 404 and r.json()["code"] == "unknown_link"
        r = await c.post(
            "/link/" + "Q" * 32, content=b"nope", headers={"content-type": "application/json"}
        )
        assert r.status_code == 400 and r.json()["code"] == "malformed_message"
    assert await snapshot(ctx) == before
