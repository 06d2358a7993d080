"""Access drill (issue 9): owner / payer / unlocked / non-owner / admin × every Telegram command,
every Discord slash command (and autocomplete, and through a member's user install), every
HTTP route and every MCP tool: 0 leaks.

The roles and the planted markers are described in ``tests/drills/access_world.py``.
Telegram runs python-telegram-bot in webhook mode against the Bot API stand-in: every update
is posted to the app's own ``/telegram/webhook``, one role's command at a time, each cell closed
by a sentinel's ``/help`` (updates are handled in order, so what the bot says between two
sentinels answers that cell). Discord runs discord.py against the Discord stand-in. The HTTP
routes are enumerated from the FastAPI app itself: a route, command or slash command without a
matrix entry fails the test, so a new one cannot be missed.

A leak is a planted marker (transcript text, passages, the revenue tail, account credit,
somebody else's wallet, invoice id, link token or platform id, a chat question) in anything
said to a role not entitled to it. Beside the scan, each surface asserts what the entitled
roles do get, so the matrix cannot pass by showing nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from fastapi.routing import iter_route_contexts
from telegram.ext import CommandHandler
from x402.http.utils import encode_payment_signature_header
from x402.schemas import PaymentPayload

from bot.wiring import web_app
from core import outbox
from core.context import Context
from core.payments.wallet_proof import transcript_message
from tests.discord.conftest import Recorded, endpoints, running  # noqa: F401 (fixture)
from tests.drills.access_mcp import check_mcp, listed_tools, mcp_entries, mcp_matrix
from tests.drills.access_world import (
    ANSWERED,
    CHAPTER_A,
    DC_IDS,
    INVOICE_QUESTION,
    PASSAGE_A,
    QUESTION,
    REVENUE,
    ROLES,
    SENTINEL_TG,
    TAKEAWAY_A,
    TG_IDS,
    TRANSCRIPT_A,
    Person,
    World,
    build_world,
)
from tests.drills.figures import record
from tests.payments.conftest import chain_secrets, client_payload, signed_payload
from tests.payments.test_x402_pay import _reqs
from tests.stand_ins.chain import Chain
from tests.stand_ins.discord_api import CHANNEL_ID, USER_INSTALL, DiscordAPI, NotOffered, Upload
from tests.stand_ins.telegram_api import BotAPI, bot_api
from tests.telegram.test_scenarios import PUBLIC, shop_context
from tests.telegram.test_scenarios import running as telegram_running

WEBHOOK_SECRET = "drill-webhook-secret"
# The drill's waits detect hangs, not slowness: a surface fails only when nothing moves for
# this long (on a loaded 2-core machine 55 concurrent Discord commands took up to 15 s).
STALL_SECONDS = 120.0
DISCORD_AT_ONCE = 4  # Discord cells in flight together (each reply waits on its own command)
UNKNOWN_ID = "NoSuchThing-0123456789ab"
Cells = dict[tuple[str, str, str], str]  # (surface, entry, role) → everything said


@pytest.fixture
async def shop(db_url: str, tmp_path: Path, chain: Chain) -> AsyncIterator[Context]:
    ctx = shop_context(
        db_url,
        tmp_path,
        chain_secrets(chain),
        payments=chain.payment_settings(),
        telegram={"mode": "webhook", "admin_ids": [TG_IDS["admin"]]},
    )
    ctx.wiring.resolver = Recorded()
    try:
        yield ctx
    finally:
        await ctx.close()


# ---------------------------------------------------------------- Telegram


# Updates that are not commands, each answered by one handler type (a new handler type without
# its row here fails the drill): (update builder for a person and the owner's invoice) rows.
UPDATE_ROWS = {
    "stars button": "CallbackQueryHandler",
    "pre_checkout_query": "PreCheckoutQueryHandler",
    "successful_payment": "MessageHandler",
    "import upload": "MessageHandler",
    "inline query": "InlineQueryHandler",
}
Entry = str | Callable[[BotAPI], dict[str, Any]]


def telegram_entries(w: World, p: Person) -> dict[str, list[Entry]]:
    a, pp, ww = w.a, w.p, w.w
    mine, owners = p.invoice, w.people["owner"].invoice
    return {
        "wallet": ["/wallet"],  # first: before any quote of the payer reserves their credit
        "start": ["/start", f"/start resend_{a}", f"/start resend_{pp}", f"/start resend_{ww}"]
        + [f"/start paid_{p.invoice}", f"/start answer_{w.answer_id}", f"/start buy_{a}"],
        "help": ["/help"],
        "status": [f"/status {a}", f"/status {pp}"],
        "transcribe": [f"/transcribe {a}", f"/transcribe {pp}"],
        "unlock": [f"/unlock {a}"],
        "chat": [f"/chat {QUESTION} {a}", f"/chat what about the reserve? {ww}"],
        "myspaces": ["/myspaces"],
        "popular": ["/popular"],
        "search": ["/search agreed budget", "/search reserve", "/search alpha"],
        "revenue": ["/revenue all"],
        "paysupport": ["/paysupport"],
        "terms": ["/terms"],
        "import": [f"/import {a}"],
        # an admin's recording: A is completed (refused for the admin too), nothing fetched
        "import upload": [lambda api: api.upload_update(b"RIFF-not-fetched", f"/import {a}", p.tg)],
        # Telegram Stars: one's own invoice is sent; the owner's invoice is nobody else's
        "stars button": [
            lambda api: api.press_update(f"stars:{mine}", p.tg),
            lambda api: api.press_update(f"stars:{owners}", p.tg),
        ],
        "pre_checkout_query": [
            lambda api: api.pre_checkout_update(mine, 1, p.tg),
            lambda api: api.pre_checkout_update(owners, 40, p.tg),
        ],
        # inline mode: cards anyone may see (a link, words, nothing), never transcript text
        "inline query": [
            lambda api: api.inline_query_update(f"https://x.com/i/spaces/{a}", p.tg),
            lambda api: api.inline_query_update("alpha weekly", p.tg),
            lambda api: api.inline_query_update("", p.tg),
        ],
        # a charge for an invoice that is not ours to grant: refunded, and nothing is said
        "successful_payment": [
            lambda api: api.payment_update(UNKNOWN_ID, 15, p.tg, f"stxDrill{p.tg}"),
        ],
    }


async def telegram_matrix(w: World, api: BotAPI, web: httpx.AsyncClient) -> Cells:
    header = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
    first = len(api.calls)
    cells: list[tuple[str, str, str]] = []
    for role in ROLES:
        person = w.people[role]
        for entry, commands in telegram_entries(w, person).items():
            for text in commands:
                update = text(api) if callable(text) else api.update(text, user_id=person.tg)
                r = await web.post("/telegram/webhook", json=update, headers=header)
                assert r.status_code == 200, r.text
            sentinel = api.update("/help", user_id=SENTINEL_TG)
            assert (await web.post("/telegram/webhook", json=sentinel, headers=header)).is_success
            cells.append(("telegram", entry, role))

    def closed() -> int:
        return sum(1 for m, p in api.calls if m == "sendMessage" and p["chat_id"] == SENTINEL_TG)

    seen, moved = 0, time.monotonic()
    while (done := closed()) < len(cells):
        if done != seen:
            seen, moved = done, time.monotonic()
        assert time.monotonic() - moved < STALL_SECONDS, (
            f"{done} of {len(cells)} Telegram cells answered; none more for {STALL_SECONDS}s"
        )
        await asyncio.sleep(0.05)
    out: Cells = {}
    said: list[str] = []
    i = 0
    for method, params in api.calls[first:]:
        if method == "sendMessage" and params["chat_id"] == SENTINEL_TG:
            out[cells[i]] = "\n".join(said)
            said, i = [], i + 1
            continue
        role = cells[i][2]
        # a command's answer goes to the member who sent it, never to anybody else
        # (answers to a button or a pre-checkout go back to Telegram by the query's id)
        if method not in ("answerCallbackQuery", "answerPreCheckoutQuery", "answerInlineQuery"):
            assert params["chat_id"] == w.people[role].tg, (cells[i], method, params["chat_id"])
        said.append(json.dumps({k: v for k, v in params.items() if k != "chat_id"}))
    return out


def check_telegram(w: World, cells: Cells) -> None:
    said = {(e, r): t for (_s, e, r), t in cells.items()}
    for (entry, role), text in said.items():
        assert "Something went wrong" not in text, (entry, role, text)
    owners = ("owner", "unlocked")
    for role in ROLES:
        assert (TRANSCRIPT_A in said[("start", role)]) == (role in owners), ("resend", role)
        assert (ANSWERED in said[("start", role)]) == (role == "unlocked"), ("answer", role)
        assert (TRANSCRIPT_A in said[("transcribe", role)]) == (role in owners)
        assert (PASSAGE_A in said[("search", role)]) == (role in owners)
        assert "Alpha weekly" in said[("search", role)]  # titles are for everyone
        # the teaser: chapter titles for everyone, in /popular and /search
        assert CHAPTER_A in said[("popular", role)] and CHAPTER_A in said[("search", role)]
        assert (TAKEAWAY_A in said[("start", role)]) == (role in owners)  # the overview
        assert (REVENUE in said[("revenue", role)]) == (role == "admin")
        wallet = w.people[role].wallet.address.lower()
        assert wallet in said[("wallet", role)].lower()
        listed = {sid for sid in (w.a, w.p, w.w) if sid in said[("myspaces", role)]}
        assert listed == w.owned(role), (role, said[("myspaces", role)])
    assert "0.014159 USDC" in said[("wallet", "payer")]
    for role in ROLES:  # only admins import; A is completed, so the admin is refused too
        admin = role == "admin"
        assert ("Only the bot" in said[("import", role)]) != admin, (role, said[("import", role)])
        assert ("caption" in said[("import", role)]) == admin
        upload = said[("import upload", role)]
        assert ("Only the bot" in upload) != admin and ("already transcribed" in upload) == admin
    assert "1.00 USDC" in said[("chat", "unlocked")]  # a quote: only the unlocked may ask
    for role in ("owner", "payer", "non_owner", "admin"):
        assert "1.00 USDC" not in said[("chat", role)]
    assert w.people["owner"].invoice in said[("unlock", "owner")]  # its open unlock quote
    for role in ROLES:
        invoice = w.people[role].invoice
        pressed = said[("stars button", role)]
        asked = said[("pre_checkout_query", role)]
        # its own invoice is sent in Stars (payload: its id), the owner's is refused
        assert '"currency": "XTR"' in pressed and invoice in pressed, (role, pressed)
        assert pressed.count("made for somebody else") == (role != "owner"), (role, pressed)
        # 1 Star is not the price; the owner's own unlock at its price (40 Stars) is fine
        assert ('"ok": true' in asked) == (role == "owner"), (role, asked)
        assert ("somebody else" in asked) == (role != "owner"), (role, asked)
        assert said[("successful_payment", role)] == "", role
        cards = said[("inline query", role)]
        # three answers, each with A's card: its title and chapters, its Buy deep link
        assert cards.count('"inline_query_id"') == 3 and cards.count(f"start=buy_{w.a}") == 3
        assert "Alpha weekly" in cards and CHAPTER_A in cards, (role, cards)
        for marker in (TRANSCRIPT_A, PASSAGE_A, TAKEAWAY_A):  # not even to its owners
            assert marker not in cards, (role, marker)


# ---------------------------------------------------------------- Discord


def discord_entries(w: World) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    a, p, ww = w.a, w.p, w.w
    return {
        "wallet": [("wallet", {})],
        "help": [("help", {})],
        "status": [("status", {"space": a}), ("status", {"space": p})],
        "transcribe": [("transcribe", {"space": a}), ("transcribe", {"space": p})],
        "unlock": [("unlock", {"space": a})],
        "chat": [
            ("chat", {"question": QUESTION, "space1": a}),
            ("chat", {"question": "x?", "space1": ww}),
        ],
        "myspaces": [
            ("myspaces", {}),
            ("myspaces", {"space": a}),
            ("myspaces", {"space": ww}),
            ("myspaces", {"space": ww, "format": "srt"}),
        ],
        "popular": [("popular", {})],
        "search": [("search", {"words": "agreed budget"}), ("search", {"words": "reserve"})],
        "revenue": [("revenue", {"period": "all"})],
        "import": [("import", {"space": a, "attachment": Upload(b"RIFF-not-fetched")})],
    }


def user_install_entries(w: World) -> list[tuple[str, dict[str, Any]]]:
    """The row "user install": commands a member uses through their own install of the app,
    in a private channel and in a server that never added the bot (the same access rules;
    /revenue and /import are not offered there)."""
    return [
        ("myspaces", {"space": w.a}),
        ("search", {"words": "reserve"}),
        ("transcribe", {"space": w.a}),
        ("chat", {"question": QUESTION, "space1": w.a}),
    ]


BUTTONS = {"AnswerButton": "button"}  # Discord's persistent buttons → their matrix row
AUTOCOMPLETE = [
    ("transcribe", {"space": ""}, "space"),
    ("unlock", {"space": ""}, "space"),
    ("myspaces", {"space": ""}, "space"),
    ("status", {"space": ""}, "space"),
    ("chat", {"question": "q", "space1": ""}, "space1"),
]


async def answer_notice(w: World, ctx: Context, api: DiscordAPI) -> dict[str, Any]:
    """The unlocked member's paid answer, its DM refused: the outbox tells the channel, with
    the "Show my answer" button (the answer itself must not be in the channel)."""
    member = w.people["unlocked"].dc
    api.dms_closed.add(member)
    async with ctx.db.session() as s:
        await outbox.add_message(
            s,
            kind="chat_answer",
            platform="discord",
            recipient=str(member),
            payload={"session_id": w.answer_id},
            dedupe_key=f"chat_answer:drill:{w.answer_id}",
            origin_chat_id=str(CHANNEL_ID),
        )
    assert await outbox.drain_once(ctx, "drill") == 1
    (notice,) = api.channel()
    assert ANSWERED not in json.dumps(notice) and w.answer_id in json.dumps(notice)
    return notice


async def discord_matrix(
    w: World, ctx: Context, api: DiscordAPI
) -> tuple[Cells, dict[str, set[str]]]:
    notice = await answer_notice(w, ctx, api)
    before = json.dumps(api.messages)

    at_once = asyncio.Semaphore(DISCORD_AT_ONCE)

    async def said(role: str, entry: str, specs: list[tuple[str, dict[str, Any]]]) -> str:
        out = []
        for command, options in specs:
            async with at_once:
                it = await api.interact(command, options, user_id=w.people[role].dc)
                reply = await api.reply(it, timeout=STALL_SECONDS)
            files = [f["content"].decode(errors="replace") for f in reply.files]
            out.append(json.dumps(reply.data) + "\n".join(files))
        return "\n".join(out)

    async def elsewhere(role: str) -> str:
        out, member = [], w.people[role].dc
        for where in ("private", "other guild"):
            place = {"where": where, "install": USER_INSTALL}
            for command, options in user_install_entries(w):
                async with at_once:
                    it = await api.interact(command, options, user_id=member, **place)
                    reply = await api.reply(it, timeout=STALL_SECONDS)
                files = [f["content"].decode(errors="replace") for f in reply.files]
                out.append(json.dumps(reply.data) + "\n".join(files))
            for admin in ("revenue", "import"):
                with pytest.raises(NotOffered):
                    await api.interact(admin, {}, user_id=member, **place)
        return "\n".join(out)

    async def pressed(role: str) -> str:
        async with at_once:
            it = await api.click(notice, user_id=w.people[role].dc)
            reply = await api.reply(it, timeout=STALL_SECONDS)
        return json.dumps(reply.data)

    async def offered(role: str) -> tuple[str, set[str]]:
        seen: set[str] = set()
        texts = []
        for command, options, focused in AUTOCOMPLETE:
            async with at_once:
                choices = await api.choices(
                    command, options, focused, STALL_SECONDS, user_id=w.people[role].dc
                )
            seen |= {c["value"] for c in choices}
            texts.append(json.dumps(choices))
        return "\n".join(texts), seen

    entries = discord_entries(w)
    keys = [(e, r) for r in ROLES for e in entries]
    texts = await asyncio.gather(*(said(r, e, entries[e]) for e, r in keys))
    cells: Cells = {("discord", e, r): t for (e, r), t in zip(keys, texts, strict=True)}
    suggestions = {}
    for role, (text, seen) in zip(ROLES, await asyncio.gather(*map(offered, ROLES)), strict=True):
        cells[("discord", "autocomplete", role)] = text
        suggestions[role] = seen
    for role, text in zip(ROLES, await asyncio.gather(*map(pressed, ROLES)), strict=True):
        cells[("discord", "button", role)] = text
    for role, text in zip(ROLES, await asyncio.gather(*map(elsewhere, ROLES)), strict=True):
        cells[("discord", "user install", role)] = text
    assert json.dumps(api.messages) == before, "a command posted outside its interaction"
    assert api.fetched == [], "an attachment was fetched for a refused /import"
    return cells, suggestions


def check_discord(w: World, cells: Cells, suggestions: dict[str, set[str]]) -> None:
    said = {(e, r): t for (_s, e, r), t in cells.items()}
    owners = ("owner", "unlocked")
    for role in ROLES:
        assert (TRANSCRIPT_A in said[("myspaces", role)]) == (role in owners), role
        assert (PASSAGE_A in said[("search", role)]) == (role in owners), role
        assert (REVENUE in said[("revenue", role)]) == (role == "admin"), role
        assert CHAPTER_A in said[("popular", role)], role  # the teaser, for everyone
        assert w.people[role].wallet.address.lower() in said[("wallet", role)].lower()
        assert suggestions[role] == w.owned(role), (role, suggestions[role])
        assert (ANSWERED in said[("button", role)]) == (role == "unlocked"), role
        admin = role == "admin"
        assert ("Only the bot" in said[("import", role)]) != admin, said[("import", role)]
        assert ("already transcribed" in said[("import", role)]) == admin
        elsewhere = said[("user install", role)]  # the same rules where the bot is not
        assert (TRANSCRIPT_A in elsewhere) == (role in owners), role
        assert (PASSAGE_A in elsewhere) == (role in owners), role
        assert ("1.00 USDC" in elsewhere) == (role == "unlocked"), role  # a chat quote
    assert "1.00 USDC" in said[("chat", "unlocked")]


# ---------------------------------------------------------------- HTTP


def app_routes(app: Any) -> set[str]:
    """``METHOD path`` of every route the app serves (mounts as ``GET <path>/{path}``)."""
    out = set()
    for rc in iter_route_contexts(app.routes):
        methods = rc.methods or {"GET"}
        path = rc.path if rc.methods else f"{rc.path}/{{path}}"
        out |= {f"{m} {path}" for m in methods - {"HEAD"}}
    return out


def _pay_header(ctx: Context, chain: Chain, p: Person, units: int, wrong: bool = False) -> str:
    """PAYMENT-SIGNATURE from the person's wallet; ``wrong`` signs 1 unit (always refused)."""
    reqs = _reqs(ctx, units)
    body = (
        signed_payload(chain, p.wallet, reqs, value=1)
        if wrong
        else client_payload(chain, p.wallet, reqs)
    )
    return encode_payment_signature_header(PaymentPayload.model_validate(body))


