"""The world the bad-input drill runs in: one database, every entry point started once.

Everything a bad input could be aimed at exists before the first snapshot: Spaces in each
status, members who own and unlocked some of them, open / expired / credited invoices (the
credited one paid for real on anvil, so its authorization nonce is spent), wallet-link
tokens in each state, and signed x402 payloads to forge from. Then the drill may only
read: every case is checked against a snapshot of every table and the data directory.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from discord.gateway import DiscordWebSocket
from discord.http import Route
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import insert, select, update
from x402.schemas import PaymentRequirements

from adapters.telegram.bot import TelegramBot
from bot.wiring import telegram_bot, web_app, wire
from core.accounts import user_id_of_wallet
from core.context import Context
from core.db import (
    ChatUnlock,
    Database,
    Invoice,
    PaymentReceipt,
    Space,
    TranscriptionPayment,
    WalletLinkToken,
    utcnow,
)
from core.money import to_units
from core.payments.gateway import gateway_for
from core.results import Caller, Quote
from core.service.invoicing import create_invoice
from core.service.wallet import wallet
from core.wallet_link import SiweRequest, hash_token, issue_nonce, link_wallet
from core.web_sessions import open_session
from tests.chat.helpers import add_space, member, space_id_for
from tests.conftest import make_settings
from tests.discord.conftest import ADMIN, ANN, SEGMENTS, running
from tests.pay_flow import pay_via_page
from tests.payments.conftest import RecordedSpaces, chain_secrets, signed_payload
from tests.paypage.test_wallet_link import _sign as sign_siwe
from tests.stand_ins.chain import Chain, free_port
from tests.stand_ins.discord_api import CHANNEL_ID, DiscordAPI
from tests.stand_ins.telegram_api import BotAPI, bot_api

# Spaces, by what a bad input could try on them (13 characters like X's ids)
OWNED_UNLOCKED = space_id_for(1)  # completed; Ann owns it and unlocked chat
OWNED = space_id_for(2)  # completed; Ann owns it, chat locked
FOREIGN = space_id_for(3)  # completed; Bob's
PENDING = space_id_for(4)  # pending; nobody's
FAILED = space_id_for(5)  # failed; Ann owns it
OWNED_PENDING = space_id_for(6)  # pending; Ann owns it
UNKNOWN = "1ZZZZZZZZZZZZ"  # never requested
FRESH = "1RDxlAoOeQRKL"  # never requested; X says it is a finished recording
LIVE = "1LiveSpace001"  # X says: still live
UNRECORDED = "1NoReplay0001"  # X says: no replay
PAID_SPACE = "1PaidSpace001"  # bought for real on anvil while the world is set up
ELEVEN = [space_id_for(100 + i) for i in range(11)]  # one more than chat.max_spaces

TG_ANN, TG_BOB, TG_ADMIN = 7, 8, 1
WEBHOOK_SECRET = "drill-webhook-secret-0123456789"


class XSpaces(RecordedSpaces):
    """X at the pipeline's resolver seam: recordings, except the live and unrecorded ones."""

    def __init__(self) -> None:
        super().__init__()
        self.live.add(LIVE)

    async def resolve(self, space_id: str) -> Any:
        meta = await super().resolve(space_id)
        if space_id == UNRECORDED:
            return type(meta)(**{**meta.__dict__, "replay_available": False})
        return meta


