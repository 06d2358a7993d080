"""payments.mode and friendly chain names: defaults, the refusals, the banner's Payments line,
and doctor's payments rows in every mode (real subprocesses for doctor)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from eth_account import Account
from pydantic import SecretStr

from bot.runtime import StatusLine  # noqa: F401  (the banner's line type)
from bot.testmode import payments_status
from core.config import Secrets, check_secrets, load_settings
from core.context import Context
from core.db import Database
from core.errors import ConfigError
from core.testkeys import DEV_ADDRESSES, DEV_KEYS, OPERATOR_ADDRESS, RELAYER_KEY
from tests.test_cli import CLI, _env

MINE = "0x" + "12" * 20


def test_dev_addresses_are_the_keys_addresses() -> None:
    assert [Account.from_key(k).address for k in DEV_KEYS] == list(DEV_ADDRESSES)


def test_mode_defaults_to_test_until_pay_to_is_set() -> None:
    assert load_settings().payments.mode == "test"
    assert load_settings(payments={"pay_to": MINE}).payments.mode == "live"
    assert load_settings(payments={"mode": "live"}).payments.mode == "live"


def test_test_mode_never_takes_a_real_pay_to() -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(payments={"mode": "test", "pay_to": MINE})
    assert "payments.mode is test, which never takes a real pay_to" in str(e.value)
    with pytest.raises(ConfigError, match="config key 'payments.mode'"):
        load_settings(payments={"mode": "demo"})


def test_live_mode_on_a_public_chain_refuses_anvil_test_keys() -> None:
    with pytest.raises(ConfigError, match="anvil's public test addresses"):
        load_settings(payments={"network": "base", "pay_to": OPERATOR_ADDRESS})
    settings = load_settings(payments={"network": "base", "pay_to": MINE})
    relayer = Secrets.model_construct(relayer_key=SecretStr(RELAYER_KEY))
    with pytest.raises(ConfigError, match="SPACESCRIBE_RELAYER_KEY is one of anvil's public"):
        check_secrets(settings, relayer)
    with pytest.raises(ConfigError, match="anvil's public test keys"):
        Context.create(settings, relayer)
    # a key of one's own is fine; so are the test keys on a local chain (the tests' anvil)
    check_secrets(settings, Secrets.model_construct(relayer_key=SecretStr("0x" + "ab" * 32)))
    local = load_settings(payments={"network": "eip155:31337", "pay_to": OPERATOR_ADDRESS})
    check_secrets(local, relayer)


def test_friendly_network_names_fill_token_and_rpc() -> None:
    base = load_settings(payments={"network": "base", "pay_to": MINE}).payments
    assert (base.network, base.rpc_url) == ("eip155:8453", "https://mainnet.base.org")
    assert base.token_address == "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
    assert (base.token_name, base.token_version) == ("USD Coin", "2")
    sep = load_settings(payments={"network": "base-sepolia", "pay_to": MINE}).payments
    assert (sep.network, sep.rpc_url) == ("eip155:84532", "https://sepolia.base.org")
    assert sep.token_address == "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
    assert (sep.token_name, sep.token_version) == ("USDC", "2")
    # explicit keys win over the filled ones
    own = load_settings(
        payments={"network": "base-sepolia", "pay_to": MINE, "rpc_url": "http://node:8545"}
    ).payments
    assert own.rpc_url == "http://node:8545" and own.token_name == "USDC"
    with pytest.raises(ConfigError, match="config key 'payments.network'"):
        load_settings(payments={"network": "bitcoin"})


def _ctx(tmp_path: Path, secrets: Secrets | None = None, **payments: str) -> Context:
    settings = load_settings(payments=payments, data_dir=tmp_path)
    return Context(settings, secrets or Secrets.model_construct(), Database("sqlite://"))


def test_payments_line_says_off_test_or_live_and_why(tmp_path: Path) -> None:
    label, why = payments_status(_ctx(tmp_path), None, "anvil missing at node_modules/…")
    assert (label, why) == (
        "off",
        "test mode could not start its local chain: anvil missing at node_modules/…",
    )
    label, why = payments_status(_ctx(tmp_path, mode="live"), None, None)
    assert (label, why) == ("off", "payments.mode is live but payments.pay_to is not set")
    label, why = payments_status(_ctx(tmp_path, pay_to=MINE), None, None)
    assert label == "off" and "SPACESCRIBE_RELAYER_KEY or payments.facilitator_url" in why
    fac = _ctx(tmp_path, pay_to=MINE, network="base-sepolia", facilitator_url="https://f.example")
    label, why = payments_status(fac, None, None)
    assert label == "LIVE" and why == (
        f"USDC on eip155:84532 to {MINE}, settled by remote facilitator https://f.example"
    )


def _doctor(tmp_path: Path, **env: str) -> str:
    e = _env(tmp_path, f"sqlite:///{tmp_path / 'd.db'}", **env)
    r = subprocess.run([*CLI, "doctor"], env=e, capture_output=True, text=True, timeout=120)
    return r.stdout + r.stderr


def _rows(out: str) -> dict[str, str]:
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if len(cells) == 3 and cells[0]:
            rows[cells[0]] = cells[1] + " " + cells[2]
    return rows


def test_doctor_prints_every_payments_row(tmp_path: Path) -> None:
    wide = {"COLUMNS": "250"}
    # test mode (the default): the mode, the local chain, the test operator and relayer
    rows = _rows(_doctor(tmp_path, **wide))
    assert "TEST MODE" in rows["payments mode"], rows
    for name in ("rpc", "token", "pay_to", "settlement"):
        assert name in rows, (name, rows)
    assert OPERATOR_ADDRESS in rows["pay_to"] and "test-only" in rows["settlement"]
    # live mode with the RPC node unreachable: still every row, each saying why
    rows = _rows(
        _doctor(
            tmp_path,
            SPACESCRIBE_PAYMENTS__PAY_TO=MINE,
            SPACESCRIBE_RELAYER_KEY="0x" + "ab" * 32,
            **wide,
        )
    )
    assert "LIVE" in rows["payments mode"], rows
    assert rows["rpc"].startswith("problem") and "unreachable" in rows["rpc"]
    assert "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913" in rows["token"]
    assert "not checked" in rows["token"]
    assert rows["pay_to"] == f"ok {MINE}"
    relayer = Account.from_key("0x" + "ab" * 32).address
    assert relayer in rows["settlement"] and "not checked" in rows["settlement"]
    # live mode without pay_to or settlement: said, not hidden
    rows = _rows(_doctor(tmp_path, SPACESCRIBE_PAYMENTS__MODE="live", **wide))
    assert rows["pay_to"].startswith("problem") and "set payments.pay_to" in rows["pay_to"]
    assert "set SPACESCRIBE_RELAYER_KEY" in rows["settlement"]


def test_config_errors_stop_the_start(tmp_path: Path) -> None:
    out = _doctor(tmp_path, SPACESCRIBE_PAYMENTS__MODE="test", SPACESCRIBE_PAYMENTS__PAY_TO=MINE)
    assert "never takes a real pay_to" in out and "SPACESCRIBE_PAYMENTS" in out
    e = _env(
        tmp_path,
        f"sqlite:///{tmp_path / 'r.db'}",
        SPACESCRIBE_PAYMENTS__PAY_TO=MINE,
        SPACESCRIBE_RELAYER_KEY=DEV_KEYS[0],
    )
    r = subprocess.run(
        [*CLI, "run", "--roles", "web"], env=e, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2
    assert "SPACESCRIBE_RELAYER_KEY is one of anvil's public test keys" in r.stderr
    assert DEV_KEYS[0] not in r.stdout + r.stderr  # the key itself is never printed
