"""The storefront over HTTP (the real app through httpx's ASGI transport), on both engines:
sign-in with a real SIWE signature (and its refusals), the cookie's flags, CSRF and
cross-site refusals, purchases made on another surface shown to the wallet, search (titles
for all, passages for owners), OpenGraph tags, and live mode refusing the demo wallet."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from sqlalchemy import func, insert, select, update

from bot.wiring import web_app
from core.accounts import get_or_create_account, get_or_create_user, link_account
from core.config import Secrets
from core.context import Context
from core.db import Database, Invoice, TranscriptionPayment, WebSession, utcnow
from core.results import Caller
from tests.chat.helpers import add_space, space_id_for
from tests.conftest import make_settings

PUBLIC = "http://127.0.0.1:8080"  # the default web.public_url: what sign-ins bind to
SEGMENTS = [
    {"start": 3.0, "end": 9.0, "speaker": "ann", "text": "The vexquillion budget is final."},
    {"start": 70.0, "end": 80.0, "speaker": "bob", "text": "We ship the rollup in May."},
]


def _client(ctx: Context, base: str = PUBLIC) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=web_app(ctx)), base_url=base, timeout=30
    )


@pytest.fixture
async def web(ctx: Context) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(ctx) as c:
        yield c


async def _owned_on_telegram(ctx: Context, wallet: LocalAccount, pk: int) -> None:
    """A Telegram member linked to ``wallet`` bought Space ``pk`` there."""
    async with ctx.db.session() as s:
        acc = await get_or_create_account(s, Caller("telegram", "4242"))
        user = await get_or_create_user(s, wallet.address.lower())
        await link_account(s, acc.id, user.id)
        await s.execute(
            insert(TranscriptionPayment).values(
                user_id=user.id, space_id=pk, amount_usdc="0.2", payment_verified=True
            )
        )


def _write_transcript(ctx: Context, sid: str) -> None:
    folder = ctx.spaces_dir / sid
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "transcript.md").write_text("# Budget talk\n\nThe vexquillion budget is final.\n")


async def _signed(web: httpx.AsyncClient, wallet: LocalAccount, **change: Any) -> dict[str, Any]:
    """The sign-in payload a browser wallet makes: the challenge's message, personal_sign."""
    r = await web.get("/session/challenge", params={"address": wallet.address})
    assert r.status_code == 200, r.text
    ch = r.json()
    info = {**ch["info"], **change}
    message = ch["message"]
    if change:  # what a forger would sign: the edited fields' own message
        from x402.extensions.sign_in_with_x.evm import format_siwe_message

        message = format_siwe_message(info, ch["address"])
    sig = Account.sign_message(encode_defunct(text=message), wallet.key).signature.hex()
    return {**info, "address": ch["address"], "signature": "0x" + sig.removeprefix("0x")}


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html
    return m.group(1)