def _proof(p: Person, sid: str, address: str | None = None) -> dict[str, str]:
    ts = int(time.time())
    sig = Account.sign_message(encode_defunct(text=transcript_message(sid, ts)), p.wallet.key)
    return {
        "X-Wallet-Address": address or p.wallet.address,
        "X-Wallet-Timestamp": str(ts),
        "X-Wallet-Signature": "0x" + sig.signature.hex(),
    }


Req = tuple[str, str, dict[str, Any]]


def http_entries(w: World, ctx: Context, chain: Chain, p: Person) -> dict[str, list[Req]]:
    a, role, owners = w.a, p.role, ("owner", "unlocked")
    buys = role not in owners  # a valid payment here would buy A: sign a refused amount
    junk = {"json": {"authorization": {}, "signature": "0x00"}}
    get = lambda path, **kw: ("GET", path, kw)  # noqa: E731
    ck = {"Cookie": f"spacescribe_session={p.web_token}"}
    form = lambda **d: {"data": {"csrf": p.csrf, **d}, "headers": ck}  # noqa: E731
    return {
        "GET /openapi.json": [get("/openapi.json")],
        "GET /docs": [get("/docs")],
        "GET /docs/oauth2-redirect": [get("/docs/oauth2-redirect")],
        "GET /redoc": [get("/redoc")],
        "GET /docs-static/{path}": [
            get(f"/docs-static/{f}") for f in ("swagger-ui.css", "favicon.png", "../config.toml")
        ],
        "GET /static/{path}": [get(f"/static/{f}") for f in ("pay.js", "link.js", "wallet.js")],
        "GET /healthz": [get("/healthz")],
        "GET /readyz": [get("/readyz")],
        "GET /metrics": [get("/metrics")],
        "GET /api/spaces/{space_id}": [get(f"/api/spaces/{s}") for s in (a, w.p, w.w)],
        "GET /api/spaces/{space_id}/transcript": [
            get(f"/api/spaces/{s}/transcript", headers=_proof(p, s)) for s in (a, w.p, w.w)
        ]
        + [  # someone else's address with this person's signature
            get(
                f"/api/spaces/{a}/transcript",
                headers=_proof(
                    p, a, w.people["owner" if role != "owner" else "unlocked"].wallet.address
                ),
            )
        ],
        "POST /x402/transcribe": [
            (
                "POST",
                "/x402/transcribe",
                {
                    "json": {"space": a},
                    "headers": {"PAYMENT-SIGNATURE": _pay_header(ctx, chain, p, 200_000, buys)},
                },
            )
        ],
        "POST /x402/unlock": [
            (
                "POST",
                "/x402/unlock",
                {
                    "json": {"space": a},
                    "headers": {
                        "PAYMENT-SIGNATURE": _pay_header(ctx, chain, p, 500_000, role == "owner")
                    },
                },
            )
        ],
        "POST /x402/chat": [
            (
                "POST",
                "/x402/chat",
                {
                    "json": {"question": QUESTION, "spaces": [a]},
                    "headers": {"PAYMENT-SIGNATURE": _pay_header(ctx, chain, p, 1_000_000)},
                },
            )
        ],
        "GET /pay/{public_id}": [get(f"/pay/{p.invoice}"), get(f"/pay/{UNKNOWN_ID}")],
        "GET /pay/{public_id}/qr.svg": [get(f"/pay/{p.invoice}/qr.svg")],
        "GET /pay/{public_id}/authorization": [
            get(f"/pay/{p.invoice}/authorization", params={"payer": p.wallet.address})
        ],
        "POST /pay/{public_id}": [("POST", f"/pay/{p.invoice}", junk)],
        # live mode (the drill's): the demo wallet is refused for everyone, 403
        "POST /pay/{public_id}/demo": [("POST", f"/pay/{p.invoice}/demo", {"json": {}})],
        "GET /link/{token}": [get(f"/link/{p.link_token}"), get(f"/link/{UNKNOWN_ID}")],
        "GET /link/{token}/nonce": [
            get(f"/link/{p.link_token}/nonce", params={"address": p.wallet.address})
        ],
        "POST /link/{token}": [("POST", f"/link/{p.link_token}", {"json": {"message": 1}})],
        # anything else under these prefixes (extra segments, encoded traversal): refused
        "GET /api/spaces/{rest:path}": [
            get(f"/api/spaces/{a}/transcript/more", headers=_proof(p, a)),
            get("/api/spaces/..%2F..%2Fpay"),
        ],
        "GET /pay/{rest:path}": [get(f"/pay/{p.invoice}/qr.svg/more"), get("/pay/..%2Fhealthz")],
        "POST /pay/{rest:path}": [("POST", f"/pay/{p.invoice}/more", junk)],
        "GET /link/{rest:path}": [get(f"/link/{p.link_token}/nonce/more")],
        "POST /link/{rest:path}": [("POST", f"/link/{p.link_token}/more", {"json": {}})],
        # the storefront, signed in as the person's wallet (cookie), its forms with their token
        "GET /": [get("/", headers=ck), get("/", params={"q": "agreed budget"}, headers=ck)],
        "GET /spaces": [get("/spaces", params={"link": f"https://x.com/i/spaces/{a}"})],
        "GET /spaces/{space_id}": [get(f"/spaces/{s}", headers=ck) for s in (a, w.p, w.w)],
        "GET /spaces/{space_id}/transcript.{fmt}": [
            get(f"/spaces/{s}/transcript.md", headers=ck) for s in (a, w.w)
        ],
        "POST /spaces/{space_id}/buy": [("POST", f"/spaces/{a}/buy", form())],
        "POST /spaces/{space_id}/unlock": [("POST", f"/spaces/{a}/unlock", form())],
        "POST /spaces/{space_id}/ask": [("POST", f"/spaces/{a}/ask", form(question=QUESTION))],
        "GET /session/challenge": [get("/session/challenge", params={"address": p.wallet.address})],
        "POST /session": [("POST", "/session", {"json": {"payload": {}}})],
        # live mode (the drill's): no demo wallet sign-in for anyone, 403
        "POST /session/demo": [("POST", "/session/demo", {"data": {"next": "/"}})],
        "POST /session/end": [
            ("POST", "/session/end", {"data": {"csrf": "stale-token-0123456789"}, "headers": ck})
        ],
        "GET /spaces/{rest:path}": [get(f"/spaces/{a}/more", headers=ck), get("/spaces/..%2Fx")],
        "POST /spaces/{rest:path}": [("POST", f"/spaces/{a}/more", form())],
        # MCP over streamable HTTP: its tools have their own rows (tests/drills/access_mcp.py)
        "POST /mcp": [
            (
                "POST",
                "/mcp",
                {
                    "json": {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                    "headers": {"Accept": "application/json, text/event-stream"},
                },
            )
        ],
        "POST /telegram/webhook": [
            ("POST", "/telegram/webhook", {"json": {"update_id": 1}}),
            (
                "POST",
                "/telegram/webhook",
                {"json": {"update_id": 1}, "headers": {"X-Telegram-Bot-Api-Secret-Token": "x"}},
            ),
        ],
    }


async def http_matrix(
    w: World, ctx: Context, chain: Chain, web: httpx.AsyncClient
) -> tuple[Cells, dict[tuple[str, str], list[int]]]:
    cells: Cells = {}
    codes: dict[tuple[str, str], list[int]] = {}
    for role in ROLES:
        for route, requests in http_entries(w, ctx, chain, w.people[role]).items():
            texts, statuses = [], []
            for method, path, kw in requests:
                r = await web.request(method, path, **kw)
                statuses.append(r.status_code)
                texts.append(json.dumps(dict(r.headers)) + "\n" + r.text)
            cells[("http", route, role)] = "\n".join(texts)
            codes[(route, role)] = statuses
    return cells, codes


def check_http(w: World, cells: Cells, codes: dict[tuple[str, str], list[int]]) -> None:
    said = {(e, r): t for (_s, e, r), t in cells.items()}
    owners = ("owner", "unlocked")
    for role in ROLES:
        got = codes[("GET /api/spaces/{space_id}/transcript", role)]
        if role in owners:
            assert got == [200, 403, 403, 401], (role, got)
            assert TRANSCRIPT_A in said[("GET /api/spaces/{space_id}/transcript", role)]
        elif role == "payer":
            assert got == [403, 409, 403, 401], (role, got)
        else:
            assert got == [403, 403, 403, 401], (role, got)
        chat = codes[("POST /x402/chat", role)]
        assert chat == ([200] if role == "unlocked" else [402]), (
            role,
            chat,
            said[("POST /x402/chat", role)].split("\n", 1)[1][:200],
        )
        assert (PASSAGE_A in said[("POST /x402/chat", role)]) == (role == "unlocked")
        unlock = codes[("POST /x402/unlock", role)]
        assert unlock == ([200] if role == "unlocked" else [402] if role == "owner" else [403])
        transcribe = codes[("POST /x402/transcribe", role)]
        assert transcribe == ([200] if role in owners else [402]), (role, transcribe)
        assert codes[("GET /pay/{public_id}", role)] == [200, 404]
        assert codes[("GET /link/{token}", role)] == [200, 404]
        assert codes[("POST /telegram/webhook", role)] == [403, 403]
        assert codes[("POST /mcp", role)] == [200], role
        assert codes[("POST /pay/{public_id}/demo", role)] == [403], role
        assert "test_mode_only" in said[("POST /pay/{public_id}/demo", role)]
        assert codes[("GET /docs-static/{path}", role)] == [200, 200, 404], role
        for route in ("GET /pay/{rest:path}", "POST /pay/{rest:path}", "GET /link/{rest:path}"):
            assert set(codes[(route, role)]) == {404}, (route, codes[(route, role)])
        assert set(codes[("GET /api/spaces/{rest:path}", role)]) <= {400, 404}
        assert w.people[role].wallet.address.lower() in said[("GET /link/{token}", role)].lower()
    assert INVOICE_QUESTION in said[("GET /pay/{public_id}", "unlocked")]
    check_storefront(w, said, codes)
    for role in ROLES:  # the teaser: chapter titles of completed Spaces, nothing paid
        assert CHAPTER_A in said[("GET /api/spaces/{space_id}", role)], role
    assert CHAPTER_A in said[("GET /pay/{public_id}", "non_owner")]  # quote for A


def check_storefront(
    w: World, said: dict[tuple[str, str], str], codes: dict[tuple[str, str], list[int]]
) -> None:
    """What each role gets from the storefront (beside the leak scan)."""
    owners = ("owner", "unlocked")
    for role in ROLES:
        owner = role in owners
        wallet = w.people[role].wallet.address.lower()
        assert codes[("GET /spaces/{space_id}", role)] == [200, 200, 200], role
        assert wallet in said[("GET /spaces/{space_id}", role)].lower()  # signed in as them
        got = codes[("GET /spaces/{space_id}/transcript.{fmt}", role)]
        assert got == ([200, 403] if owner else [403, 403]), (role, got)
        assert (TRANSCRIPT_A in said[("GET /spaces/{space_id}/transcript.{fmt}", role)]) == owner
        assert (PASSAGE_A in said[("GET /", role)]) == owner, role
        assert codes[("GET /", role)] == [200, 200]
        assert codes[("GET /spaces", role)] == [303]
        buy = said[("POST /spaces/{space_id}/buy", role)]
        assert codes[("POST /spaces/{space_id}/buy", role)] == [303]
        assert (f'"location": "/spaces/{w.a}"' in buy) == owner, buy[:300]
        unlock = codes[("POST /spaces/{space_id}/unlock", role)]
        assert unlock == ([303] if owner else [403]), (role, unlock)
        ask = codes[("POST /spaces/{space_id}/ask", role)]
        assert ask == ([303] if role == "unlocked" else [403]), (role, ask)
        assert codes[("POST /session", role)] == [401]
        assert codes[("POST /session/demo", role)] == [403]
        assert "exists only in test mode" in said[("POST /session/demo", role)]
        assert codes[("POST /session/end", role)] == [403]
        assert set(codes[("GET /spaces/{rest:path}", role)]) == {404}
        assert codes[("POST /spaces/{rest:path}", role)] == [404]
    assert ANSWERED in said[("GET /spaces/{space_id}", "unlocked")]  # their paid answer


# ---------------------------------------------------------------- the drill


async def test_access_matrix(shop: Context, chain: Chain, endpoints: None) -> None:  # noqa: F811
    world = await build_world(shop, chain)
    app = web_app(shop)
    transport = httpx.ASGITransport(app=app)
    async with (
        bot_api() as tg_api,
        running(shop, admin_ids=[DC_IDS["admin"]]) as (dc_api, dc_bot),
        httpx.AsyncClient(transport=transport, base_url=PUBLIC, timeout=60) as web,
    ):
        tg_bot = await telegram_running(shop, tg_api, WEBHOOK_SECRET)
        try:
            tg = await telegram_matrix(world, tg_api, web)
            # each role's stray Stars charge went back to that role, in Stars, once
            assert await outbox.drain_once(shop, "drill-stars") == len(ROLES)
            refunds = sorted(r["user_id"] for r in tg_api.sent("refundStarPayment"))
            assert refunds == sorted(TG_IDS[role] for role in ROLES), refunds
            dc, suggestions = await discord_matrix(world, shop, dc_api)
            http, codes = await http_matrix(world, shop, chain, web)
            mcp, mcp_results = await mcp_matrix(world, shop, chain, web)
            tools = await listed_tools(web)
        finally:
            await tg_bot.stop()
        handlers = {
            c for h in tg_bot.app.handlers[0] if isinstance(h, CommandHandler) for c in h.commands
        }
        other_handlers = {
            type(h).__name__ for h in tg_bot.app.handlers[0] if not isinstance(h, CommandHandler)
        }
        slash = {c.name for c in dc_bot.client.tree.get_commands()}
        buttons = {
            c.__name__ for c in dc_bot.client._connection._view_store._dynamic_items.values()
        }
    # every command and route has its row in the matrix
    tg_rows = set(telegram_entries(world, world.people["owner"]))
    dc_rows = set(discord_entries(world))
    http_rows = set(http_entries(world, shop, chain, world.people["owner"]))
    assert other_handlers == set(UPDATE_ROWS.values()), other_handlers
    assert tg_rows == handlers | set(UPDATE_ROWS), (handlers | set(UPDATE_ROWS)) ^ tg_rows
    assert dc_rows == slash, slash ^ dc_rows
    assert buttons == set(BUTTONS), buttons  # every button the bot answers has its row
    assert http_rows == app_routes(app), app_routes(app) ^ http_rows
    mcp_rows = set(await mcp_entries(world, shop, chain, world.people["owner"]))
    assert mcp_rows == tools, mcp_rows ^ tools  # every MCP tool has its row
    cells = {**tg, **dc, **http, **mcp}
    leaks = [
        (surface, entry, role, marker)
        for (surface, entry, role), text in cells.items()
        for marker in world.leaks(role, text)
    ]
    assert leaks == [], leaks
    check_telegram(world, tg)
    check_discord(world, dc, suggestions)
    check_http(world, http, codes)
    check_mcp(world, mcp, mcp_results)
    # + autocomplete and the user-install row
    n = len(tg_rows) + len(dc_rows) + 2 + len(BUTTONS) + len(http_rows) + len(mcp_rows)
    assert len(cells) == len(ROLES) * n
    record(
        "access",
        f"{len(ROLES)} roles × {n} commands/routes = {len(cells)} cells, 0 leaks "
        f"({len(world.markers)} markers, {shop.db.engine.dialect.name})",
    )
