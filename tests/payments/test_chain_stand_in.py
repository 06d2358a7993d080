"""The anvil stand-in itself: token deployed, domain is USDC's, EIP-3009 works on chain."""

from __future__ import annotations

import os

from eth_account import Account
from eth_account.messages import encode_typed_data
from web3 import Web3

from core.payments import eip3009
from tests.stand_ins.chain import USDC, Chain


def test_token_is_usdc_like(chain: Chain) -> None:
    t = chain.token.functions
    assert t.name().call() == "USD Coin"
    assert t.version().call() == "2"
    assert t.decimals().call() == 6
    assert chain.balance(chain.payers[0].address) >= 1000 * USDC


def test_transfer_with_authorization_on_chain(chain: Chain, fresh_payer) -> None:  # type: ignore[no-untyped-def]
    nonce = "0x" + os.urandom(32).hex()
    now = chain.w3.eth.get_block("latest")["timestamp"]
    message = {
        "from": fresh_payer.address,
        "to": chain.pay_to,
        "value": 5 * USDC,
        "validAfter": 0,
        "validBefore": now + 600,
        "nonce": nonce,
    }
    typed = eip3009.typed_data("USD Coin", "2", chain.anvil.chain_id, chain.token_address, message)
    sig = Account.sign_message(encode_typed_data(full_message=typed), fresh_payer.key)
    before = chain.balance(chain.pay_to)
    tx = chain.token.functions.transferWithAuthorization(
        fresh_payer.address,
        chain.pay_to,
        5 * USDC,
        0,
        now + 600,
        Web3.to_bytes(hexstr=nonce),
        sig.v,
        sig.r.to_bytes(32, "big"),
        sig.s.to_bytes(32, "big"),
    ).build_transaction({"from": chain.relayer.address})
    h = chain.send(chain.relayer, {"to": tx["to"], "data": tx["data"]})
    assert chain.w3.eth.wait_for_transaction_receipt(h)["status"] == 1  # type: ignore[arg-type]
    assert chain.balance(chain.pay_to) == before + 5 * USDC
    assert chain.token.functions.authorizationState(fresh_payer.address, nonce).call() is True


def test_committed_artifact_is_what_the_source_compiles_to(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json
    import shutil
    import subprocess

    from tests.stand_ins.chain import ROOT, TOKEN_ARTIFACT

    node = shutil.which("node")
    assert node, "node is needed to rebuild the test token (make setup-test)"
    out = tmp_path / "TestUSDC.json"
    subprocess.run([node, str(ROOT / "contracts/build.js"), str(out)], check=True, timeout=120)
    assert json.loads(out.read_text()) == json.loads(TOKEN_ARTIFACT.read_text())
