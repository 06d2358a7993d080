"""Wallet linking with Sign-In with Ethereum (EIP-4361).

``/wallet`` creates a one-time link page for the caller's platform account
(:func:`create_link`). The page asks for a nonce (:func:`issue_nonce`), the wallet signs the
SIWE message built from the fields we issued, and :func:`link_wallet` verifies it with the
``siwe`` package (signature, domain = host of ``web.public_url``, our nonce, expiry, the link
page's URI) before linking the account to the ``users`` row of that wallet.

Only the token's SHA-256 is stored. A token is used once: a conditional UPDATE (unused, not
expired, same nonce) wins exactly once, so a replayed signature links nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from eth_utils import to_checksum_address
from siwe import SiweMessage, VerificationError, generate_nonce
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import outbox
from core.accounts import adopt_walletless, get_or_create_user, is_wallet, normalize_wallet
from core.context import Context
from core.db import Account, User, WalletLinkToken, utcnow
from core.results import Refused

_TOKEN_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
SIWE_TTL = timedelta(minutes=10)  # how long a signed message stays acceptable

MESSAGES = {
    "unknown_link": "This wallet link is not valid. Ask for a new one with /wallet.",
    "link_expired": "This wallet link has expired. Ask for a new one with /wallet.",
    "link_used": "This wallet link was already used. Ask for a new one with /wallet.",
    "invalid_address": "That is not an Ethereum address.",
    "malformed_message": "The signed message is not a valid Sign-In with Ethereum message.",
    "domain_mismatch": "The signed message is for another website.",
    "uri_mismatch": "The signed message is for another page.",
    "nonce_mismatch": "The signed message does not carry this page's current nonce; reload and sign again.",
    "message_expired": "The signed message has expired; sign again.",
    "not_yet_valid": "The signed message is not valid yet.",
    "invalid_signature": "The signature does not match the wallet address.",
    "no_nonce": "Ask for a nonce before signing.",
}


def _refuse(code: str) -> Refused:
    return Refused(code, MESSAGES[code])


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def valid_token(token: str) -> bool:
    """Checked before any lookup: the URL segment is ours only if it looks like our tokens."""
    return isinstance(token, str) and 16 <= len(token) <= 64 and set(token) <= _TOKEN_CHARS


def link_url(ctx: Context, token: str) -> str:
    return f"{ctx.settings.web.public_url.rstrip('/')}/link/{token}"


def siwe_domain(ctx: Context) -> str:
    """EIP-4361 domain: the authority (host[:port]) users see in their address bar."""
    return urlsplit(ctx.settings.web.public_url).netloc


@dataclass(frozen=True)
class LinkPage:
    token: str
    platform: str
    display_name: str | None
    expires_at: datetime
    linked_address: str | None  # what the account is linked to now, if anything


@dataclass(frozen=True)
class SiweRequest:
    """The fields the page puts into the EIP-4361 message (everything but the signature)."""

    domain: str
    address: str  # EIP-55 checksummed, as the message format requires
    statement: str
    uri: str
    version: str
    chain_id: int
    nonce: str
    issued_at: str
    expiration_time: str

    def message(self) -> str:
        return SiweMessage(
            domain=self.domain,
            address=self.address,
            statement=self.statement,
            uri=self.uri,
            version=self.version,
            chain_id=self.chain_id,
            nonce=self.nonce,
            issued_at=self.issued_at,
            expiration_time=self.expiration_time,
        ).prepare_message()


@dataclass(frozen=True)
class Linked:
    address: str
    platform: str
    previous_address: str | None


async def create_link(session: AsyncSession, ctx: Context, account_id: int) -> str:
    """A fresh one-time link page URL for this account (inside the caller's transaction)."""
    token = secrets.token_urlsafe(24)
    session.add(
        WalletLinkToken(
            token_hash=hash_token(token),
            account_id=account_id,
            created_at=utcnow(),
            expires_at=utcnow() + timedelta(seconds=ctx.settings.web.link_ttl_seconds),
        )
    )
    await session.flush()
    return link_url(ctx, token)


async def _token_row(session: AsyncSession, token: str) -> WalletLinkToken | Refused:
    if not valid_token(token):
        return _refuse("unknown_link")
    row = (
        await session.execute(
            select(WalletLinkToken).where(WalletLinkToken.token_hash == hash_token(token))
        )
    ).scalar_one_or_none()
    if row is None:
        return _refuse("unknown_link")
    if row.used_at is not None:
        return _refuse("link_used")
    if row.expires_at <= utcnow():
        return _refuse("link_expired")
    return row


async def link_page(ctx: Context, token: str) -> LinkPage | Refused:
    async with ctx.db.session() as s:
        row = await _token_row(s, token)
        if isinstance(row, Refused):
            return row
        acc = await s.get(Account, row.account_id)
        if acc is None:
            return _refuse("unknown_link")
        address = None
        if acc.user_id is not None:
            user = await s.get(User, acc.user_id)
            address = user.wallet_address if user and is_wallet(user.wallet_address) else None
        return LinkPage(token, acc.platform, acc.display_name, row.expires_at, address)


def _iso(dt: datetime) -> str:
    return dt.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


async def issue_nonce(ctx: Context, token: str, address: str) -> SiweRequest | Refused:
    """A new single-use nonce for this link (replacing any earlier one) and the message fields."""
    try:
        wallet = normalize_wallet(address)
    except ValueError:
        return _refuse("invalid_address")
    nonce = generate_nonce()
    async with ctx.db.session() as s:
        row = await _token_row(s, token)
        if isinstance(row, Refused):
            return row
        row.nonce = nonce
    now = datetime.now(UTC)
    expires = min(now + SIWE_TTL, row.expires_at.replace(tzinfo=UTC))
    return SiweRequest(
        domain=siwe_domain(ctx),
        address=to_checksum_address(wallet),
        statement="Link this wallet to your chat account on spacescribe. "
        "It costs nothing and sends no transaction.",
        uri=link_url(ctx, token),
        version="1",
        chain_id=ctx.settings.payments.chain_id,
        nonce=nonce,
        issued_at=_iso(now),
        expiration_time=_iso(expires),
    )


_SIWE_ERRORS = {
    "DomainMismatch": "domain_mismatch",
    "NonceMismatch": "nonce_mismatch",
    "ExpiredMessage": "message_expired",
    "NotYetValidMessage": "not_yet_valid",
    "InvalidSignature": "invalid_signature",
}


async def link_wallet(ctx: Context, token: str, message: str, signature: str) -> Linked | Refused:
    """Verify the signed SIWE message and link the token's account to that wallet, once."""
    if not isinstance(message, str) or not isinstance(signature, str) or len(message) > 4000:
        return _refuse("malformed_message")
    async with ctx.db.session() as s:
        row = await _token_row(s, token)
        if isinstance(row, Refused):
            return row
        expected_nonce = row.nonce
    if not expected_nonce:
        return _refuse("no_nonce")
    try:
        msg = SiweMessage.from_message(message=message)
    except Exception:  # the parser raises ValueError and grammar errors alike
        return _refuse("malformed_message")
    if msg.uri != link_url(ctx, token):
        return _refuse("uri_mismatch")
    if msg.expiration_time is None:
        return _refuse("malformed_message")
    try:
        msg.verify(signature, domain=siwe_domain(ctx), nonce=expected_nonce)
    except VerificationError as exc:
        return _refuse(_SIWE_ERRORS.get(type(exc).__name__, "invalid_signature"))
    except ValueError:
        return _refuse("invalid_signature")
    wallet = normalize_wallet(msg.address)
    now = utcnow()
    async with ctx.db.session() as s:
        won = await s.execute(
            update(WalletLinkToken)
            .where(
                WalletLinkToken.id == row.id,
                WalletLinkToken.used_at.is_(None),
                WalletLinkToken.nonce == expected_nonce,
                WalletLinkToken.expires_at > now,
            )
            .values(used_at=now, nonce=None, wallet_address=wallet)
        )
        if not getattr(won, "rowcount", 0):
            return _refuse("link_used")
        acc = await s.get(Account, row.account_id)
        if acc is None:
            return _refuse("unknown_link")
        previous = None
        user = await get_or_create_user(s, wallet)
        if acc.user_id is not None:
            old = await s.get(User, acc.user_id)
            previous = old.wallet_address if old and is_wallet(old.wallet_address) else None
            await adopt_walletless(s, int(acc.user_id), int(user.id))
        await s.execute(
            update(Account).where(Account.id == acc.id).values(user_id=user.id, linked_at=now)
        )
        await outbox.add_message(
            s,
            kind="wallet_linked",
            platform=acc.platform,
            recipient=acc.platform_user_id,
            payload={"address": wallet},  # the outbox contract's wallet_linked keys
            dedupe_key=f"wallet_linked:{row.id}",
        )
        return Linked(wallet, acc.platform, previous if previous != wallet else None)
