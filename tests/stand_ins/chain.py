"""A real local EVM chain for tests: anvil + the EIP-3009 test token (contracts/TestUSDC.sol).

Fixtures (registered in ``tests/conftest.py``, so every test folder can use them):

- ``anvil`` (session): a running :class:`Anvil` on a free 127.0.0.1 port, chain id 31337.
  ``anvil.rpc_url``, ``anvil.chain_id``, ``anvil.network`` ("eip155:31337"), ``anvil.w3``
  (web3.Web3), ``anvil.mine(n)``, ``anvil.stop()`` / ``anvil.start()`` (same port: "RPC down").
- ``chain`` (session): a :class:`Chain` = anvil + deployed ``TestUSDC``:
  ``chain.token`` (web3 contract), ``chain.token_address`` (checksummed),
  ``chain.payers`` (list of eth_account ``LocalAccount``, anvil dev accounts 1..5, each minted
  1,000 USDC), ``chain.relayer`` (dev account 0: pays gas in-process; its key is what
  ``SPACESCRIBE_RELAYER_KEY`` holds in tests), ``chain.pay_to`` (dev account 9, the
  operator's receiving address), ``chain.other`` (dev account 8: a stranger),
  ``chain.mint(addr, units)``, ``chain.transfer(account, to, units) -> tx hash hex``,
  ``chain.balance(addr)``, ``chain.payment_settings()`` (a dict for ``load_settings(payments=…)``).
- ``deploy_token(chain)``: a second EIP-3009 token contract (paying in the wrong token).
- ``fresh_payer`` (function): a brand-new funded account (own nonce space, no cross-test
  interference), minted 100 USDC and given 1 ETH for gas.

The dev keys below are anvil's published test mnemonic keys: public, test-only.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

ROOT = Path(__file__).resolve().parents[2]
ANVIL_BIN = ROOT / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
TOKEN_ARTIFACT = ROOT / "contracts/TestUSDC.json"

# anvil's default accounts ("test test ... junk" mnemonic): public test keys.
DEV_KEYS = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
]
USDC = 10**6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Anvil:
    """One anvil process; can be stopped and restarted on the same port (state is lost
    on restart, so tests that stop it use their own instance, not the session one)."""

    def __init__(self, port: int | None = None, block_time: float | None = None) -> None:
        if not ANVIL_BIN.exists():
            raise RuntimeError(f"anvil missing at {ANVIL_BIN}: run `make setup-test`")
        self.port = port or free_port()
        self.block_time = block_time
        self.proc: subprocess.Popen[bytes] | None = None
        self.rpc_url = f"http://127.0.0.1:{self.port}"
        self.chain_id = 31337
        self.network = f"eip155:{self.chain_id}"
        self.w3 = Web3(Web3.HTTPProvider(self.rpc_url, request_kwargs={"timeout": 10}))

    def start(self) -> None:
        cmd = [str(ANVIL_BIN), "--host", "127.0.0.1", "--port", str(self.port), "--silent"]
        if self.block_time:
            cmd += ["--block-time", str(self.block_time)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if self.w3.eth.chain_id == self.chain_id:
                    return
            except Exception:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("anvil did not answer within 15 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def mine(self, blocks: int = 1) -> None:
        self.w3.provider.make_request("anvil_mine", [hex(blocks)])  # type: ignore[arg-type]

    def set_automine(self, on: bool) -> None:
        self.w3.provider.make_request("evm_setAutomine", [on])  # type: ignore[arg-type]


def load_artifact() -> dict[str, Any]:
    return json.loads(TOKEN_ARTIFACT.read_text())


@dataclass
class Chain:
    anvil: Anvil
    token: Any
    relayer: LocalAccount
    pay_to: str
    other: LocalAccount
    payers: list[LocalAccount] = field(default_factory=list)
    _next_fresh: int = 0

    @property
    def w3(self) -> Web3:
        return self.anvil.w3

    @property
    def token_address(self) -> str:
        return str(self.token.address)

    @property
    def relayer_key(self) -> str:
        return "0x" + bytes(self.relayer.key).hex()

    def send(self, account: LocalAccount, tx: dict[str, Any]) -> str:
        tx = {
            "from": account.address,
            "nonce": self.w3.eth.get_transaction_count(account.address, "pending"),
            "chainId": self.anvil.chain_id,
            "gas": tx.pop("gas", 300_000),
            "maxFeePerGas": 2 * 10**9,
            "maxPriorityFeePerGas": 10**9,
            **tx,
        }
        signed = account.sign_transaction(tx)
        return "0x" + self.w3.eth.send_raw_transaction(signed.raw_transaction).hex().removeprefix(
            "0x"
        )

    def mint(self, to: str, units: int) -> None:
        tx = self.token.functions.mint(to, units).build_transaction({"from": self.relayer.address})
        h = self.send(self.relayer, {"to": tx["to"], "data": tx["data"]})
        self.w3.eth.wait_for_transaction_receipt(h)  # type: ignore[arg-type]

    def transfer(self, account: LocalAccount, to: str, units: int, wait: bool = True) -> str:
        tx = self.token.functions.transfer(Web3.to_checksum_address(to), units).build_transaction(
            {"from": account.address}
        )
        h = self.send(account, {"to": tx["to"], "data": tx["data"]})
        if wait:
            self.w3.eth.wait_for_transaction_receipt(h)  # type: ignore[arg-type]
        return h

    def balance(self, address: str) -> int:
        return int(self.token.functions.balanceOf(Web3.to_checksum_address(address)).call())

    def new_funded_account(self, usdc_units: int = 100 * USDC) -> LocalAccount:
        acct: LocalAccount = Account.create()
        h = self.send(self.relayer, {"to": acct.address, "value": 10**18, "gas": 21_000})
        self.w3.eth.wait_for_transaction_receipt(h)  # type: ignore[arg-type]
        self.mint(acct.address, usdc_units)
        return acct

    def payment_settings(self, **overrides: Any) -> dict[str, Any]:
        """Keys of ``[payments]`` pointing at this chain and token."""
        return {
            "network": self.anvil.network,
            "rpc_url": self.anvil.rpc_url,
            "token_address": self.token_address,
            "token_name": "USD Coin",
            "token_version": "2",
            "pay_to": self.pay_to,
            "confirmations": 1,
            **overrides,
        }


def deploy_token(chain: Chain) -> Any:
    """Another instance of the EIP-3009 test token (its own address, so its own EIP-712
    domain): what a payment in the wrong token looks like."""
    art = load_artifact()
    factory = chain.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    data = factory.constructor().build_transaction({"from": chain.relayer.address})["data"]
    h = chain.send(chain.relayer, {"data": data, "gas": 3_000_000})
    receipt = chain.w3.eth.wait_for_transaction_receipt(h)  # type: ignore[arg-type]
    return chain.w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])


def deploy_chain(anvil: Anvil) -> Chain:
    art = load_artifact()
    w3 = anvil.w3
    relayer: LocalAccount = Account.from_key(DEV_KEYS[0])
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    data = factory.constructor().build_transaction({"from": relayer.address})["data"]
    chain = Chain(
        anvil=anvil,
        token=None,
        relayer=relayer,
        pay_to=Account.from_key(DEV_KEYS[9]).address,
        other=Account.from_key(DEV_KEYS[8]),
    )
    h = chain.send(relayer, {"data": data, "gas": 3_000_000})
    receipt = w3.eth.wait_for_transaction_receipt(h)  # type: ignore[arg-type]
    chain.token = w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])
    chain.payers = [Account.from_key(k) for k in DEV_KEYS[1:6]]
    for p in chain.payers + [chain.other]:
        chain.mint(p.address, 1000 * USDC)
    return chain


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    node = Anvil()
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def chain(anvil: Anvil) -> Chain:
    return deploy_chain(anvil)


@pytest.fixture
def fresh_payer(chain: Chain) -> LocalAccount:
    return chain.new_funded_account()


def anvil_available() -> bool:
    return ANVIL_BIN.exists() or shutil.which("anvil") is not None
