"""Wallet linking (SIWE, EIP-4361) in headless Chromium on the real web server.

``/wallet`` gives a one-time link; the page's script signs the SIWE message through the
test wallet (``personal_sign`` bridged to eth-account) and the server links the account.
"""

from __future__ import annotations

import json
from typing import Any

from eth_account import Account
from sqlalchemy import select

from core.db import Account as AccountRow
from core.db import Outbox, User
from core.results import Caller
from core.service.wallet import wallet
from tests.paypage.conftest import WalletPage, WebServer
from tests.paypage.test_pay_page_browser import SCREENSHOTS

TG = Caller("telegram", "8001", "bob", chat_id="8001")
DC = Caller("discord", "900000000000000001", "bob#1", chat_id="900000000000000002")


async def _account(web: WebServer, caller: Caller) -> AccountRow:
    async with web.ctx.db.session() as s:
        return (
            await s.execute(
                select(AccountRow).where(
                    AccountRow.platform == caller.platform,
                    AccountRow.platform_user_id == caller.platform_user_id,
                )
            )
        ).scalar_one()


async def _link_in_browser(
    web: WebServer, wallet_page: WalletPage, who: Any, caller: Caller
) -> str:
    info = await wallet(web.ctx, caller)
    assert info.address is None and info.link_url.startswith(f"{web.url}/link/")
    page = await wallet_page(who)
    resp = await page.goto(info.link_url)
    assert resp is not None and resp.status == 200
    assert await page.evaluate("() => document.documentElement.scrollWidth") <= 360
    await page.locator("#link-button").click()
    await page.wait_for_function(
        "() => { const r = document.getElementById('result');"
        " return r && r.textContent && !r.textContent.endsWith('…'); }"
    )
    text = (await page.locator("#result").text_content()) or ""
    assert text.startswith(f"Linked: {who.address.lower()}"), text
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(
        path=str(SCREENSHOTS / f"link-page-{caller.platform}.png"), full_page=True
    )
    # one time only: the same link now explains itself and links nothing
    resp = await page.goto(info.link_url)
    assert resp is not None and resp.status == 410
    assert "already used" in await page.locator("#message").inner_text()
    await page.close()
    return info.link_url


async def test_link_page_links_wallet_across_platforms(
    web: WebServer, wallet_page: WalletPage
) -> None:
    who = Account.create()
    await _link_in_browser(web, wallet_page, who, TG)
    await _link_in_browser(web, wallet_page, who, DC)
    tg, dc = await _account(web, TG), await _account(web, DC)
    assert tg.user_id is not None and tg.user_id == dc.user_id  # one person, one wallet
    async with web.ctx.db.session() as s:
        user = await s.get(User, tg.user_id)
        msgs = (
            (await s.execute(select(Outbox).where(Outbox.kind == "wallet_linked"))).scalars().all()
        )
    assert user is not None and user.wallet_address == who.address.lower()
    assert sorted((m.platform, m.recipient) for m in msgs) == sorted(
        [("telegram", "8001"), ("discord", "900000000000000001")]
    )
    assert json.loads(msgs[0].payload)["address"] == who.address.lower()
    info = await wallet(web.ctx, TG)
    assert info.address == who.address.lower()


async def test_link_page_rejection_and_bad_links(web: WebServer, wallet_page: WalletPage) -> None:
    who = Account.create()
    info = await wallet(web.ctx, TG)
    page = await wallet_page(who, reject=True)
    await page.goto(info.link_url)
    await page.locator("#link-button").click()
    await page.wait_for_function(
        "() => { const r = document.getElementById('result');"
        " return r && r.textContent && !r.textContent.endsWith('…'); }"
    )
    assert (await page.locator("#result").text_content()) == (
        "You rejected the request in your wallet; nothing was paid or changed."
    )
    assert (await _account(web, TG)).user_id is None
    for bad in ("short", "A" * 32, "x" * 100):
        resp = await page.goto(f"{web.url}/link/{bad}")
        assert resp is not None and resp.status == 404
        assert "not valid" in await page.locator("#message").inner_text()
