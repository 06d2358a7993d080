"""What the pay page's script does, over HTTP: fetch the authorization the server chose for
this invoice, sign it with the payer's key (as a wallet would), submit it."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import httpx
from eth_account import Account
from eth_account.messages import encode_typed_data


async def sign_on_page(client: httpx.AsyncClient, pay_url: str, account: Any) -> tuple[str, bytes]:
    """The page's request for ``pay_url`` signed by ``account``: (path to POST, JSON body)."""
    path = urlsplit(pay_url).path
    auth = await client.get(f"{path}/authorization", params={"payer": account.address})
    assert auth.status_code == 200, auth.text
    typed = auth.json()["typedData"]
    signed = Account.sign_message(encode_typed_data(full_message=typed), account.key)
    body = {"authorization": typed["message"], "signature": "0x" + signed.signature.hex()}
    return path, json.dumps(body).encode()


async def submit_on_page(client: httpx.AsyncClient, path: str, body: bytes) -> dict[str, Any]:
    out = await client.post(path, content=body, headers={"content-type": "application/json"})
    result: dict[str, Any] = out.json()
    return result


async def pay_via_page(client: httpx.AsyncClient, pay_url: str, account: Any) -> dict[str, Any]:
    """Pay the invoice at ``pay_url`` (a quote's button) through the web app ``client`` serves."""
    return await submit_on_page(client, *await sign_on_page(client, pay_url, account))
