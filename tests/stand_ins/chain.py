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

The process and token code is the product's own (``core.testchain``, which test mode runs on
too); the dev keys are anvil's published test mnemonic keys (``core.testkeys``): public,
test-only.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

# The product's own local-chain code (test mode runs on it too); re-exported for the tests.
from core.testchain import (
    ANVIL_BIN,
    ROOT,
    TOKEN_ARTIFACT,
    USDC,
    Anvil,
    deploy_token,
    free_port,
    load_artifact,
)
from core.testchain import mint as mint_token
from core.testchain import send as send_tx
from core.testkeys import DEV_KEYS

__all__ = [
    "ANVIL_BIN",
    "DEV_KEYS",
    "ROOT",
    "TOKEN_ARTIFACT",
    "USDC",
    "Anvil",
    "Chain",
    "deploy_chain",
    "free_port",
    "load_artifact",
]


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
        return send_tx(self.w3, account, tx)

    def mint(self, to: str, units: int) -> None:
        mint_token(self.w3, self.token, self.relayer, to, units)

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


def deploy_chain(anvil: Anvil) -> Chain:
    relayer: LocalAccount = Account.from_key(DEV_KEYS[0])
    chain = Chain(
        anvil=anvil,
        token=deploy_token(anvil.w3, relayer),
        relayer=relayer,
        pay_to=Account.from_key(DEV_KEYS[9]).address,
        other=Account.from_key(DEV_KEYS[8]),
    )
    chain.payers = [Account.from_key(k) for k in DEV_KEYS[1:6]]
    mint_token(
        anvil.w3,
        chain.token,
        relayer,
        [p.address for p in chain.payers + [chain.other]],
        1000 * USDC,
    )
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