async def _count(ctx: Context, model: Any) -> int:
    async with ctx.db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_wallet_signs_in_and_sees_what_it_bought_anywhere(
    ctx: Context, web: httpx.AsyncClient
) -> None:
    wallet = Account.create()
    pk = await add_space(ctx, 1, SEGMENTS, title="Budget talk", participants=["ann", "bob"])
    sid = space_id_for(1)
    await _owned_on_telegram(ctx, wallet, pk)
    _write_transcript(ctx, sid)

    visitor = await web.get(f"/spaces/{sid}")
    assert visitor.status_code == 200
    assert 'id="signin-button"' in visitor.text and "download-md" not in visitor.text
    assert (await web.get(f"/spaces/{sid}/transcript.md")).status_code == 401

    payload = await _signed(web, wallet)
    r = await web.post("/session", json={"payload": payload})
    assert r.status_code == 200 and r.json() == {
        "status": "signed_in",
        "wallet": wallet.address.lower(),
    }
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    page = await web.get(f"/spaces/{sid}")
    assert 'id="download-md"' in page.text and "unlock-button" in page.text
    md = await web.get(f"/spaces/{sid}/transcript.md")
    assert md.status_code == 200 and "vexquillion" in md.text
    assert md.headers["content-disposition"] == f'attachment; filename="{sid}.md"'
    # passages of owned Spaces in search, with their timestamp
    found = await web.get("/", params={"q": "vexquillion"})
    assert "The vexquillion budget is final" in found.text and "at 0:03" in found.text

    # the same signed message again: refused (single-use nonce), no second session
    sessions = await _count(ctx, WebSession)
    again = await web.post("/session", json={"payload": payload})
    assert again.status_code == 401 and again.json()["code"] == "invalid_siwx_nonce_used"
    assert await _count(ctx, WebSession) == sessions

    # sign out: the session is gone
    r = await web.post("/session/end", data={"csrf": _csrf(page.text)})
    assert r.status_code == 303 and await _count(ctx, WebSession) == sessions - 1
    assert "download-md" not in (await web.get(f"/spaces/{sid}")).text


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"uri": PUBLIC + "/x402/transcribe"}, "invalid_siwx_uri_mismatch"),
        ({"domain": "evil.example"}, "invalid_siwx_domain_mismatch"),
        ({"chainId": "eip155:1"}, "invalid_siwx_chain_mismatch"),
        ({"issuedAt": "2020-01-01T00:00:00.000Z"}, "invalid_siwx_issued_at_too_old"),
    ],
)
async def test_sign_in_refusals(
    ctx: Context, web: httpx.AsyncClient, change: dict[str, str], code: str
) -> None:
    payload = await _signed(web, Account.create(), **change)
    r = await web.post("/session", json={"payload": payload})
    assert r.status_code == 401 and r.json()["code"] == code, r.text
    assert "set-cookie" not in r.headers and await _count(ctx, WebSession) == 0


async def test_a_signature_by_another_wallet_is_refused(
    ctx: Context, web: httpx.AsyncClient
) -> None:
    payload = await _signed(web, Account.create())
    payload["signature"] = (await _signed(web, Account.create()))["signature"]
    r = await web.post("/session", json={"payload": payload})
    assert r.status_code == 401 and r.json()["code"] == "invalid_siwx_signature"


async def test_forms_need_the_session_its_csrf_token_and_this_origin(
    ctx: Context, web: httpx.AsyncClient
) -> None:
    await add_space(ctx, 2, SEGMENTS, title="Rollups")
    sid = space_id_for(2)
    r = await web.post("/session/demo", data={"next": f"/spaces/{sid}"})
    assert r.status_code == 303 and r.headers["location"] == f"/spaces/{sid}"
    csrf = _csrf((await web.get(f"/spaces/{sid}")).text)
    invoices = await _count(ctx, Invoice)
    refused = [
        (await web.post(f"/spaces/{sid}/buy", data={"csrf": "x" * 32}), 403, "out of date"),
        (await web.post(f"/spaces/{sid}/buy", data={"q": "1"}), 403, "out of date"),
        (
            await web.post(
                f"/spaces/{sid}/buy",
                data={"csrf": csrf},
                headers={"Sec-Fetch-Site": "cross-site"},
            ),
            403,
            "posted from another website",
        ),
        (
            await web.post(
                f"/spaces/{sid}/buy",
                data={"csrf": csrf},
                headers={"Origin": "https://evil.example"},
            ),
            403,
            "posted from another website",
        ),
        (await web.post(f"/spaces/{sid}/buy", json={"csrf": csrf}), 400, "x-www-form-urlencoded"),
    ]
    for resp, status, phrase in refused:
        assert resp.status_code == status and phrase in resp.text, (resp.status_code, resp.text)
    async with _client(ctx) as stranger:  # no session at all
        r = await stranger.post(f"/spaces/{sid}/buy", data={"csrf": csrf})
        assert r.status_code == 401 and "Sign in with your wallet first" in r.text
    assert await _count(ctx, Invoice) == invoices
    # the control: the same form, right, makes the invoice and goes to its pay page
    ok = await web.post(f"/spaces/{sid}/buy", data={"csrf": csrf})
    assert ok.status_code == 303 and ok.headers["location"].startswith(PUBLIC + "/pay/")
    assert await _count(ctx, Invoice) == invoices + 1
    # an open redirect is no place to go after signing in
    r = await web.post("/session/demo", data={"next": "//evil.example/x"})
    assert r.headers["location"] == "/"


