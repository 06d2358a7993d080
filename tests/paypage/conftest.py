"""The real web server (uvicorn on a free loopback port) and headless Debian Chromium.

- ``web``: a :class:`WebServer` serving ``web_app(ctx)`` for a Context on ``db_url``
  whose payments point at the session anvil chain (in-process settlement by the relayer).
- ``browser``: Chromium via Playwright (``executable_path=/usr/bin/chromium``; nothing
  downloaded), shared by the session.
- ``wallet_page``: ``factory(account, chain_id=…, allow_switch=…, reject=…) -> Page`` at
  360 px wide with a test EIP-1193 provider as ``window.ethereum``: its signing requests
  are bridged to Python (``page.expose_function``) and signed there with eth-account, the
  way a wallet extension signs outside the page.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from playwright.async_api import Browser, Page, async_playwright

from bot.wiring import web_app, wire
from core.context import Context
from core.db import Database
from tests.conftest import make_settings
from tests.payments.conftest import chain_secrets
from tests.stand_ins.chain import Chain, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PROVIDER_JS = (Path(__file__).parent / "provider.js").read_text()


@dataclass
class WebServer:
    ctx: Context
    url: str
    server: uvicorn.Server


@pytest.fixture
async def web(db_url: str, tmp_path: Path, chain: Chain) -> AsyncIterator[WebServer]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = make_settings(
        db_url, tmp_path / "data", payments=chain.payment_settings(), web={"public_url": url}
    )
    ctx = wire(Context(settings, chain_secrets(chain), Database(db_url), instance="test:web"))
    config = uvicorn.Config(
        web_app(ctx), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.025)
    assert server.started, "uvicorn did not start"
    try:
        yield WebServer(ctx, url, server)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        await ctx.close()


@pytest.fixture(scope="session")
async def browser(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield b
        finally:
            await b.close()


def _wallet_typed_data(raw: str) -> dict[str, Any]:
    """Like a wallet: decimal strings for uint fields are numbers."""
    data: dict[str, Any] = json.loads(raw)
    uints = {f["name"] for f in data["types"][data["primaryType"]] if f["type"].startswith("uint")}
    data["message"] = {
        k: int(v) if k in uints and isinstance(v, str) else v for k, v in data["message"].items()
    }
    return data


WalletPage = Callable[..., Awaitable[Page]]


@pytest.fixture
async def wallet_page(browser: Browser) -> AsyncIterator[WalletPage]:
    contexts = []

    async def make(
        account: Any,
        *,
        chain_id: int = 31337,
        allow_switch: bool = True,
        reject: bool = False,
    ) -> Page:
        bctx = await browser.new_context(viewport={"width": 360, "height": 740})
        contexts.append(bctx)
        signed: list[str] = []

        def sign_typed(address: str, raw: str) -> str:
            assert address.lower() == account.address.lower()
            msg = encode_typed_data(full_message=_wallet_typed_data(raw))
            signed.append(raw)
            return "0x" + Account.sign_message(msg, account.key).signature.hex()

        def personal_sign(hex_message: str, address: str) -> str:
            assert address.lower() == account.address.lower()
            msg = encode_defunct(hexstr=hex_message)
            return "0x" + Account.sign_message(msg, account.key).signature.hex()

        await bctx.expose_function("__walletSignTyped", sign_typed)
        await bctx.expose_function("__walletPersonalSign", personal_sign)
        cfg = {
            "address": account.address.lower(),
            "chainId": chain_id,
            "allowSwitch": allow_switch,
            "reject": reject,
        }
        await bctx.add_init_script(f"window.__walletConfig = {json.dumps(cfg)};\n{PROVIDER_JS}")
        page = await bctx.new_page()
        page.set_default_timeout(30_000)
        page.signed = signed  # type: ignore[attr-defined]
        return page

    yield make
    for c in contexts:
        await c.close()
