"""EIP-3009 ``TransferWithAuthorization``: its EIP-712 typed data (what a wallet signs) and
the shape a signed one must have before anything is verified."""

from __future__ import annotations

import re
from typing import Any

TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "TransferWithAuthorization": [
        {"name": "from", "type": "address"},
        {"name": "to", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "validAfter", "type": "uint256"},
        {"name": "validBefore", "type": "uint256"},
        {"name": "nonce", "type": "bytes32"},
    ],
}


def typed_data(
    name: str, version: str, chain_id: int, token: str, message: dict[str, Any]
) -> dict[str, Any]:
    """``eth_signTypedData_v4`` input for the token's domain and one authorization."""
    return {
        "types": TYPES,
        "primaryType": "TransferWithAuthorization",
        "domain": {
            "name": name,
            "version": version,
            "chainId": chain_id,
            "verifyingContract": token,
        },
        "message": message,
    }


FIELDS = ("from", "to", "value", "validAfter", "validBefore", "nonce")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_UINT256 = re.compile(r"[0-9]{1,78}")
_BYTES32 = re.compile(r"0x[0-9a-fA-F]{64}")
# 65 bytes from a wallet's key; longer for smart wallets (EIP-1271 / EIP-6492 wrappers)
_SIGNATURE = re.compile(r"0x(?:[0-9a-fA-F]{2}){65,4096}")


def authorization_problem(auth: Any, signature: Any) -> str | None:
    """Why a signed authorization cannot be read (a phrase for the payer), or None.

    The x402 wire form: the six fields as strings — addresses, uint256 in decimal digits (no
    sign, point, exponent or float), a 32-byte nonce — and a hex signature."""
    if not isinstance(auth, dict) or set(auth) != set(FIELDS):
        return "the authorization must have exactly the fields " + ", ".join(FIELDS)
    for k in ("from", "to"):
        if not isinstance(auth[k], str) or not _ADDRESS.fullmatch(auth[k]):
            return f"authorization.{k} is not an Ethereum address"
    for k in ("value", "validAfter", "validBefore"):
        v = auth[k]
        if not isinstance(v, str) or not _UINT256.fullmatch(v) or int(v) >= 2**256:
            return f"authorization.{k} must be a uint256 written in decimal digits"
    if not isinstance(auth["nonce"], str) or not _BYTES32.fullmatch(auth["nonce"]):
        return "authorization.nonce must be 0x and 64 hex digits"
    if not isinstance(signature, str) or not _SIGNATURE.fullmatch(signature):
        return "the signature must be 0x and at least 130 hex digits"
    return None
