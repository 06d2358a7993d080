"""The README's tour in headless Chromium, on a fresh start in test mode: a real
``spacescribe run`` (its own anvil and TestUSDC, the demo Space made from espeak-ng voices and
transcribed offline by the worker), then storefront → demo Space → sign in and Buy with the
demo wallet → transcript downloaded → chat unlocked → a question answered with a citation.
Screenshots at 390 and 1280 px are checked for the key elements; a restart keeps it all."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page

from core.payments.demo import DEMO_ADDRESS
from core.service.demo_space import DEMO_SPACE_ID, DEMO_TITLE
from core.testchain import ANVIL_BIN
from tests.test_cli import CLI, _env, _free_port

SCREENSHOTS = Path(os.environ.get("SPACESCRIBE_SCREENSHOTS", "/tmp/spacescribe-screens"))
QUESTION = "How often does the lighthouse lamp turn?"
pytestmark = pytest.mark.skipif(not ANVIL_BIN.exists(), reason="anvil not installed (npm ci)")


class App:
    def __init__(self, tmp_path: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = _env(
            tmp_path,
            f"sqlite:///{tmp_path / 'tour.db'}",
            SPACESCRIBE_WEB__PORT=str(self.port),
            SPACESCRIBE_WEB__PUBLIC_URL=self.url,
        )
        self.env.pop("SPACESCRIBE_PAYMENTS__RPC_URL")
        self.proc: subprocess.Popen[str] | None = None
        self.banner = ""

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [*CLI, "run", "--roles", "web,scheduler,worker"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "component started" in line and "component=web" in line:
                self.banner = "".join(lines)
                return
        self.proc.kill()
        pytest.fail("app did not start:\n" + "".join(lines))

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, out
        self.proc = None


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    a = App(tmp_path)
    try:
        yield a
    finally:
        if a.proc is not None:
            a.proc.kill()
            a.proc.communicate(timeout=30)


async def _wait_for_demo_in_library(page: Page, url: str) -> None:
    """The worker transcribes the demo Space within seconds; the library lists it then."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        await page.goto(url + "/")
        if await page.locator(f"#recent + ul a[href='/spaces/{DEMO_SPACE_ID}']").count():
            return
        await page.wait_for_timeout(1000)
    pytest.fail("the demo Space was not transcribed in time")


async def _pay_with_demo_wallet(page: Page) -> None:
    """On the pay page the Buy/Unlock/Ask form led to: the demo wallet pays, back to the Space."""
    assert re.search(r"/pay/[A-Za-z0-9_-]+$", page.url), page.url
    await page.locator("#demo-button").click()
    await page.wait_for_function(
        "() => { const r = document.getElementById('result');"
        " return r && r.textContent && !r.textContent.endsWith('…'); }"
    )
    assert await page.locator("#result").inner_text() == (
        "Paid and credited. Go back to the Space to read it."
    )
    back = page.locator("#back a")
    assert await back.inner_text() == "Back to the Space"
    await back.click()
    await page.wait_for_url(f"**/spaces/{DEMO_SPACE_ID}")


async def _no_sideways_scroll(page: Page, width: int) -> None:
    assert await page.evaluate("() => document.documentElement.scrollWidth") <= width


async def _shot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5_000  # a rendered page, not a blank one
    return path


async def _context(browser: Browser, width: int, js: bool = True) -> BrowserContext:
    return await browser.new_context(
        viewport={"width": width, "height": 900}, java_script_enabled=js, accept_downloads=True
    )


