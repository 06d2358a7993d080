"""Test mode (``payments.mode = "test"``, the default until ``payments.pay_to`` is set).

``spacescribe run`` starts a local chain for the processes that take payments: anvil from
npm, its state in ``<data_dir>/testchain/state.json`` (written every few seconds and on exit,
so purchases survive a restart), the project's TestUSDC deployed once (its address kept in
``<data_dir>/testchain/chain.json``), the demo buyer wallet topped up with test USDC. The
payments settings of the process then point at that chain, with anvil's public test keys as
relayer and operator. Everything else — x402 verify/settle, crediting, queue, pipeline,
outbox — is the real code, unchanged. Live mode never gets here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from eth_account import Account
from pydantic import SecretStr

from core.config import PaymentSettings, Secrets, Settings
from core.context import Context
from core.results import Refused
from core.testchain import USDC, Anvil, balance, deploy_token, has_code, mint, token_at
from core.testkeys import DEMO_BUYER_KEY, LOCAL_CHAIN_ID, OPERATOR_ADDRESS, RELAYER_KEY

STATE_INTERVAL_SECONDS = 2  # anvil writes its state this often (and on exit)
DEMO_FUNDS = 1000 * USDC  # the demo wallet is topped up to this ...
TOP_UP_BELOW = 100 * USDC  # ... when it holds less than this at start
# Roles that take or watch payments; a worker-only process needs no chain.
PAYMENT_ROLES = frozenset({"web", "scheduler", "bots"})
if TYPE_CHECKING:
    from bot.runtime import StatusLine

BANNER = "local chain, test USDC, no real money; set payments.pay_to to accept USDC"


@dataclass
class LocalChain:
    anvil: Anvil
    token_address: str
    deployed_now: bool  # False: found in the saved state
    demo_address: str
    demo_units: int

    @property
    def rpc_url(self) -> str:
        return self.anvil.rpc_url

    def stop(self) -> None:
        self.anvil.stop()  # SIGTERM: anvil writes its state file


def chain_dir(settings: Settings) -> Path:
    return settings.resolve_path(settings.data_dir) / "testchain"


def needs_chain(settings: Settings, roles: list[str]) -> bool:
    return settings.payments.test_mode and bool(PAYMENT_ROLES & set(roles))


def start_test_chain(settings: Settings) -> LocalChain:
    """Start anvil on the saved state; deploy TestUSDC if the state has none; fund the demo
    wallet. Raises RuntimeError (anvil missing or silent) with what to do."""
    folder = chain_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    anvil = Anvil(state_path=folder / "state.json", state_interval=STATE_INTERVAL_SECONDS)
    anvil.start()
    try:
        w3 = anvil.w3
        relayer = Account.from_key(RELAYER_KEY)
        info_path = folder / "chain.json"
        info = json.loads(info_path.read_text()) if info_path.exists() else {}
        address = info.get("token_address")
        deployed_now = not (isinstance(address, str) and has_code(w3, address))
        if deployed_now:
            token = deploy_token(w3, relayer)
            info = {
                "token_address": str(token.address),
                "chain_id": anvil.chain_id,
                "deployed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            tmp = info_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(info, indent=1) + "\n")
            tmp.replace(info_path)
        else:
            token = token_at(w3, str(address))
        demo = Account.from_key(DEMO_BUYER_KEY)
        held = balance(token, demo.address)
        if held < TOP_UP_BELOW:
            mint(w3, token, relayer, demo.address, DEMO_FUNDS - held)
            held = DEMO_FUNDS
        return LocalChain(anvil, str(token.address), deployed_now, demo.address, held)
    except BaseException:
        anvil.stop()
        raise


def local_chain_payments(p: PaymentSettings, rpc_url: str, token_address: str) -> PaymentSettings:
    """Payments settings on the local chain, paid to anvil's test operator address."""
    return p.model_copy(
        update={
            "network": f"eip155:{LOCAL_CHAIN_ID}",
            "rpc_url": rpc_url,
            "token_address": token_address,
            "token_name": "USD Coin",  # TestUSDC's EIP-712 domain
            "token_version": "2",
            "pay_to": OPERATOR_ADDRESS,
            "facilitator_url": "",  # no public facilitator knows the local chain
        }
    )


def local_chain_context(ctx: Context, chain: LocalChain) -> Context:
    """The context of a test-mode process: payments on the local chain, settled in-process by
    anvil's test relayer."""
    p = local_chain_payments(ctx.settings.payments, chain.rpc_url, chain.token_address)
    settings = ctx.settings.model_copy(update={"payments": p})
    secrets: Secrets = ctx.secrets.model_copy(update={"relayer_key": SecretStr(RELAYER_KEY)})
    return replace(ctx, settings=settings, secrets=secrets)


def payments_status(ctx: Context, chain: LocalChain | None, problem: str | None) -> tuple[str, str]:
    """(label, why) of the banner's ``Payments:`` line: TEST MODE, LIVE or off."""
    p, s = ctx.settings.payments, ctx.secrets
    if p.test_mode:
        if chain is not None:
            return "TEST MODE", BANNER
        if problem:
            return "off", f"test mode could not start its local chain: {problem}"
        return "TEST MODE", BANNER + " (no payment role in this process: no local chain)"
    if not p.pay_to:
        return "off", "payments.mode is live but payments.pay_to is not set"
    if p.facilitator_url:
        settle = f"remote facilitator {p.facilitator_url}"
    elif s.relayer_key is not None and s.relayer_key.get_secret_value():
        settle = "in-process with SPACESCRIBE_RELAYER_KEY"
    else:
        return "off", "set SPACESCRIBE_RELAYER_KEY or payments.facilitator_url to settle payments"
    return "LIVE", f"USDC on {p.network} to {p.pay_to}, settled by {settle}"


def chain_line(chain: LocalChain) -> str:
    state = "deployed now" if chain.deployed_now else "from saved state"
    return (
        f"anvil at {chain.rpc_url}, TestUSDC {chain.token_address} ({state}), "
        f"demo wallet {chain.demo_address} holds {chain.demo_units // USDC} test USDC"
    )


async def demo_space_line(ctx: Context) -> StatusLine:
    """Make the demo Space if it does not exist yet; the banner's ``Demo Space`` line."""
    from bot.runtime import StatusLine
    from core.service.demo_space import ensure_demo_space

    demo = await ensure_demo_space(ctx)
    if isinstance(demo, Refused):
        return StatusLine("Demo Space", False, demo.message)
    url = f"{ctx.settings.web.public_url}/spaces/{demo.space_id}"
    state = "imported now, queued for transcription" if demo.made_now else demo.status
    return StatusLine("Demo Space", True, f"{url} ({state})")
