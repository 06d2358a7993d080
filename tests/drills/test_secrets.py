"""Secrets drill (issue 9): bot tokens, the webhook secret, the OpenAI key, the relayer key and
(on PostgreSQL) the database password never appear in logs, in the database or in data files.

``spacescribe run`` (the real CLI in a subprocess, X pointed at a local HLS server by
``tests/drills/app_proc.py``) starts with every secret set to a distinctive random value,
logging at DEBUG, against the local peers: the Telegram Bot API stand-in (webhook mode: the
updates come to the app's ``/telegram/webhook`` with the secret token), the Discord stand-in,
anvil (settled in-process with the relayer key) behind an RPC proxy that can fail, and an
OpenAI that fails the way a bad day does, echoing the request's URL and headers (the bearer
key included) in its error bodies. A business day runs through it:

- a forged webhook call (wrong secret); two Spaces bought in Telegram and paid on the pay page;
- speech-to-text answers 500 (echoing) and the client retries: the first transcript is
  delivered as a document; then 400 (echoing): the second Space fails, its payer is told and
  credited;
- chat unlocked and paid for; the model answers 401 "Incorrect API key provided: <key>";
- Discord commands; then the RPC fails (readiness, a payment, the transfer watcher);
- beside it, two more starts whose bot token the platform refuses (Telegram, Discord).

The day runs on SQLite and on PostgreSQL at once (two apps side by side, each with its own
secrets and peers). Then every byte the processes wrote (stdout and stderr together), every
table of the database (all rows, all columns, virtual and shadow tables too) and every file
under the data directory (and the SQLite file) are searched for each secret. The app writes
no log file of its own: its logs are its output, all of which is captured.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import httpx
import pytest
from aiohttp import web
from sqlalchemy import text

from core.db import Database
from tests.conftest import _truncate_pg
from tests.drills.figures import record
from tests.pay_flow import pay_via_page
from tests.pipeline.conftest import hls_root, hls_url, speech  # noqa: F401 (fixtures)
from tests.stand_ins.chain import Chain
from tests.stand_ins.discord_api import DiscordAPI, discord_api
from tests.stand_ins.http import serve
from tests.stand_ins.telegram_api import BotAPI, bot_api
from tests.test_cli import _env, _free_port

LAUNCH = [sys.executable, "-m", "tests.drills.app_proc"]
WEBHOOK = "TELEGRAM_WEBHOOK_SECRET"
MEMBER = 8123400007
S1, S2, S3 = "1SecretSpace1", "1SecretSpace2", "1SecretSpace3"
SPOKEN = "The budget was agreed on Tuesday."


def _secret_values(chain: Chain) -> dict[str, str]:
    """Distinctive values: each holds a random hex core no other string could contain."""
    relayer = chain.new_funded_account()  # pays gas for in-process settlement
    return {
        "TELEGRAM_TOKEN": f"7301945566:AAH{secrets.token_hex(16)}",
        "TELEGRAM_WEBHOOK_SECRET": f"whsec_{secrets.token_hex(16)}",
        "DISCORD_TOKEN": f"MTAxNzQ1NjQ.G{secrets.token_hex(4)}.{secrets.token_hex(18)}",
        "OPENAI_API_KEY": f"sk-proj-{secrets.token_hex(20)}",
        "SPACESCRIBE_RELAYER_KEY": "0x" + bytes(relayer.key).hex(),
    }


def _cores(values: dict[str, str]) -> dict[str, bytes]:
    """What to search for: the secret part of each value (a Telegram token's bot id before the
    colon is public), lower-cased; the files and logs are lower-cased too."""
    out = {}
    for name, value in values.items():
        core = value.split(":", 1)[1] if name == "TELEGRAM_TOKEN" else value
        out[name] = core.removeprefix("0x").lower().encode()
    return out


# ---------------------------------------------------------------- peers on a bad day


@dataclass
class EchoingOpenAI:
    """OpenAI whose errors echo the request: method, URL and headers, the bearer key first."""

    audio_faults: list[str] = field(default_factory=lambda: ["500", "ok", "400"])
    requests: list[str] = field(default_factory=list)
    url: str = ""

    @staticmethod
    def echo(request: web.Request) -> str:
        headers = dict(request.headers)
        auth = headers.pop("Authorization", "")
        return f"(Authorization: {auth}) {request.method} {request.url} headers={headers}"

    async def audio(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.requests.append(f"audio {form.get('model')}")
        fault = self.audio_faults.pop(0) if self.audio_faults else "ok"
        if fault == "500":  # retried by the client itself (retry-after-ms)
            err = {"message": f"The server had an error {self.echo(request)}", "type": "server"}
            return web.json_response({"error": err}, status=500, headers={"retry-after-ms": "20"})
        if fault == "400":
            err = {"message": f"Invalid file {self.echo(request)}", "type": "invalid_request"}
            return web.json_response({"error": err}, status=400)
        return web.json_response(
            {
                "task": "transcribe",
                "language": "english",
                "duration": 12.0,
                "text": SPOKEN,
                "segments": [{"id": 0, "start": 0.5, "end": 11.5, "text": SPOKEN}],
            }
        )

    async def chat(self, request: web.Request) -> web.Response:
        self.requests.append("chat")
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        err = {
            "message": f"Incorrect API key provided: {key}. {self.echo(request)}",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
        return web.json_response({"error": err}, status=401)


@dataclass
class FlakyRPC:
    """A JSON-RPC proxy in front of anvil; when ``down`` it answers 502 echoing the request."""

    upstream: str
    down: bool = False
    failed: int = 0
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.down:
            self.failed += 1
            echo = f"bad gateway for {request.url} {dict(request.headers)} {body[:300]!r}"
            return web.Response(status=502, text=echo)
        async with (
            aiohttp.ClientSession() as s,
            s.post(self.upstream, data=body, headers={"content-type": "application/json"}) as r,
        ):
            return web.Response(body=await r.read(), content_type="application/json")


@asynccontextmanager
async def peers(chain: Chain) -> AsyncIterator[tuple[EchoingOpenAI, FlakyRPC]]:
    openai, rpc = EchoingOpenAI(), FlakyRPC(chain.anvil.rpc_url)
    oa, ra = web.Application(client_max_size=64 * 1024 * 1024), web.Application()
    oa.router.add_post("/v1/audio/transcriptions", openai.audio)
    oa.router.add_post("/v1/chat/completions", openai.chat)
    ra.router.add_post("/", rpc.handle)
    async with serve(oa) as o_url, serve(ra) as r_url:
        openai.url, rpc.url = f"{o_url}/v1", r_url + "/"
        yield openai, rpc


# ---------------------------------------------------------------- the processes


@asynccontextmanager
async def launched(
    hls: str, env: dict[str, str], args: list[str], log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``spacescribe <args>`` (X at the local HLS server) writing stdout and stderr to
    ``log``; SIGTERM on the way out."""
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            *LAUNCH, hls, *args, env=env, stdout=out, stderr=out
        )
        try:
            yield proc
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 60)


