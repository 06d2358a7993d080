"""EIP-712 typed data of an EIP-3009 ``TransferWithAuthorization`` (what a wallet signs)."""

from __future__ import annotations

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
