"""A local EVM chain: an anvil process (npm ``@foundry-rs/anvil-linux-amd64``) and the
project's EIP-3009 test token (``contracts/TestUSDC.sol``, compiled to ``TestUSDC.json``).

Test mode runs the product on it (``bot/testmode.py``), and the tests use the same code
(``tests/stand_ins/chain.py``). Nothing here is used in live mode.
"""

from __future__ import annotations

import ctypes
import json
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from core.testkeys import LOCAL_CHAIN_ID

ROOT = Path(__file__).resolve().parent.parent
ANVIL_BIN = ROOT / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
TOKEN_ARTIFACT = ROOT / "contracts/TestUSDC.json"
USDC = 10**6
START_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: anvil gets SIGTERM (and dumps its state) when the process that started it dies,
    even by SIGKILL, so no orphaned chain keeps the port."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Anvil:
    """One anvil process on 127.0.0.1. With ``state_path`` its chain is loaded from that file
    at start and written back every ``state_interval`` seconds and on exit; without it, the
    chain starts empty each time (stop/start on the same port then means "RPC down")."""

    def __init__(
        self,
        port: int | None = None,
        block_time: float | None = None,
        state_path: Path | None = None,
        state_interval: int | None = None,
    ) -> None:
        if not ANVIL_BIN.exists():
            raise RuntimeError(
                f"anvil missing at {ANVIL_BIN}: run `npm ci` (or `make run`, which installs it)"
            )
        self.port = port or free_port()
        self.block_time = block_time
        self.state_path = state_path
        self.state_interval = state_interval
        self.proc: subprocess.Popen[bytes] | None = None
        self.rpc_url = f"http://127.0.0.1:{self.port}"
        self.chain_id = LOCAL_CHAIN_ID
        self.network = f"eip155:{self.chain_id}"
        self.w3 = Web3(Web3.HTTPProvider(self.rpc_url, request_kwargs={"timeout": 10}))

    def command(self) -> list[str]:
        cmd = [str(ANVIL_BIN), "--host", "127.0.0.1", "--port", str(self.port), "--silent"]
        if self.block_time:
            cmd += ["--block-time", str(self.block_time)]
        if self.state_path is not None:
            cmd += ["--state", str(self.state_path)]
            if self.state_interval:
                cmd += ["--state-interval", str(self.state_interval)]
        return cmd

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.command(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - called before threads start
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if self.w3.eth.chain_id == self.chain_id:
                    return
            except Exception:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"anvil did not answer on {self.rpc_url} within {START_TIMEOUT:.0f} s")

    def stop(self) -> None:
        """SIGTERM (anvil writes its state file), then SIGKILL if it does not exit."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def mine(self, blocks: int = 1) -> None:
        self.w3.provider.make_request("anvil_mine", [hex(blocks)])  # type: ignore[arg-type]

    def set_automine(self, on: bool) -> None:
        self.w3.provider.make_request("evm_setAutomine", [on])  # type: ignore[arg-type]


def load_artifact() -> dict[str, Any]:
    return json.loads(TOKEN_ARTIFACT.read_text())  # type: ignore[no-any-return]


def send(w3: Web3, account: LocalAccount, tx: dict[str, Any]) -> str:
    """Sign and send a transaction from ``account``; its hash as 0x-hex."""
    full = {
        "from": account.address,
        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        "chainId": LOCAL_CHAIN_ID,
        "gas": tx.pop("gas", 300_000),
        "maxFeePerGas": 2 * 10**9,
        "maxPriorityFeePerGas": 10**9,
        **tx,
    }
    signed = account.sign_transaction(full)
    return "0x" + w3.eth.send_raw_transaction(signed.raw_transaction).hex().removeprefix("0x")


def wait(w3: Web3, tx_hash: str) -> Any:
    # anvil mines each transaction as it arrives: poll at 10 ms, not web3's 100 ms
    return w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.01)  # type: ignore[arg-type]


def token_at(w3: Web3, address: str) -> Any:
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=load_artifact()["abi"])


def deploy_token(w3: Web3, deployer: LocalAccount) -> Any:
    """Deploy TestUSDC ("USD Coin", version "2", 6 decimals, ``mint`` open to anyone)."""
    art = load_artifact()
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    data = factory.constructor().build_transaction({"from": deployer.address})["data"]
    receipt = wait(w3, send(w3, deployer, {"data": data, "gas": 3_000_000}))
    return token_at(w3, receipt["contractAddress"])


def has_code(w3: Web3, address: str) -> bool:
    return len(w3.eth.get_code(Web3.to_checksum_address(address))) > 0


def mint(w3: Web3, token: Any, minter: LocalAccount, to: str | list[str], units: int) -> None:
    """``units`` to each address in ``to``: sent back to back, then waited for together."""
    sent = []
    for address in [to] if isinstance(to, str) else to:
        tx = token.functions.mint(Web3.to_checksum_address(address), units).build_transaction(
            {"from": minter.address, "gas": 100_000}
        )
        sent.append(send(w3, minter, {"to": tx["to"], "data": tx["data"], "gas": 100_000}))
    for h in sent:
        wait(w3, h)


def balance(token: Any, address: str) -> int:
    return int(token.functions.balanceOf(Web3.to_checksum_address(address)).call())