async def until(what: Callable[[], Any], timeout: float = 30, why: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while not (got := what()):
        assert time.monotonic() < deadline, f"waited {timeout}s for {why}"
        await asyncio.sleep(0.05)
    return got


def _message(api: BotAPI, method: str, has: str, after: int) -> Callable[[], Any]:
    def find() -> dict[str, Any] | None:
        calls = [p for m, p in api.calls[after:] if m == method]
        return next((p for p in calls if has in json.dumps(p)), None)

    return find


async def business_day(
    proc: asyncio.subprocess.Process,
    app_url: str,
    tg: BotAPI,
    dc: DiscordAPI,
    rpc: FlakyRPC,
    chain: Chain,
    hook: str,
) -> None:
    payer = chain.new_funded_account()
    async with httpx.AsyncClient(base_url=app_url, timeout=60) as web_:

        async def healthy() -> bool:
            try:
                return (await web_.get("/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        deadline = time.monotonic() + 60
        while not await healthy():
            assert proc.returncode is None and time.monotonic() < deadline, "no app"
            await asyncio.sleep(0.2)
        await tg.wait_for("setWebhook", timeout=60)
        forged = tg.update("/help", user_id=MEMBER)
        r = await web_.post(
            "/telegram/webhook", json=forged, headers={"X-Telegram-Bot-Api-Secret-Token": "x"}
        )
        assert r.status_code == 403

        async def say(command: str, expect: str, member: int = MEMBER) -> Any:
            mark = len(tg.calls)
            update = tg.update(command, user_id=member)
            r = await web_.post(
                "/telegram/webhook", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": hook}
            )
            assert r.status_code == 200, r.text
            # a stall guard, not a timing: the day runs beside a whole suite on a loaded machine
            return await until(_message(tg, "sendMessage", expect, mark), 90, f"→ {expect}")

        async def pay(command: str, expect: str, member: int = MEMBER) -> Any:
            quote = await say(command, "/pay/", member)
            assert expect in quote["text"], quote["text"]
            url = quote["reply_markup"]["inline_keyboard"][0][0]["url"]
            return await pay_via_page(web_, url, payer)

        mark = len(tg.calls)
        for sid in (S1, S2):  # the worker takes them in order: 500 then ok, then 400
            assert (await pay(f"/transcribe {sid}", sid))["status"] == "credited"
        await until(_message(tg, "sendDocument", SPOKEN, mark), 60, "the transcript of S1")
        assert (await pay(f"/unlock {S1}", "Chat unlock"))["status"] == "credited"
        asked = await pay(f"/chat what about the budget? {S1}", "Question")  # credit may apply
        assert asked["status"] == "refused" and asked["code"] == "answer_unavailable", asked
        for command, options in (("help", {}), ("wallet", {}), ("transcribe", {"space": S3})):
            reply = await dc.reply(await dc.interact(command, options, user_id=MEMBER))
            assert reply.text, command
        rpc.down = True  # readiness, a payment and the transfer watcher meet a failing node
        ready = await web_.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["rpc"].startswith("error")
        # another member: MEMBER may hold S2's refund by now, and credit would pay without a node
        out = await pay(f"/transcribe {S3}", S3, MEMBER + 1)
        assert out["status"] == "refused" and out["code"] == "rpc_unavailable", out
        await until(lambda: rpc.failed >= 4, 10, "the watcher to meet the failing node")
        await until(_message(tg, "sendMessage", "failed", mark), 60, "S2's failure notice")
        await until(_message(tg, "sendMessage", "credited to your account", mark), 30, "refund")


# ---------------------------------------------------------------- what is left behind


async def table_dump(url: str) -> dict[str, bytes]:
    """Every table of the database (virtual and shadow tables too), rows as text."""
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                q = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            else:
                q = (
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = 'public' ORDER BY table_name"
                )
            names = [r[0] for r in await conn.execute(text(q))]
            out = {}
            for name in names:
                rows = (await conn.execute(text(f'SELECT * FROM "{name}"'))).all()
                out[name] = "\n".join(repr(tuple(r)) for r in rows).lower().encode()
            return out
    finally:
        await db.dispose()


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes().lower() for p in sorted(root.rglob("*")) if p.is_file()}


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or "postgres"
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


# ---------------------------------------------------------------- the drill


@dataclass
class Findings:
    engine: str
    secrets: int
    log_bytes: int
    tables: int
    files: int
    found: list[tuple[str, str]]


def _search(values: dict[str, str], blobs: dict[str, bytes]) -> list[tuple[str, str]]:
    return [
        (n, where) for n, core in _cores(values).items() for where, b in blobs.items() if core in b
    ]


async def engine_day(db_url: str, tmp: Path, chain: Chain, hls: str, refusals: bool) -> Findings:
    """One app on one database through the business day (and, if asked, the refused starts);
    then its logs, tables and files searched for every secret it was given."""
    tmp.mkdir()
    values = _secret_values(chain)
    url = db_url
    if db_url.startswith("postgresql"):
        values["database password"] = f"pgpw{secrets.token_hex(12)}"
        url = with_password(db_url, values["database password"])  # trust auth ignores it
    port = _free_port()
    logs = [tmp / "run.log"] + ([tmp / "telegram.log", tmp / "discord.log"] if refusals else [])
    async with (
        peers(chain) as (openai, rpc),
        bot_api() as tg,
        discord_api(DiscordAPI(token=values["DISCORD_TOKEN"])) as dc,
        bot_api() as tg_refusing,
        discord_api() as dc_refusing,
    ):
        tg.token = values["TELEGRAM_TOKEN"]  # the stand-in accepts exactly this token
        base = _env(
            tmp,
            url,
            OPENAI_BASE_URL=openai.url,
            SPACESCRIBE_WEB__HOST="127.0.0.1",
            SPACESCRIBE_LOGGING__LEVEL="DEBUG",
            SPACESCRIBE_WEB__PORT=str(port),
            SPACESCRIBE_WEB__PUBLIC_URL=f"http://127.0.0.1:{port}",
            SPACESCRIBE_TRANSCRIPTION__BACKEND="openai",
            SPACESCRIBE_TRANSCRIPTION__MODEL="whisper-1",
            SPACESCRIBE_QUEUE__POLL_SECONDS="0.2",
            SPACESCRIBE_PAYMENTS__WATCH_INTERVAL_SECONDS="0.5",
            **{k: v for k, v in values.items() if k != "database password"},
        )
        for key, value in chain.payment_settings(rpc_url=rpc.url).items():
            base[f"SPACESCRIBE_PAYMENTS__{key.upper()}"] = str(value)
        main = {
            **base,
            "SPACESCRIBE_TELEGRAM__MODE": "webhook",
            "SPACESCRIBE_TELEGRAM__BASE_URL": tg.url,
            "SPACESCRIBE_DISCORD__API_URL": dc.api_url,
        }
        # polling mode: a token alone starts the bot; the other platform's token is unset
        refused = [
            ({**base, "SPACESCRIBE_TELEGRAM__BASE_URL": tg_refusing.url, "DISCORD_TOKEN": ""},
             tmp / "telegram.log"),
            ({**base, "SPACESCRIBE_DISCORD__API_URL": dc_refusing.api_url, "TELEGRAM_TOKEN": ""},
             tmp / "discord.log"),
        ] if refusals else []  # fmt: skip

        async def refused_start(env: dict[str, str], log: Path) -> int:
            async with launched(hls, env, ["run", "--roles", "bots", "--no-migrate"], log) as p:
                await asyncio.wait_for(p.wait(), 60)
            return int(p.returncode or 0)

        async with launched(
            hls, main, ["run", "--roles", "bots,web,scheduler,worker"], logs[0]
        ) as proc:
            # the refused starts run beside the day (their own stand-ins, nothing to deliver)
            starts = asyncio.gather(*(refused_start(e, log) for e, log in refused))
            try:
                await business_day(
                    proc, f"http://127.0.0.1:{port}", tg, dc, rpc, chain, values[WEBHOOK]
                )
            finally:
                codes = await starts
        assert proc.returncode == 0, logs[0].read_text()[-3000:]
        assert all(c != 0 for c in codes), codes
    out = {log.name: log.read_bytes() for log in logs}
    assert b"Bearer ***" in out["run.log"]  # the echoed key reached the log, redacted
    if refusals:
        assert b"TELEGRAM_TOKEN was refused" in out["telegram.log"], out["telegram.log"][-2000:]
        assert b"DISCORD_TOKEN was refused" in out["discord.log"], out["discord.log"][-2000:]
    # three audio uploads; chat: the question, and the summary's attempt(s) (its retry job may
    # have run again): each refused with an error echoing the key
    chats = openai.requests.count("chat")
    assert len(openai.requests) - chats == 3 and chats >= 2, openai.requests
    tables = await table_dump(db_url)
    files = files_under(tmp / "data")
    if db_url.startswith("sqlite"):  # the database file, its WAL and shared memory
        db_file = Path(urlsplit(db_url).path)
        files |= {str(p): p.read_bytes().lower() for p in db_file.parent.glob(db_file.name + "*")}
    blobs = {
        **{f"log {n}": o.lower() for n, o in out.items()},
        **{f"table {t}": b for t, b in tables.items()},
        **{f"file {f}": b for f, b in files.items()},
    }
    size = sum(len(o) for o in out.values())
    assert size > 20_000  # DEBUG logs of a whole day, not an empty capture
    engine = "PostgreSQL" if "database password" in values else "SQLite"
    return Findings(engine, len(values), size, len(tables), len(files), _search(values, blobs))


async def test_secrets_never_logged_or_stored(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    chain: Chain,
    hls_url: str,  # noqa: F811
) -> None:
    """The day on SQLite and on PostgreSQL at once (two apps side by side; the refused starts
    once, with the PostgreSQL URL and its password when PostgreSQL is here)."""
    sqlite = tmp_path / "spaces.db"
    shutil.copy(request.getfixturevalue("sqlite_template"), sqlite)
    urls = [f"sqlite:///{sqlite}"]
    try:
        pg = request.getfixturevalue("pg_database")  # fails in CI when unreachable
        await _truncate_pg(pg)
        urls.append(pg)
    except pytest.skip.Exception:
        pass
    days = [
        engine_day(url, tmp_path / f"day{i}", chain, hls_url, refusals=url == urls[-1])
        for i, url in enumerate(urls)
    ]
    results = await asyncio.gather(*days)
    assert [f for r in results for f in r.found] == []
    for r in results:
        record(
            "secrets",
            f"{r.secrets} secrets × logs ({r.log_bytes} bytes), {r.tables} tables, "
            f"{r.files} files: 0 found ({r.engine})",
        )


CRASH = """
import sys
from core import logging as slog

slog.configure("INFO", json_logs=sys.argv[1] == "json", secrets=[sys.argv[2]])


def start(token: str = sys.argv[2], note: str = "padding " * 12) -> None:
    slog.get_logger("t").info("starting", url=f"https://api.example/{token}/getMe")
    try:
        raise RuntimeError(f"the token {token} was rejected")
    except RuntimeError:
        slog.get_logger("t").exception("start failed")  # a traceback with the token in locals
    raise RuntimeError(f"the token {token} was rejected")  # uncaught: Python's crash report


start()
"""


async def test_crash_reports_are_redacted(tmp_path: Path) -> None:
    """What the refused-token start showed: a traceback printed by Python itself bypassed the
    redacting handler, and rich tracebacks cut long local values so redaction missed them."""
    key = f"sk-crash-{secrets.token_hex(24)}"
    for mode in ("console", "json"):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CRASH, mode, key, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out = (await proc.communicate())[0]
        assert proc.returncode == 1, out
        assert key[9:25].encode() not in out, out.decode()  # not even a cut-off part
        assert out.count(b"was rejected") >= 2 and b"uncaught exception" in out, out.decode()
        assert b"Traceback" in out and b"***" in out
