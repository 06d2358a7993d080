"""Re-access with Sign-In-With-X (x402 ``sign-in-with-x`` extension, CAIP-122 / EIP-4361).

A wallet that paid comes back with a ``SIGN-IN-WITH-X`` header instead of a payment: a
base64 JSON ``SIWxPayload`` carrying an EIP-4361 message's fields and its EIP-191 signature.
:func:`sign_in` accepts it only if, in this order:

1. it parses (``invalid_siwx_header``);
2. its domain is the host of ``web.public_url`` and its URI has that origin
   (``invalid_siwx_domain_mismatch`` / ``invalid_siwx_uri_mismatch``);
3. it is current: issued less than 5 minutes ago, not expired, not before its ``notBefore``
   (``invalid_siwx_issued_at_too_old`` / ``invalid_siwx_expired`` / ...);
4. it is for the chain payments are taken on, ``payments.network``
   (``invalid_siwx_chain_mismatch``);
5. its signature recovers its address (``invalid_siwx_signature``);
6. its nonce was never used before: the nonce is inserted in ``siwx_nonces`` (UNIQUE), so a
   replayed message is refused (``invalid_siwx_nonce_used``) on every process.

The checks of 2, 3 and 5 are the x402 package's own (``validate_siwx_message``,
``verify_siwx_signature``); what the wallet owns is the caller's question.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from x402.extensions.sign_in_with_x import (
    SIGN_IN_WITH_X,
    SIWxPayload,
    build_siwx_schema,
    get_signature_type,
    parse_siwx_header,
    validate_siwx_message,
    verify_siwx_signature,
)

from core.accounts import normalize_wallet
from core.context import Context
from core.db import SiwxNonce, utcnow
from core.db.upsert import insert_ignore
from core.results import Refused

HEADER = SIGN_IN_WITH_X.upper()
MAX_HEADER = 8_192
CHALLENGE_SECONDS = 300  # the expirationTime suggested in 402 answers (= the max message age)
STATEMENT = "Sign in to spacescribe to get what this wallet already paid for."

MESSAGES = {
    "invalid_siwx_header": "SIGN-IN-WITH-X is not a base64 JSON Sign-In-With-X payload.",
    "invalid_siwx_domain_mismatch": "The signed message is for another website.",
    "invalid_siwx_uri_mismatch": "The signed message's URI is not on this website.",
    "invalid_siwx_issued_at": "The signed message's issuedAt is not a timestamp.",
    "invalid_siwx_issued_at_too_old": "The signed message is more than 5 minutes old; sign again.",
    "invalid_siwx_issued_at_in_future": "The signed message is issued in the future.",
    "invalid_siwx_expiration_time": "The signed message's expirationTime is not a timestamp.",
    "invalid_siwx_expired": "The signed message has expired; sign again.",
    "invalid_siwx_not_before": "The signed message's notBefore is not a timestamp.",
    "invalid_siwx_not_yet_valid": "The signed message is not valid yet.",
    "invalid_siwx_chain_mismatch": "The signed message is for another chain than this server's.",
    "invalid_siwx_signature": "The signature does not match the message's address.",
    "invalid_siwx_nonce_used": "This signed message was already used; sign a new one.",
    "invalid_wallet": "The signed message's address is not an Ethereum address.",
}


def _refuse(code: str) -> Refused:
    return Refused(code, MESSAGES.get(code, MESSAGES["invalid_siwx_signature"]))


def origin(ctx: Context) -> str:
    """scheme://host[:port] of ``web.public_url``: what messages must be bound to."""
    u = urlsplit(ctx.settings.web.public_url)
    return f"{u.scheme}://{u.netloc}"


def declaration(ctx: Context, path: str) -> dict[str, Any]:
    """The ``sign-in-with-x`` entry of a 402 answer's ``extensions`` for the resource at
    ``path``: a fresh challenge (nonce, issuedAt, expirationTime) bound to ``web.public_url``."""
    network = ctx.settings.payments.network
    uri = origin(ctx) + path
    now = datetime.now(UTC)
    iso = "%Y-%m-%dT%H:%M:%S.%f"
    info = {
        "domain": urlsplit(uri).netloc,
        "uri": uri,
        "statement": STATEMENT,
        "version": "1",
        "nonce": secrets.token_hex(16),
        "issuedAt": now.strftime(iso)[:-3] + "Z",
        "expirationTime": (now + timedelta(seconds=CHALLENGE_SECONDS)).strftime(iso)[:-3] + "Z",
        "resources": [uri],
    }
    return {
        "info": info,
        "supportedChains": [{"chainId": network, "type": get_signature_type(network)}],
        "schema": build_siwx_schema(),
    }


async def sign_in(ctx: Context, header: str) -> str | Refused:
    """The lower-case wallet address a valid, fresh, never-used SIWX header proves."""
    if len(header) > MAX_HEADER:
        return _refuse("invalid_siwx_header")
    try:
        payload = parse_siwx_header(header)
    except (ValueError, TypeError):
        return _refuse("invalid_siwx_header")
    return await sign_in_payload(ctx, payload)


async def sign_in_payload(ctx: Context, payload: SIWxPayload) -> str | Refused:
    """:func:`sign_in` of a parsed payload (the storefront's sign-in posts one as JSON)."""
    checked = await validate_siwx_message(payload, origin(ctx))
    if not checked.is_valid:
        return _refuse(checked.invalid_reason or "invalid_siwx_signature")
    if payload.chain_id != ctx.settings.payments.network:
        return _refuse("invalid_siwx_chain_mismatch")
    try:
        wallet = normalize_wallet(payload.address)
    except ValueError:
        return _refuse("invalid_wallet")
    verified = await verify_siwx_signature(payload)
    if not verified.is_valid:
        return _refuse("invalid_siwx_signature")
    async with ctx.db.session() as s:
        fresh = await insert_ignore(
            s,
            SiwxNonce,
            {"nonce": payload.nonce, "wallet_address": wallet, "used_at": utcnow()},
            # nonce is the only unique key besides the id, and SQLite (the mutation run's
            # engine) reads column names case-insensitively: no change to this conflict
            # target differs there (a wrong name fails the PostgreSQL tests)
            index_elements=["nonce"],  # pragma: no mutate
        )
    if not fresh:
        return _refuse("invalid_siwx_nonce_used")
    return wallet
