"""A browser wallet on the storefront, in headless Chromium on the real web server (live
mode on the session's anvil chain): Sign-In with Ethereum through ``static/session.js``
(``personal_sign`` bridged to eth-account), then Buy → the pay page's wallet signs the
EIP-3009 authorization → back to the Space, whose transcript is now the wallet's."""

from __future__ import annotations

from typing import Any

from core.db import TranscriptionPayment
from tests.chat.helpers import add_space, space_id_for
from tests.paypage.conftest import WalletPage, WebServer
from tests.paypage.test_pay_page_browser import SCREENSHOTS, _result
from tests.store.test_store_http import SEGMENTS, _count

SID = space_id_for(7)


async def test_sign_in_and_buy_with_a_browser_wallet(
    web: WebServer, wallet_page: WalletPage, fresh_payer: Any
) -> None:
    await add_space(web.ctx, 7, SEGMENTS, title="Rollups weekly", participants=["ann", "bob"])
    folder = web.ctx.spaces_dir / SID
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "transcript.md").write_text("# Rollups weekly\n\nWe ship the rollup in May.\n")
    assert not web.ctx.settings.payments.test_mode

    page = await wallet_page(fresh_payer)  # 360 px wide
    await page.goto(f"{web.url}/spaces/{SID}")
    assert await page.locator("#demo-signin").count() == 0  # live mode: no demo wallet
    await page.locator("#signin-button").click()
    await page.wait_for_selector("#signed-in")
    assert fresh_payer.address.lower() in (await page.locator("#signed-in").inner_text()).lower()
    assert await page.evaluate("() => document.documentElement.scrollWidth") <= 360

    await page.locator("#buy-button").click()
    await page.wait_for_url("**/pay/*")
    await page.locator("#pay-button").click()
    assert await _result(page) == "Paid and credited. Go back to the Space to read it."
    await page.locator("#back a").click()
    await page.wait_for_url(f"**/spaces/{SID}")
    assert await page.locator("#download-md").is_visible()
    assert await page.locator("#unlock-button").is_visible()
    assert await _count(web.ctx, TranscriptionPayment) == 1
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "store-space-owned-360.png"), full_page=True)