@dataclass
class World:
    ctx: Context
    chain: Chain
    web: str  # the web app's base URL
    http: httpx.AsyncClient
    tg: BotAPI
    telegram: TelegramBot
    discord: DiscordAPI
    payer: LocalAccount  # funded; paid PAID_SPACE on anvil (its nonce is spent)
    stranger: LocalAccount  # funded; owns nothing
    broke: LocalAccount  # no USDC at all
    reqs: dict[str, PaymentRequirements] = field(default_factory=dict)  # by invoice kind
    spent_nonce: str = ""
    invoices: dict[str, str] = field(default_factory=dict)  # open | expired | credited → id
    links: dict[str, str] = field(default_factory=dict)  # nonce | fresh | expired | used → token
    siwe: SiweRequest | None = None  # the nonce the "nonce" link issued
    siwe_signer: LocalAccount = field(default_factory=Account.create)
    data_dir: Path = Path()
    engine: str = "sqlite"
    web_token: str = ""  # the payer's storefront session (signed in with their wallet)
    csrf: str = ""  # its forms' CSRF token

    # ------------------------------------------------------------ payment payloads

    def payload(
        self, kind: str = "transcription", account: Any = None, **kw: Any
    ) -> dict[str, Any]:
        """A correctly signed x402 v2 payload for ``kind``'s price, with ``kw`` overrides
        (to, value, valid_after, valid_before, nonce, chain_id, token, signer)."""
        return signed_payload(self.chain, account or self.stranger, self.reqs[kind], **kw)

    def forged(self, kind: str = "transcription", *, auth: dict[str, Any] | None = None,
               accepted: dict[str, Any] | None = None, sig: str | None = None,
               top: dict[str, Any] | None = None, account: Any = None) -> dict[str, Any]:  # fmt: skip
        """A signed payload edited AFTER signing (what a forger sends)."""
        p = self.payload(kind, account)
        p["payload"]["authorization"].update(auth or {})
        p["accepted"].update(accepted or {})
        if sig is not None:
            p["payload"]["signature"] = sig
        p.update(top or {})
        return p

    def page_body(self, p: dict[str, Any]) -> dict[str, Any]:
        """What the pay page's script posts for payload ``p``."""
        return {
            "authorization": p["payload"]["authorization"],
            "signature": p["payload"]["signature"],
        }

    def siwe_signed(self, req: SiweRequest | None = None, key: Any = None) -> dict[str, str]:
        assert self.siwe is not None
        msg, sig = sign_siwe(req or self.siwe, key or self.siwe_signer.key)
        return {"message": msg, "signature": sig}


