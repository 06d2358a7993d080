"""Payment fixtures on the real anvil chain.

- ``pay_ctx``: a Context (both engines) whose ``[payments]`` point at the session chain and
  token, with ``SPACESCRIBE_RELAYER_KEY`` = the chain's relayer key (in-process facilitator).
- ``x402_client``: ``factory(account) -> x402ClientSync`` (official client, exact EVM scheme,
  spend controls allowing the test token).
- ``sign_auth``: build an x402 v2 payload with chosen authorization fields, signed by
  eth_account (for the bad-input tests the official client would never produce).
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from pydantic import SecretStr
from x402 import x402Client, x402ClientSync
from x402.mechanisms.evm.exact import ExactEvmClientScheme
from x402.mechanisms.evm.signers import EthAccountSigner
from x402.schemas import PaymentRequired, PaymentRequirements

from bot.wiring import wire
from core.config import Secrets
from core.context import Context
from core.db import Database
from core.payments import eip3009
from tests.conftest import make_settings
from tests.stand_ins.chain import Chain


def chain_secrets(chain: Chain) -> Secrets:
    return Secrets.model_construct(relayer_key=SecretStr(chain.relayer_key))


@pytest.fixture
async def pay_ctx(db_url: str, tmp_path: Path, chain: Chain) -> AsyncIterator[Context]:
    settings = make_settings(
        db_url,
        tmp_path / "data",
        payments=chain.payment_settings(),
        web={"public_url": "http://127.0.0.1:8080"},
    )
    c = wire(Context(settings, chain_secrets(chain), Database(db_url), instance="test:pay"))
    try:
        yield c
    finally:
        await c.close()


Client = TypeVar("Client", x402Client, x402ClientSync)


def make_client(chain: Chain, account: Any) -> x402ClientSync:
    return _wallet(x402ClientSync(), chain, account)


def make_async_client(chain: Chain, account: Any) -> x402Client:
    """For x402's MCP session, which takes the async client."""
    return _wallet(x402Client(), chain, account)


def _wallet(client: Client, chain: Chain, account: Any) -> Client:
    """The buyer's wallet in the official client: exact EVM on the test chain, the test
    token allowed."""
    client.register(chain.anvil.network, ExactEvmClientScheme(signer=EthAccountSigner(account)))
    client.set_spend_controls(
        {
            "allowed_assets": [
                {
                    "network": chain.anvil.network,
                    "asset": chain.token_address,
                    "max_amount_per_payment": "10000000",
                }
            ]
        }
    )
    return client


@pytest.fixture
def x402_client(chain: Chain) -> Callable[[Any], x402ClientSync]:
    return lambda account: make_client(chain, account)


def client_payload(chain: Chain, account: Any, reqs: PaymentRequirements) -> dict[str, Any]:
    """What the official client sends for these requirements (JSON form)."""
    pr = PaymentRequired(x402_version=2, accepts=[reqs])
    payload = make_client(chain, account).create_payment_payload(pr)
    return payload.model_dump(mode="json", by_alias=True, exclude_none=True)


def signed_payload(
    chain: Chain,
    account: Any,
    reqs: PaymentRequirements,
    *,
    to: str | None = None,
    value: int | None = None,
    valid_after: int = 0,
    valid_before: int | None = None,
    nonce: str | None = None,
    chain_id: int | None = None,
    token: str | None = None,
    signer: Any = None,
) -> dict[str, Any]:
    auth = {
        "from": account.address,
        "to": to or reqs.pay_to,
        "value": str(value if value is not None else int(reqs.amount)),
        "validAfter": str(valid_after),
        "validBefore": str(valid_before if valid_before is not None else int(time.time()) + 600),
        "nonce": nonce or "0x" + os.urandom(32).hex(),
    }
    typed = eip3009.typed_data(
        "USD Coin",
        "2",
        chain_id or chain.anvil.chain_id,
        token or chain.token_address,
        {
            **auth,
            "value": int(auth["value"]),
            "validAfter": int(auth["validAfter"]),
            "validBefore": int(auth["validBefore"]),
        },
    )
    sig = Account.sign_message(encode_typed_data(full_message=typed), (signer or account).key)
    return {
        "x402Version": 2,
        "payload": {"authorization": auth, "signature": "0x" + sig.signature.hex()},
        "accepted": reqs.model_dump(mode="json", by_alias=True, exclude_none=True),
    }


@pytest.fixture
def sign_auth(chain: Chain) -> Callable[..., dict[str, Any]]:
    return lambda account, reqs, **kw: signed_payload(chain, account, reqs, **kw)


class RecordedSpaces:
    """Stand-in for X at the pipeline's resolver seam: every Space is a finished, recorded
    one titled "Recorded <id>", unless its id is in ``live``."""

    def __init__(self) -> None:
        self.live: set[str] = set()

    async def resolve(self, space_id: str) -> Any:
        from core.pipeline.media import SpaceMeta

        live = space_id in self.live
        return SpaceMeta(
            space_id=space_id,
            title=f"Recorded {space_id}",
            creator="host",
            started_at=None,
            duration_seconds=600.0,
            live=live,
            replay_available=not live,
            media_url="http://127.0.0.1:9/unused.m3u8",
        )


@pytest.fixture(autouse=True)
def recorded_spaces(request: pytest.FixtureRequest) -> RecordedSpaces:
    """X as recorded, for the contexts this test uses (``ctx``, ``pay_ctx``)."""
    r = RecordedSpaces()
    for name in ("ctx", "pay_ctx"):
        if name in request.fixturenames:
            request.getfixturevalue(name).wiring.resolver = r
    return r
