"""``spacescribe doctor``: each check returns (name, ok, detail); ok=None means "off"."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from core.config import Secrets, Settings, check_secrets, load_secrets, load_settings
from core.db import Database
from core.db import migrate as m
from core.db.engine import safe_url

Row = tuple[str, bool | None, str]
TIMEOUT = 8.0
ERC20_ABI: list[dict[str, Any]] = [
    {
        "name": n,
        "type": "function",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"type": t, "name": ""}],
    }
    for n, t in (("name", "string"), ("decimals", "uint8"))
]
MIN_RELAYER_WEI = 10**14  # ~ a few settlements on an L2


def ffmpeg_path() -> str | None:
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception:
        return None


async def _database(settings: Settings) -> Row:
    db = Database(settings.database.url)
    try:
        async with db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            current = await conn.run_sync(m.current_revision_sync)
        head = m.head_revision()
        if current == head:
            return ("database", True, f"{safe_url(settings.database.url)} at {head}")
        return (
            "database",
            False,
            f"at {current or 'empty'}, head is {head}: run `spacescribe migrate`",
        )
    except Exception as exc:
        return ("database", False, f"cannot connect ({type(exc).__name__}): check database.url")
    finally:
        await db.dispose()


def _data_dir(settings: Settings) -> Row:
    data = settings.resolve_path(settings.data_dir)
    try:
        data.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=data):
            pass
        return ("data dir", True, str(data))
    except OSError as exc:
        return ("data dir", False, f"{data} not writable ({exc.strerror}): fix permissions")


def _test_mode_rows(settings: Settings) -> list[Row]:
    """Test mode: what ``spacescribe run`` will start, and the local chain it saved."""
    import json

    from eth_account import Account

    from bot.testmode import BANNER, chain_dir
    from core.testchain import ANVIL_BIN
    from core.testkeys import DEMO_BUYER_KEY, OPERATOR_ADDRESS, RELAYER_KEY

    folder = chain_dir(settings)
    info_path = folder / "chain.json"
    try:
        token = (
            json.loads(info_path.read_text()).get("token_address") if info_path.exists() else None
        )
    except (OSError, ValueError):
        token = None
    return [
        ("payments mode", True, f"TEST MODE — {BANNER}"),
        (
            "rpc",
            ANVIL_BIN.exists(),
            f"local anvil, started by `spacescribe run`, state in {folder}"
            if ANVIL_BIN.exists()
            else f"anvil missing at {ANVIL_BIN}: run `make run` or `npm ci`",
        ),
        (
            "token",
            True,
            f"TestUSDC {token} (in the saved local chain)"
            if token
            else "TestUSDC, deployed on the local chain at the first `spacescribe run`",
        ),
        (
            "pay_to",
            True,
            f"{OPERATOR_ADDRESS} (anvil test address; test mode never takes a real one)",
        ),
        (
            "settlement",
            True,
            f"in-process, relayer {Account.from_key(RELAYER_KEY).address} (anvil test key, "
            f"test-only); demo wallet {Account.from_key(DEMO_BUYER_KEY).address}",
        ),
    ]


async def _payments(settings: Settings, secrets: Secrets) -> list[Row]:
    """Every payments row, whatever answers: mode, rpc, token, pay_to, settlement."""
    from eth_account import Account
    from web3 import AsyncHTTPProvider, AsyncWeb3

    p = settings.payments
    if p.test_mode:
        return _test_mode_rows(settings)
    rows: list[Row] = [("payments mode", True, f"LIVE — real USDC on {p.network}")]
    w3 = AsyncWeb3(AsyncHTTPProvider(p.rpc_url, request_kwargs={"timeout": TIMEOUT}))
    rpc_ok = False
    try:
        chain = await w3.eth.chain_id
        if chain != p.chain_id:
            rows.append(("rpc", False, f"chain id {chain}, but payments.network is {p.network}"))
        else:
            rpc_ok = True
            rows.append(("rpc", True, f"{p.rpc_url}, chain {chain}"))
    except Exception as exc:
        rows.append(
            (
                "rpc",
                False,
                f"{p.rpc_url} unreachable ({type(exc).__name__}): check payments.rpc_url",
            )
        )
    unchecked = "not checked: the RPC node did not answer"
    if not rpc_ok:
        rows.append(("token", False, f"{p.token_address} ({p.token_name!r}): {unchecked}"))
    else:
        try:
            token = w3.eth.contract(address=w3.to_checksum_address(p.token_address), abi=ERC20_ABI)
            name = await token.functions.name().call()
            decimals = await token.functions.decimals().call()
            ok = name == p.token_name and decimals == 6
            rows.append(
                (
                    "token",
                    ok,
                    f"{p.token_address}: {name!r}, {decimals} decimals"
                    + ("" if ok else f"; expected {p.token_name!r} with 6 decimals"),
                )
            )
        except Exception as exc:
            rows.append(("token", False, f"no ERC-20 at {p.token_address} ({type(exc).__name__})"))
    rows.append(("pay_to", bool(p.pay_to), p.pay_to or "set payments.pay_to to your address"))
    if p.facilitator_url:
        rows.append(("settlement", True, f"remote facilitator {p.facilitator_url}"))
    elif secrets.relayer_key is None:
        rows.append(
            ("settlement", False, "set SPACESCRIBE_RELAYER_KEY or payments.facilitator_url")
        )
    else:
        try:
            addr = Account.from_key(secrets.relayer_key.get_secret_value()).address
        except ValueError:
            rows.append(("settlement", False, "SPACESCRIBE_RELAYER_KEY is not a private key"))
            return rows
        if not rpc_ok:
            rows.append(("settlement", False, f"in-process, relayer {addr}: gas {unchecked}"))
            return rows
        bal = await w3.eth.get_balance(addr)
        enough = bal >= MIN_RELAYER_WEI
        rows.append(
            (
                "settlement",
                enough,
                f"in-process, relayer {addr} holds {bal / 10**18:.6f} ETH"
                + ("" if enough else ": fund it to pay gas"),
            )
        )
    return rows


async def _openai(secrets: Secrets) -> Row:
    if secrets.openai_api_key is None:
        return ("openai", None, "off: set OPENAI_API_KEY (offline transcription, extractive chat)")
    from openai import AsyncOpenAI

    client = AsyncOpenAI(
        api_key=secrets.openai_api_key.get_secret_value(),
        base_url=secrets.openai_base_url,
        timeout=TIMEOUT,
        max_retries=0,
    )
    try:
        await client.models.list()
        return ("openai", True, "key accepted")
    except Exception as exc:
        return ("openai", False, f"key rejected or API unreachable ({type(exc).__name__})")
    finally:
        await client.close()


async def _telegram(settings: Settings, secrets: Secrets) -> Row:
    if secrets.telegram_token is None:
        return ("telegram", None, "off: set TELEGRAM_TOKEN")
    base = settings.telegram.base_url or "https://api.telegram.org/bot"
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as c:
            r = await c.get(f"{base}{secrets.telegram_token.get_secret_value()}/getMe")
        me = r.json()
        if not me.get("ok"):
            return ("telegram", False, "token rejected by getMe: check TELEGRAM_TOKEN")
        admins = "" if settings.telegram.admin_ids else "; no telegram.admin_ids for /revenue"
        return ("telegram", True, f"@{me['result'].get('username')}{admins}")
    except Exception as exc:
        return ("telegram", False, f"Bot API unreachable ({type(exc).__name__})")


async def _discord(settings: Settings, secrets: Secrets) -> Row:
    if secrets.discord_token is None:
        return ("discord", None, "off: set DISCORD_TOKEN")
    import discord

    base = settings.discord.api_url.rstrip("/") or discord.http.Route.BASE
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as c:
            r = await c.get(
                f"{base}/users/@me",
                headers={"Authorization": f"Bot {secrets.discord_token.get_secret_value()}"},
            )
        if r.status_code != 200:
            return ("discord", False, "token rejected (login failed): check DISCORD_TOKEN")
        d = settings.discord
        admins = "" if (d.admin_ids or d.admin_role_ids) else "; no discord admin ids for /revenue"
        return ("discord", True, f"{r.json().get('username')}{admins}")
    except Exception as exc:
        return ("discord", False, f"Discord API unreachable ({type(exc).__name__})")


async def run_checks(roles: list[str] | None = None) -> list[Row]:
    """Every check, or (``roles``) what those process roles need. A worker needs only the
    configuration, the database at the newest migration, its data directory and ffmpeg:
    ``spacescribe doctor --roles worker`` is the worker containers' health check."""
    settings = load_settings()  # raises ConfigError naming the bad key
    secrets = load_secrets()
    check_secrets(settings, secrets)  # e.g. an anvil test key in live mode: ConfigError
    rows: list[Row] = [("config", True, "config.toml and environment are valid")]
    rows.append(await _database(settings))
    rows.append(_data_dir(settings))
    ff = ffmpeg_path()
    rows.append(("ffmpeg", bool(ff), ff or "install ffmpeg or the imageio-ffmpeg package"))
    if roles is not None and set(roles) <= {"worker"}:
        return rows
    rows += await _payments(settings, secrets)
    rows.append(await _openai(secrets))
    rows.append(await _telegram(settings, secrets))
    rows.append(await _discord(settings, secrets))
    rows.append(await _x(settings, secrets))
    return rows


async def _x(settings: Settings, secrets: Secrets) -> Row:
    """X through yt-dlp: the waiting jobs say whether X refuses us (no request made here)."""
    from core.context import Context
    from core.health import x_refusal

    cookies = settings.transcription.cookies_file
    if cookies and not Path(cookies).is_file():
        return ("x", False, f"transcription.cookies_file {cookies} does not exist")
    ctx = Context.create(settings, secrets)
    try:
        refused = await x_refusal(ctx)
    except Exception as exc:
        return ("x", False, f"could not read the queue ({type(exc).__name__})")
    finally:
        await ctx.close()
    if refused:
        return ("x", False, refused)
    return ("x", True, "cookies file set" if cookies else "no cookies file (guest access)")