async def test_the_cookie_is_secure_behind_https(db_url: str, tmp_path: Path) -> None:
    url = "https://shop.example"
    settings = make_settings(db_url, tmp_path / "data", web={"public_url": url})
    ctx = Context(settings, Secrets.model_construct(), Database(db_url))
    try:
        async with _client(ctx, url) as c:
            r = await c.post("/session/demo", data={"next": "/"})
        assert r.status_code == 303
        assert "Secure" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]
    finally:
        await ctx.close()


async def test_visitors_search_titles_only(ctx: Context, web: httpx.AsyncClient) -> None:
    await add_space(ctx, 3, SEGMENTS, title="Vexquillion weekly", participants=["ann"])
    await add_space(ctx, 4, SEGMENTS, title="Other talk")
    r = await web.get("/", params={"q": "vexquillion"})
    assert r.status_code == 200
    assert "Vexquillion weekly" in r.text and "budget is final" not in r.text
    assert "Other talk" not in r.text.split('id="results"')[1].split('id="recent"')[0]


async def test_open_graph_and_twitter_card(ctx: Context, web: httpx.AsyncClient) -> None:
    await add_space(ctx, 5, SEGMENTS, title="Rollups & <friends>")
    sid = space_id_for(5)
    html = (await web.get(f"/spaces/{sid}")).text
    assert '<meta property="og:title" content="Rollups &amp; &lt;friends&gt;">' in html
    assert '<meta name="twitter:card" content="summary">' in html
    assert f'<meta property="og:url" content="{PUBLIC}/spaces/{sid}">' in html
    assert re.search(r'og:description" content="Transcript 0\.2 USDC', html)


async def test_live_mode_refuses_the_demo_wallet(db_url: str, tmp_path: Path) -> None:
    settings = make_settings(
        db_url,
        tmp_path / "data",
        payments={"pay_to": "0x" + "12" * 20, "rpc_url": "http://127.0.0.1:9"},
    )
    assert not settings.payments.test_mode
    ctx = Context(settings, Secrets.model_construct(), Database(db_url))
    try:
        await add_space(ctx, 6, SEGMENTS, title="Live shop")
        sid = space_id_for(6)
        async with _client(ctx) as c:
            page = await c.get(f"/spaces/{sid}")
            assert "demo-signin" not in page.text and "test-mode-ribbon" not in page.text
            assert 'id="signin-button"' in page.text
            r = await c.post("/session/demo", data={"next": f"/spaces/{sid}"})
        assert r.status_code == 403 and "exists only in test mode" in r.text
        assert "set-cookie" not in r.headers and await _count(ctx, WebSession) == 0
    finally:
        await ctx.close()


async def test_an_expired_session_signs_nobody_in_and_is_cleared(
    ctx: Context, web: httpx.AsyncClient
) -> None:
    await add_space(ctx, 8, SEGMENTS, title="Expiring")
    sid = space_id_for(8)
    assert (await web.post("/session/demo", data={"next": "/"})).status_code == 303
    assert 'id="signed-in"' in (await web.get(f"/spaces/{sid}")).text
    async with ctx.db.session() as s:
        await s.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert 'id="signed-in"' not in (await web.get(f"/spaces/{sid}")).text
    async with _client(ctx) as other:  # the next sign-in clears expired sessions
        assert (await other.post("/session/demo", data={"next": "/"})).status_code == 303
    assert await _count(ctx, WebSession) == 1
