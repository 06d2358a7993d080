"""Proof that a caller controls a wallet: an EIP-191 ``personal_sign`` over a short message
with a timestamp (used by the free transcript route of the HTTP API)."""

from __future__ import annotations

import time

from eth_account import Account
from eth_account.messages import encode_defunct

from core.accounts import normalize_wallet
from core.results import Refused

MAX_AGE_SECONDS = 300


def transcript_message(space_id: str, timestamp: int) -> str:
    return f"spacescribe transcript {space_id} {timestamp}"


def verify_wallet_proof(
    message: str, address: str, timestamp: int, signature: str, now: float | None = None
) -> str | Refused:
    """The lower-case wallet if ``signature`` signs ``message`` by ``address`` recently."""
    try:
        wallet = normalize_wallet(address)
    except ValueError:
        return Refused("invalid_wallet", "X-Wallet-Address is not an Ethereum address.")
    if abs((now or time.time()) - timestamp) > MAX_AGE_SECONDS:
        return Refused("stale_signature", "X-Wallet-Timestamp is more than 5 minutes off.")
    try:
        signer = Account.recover_message(encode_defunct(text=message), signature=signature)
    except Exception:
        return Refused("invalid_signature", "X-Wallet-Signature could not be verified.")
    if signer.lower() != wallet:
        return Refused("invalid_signature", "The signature is not from X-Wallet-Address.")
    return wallet
