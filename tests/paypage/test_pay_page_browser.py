"""The pay page in headless Chromium, on the real web server and the real anvil chain.

A test EIP-1193 wallet (``provider.js``, signing in Python with eth-account) pays an invoice
through the page's own script; the invoice must end credited on chain and in the database.
The refusals (expired invoice, wrong chain, rejected signature, tampered payload) must show
their specific message and credit nothing.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from playwright.async_api import Page, Route
from sqlalchemy import select, update

from core.context import Context
from core.db import Account, Invoice, TranscriptionPayment, User, utcnow
from core.money import to_units
from core.results import Caller, Quote
from tests.payments.test_x402_pay import _quote as quote_transcription
from tests.paypage.conftest import WalletPage, WebServer
from tests.stand_ins.chain import Chain

SPACE = "1PayPageTestA"
ALICE = Caller("telegram", "7001", "alice", chat_id="7001")
PRICE = to_units("0.2")
SCREENSHOTS = Path(os.environ.get("SPACESCRIBE_SCREENSHOTS", "/tmp/spacescribe-screens"))


async def _quote(ctx: Context) -> Quote:
    page = {"bot_username": "spacescribe_bot", "title": "Rollups, explained"}
    return await quote_transcription(ctx, SPACE, ALICE, page)


async def _invoice(ctx: Context, public_id: str) -> Invoice:
    async with ctx.db.session() as s:
        inv = (await s.execute(select(Invoice).where(Invoice.public_id == public_id))).scalar_one()
    return inv


async def _result(page: Page) -> str:
    # the status line ends in a final message (not a "…" progress line) once the script is done
    await page.wait_for_function(
        "() => { const r = document.getElementById('result');"
        " return r && r.textContent && !r.textContent.endsWith('…'); }"
    )
    return (await page.locator("#result").text_content()) or ""


async def test_pay_page_pays_invoice_in_chromium(
    web: WebServer, chain: Chain, fresh_payer: Any, wallet_page: WalletPage
) -> None:
    q = await _quote(web.ctx)
    before = chain.balance(chain.pay_to)
    page = await wallet_page(fresh_payer)
    resp = await page.goto(f"{web.url}/pay/{q.invoice_id}")
    assert resp is not None and resp.status == 200
    assert "script-src 'self'" in (resp.headers.get("content-security-policy") or "")
    assert await page.locator("#price").inner_text() == "0.2 USDC"
    assert await page.locator("#status").inner_text() == "open"
    assert "Rollups, explained" in await page.locator(".spaces").inner_text()
    # the direct-transfer alternative: recipient and a QR code drawn by the server
    await page.locator(".direct summary").click()
    assert (await page.locator("#direct-to").inner_text()).lower() == chain.pay_to.lower()
    qr = await page.request.get(f"{web.url}/pay/{q.invoice_id}/qr.svg")
    assert qr.status == 200 and b"<svg" in await qr.body()
    await page.wait_for_function(
        "() => document.querySelector('img.qr').complete"
        " && document.querySelector('img.qr').naturalWidth > 0"
    )
    # fits a 360 px phone: nothing wider than the viewport
    assert await page.evaluate("() => document.documentElement.scrollWidth") <= 360
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "pay-page.png"), full_page=True)

    await page.locator("#pay-button").click()
    text = await _result(page)
    assert text == "Paid and credited. You can go back to the chat.", text
    assert await page.locator("#status").inner_text() == "credited"
    back = page.locator("#back a")
    assert await back.is_visible()
    assert not await page.locator("#pay-button").is_visible()
    assert not await page.locator(".direct").is_visible()
    assert await back.get_attribute("href") == (
        f"https://t.me/spacescribe_bot?start=paid_{q.invoice_id}"
    )
    await page.screenshot(path=str(SCREENSHOTS / "pay-page-paid.png"), full_page=True)

    # on chain: pay_to received exactly the price
    assert chain.balance(chain.pay_to) == before + PRICE
    # in the database: credited, purchase recorded, the payer's wallet linked to the account
    inv = await _invoice(web.ctx, q.invoice_id)
    assert inv.status == "credited" and inv.transaction_hash
    assert inv.payer_address == fresh_payer.address.lower()
    async with web.ctx.db.session() as s:
        pays = (await s.execute(select(TranscriptionPayment))).scalars().all()
        acc = (
            await s.execute(select(Account).where(Account.platform_user_id == "7001"))
        ).scalar_one()
        user = await s.get(User, acc.user_id)
    assert len(pays) == 1 and pays[0].amount_usdc == "0.2" and pays[0].payment_verified
    assert pays[0].transaction_hash == inv.transaction_hash
    assert user is not None and user.wallet_address == fresh_payer.address.lower()
    # what the wallet signed is what the server chose: the invoice's amount and recipient
    signed = json.loads(page.signed[0])  # type: ignore[attr-defined]
    assert signed["message"]["value"] == str(PRICE)
    assert signed["message"]["to"].lower() == chain.pay_to.lower()
    assert signed["domain"]["verifyingContract"].lower() == chain.token_address.lower()

    # reloading shows it paid, with no pay button
    await page.reload()
    assert await page.locator("#status").inner_text() == "credited"
    assert await page.locator("#pay-button").count() == 0


async def test_unknown_and_expired_invoice_pages(
    web: WebServer, fresh_payer: Any, wallet_page: WalletPage
) -> None:
    page = await wallet_page(fresh_payer)
    for bad in ("nope", "A" * 30, "x" * 200, "abc%27%20OR%201%3D1--aaaaaaa"):
        resp = await page.goto(f"{web.url}/pay/{bad}")
        assert resp is not None and resp.status == 404
        assert await page.locator("h1").inner_text() == "Invoice not found"
    resp = await page.goto(f"{web.url}/pay/..%2F..%2Fetc%2Fpasswd")
    assert resp is not None and resp.status == 404
    q = await _quote(web.ctx)
    async with web.ctx.db.session() as s:
        await s.execute(
            update(Invoice)
            .where(Invoice.public_id == q.invoice_id)
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    resp = await page.goto(f"{web.url}/pay/{q.invoice_id}")
    assert resp is not None and resp.status == 200
    assert await page.locator("#status").inner_text() == "expired"
    assert "This invoice has expired" in await page.locator("#message").inner_text()
    assert await page.locator("#pay-button").count() == 0
    # the API refuses too, whatever a script might try
    r = await page.request.get(
        f"{web.url}/pay/{q.invoice_id}/authorization?payer={fresh_payer.address}"
    )
    assert r.status == 409 and (await r.json())["code"] == "invoice_expired"


async def _assert_nothing_paid(web: WebServer, chain: Chain, public_id: str, before: int) -> None:
    assert chain.balance(chain.pay_to) == before
    inv = await _invoice(web.ctx, public_id)
    assert inv.status == "open" and inv.transaction_hash is None
    async with web.ctx.db.session() as s:
        assert (await s.execute(select(TranscriptionPayment))).first() is None


async def test_wrong_chain_is_refused(
    web: WebServer, chain: Chain, fresh_payer: Any, wallet_page: WalletPage
) -> None:
    q = await _quote(web.ctx)
    before = chain.balance(chain.pay_to)
    page = await wallet_page(fresh_payer, chain_id=1, allow_switch=False)
    await page.goto(f"{web.url}/pay/{q.invoice_id}")
    await page.locator("#pay-button").click()
    text = await _result(page)
    assert text.startswith(
        "Wrong network: your wallet is on chain 1 but this payment is on chain 31337"
    )
    assert page.signed == []  # type: ignore[attr-defined]
    await _assert_nothing_paid(web, chain, q.invoice_id, before)


async def test_switching_chain_then_paying_works_and_rejection_is_explained(
    web: WebServer, chain: Chain, fresh_payer: Any, wallet_page: WalletPage
) -> None:
    q = await _quote(web.ctx)
    before = chain.balance(chain.pay_to)
    page = await wallet_page(fresh_payer, chain_id=1, allow_switch=True, reject=True)
    await page.goto(f"{web.url}/pay/{q.invoice_id}")
    await page.locator("#pay-button").click()
    text = await _result(page)
    assert text == "You rejected the request in your wallet; nothing was paid or changed."
    assert await page.locator("#pay-button").is_enabled()  # may try again
    await _assert_nothing_paid(web, chain, q.invoice_id, before)


async def test_tampered_payload_is_refused(
    web: WebServer, chain: Chain, fresh_payer: Any, wallet_page: WalletPage
) -> None:
    q = await _quote(web.ctx)
    before = chain.balance(chain.pay_to)
    other_before = chain.balance(chain.other.address)
    payer_before = chain.balance(fresh_payer.address)
    page = await wallet_page(fresh_payer)

    async def tamper(route: Route) -> None:
        if route.request.method != "POST":
            await route.continue_()
            return
        body = json.loads(route.request.post_data or "{}")
        body["authorization"]["to"] = chain.other.address  # redirect the money elsewhere
        await route.continue_(post_data=json.dumps(body))

    await page.route(f"{web.url}/pay/{q.invoice_id}", tamper)
    await page.goto(f"{web.url}/pay/{q.invoice_id}")
    await page.locator("#pay-button").click()
    text = await _result(page)
    assert text == "Refused: The payment is addressed to the wrong recipient.", text
    # not one unit moved: not to the address the money was redirected to, not from the payer
    assert chain.balance(chain.other.address) == other_before
    assert chain.balance(fresh_payer.address) == payer_before
    await _assert_nothing_paid(web, chain, q.invoice_id, before)
