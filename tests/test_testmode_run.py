"""Test mode as a newcomer starts it: a real ``spacescribe run --roles web`` subprocess with no
``payments.pay_to``, its own anvil and TestUSDC, a purchase with the demo wallet, a restart."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from web3 import Web3

from bot.testmode import local_chain_payments
from core.config import Secrets
from core.context import Context
from core.db import Database
from core.testchain import ANVIL_BIN, balance, token_at
from core.testkeys import DEMO_BUYER_KEY, OPERATOR_ADDRESS
from tests.conftest import make_settings
from tests.payments.test_x402_pay import _quote
from tests.test_cli import _env, _free_port

CLI = [sys.executable, "-m", "bot.cli"]
BANNER = (
    "Payments: TEST MODE — local chain, test USDC, no real money; "
    "set payments.pay_to to accept USDC"
)
pytestmark = pytest.mark.skipif(not ANVIL_BIN.exists(), reason="anvil not installed (npm ci)")


def _start(env: dict[str, str], port: int) -> tuple[subprocess.Popen[str], str]:
    """Start the app; return it and its output up to the moment /healthz answers."""
    proc = subprocess.Popen(
        [*CLI, "run", "--roles", "web"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        out.append(line)
        if "component started" in line:
            return proc, "".join(out)
    proc.kill()
    pytest.fail("app did not start:\n" + "".join(out) + (proc.stdout.read() or ""))


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    return out


def _chain_line(out: str) -> tuple[str, str]:
    m = re.search(
        r"Test chain: .*anvil at (http://127\.0\.0\.1:\d+), TestUSDC (0x[0-9a-fA-F]{40})", out
    )
    assert m, out
    return m.group(1), m.group(2)


async def _demo_purchase(db_url: str, data: Path, base: str, rpc: str, token: str) -> str:
    """An invoice made as the app's bots make one (same database, the app's chain settings),
    paid with the demo wallet through the running app."""
    settings = make_settings(db_url, data)
    payments = local_chain_payments(settings.payments, rpc, token)
    settings = settings.model_copy(update={"payments": payments})
    ctx = Context(settings, Secrets.model_construct(), Database(db_url))
    try:
        q = await _quote(ctx)
    finally:
        await ctx.close()
    async with httpx.AsyncClient(timeout=60) as c:
        page = await c.get(f"{base}/pay/{q.invoice_id}")
        assert 'id="test-mode-ribbon"' in page.text and 'id="demo-button"' in page.text
        r = await c.post(f"{base}/pay/{q.invoice_id}/demo", json={})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "credited" and r.json()["payer"].lower() == (
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8".lower()
    )
    return q.invoice_id


def test_run_in_test_mode_starts_a_chain_and_keeps_it_across_restarts(tmp_path: Path) -> None:
    port = _free_port()
    db_url = f"sqlite:///{tmp_path / 'tm.db'}"
    env = _env(tmp_path, db_url, SPACESCRIBE_WEB__PORT=str(port))
    env.pop("SPACESCRIBE_PAYMENTS__RPC_URL")  # test mode ignores it anyway
    base = f"http://127.0.0.1:{port}"

    proc, out = _start(env, port)
    try:
        assert BANNER in out, out
        rpc, token_address = _chain_line(out)
        assert "(deployed now)" in out and "holds 1000 test USDC" in out
        saved = json.loads((tmp_path / "data/testchain/chain.json").read_text())
        assert saved["token_address"] == token_address
        w3 = Web3(Web3.HTTPProvider(rpc))
        assert w3.eth.chain_id == 31337 and len(w3.eth.get_code(token_address)) > 0
        token = token_at(w3, token_address)
        demo = w3.eth.account.from_key(DEMO_BUYER_KEY).address
        assert balance(token, demo) == 1000 * 10**6
        invoice = asyncio.run(_demo_purchase(db_url, tmp_path / "data", base, rpc, token_address))
        assert balance(token, OPERATOR_ADDRESS) == 200_000
    finally:
        _stop(proc)
    assert (tmp_path / "data/testchain/state.json").stat().st_size > 0

    # restart: same token (not redeployed), the purchase still on chain and in the database
    proc, out = _start(env, port)
    try:
        assert BANNER in out
        rpc2, token2 = _chain_line(out)
        assert token2 == token_address and "(from saved state)" in out, out
        w3 = Web3(Web3.HTTPProvider(rpc2))
        token = token_at(w3, token2)
        assert balance(token, OPERATOR_ADDRESS) == 200_000
        assert balance(token, demo) == 1000 * 10**6 - 200_000  # not topped up again
        page = httpx.get(f"{base}/pay/{invoice}", timeout=30)
        assert "This invoice is paid and credited" in page.text
    finally:
        _stop(proc)