async def test_the_tour_on_a_fresh_start(
    app: App,
    browser: Browser,
    tmp_path: Path,
) -> None:
    app.start()
    assert "Payments: TEST MODE" in app.banner
    demo_line = f"Demo Space: on, {app.url}/spaces/{DEMO_SPACE_ID} (imported now"
    assert demo_line in app.banner, app.banner

    wide = await _context(browser, 1280)
    page = await wide.new_page()
    page.set_default_timeout(60_000)
    await _wait_for_demo_in_library(page, app.url)
    assert await page.locator("#test-mode-ribbon").is_visible()
    assert await page.locator("#link").is_visible() and await page.locator("#q").is_visible()
    await _shot(page, "store-index-1280.png")

    # storefront → demo Space
    await page.locator(f"#recent + ul a[href='/spaces/{DEMO_SPACE_ID}']").click()
    await page.wait_for_url(f"**/spaces/{DEMO_SPACE_ID}")
    assert await page.locator("#space-title").inner_text() == DEMO_TITLE
    assert "Demo Space." in await page.locator("#demo-label").inner_text()
    assert await page.locator("#price").inner_text() == "0.2 USDC transcript"
    assert await page.locator("#status").inner_text() == "completed"
    og = page.locator("meta[property='og:title']")
    assert await og.get_attribute("content") == DEMO_TITLE
    assert "0.2 USDC" in (
        await page.locator("meta[property='og:description']").get_attribute("content") or ""
    )
    assert await page.locator("meta[name='twitter:card']").get_attribute("content") == "summary"

    # sign in with the demo wallet (a plain form), then Buy → pay with the demo wallet
    await page.locator("#demo-signin").click()
    await page.wait_for_url(f"**/spaces/{DEMO_SPACE_ID}")
    assert DEMO_ADDRESS.lower() in (await page.locator("#signed-in").inner_text()).lower()
    cookie = next(c for c in await wide.cookies() if c["name"] == "spacescribe_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and not cookie["secure"]
    await page.locator("#buy-button").click()
    await page.wait_for_url("**/pay/*")
    await _pay_with_demo_wallet(page)

    # the transcript, downloaded
    async with page.expect_download() as dl_info:
        await page.locator("#download-md").click()
    dl = await dl_info.value
    assert dl.suggested_filename == f"{DEMO_SPACE_ID}.md"
    saved = tmp_path / "transcript.md"
    await dl.save_as(saved)
    text = saved.read_text()
    assert text.startswith(f"# {DEMO_TITLE}") and "lighthouse" in text.lower()
    assert await page.locator("#download-json").is_visible()

    # chat unlocked, a question answered with a citation (Space, timestamp, excerpt)
    await page.locator("#unlock-button").click()
    await page.wait_for_url("**/pay/*")
    await _pay_with_demo_wallet(page)
    await page.locator("#question").fill(QUESTION)
    await page.locator("#ask-button").click()
    await page.wait_for_url("**/pay/*")
    await _pay_with_demo_wallet(page)
    answer = page.locator("article.answer").first
    assert await answer.locator(".question").inner_text() == f"“{QUESTION}”"
    source = answer.locator("li.source").first
    cited = await source.inner_text()
    assert f"Space {DEMO_SPACE_ID} at " in cited, cited
    assert re.search(r" at \d+:\d\d", cited) and "lamp" in cited.lower(), cited
    await _shot(page, "store-space-1280.png")
    await _no_sideways_scroll(page, 1280)

    # the same page at 390 px (the session cookie carried over): every key element there
    narrow = await _context(browser, 390)
    await narrow.add_cookies(await wide.cookies())
    small = await narrow.new_page()
    await small.goto(f"{app.url}/spaces/{DEMO_SPACE_ID}")
    for sel in ("#space-title", "#demo-label", "#price", "#download-md", "#ask-button"):
        assert await small.locator(sel).is_visible(), sel
    assert await small.locator("article.answer li.source").first.is_visible()
    await _no_sideways_scroll(small, 390)
    await _shot(small, "store-space-390.png")
    await small.goto(app.url + "/")
    await _no_sideways_scroll(small, 390)
    await _shot(small, "store-index-390.png")
    # keyboard: Tab reaches the skip link first, then the controls in order
    await small.keyboard.press("Tab")
    assert await small.evaluate("() => document.activeElement.className") == "skip"

    # without JavaScript: sign in with the demo wallet and Buy reach the pay page
    nojs = await _context(browser, 360, js=False)
    p = await nojs.new_page()
    await p.goto(f"{app.url}/spaces/{DEMO_SPACE_ID}")
    await p.locator("#demo-signin").click()
    await p.wait_for_url(f"**/spaces/{DEMO_SPACE_ID}")
    assert await p.locator("#download-md").is_visible()  # the same wallet: already owned
    for c in (wide, narrow, nojs):
        await c.close()

    # a restart: the demo Space is not made again, the purchase is still the wallet's
    app.stop()
    app.start()
    assert f"Demo Space: on, {app.url}/spaces/{DEMO_SPACE_ID} (completed)" in app.banner
    async with httpx.AsyncClient(base_url=app.url, timeout=30) as c:
        r = await c.post("/session/demo", data={"next": f"/spaces/{DEMO_SPACE_ID}"})
        assert r.status_code == 303
        page_html = (await c.get(f"/spaces/{DEMO_SPACE_ID}")).text
    assert 'id="download-md"' in page_html and QUESTION in page_html
    # what the outbox had for the web buyer is handled by the web role's drain (every few
    # seconds, so waited for, not assumed), none left
    rows = _web_outbox_when_drained(tmp_path / "tour.db")
    app.stop()
    assert {k for k, _ in rows} >= {"payment_confirmed", "chat_answer"}, rows
    assert {st for _, st in rows} == {"sent"}, rows


def _web_outbox_when_drained(db_path: Path) -> list[tuple[str, str]]:
    deadline = time.monotonic() + 60
    while True:
        with sqlite3.connect(db_path) as db:
            rows = db.execute("SELECT kind, status FROM outbox WHERE platform = 'web'").fetchall()
        if all(st != "pending" for _, st in rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)