def header(payload: Any) -> str:
    """A PAYMENT-SIGNATURE value: base64 of the JSON, exactly as sent (no model checks)."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return base64.b64encode(raw).decode()


async def _spaces(ctx: Context) -> None:
    pk = {
        1: await add_space(ctx, 1, SEGMENTS, title="Weekly weather", participants=["alice"]),
        2: await add_space(ctx, 2, SEGMENTS, title="Rust and friends"),
        3: await add_space(ctx, 3, SEGMENTS, title="Bob's space"),
        4: await add_space(ctx, 4, [], status="pending"),
        5: await add_space(ctx, 5, [], status="failed"),
        6: await add_space(ctx, 6, [], status="pending"),
    }
    for i in range(11):
        await add_space(ctx, 100 + i, SEGMENTS)
    async with ctx.db.session() as s:
        await s.execute(
            update(Space)
            .where(Space.space_id == FAILED)
            .values(error_message="the recording could not be downloaded")
        )
    owns = [pk[1], pk[2], pk[5], pk[6]]
    for caller in (
        Caller("telegram", str(TG_ANN), "ann", chat_id=str(TG_ANN)),
        Caller("discord", str(ANN), "ann", chat_id=str(CHANNEL_ID)),
    ):
        await member(ctx, f"ann-{caller.platform}", owns=owns, unlocked=[pk[1]], caller=caller)
    await member(ctx, "bob", owns=[pk[3]], caller=Caller("telegram", str(TG_BOB), "bob"))
    for i in (1, 2, 3):
        path = ctx.spaces_dir / space_id_for(i) / "transcript.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# Space {i}\n\n[00:00:01] alice: Welcome to the weekly space.\n")


async def _invoices(w: World) -> None:
    ctx = w.ctx
    kinds = {"open": "1OpenInvoice1", "expired": "1ExpiredInvc1", "credited": PAID_SPACE}
    for state, sid in kinds.items():
        async with ctx.db.session() as s:
            q = await create_invoice(
                s,
                ctx,
                caller=Caller("telegram", "55", "payer", chat_id="55"),
                user_id=None,
                kind="transcription",
                space_ids=[sid],
                amount_units=to_units("0.2"),
            )
        assert isinstance(q, Quote)
        w.invoices[state] = q.invoice_id
    async with ctx.db.session() as s:
        await s.execute(
            update(Invoice)
            .where(Invoice.public_id == w.invoices["expired"])
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    paid = await pay_via_page(w.http, f"/pay/{w.invoices['credited']}", w.payer)
    assert paid["status"] == "credited", paid
    async with ctx.db.session() as s:
        w.spent_nonce = str(await s.scalar(select(PaymentReceipt.authorization_nonce).limit(1)))
        # the paying wallet also owns OWNED_UNLOCKED with chat: the control case asks about it
        user = await user_id_of_wallet(s, w.payer.address)
        space = await s.scalar(select(Space.id).where(Space.space_id == OWNED_UNLOCKED))
        for table, amount in ((TranscriptionPayment, "0.2"), (ChatUnlock, "0.5")):
            await s.execute(
                insert(table).values(
                    user_id=user, space_id=space, amount_usdc=amount, payment_verified=True
                )
            )


async def _links(w: World) -> None:
    ctx = w.ctx
    token = lambda info: info.link_url.rsplit("/", 1)[1]  # noqa: E731
    for state, user in (("nonce", "60"), ("fresh", "61"), ("expired", "62"), ("used", "63")):
        w.links[state] = token(await wallet(ctx, Caller("telegram", user, f"u{user}")))
    req = await issue_nonce(ctx, w.links["nonce"], w.siwe_signer.address)
    assert isinstance(req, SiweRequest)
    w.siwe = req
    used_signer = Account.create()
    used = await issue_nonce(ctx, w.links["used"], used_signer.address)
    assert isinstance(used, SiweRequest)
    msg, sig = sign_siwe(used, used_signer.key)
    assert not hasattr(await link_wallet(ctx, w.links["used"], msg, sig), "code")
    async with ctx.db.session() as s:
        await s.execute(
            update(WalletLinkToken)
            .where(WalletLinkToken.token_hash == hash_token(w.links["expired"]))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


def sqlite_copy(template: Path, tmp: Path) -> str:
    """A migrated SQLite database of the drill's own (a copy of the session's template)."""
    shutil.copy(template, tmp / "spaces.db")
    return f"sqlite:///{tmp / 'spaces.db'}"


@asynccontextmanager
async def world(engine: str, db_url: str, tmp: Path, chain: Chain) -> AsyncIterator[World]:
    """Start the web app, the Telegram bot (webhook mode) and the Discord bot once, on one
    database, and set the world up through them."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = make_settings(
        db_url,
        tmp / "data",
        payments=chain.payment_settings(),
        web={"public_url": url},
        telegram={"mode": "webhook", "admin_ids": [TG_ADMIN]},
    )
    ctx = Context(settings, chain_secrets(chain), Database(db_url), instance="drill:bad-input")
    wire(ctx)  # as `spacescribe run` does
    ctx.wiring.resolver = XSpaces()
    saved = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(ctx.close)

        def restore() -> None:
            Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved

        stack.callback(restore)
        server = uvicorn.Server(
            uvicorn.Config(
                web_app(ctx), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
            )
        )
        task = asyncio.create_task(server.serve())

        async def stop_server() -> None:
            server.should_exit = True
            await asyncio.wait_for(task, 10)

        stack.push_async_callback(stop_server)
        while not server.started:
            await asyncio.sleep(0.02)
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=60))
        api = await stack.enter_async_context(bot_api())
        settings.telegram.base_url = api.url
        tg = telegram_bot(ctx, api.token, webhook_secret=WEBHOOK_SECRET)
        await tg.start()
        stack.push_async_callback(tg.stop)
        dapi, _ = await stack.enter_async_context(running(ctx))
        ctx.settings.discord.admin_ids = [ADMIN]
        gw = gateway_for(settings.payments, ctx.secrets)
        w = World(
            ctx=ctx,
            chain=chain,
            web=url,
            http=http,
            tg=api,
            telegram=tg,
            discord=dapi,
            payer=chain.new_funded_account(),
            stranger=chain.new_funded_account(),
            broke=Account.create(),
            reqs={
                "transcription": gw.requirements(200_000),
                "chat_unlock": gw.requirements(500_000),
                "chat_query": gw.requirements(1_000_000),
            },
            data_dir=settings.resolve_path(settings.data_dir),
            engine=engine,
        )
        await _spaces(ctx)
        await _invoices(w)
        await _links(w)
        w.web_token, buyer = await open_session(ctx, w.payer.address.lower())
        w.csrf = buyer.csrf_token
        yield w


def now() -> int:
    return int(time.time())
