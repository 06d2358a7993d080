"""Storefront sessions: a web buyer is the wallet that signed in.

Signing in is Sign-In with Ethereum (EIP-4361) through the Sign-In-With-X checks of
:mod:`core.payments.siwx` (domain, origin, freshness, chain, signature, single-use nonce),
bound to the page ``/session`` of ``web.public_url``. The wallet gets a ``web`` account
linked to its ``users`` row, so what it bought on any surface (a linked Telegram or Discord
account, the x402 API) is its own here too. Only the cookie token's SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from eth_utils import to_checksum_address
from pydantic import ValidationError
from sqlalchemy import delete, select, update
from x402.extensions.sign_in_with_x import SIWxPayload
from x402.extensions.sign_in_with_x.evm import format_siwe_message

from core.accounts import get_or_create_account, get_or_create_user, normalize_wallet
from core.context import Context
from core.db import Account, WebSession, utcnow
from core.payments import siwx
from core.payments.demo import DEMO_ADDRESS, demo_refusal, sign_demo_message
from core.results import Caller, Refused

SESSION_PATH = "/session"
STATEMENT = "Sign in to the spacescribe storefront. It costs nothing and sends no transaction."
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True)
class Challenge:
    """What the wallet signs: the SIWX fields and their EIP-4361 text."""

    info: dict[str, Any]  # the payload's fields but address and signature
    address: str  # EIP-55
    message: str


@dataclass(frozen=True)
class WebBuyer:
    wallet: str  # lower-case address
    csrf_token: str
    expires_at: datetime

    @property
    def caller(self) -> Caller:
        return caller_of(self.wallet)


def caller_of(wallet: str) -> Caller:
    return Caller("web", wallet, display_name=f"{wallet[:6]}…{wallet[-4:]}")


def challenge(ctx: Context, address: str) -> Challenge | Refused:
    try:
        wallet = normalize_wallet(address)
    except ValueError:
        return Refused("invalid_address", "That is not an Ethereum address.")
    decl = siwx.declaration(ctx, SESSION_PATH)
    chain = decl["supportedChains"][0]
    info = {**decl["info"], "statement": STATEMENT, "chainId": chain["chainId"]}
    info["type"] = chain["type"]
    checksum = to_checksum_address(wallet)
    return Challenge(info, checksum, format_siwe_message(info, checksum))


async def sign_in(ctx: Context, data: object) -> str | Refused:
    """The wallet a signed storefront challenge proves (``data``: the SIWX payload as JSON)."""
    try:
        payload = SIWxPayload.model_validate(data)
    except ValidationError:
        return Refused("invalid_siwx_header", "The sign-in is not a signed SIWE message.")
    if payload.uri != siwx.origin(ctx) + SESSION_PATH:
        return Refused("invalid_siwx_uri_mismatch", siwx.MESSAGES["invalid_siwx_uri_mismatch"])
    return await siwx.sign_in_payload(ctx, payload)


async def demo_sign_in(ctx: Context) -> str | Refused:
    """Test mode: the server signs the challenge with the demo wallet; live mode refuses."""
    refusal = demo_refusal(ctx.settings.payments)
    if refusal is not None:
        return Refused(refusal.code, refusal.message)
    ch = challenge(ctx, DEMO_ADDRESS)
    assert isinstance(ch, Challenge)  # a valid address
    signature = sign_demo_message(ch.message, ctx.settings.payments)
    return await sign_in(ctx, {**ch.info, "address": ch.address, "signature": signature})


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def valid_token(token: str | None) -> bool:
    return isinstance(token, str) and 20 <= len(token) <= 64 and set(token) <= _TOKEN_CHARS


async def open_session(ctx: Context, wallet: str) -> tuple[str, WebBuyer]:
    """A new session for a signed-in wallet: (cookie token, buyer). The wallet's ``web``
    account is linked to the wallet's user, in the same transaction."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    expires = utcnow() + timedelta(seconds=ctx.settings.web.session_ttl_seconds)
    async with ctx.db.session() as s:
        # expired sessions go as new ones come (``ix_web_sessions_expires_at``): no job needed
        await s.execute(delete(WebSession).where(WebSession.expires_at <= utcnow()))
        acc = await get_or_create_account(s, caller_of(wallet))
        user = await get_or_create_user(s, wallet)
        if acc.user_id != user.id:
            await s.execute(
                update(Account)
                .where(Account.id == acc.id)
                .values(user_id=user.id, linked_at=utcnow())
            )
        s.add(
            WebSession(
                token_hash=_hash(token), wallet_address=wallet, csrf_token=csrf, expires_at=expires
            )
        )
    return token, WebBuyer(wallet, csrf, expires)


async def session_of(ctx: Context, token: str | None) -> WebBuyer | None:
    """The signed-in buyer of a cookie token, or None (no, malformed, unknown or expired)."""
    if not valid_token(token):
        return None
    assert token is not None
    async with ctx.db.read() as s:
        row = (
            await s.execute(
                select(WebSession).where(
                    WebSession.token_hash == _hash(token), WebSession.expires_at > utcnow()
                )
            )
        ).scalar_one_or_none()
    return WebBuyer(row.wallet_address, row.csrf_token, row.expires_at) if row else None


async def close_session(ctx: Context, token: str | None) -> None:
    if not valid_token(token):
        return
    assert token is not None
    async with ctx.db.session() as s:
        await s.execute(delete(WebSession).where(WebSession.token_hash == _hash(token)))


def csrf_ok(buyer: WebBuyer | None, given: object) -> bool:
    """A session's form carries its CSRF token (compared in constant time)."""
    return (
        buyer is not None
        and isinstance(given, str)
        and hmac.compare_digest(buyer.csrf_token.encode(), given.encode())
    )
