"""The demo wallet of test mode: the server signs an invoice's EIP-3009 authorization with
anvil's public demo-buyer key, and the signed payment goes through the same x402 path as a
browser wallet's (:func:`core.payments.pay_invoice`). Live mode refuses it."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct

from core.config import PaymentSettings
from core.results import Refused
from core.testkeys import DEMO_BUYER_KEY, DEV_ADDRESSES

DEMO_ADDRESS = DEV_ADDRESSES[1]  # the address of DEMO_BUYER_KEY
LIVE_REFUSAL = (
    "The demo wallet exists only in test mode; this server takes real USDC: "
    "pay with your own wallet."
)


def demo_refusal(settings: PaymentSettings) -> Refused | None:
    """Why the demo wallet cannot pay here (live mode), or None in test mode."""
    if settings.test_mode:
        return None
    return Refused("test_mode_only", LIVE_REFUSAL)


def sign_demo(typed: dict[str, Any], settings: PaymentSettings) -> str:
    """The demo wallet's ``eth_signTypedData_v4`` signature of ``typed`` (test mode only)."""
    if not settings.test_mode:
        raise PermissionError(LIVE_REFUSAL)
    # the uint256 fields come as decimal strings (the x402 wire form): eth_account encodes
    # them as the numbers they spell (a test pins the signature to the one of the numbers)
    signed = Account.sign_typed_data(DEMO_BUYER_KEY, full_message=typed)
    return "0x" + bytes(signed.signature).hex()  # bytes.hex() has no 0x


def sign_demo_message(message: str, settings: PaymentSettings) -> str:
    """The demo wallet's ``personal_sign`` (EIP-191) of ``message`` (test mode only): its
    storefront sign-in."""
    if not settings.test_mode:
        raise PermissionError(LIVE_REFUSAL)
    signed = Account.sign_message(encode_defunct(text=message), DEMO_BUYER_KEY)
    return "0x" + bytes(signed.signature).hex()  # bytes.hex() has no 0x
