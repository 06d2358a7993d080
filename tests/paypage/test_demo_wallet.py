"""Test mode's pay page in headless Chromium: the TEST MODE ribbon and "Pay with the demo
wallet", on a real test-mode chain (``bot.testmode``: its own anvil, TestUSDC deployed, demo
wallet funded) and the real web server. Live mode has neither, and its demo route refuses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from bot.testmode import LocalChain, local_chain_context, start_test_chain
from bot.wiring import web_app, wire
from core.config import Secrets
from core.context import Context
from core.db import Database, TranscriptionPayment
from core.payments.demo import DEMO_ADDRESS, LIVE_REFUSAL
from core.testchain import balance, token_at
from core.testkeys import OPERATOR_ADDRESS
from tests.conftest import make_settings
from tests.paypage.conftest import WalletPage, WebServer
from tests.paypage.test_pay_page_browser import PRICE, SCREENSHOTS, _invoice, _quote, _result
from tests.stand_ins.chain import Chain, free_port


@pytest.fixture
async def test_mode_web(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[WebServer, LocalChain]]:
    """What `spacescribe run` does in test mode, in-process: start the local chain and serve
    the app with the test-mode context."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = make_settings(db_url, tmp_path / "data", web={"public_url": url})
    assert settings.payments.mode == "test"  # no pay_to: the default
    chain = await asyncio.to_thread(start_test_chain, settings)
    ctx = local_chain_context(
        Context(settings, Secrets.model_construct(), Database(db_url), instance="test:tm"), chain
    )
    wire(ctx)  # as the runtime does
    server = uvicorn.Server(
        uvicorn.Config(web_app(ctx), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.025)
    try:
        yield WebServer(ctx, url, server), chain
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        await ctx.close()
        await asyncio.to_thread(chain.stop)


async def test_demo_wallet_pays_through_the_pay_page(
    test_mode_web: tuple[WebServer, LocalChain], wallet_page: WalletPage, fresh_payer: Any
) -> None:
    web, chain = test_mode_web
    token = token_at(chain.anvil.w3, chain.token_address)
    demo_before = balance(token, DEMO_ADDRESS)
    q = await _quote(web.ctx)
    page = await wallet_page(fresh_payer)  # a browser wallet is there too; it is not used
    resp = await page.goto(f"{web.url}/pay/{q.invoice_id}")
    assert resp is not None and resp.status == 200
    ribbon = page.locator("#test-mode-ribbon")
    assert await ribbon.is_visible()
    assert "TEST MODE" in await ribbon.inner_text() and "no real money" in await ribbon.inner_text()
    demo = page.locator("#demo-button")
    assert await demo.is_visible() and await page.locator("#pay-button").is_visible()
    assert await demo.inner_text() == "Pay with the demo wallet"
    assert await page.evaluate("() => document.documentElement.scrollWidth") <= 360
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "pay-page-test-mode.png"), full_page=True)

    await demo.click()
    text = await _result(page)
    assert text == "Paid and credited. You can go back to the chat.", text
    assert await page.locator("#status").inner_text() == "credited"
    assert not await demo.is_visible() and not await page.locator("#pay-button").is_visible()
    assert page.signed == []  # type: ignore[attr-defined]  # the browser wallet signed nothing

    # on the local chain: the demo wallet paid the test operator exactly the price
    assert balance(token, DEMO_ADDRESS) == demo_before - PRICE
    assert balance(token, OPERATOR_ADDRESS) == PRICE
    inv = await _invoice(web.ctx, q.invoice_id)
    assert inv.status == "credited" and inv.payer_address == DEMO_ADDRESS.lower()
    async with web.ctx.db.session() as s:
        pays = (await s.execute(select(TranscriptionPayment))).scalars().all()
    assert len(pays) == 1 and pays[0].payment_verified
    assert pays[0].transaction_hash == inv.transaction_hash

    # the same invoice cannot be paid twice by the demo wallet
    async with httpx.AsyncClient(timeout=30) as c:
        again = await c.post(f"{web.url}/pay/{q.invoice_id}/demo", json={})
    assert again.status_code == 409 and again.json()["code"] == "already_paid"
    assert balance(token, DEMO_ADDRESS) == demo_before - PRICE


async def test_live_mode_refuses_the_demo_wallet(
    web: WebServer, chain: Chain, fresh_payer: Any, wallet_page: WalletPage
) -> None:
    assert web.ctx.settings.payments.mode == "live"  # pay_to set
    q = await _quote(web.ctx)
    before = chain.balance(DEMO_ADDRESS)
    page = await wallet_page(fresh_payer)
    resp = await page.goto(f"{web.url}/pay/{q.invoice_id}")
    assert resp is not None and resp.status == 200
    assert await page.locator("#pay-button").is_visible()
    assert await page.locator("#demo-button").count() == 0
    assert await page.locator("#test-mode-ribbon").count() == 0
    async with httpx.AsyncClient(timeout=30) as c:
        r = await c.post(f"{web.url}/pay/{q.invoice_id}/demo", json={})
    assert r.status_code == 403
    assert r.json() == {"status": "refused", "code": "test_mode_only", "message": LIVE_REFUSAL}
    inv = await _invoice(web.ctx, q.invoice_id)
    assert inv.status == "open" and chain.balance(DEMO_ADDRESS) == before


async def test_demo_route_bad_input_in_test_mode(
    test_mode_web: tuple[WebServer, LocalChain],
) -> None:
    """Bad input to the demo route gets its specific error and moves no test USDC."""
    web, chain = test_mode_web
    token = token_at(chain.anvil.w3, chain.token_address)
    before = balance(token, DEMO_ADDRESS)
    q = await _quote(web.ctx)
    base = f"{web.url}/pay/{q.invoice_id}/demo"
    cases: list[tuple[str, dict[str, Any], int, str, str]] = [
        ("/pay/" + "Z" * 24 + "/demo", {"json": {}}, 404, "unknown_invoice", "No such invoice"),
        ("/pay/abc/demo", {"json": {}}, 404, "unknown_invoice", "No such invoice"),
        ("/pay/..%2F..%2Fetc/demo", {"json": {}}, 404, "unknown_invoice", "No such invoice"),
        (base, {"content": b"pay", "headers": {"content-type": "text/plain"}}, 400,
         "invalid_payload", "application/json"),
        (base, {"content": b"[1]", "headers": {"content-type": "application/json"}}, 400,
         "invalid_payload", "not a JSON object"),
        (base, {"json": {"payer": "0x" + "11" * 20}}, 400, "invalid_payload",
         "The demo wallet takes no input"),
        (base, {"content": b"{" * 20_000, "headers": {"content-type": "application/json"}}, 400,
         "invalid_payload", "larger than"),
    ]  # fmt: skip
    async with httpx.AsyncClient(timeout=30) as c:
        for path, kw, status, code, phrase in cases:
            url = path if path.startswith("http") else web.url + path
            r = await c.post(url, **kw)
            assert r.status_code == status, (path, r.text)
            assert r.json()["code"] == code and phrase in r.json()["message"], (path, r.text)
    inv = await _invoice(web.ctx, q.invoice_id)
    assert inv.status == "open" and balance(token, DEMO_ADDRESS) == before
