"""SIWE verification and /wallet on both engines: every bad message is refused and links nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from eth_account import Account
from eth_account.messages import encode_defunct
from sqlalchemy import select, update

from core.accounts import get_or_create_user
from core.context import Context
from core.db import Account as AccountRow
from core.db import Outbox, WalletLinkToken, utcnow
from core.payments.account_credit import add_credit
from core.results import Caller, Refused
from core.service.wallet import wallet
from core.wallet_link import Linked, SiweRequest, issue_nonce, link_wallet

ME = Caller("telegram", "4242", "me", chat_id="4242")


def _token(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _sign(req: SiweRequest, key: object) -> tuple[str, str]:
    text = req.message()
    return text, "0x" + Account.sign_message(encode_defunct(text=text), key).signature.hex()


async def _linked_user(ctx: Context) -> int | None:
    async with ctx.db.session() as s:
        acc = (
            await s.execute(select(AccountRow).where(AccountRow.platform_user_id == "4242"))
        ).scalar_one()
    return acc.user_id


async def _outbox(ctx: Context) -> int:
    async with ctx.db.session() as s:
        return len((await s.execute(select(Outbox))).scalars().all())


async def test_siwe_links_once_and_refuses_replay(ctx: Context) -> None:
    who = Account.create()
    info = await wallet(ctx, ME)
    assert info.address is None and info.credit == Decimal(0)
    token = _token(info.link_url)
    req = await issue_nonce(ctx, token, who.address.lower())
    assert isinstance(req, SiweRequest)
    assert req.domain == "127.0.0.1:8080" and req.address == who.address  # checksummed
    msg, sig = _sign(req, who.key)
    res = await link_wallet(ctx, token, msg, sig)
    assert isinstance(res, Linked) and res.address == who.address.lower()
    assert await _linked_user(ctx) is not None
    assert await _outbox(ctx) == 1
    again = await link_wallet(ctx, token, msg, sig)
    assert again == Refused("link_used", again.message) and "already used" in again.message
    assert await _outbox(ctx) == 1
    async with ctx.db.session() as s:
        row = (await s.execute(select(WalletLinkToken))).scalar_one()
    assert row.token_hash != token and token not in row.token_hash  # only the hash is kept


async def test_bad_siwe_messages_link_nothing(ctx: Context) -> None:
    who, stranger = Account.create(), Account.create()
    token = _token((await wallet(ctx, ME)).link_url)
    assert (await link_wallet(ctx, token, "hello", "0x00")).code == "no_nonce"  # type: ignore[union-attr]
    first = await issue_nonce(ctx, token, who.address)
    req = await issue_nonce(ctx, token, who.address)  # a newer nonce replaces the first
    assert isinstance(first, SiweRequest) and isinstance(req, SiweRequest)
    later = (utcnow() + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    cases = {
        "domain_mismatch": _sign(replace(req, domain="evil.example"), who.key),
        "nonce_mismatch": _sign(first, who.key),
        "uri_mismatch": _sign(replace(req, uri="http://127.0.0.1:8080/link/other"), who.key),
        "message_expired": _sign(replace(req, expiration_time="2020-01-01T00:00:00Z"), who.key),
        "not_yet_valid": (
            lambda r: (
                r.message().replace(
                    f"Expiration Time: {r.expiration_time}",
                    f"Expiration Time: {r.expiration_time}\nNot Before: {later}",
                ),
                None,
            )
        )(req),
        "invalid_signature": _sign(req, stranger.key),
        "malformed_message": ("not a siwe message", "0x" + "11" * 65),
    }
    for code, (msg, sig) in cases.items():
        if sig is None:  # sign the edited text itself
            sig = "0x" + Account.sign_message(encode_defunct(text=msg), who.key).signature.hex()
        res = await link_wallet(ctx, token, msg, sig)
        assert isinstance(res, Refused) and res.code == code, (code, res)
    assert await _linked_user(ctx) is None and await _outbox(ctx) == 0
    assert (await issue_nonce(ctx, token, "0x1234")).code == "invalid_address"  # type: ignore[union-attr]
    # an expired link: refused before any signature is looked at
    async with ctx.db.session() as s:
        await s.execute(update(WalletLinkToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    msg, sig = _sign(req, who.key)
    assert (await link_wallet(ctx, token, msg, sig)).code == "link_expired"  # type: ignore[union-attr]
    assert (await link_wallet(ctx, "../../etc/passwd", msg, sig)).code == "unknown_link"  # type: ignore[union-attr]
    assert await _linked_user(ctx) is None


async def test_wallet_shows_address_and_credit(ctx: Context) -> None:
    who = Account.create()
    first = await wallet(ctx, ME)
    async with ctx.db.session() as s:
        user = await get_or_create_user(s, who.address)
        await s.execute(
            update(AccountRow).where(AccountRow.platform_user_id == "4242").values(user_id=user.id)
        )
        await add_credit(s, user.id, 500_000, "overpaid", "receipt:1")
        await add_credit(s, user.id, -200_000, "spent", "invoice:x")
    info = await wallet(ctx, ME)
    assert info.address == who.address.lower()
    assert info.credit == Decimal("0.3") and isinstance(info.credit, Decimal)
    assert info.link_url != first.link_url  # a fresh one-time link each time
