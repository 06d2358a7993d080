"""The `spacescribe` command as an operator runs it: real subprocesses."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

CLI = [sys.executable, "-m", "bot.cli"]


def _env(tmp_path: Path, db_url: str, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TELEGRAM_TOKEN", "DISCORD_TOKEN", "OPENAI_API_KEY")
    }
    env.update(
        SPACESCRIBE_DATABASE_URL=db_url,
        SPACESCRIBE_DATA_DIR=str(tmp_path / "data"),
        SPACESCRIBE_PAYMENTS__RPC_URL="http://127.0.0.1:9",  # never the internet
        **extra,
    )
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class AppRun:
    proc: asyncio.subprocess.Process
    output: str = ""  # stdout and stderr, once it has stopped


@asynccontextmanager
async def running_app(env: dict[str, str], roles: str) -> AsyncIterator[AppRun]:
    """`spacescribe run --roles …` as a subprocess, stopped with SIGTERM on the way out."""
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "run",
        "--roles",
        roles,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    app = AppRun(proc)
    try:
        yield app
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        app.output = out.decode()


def test_migrate_empty_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'spaces.db'}"
    r = subprocess.run(
        [*CLI, "migrate"], env=_env(tmp_path, url), capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert "migrated" in r.stdout and (tmp_path / "new" / "spaces.db").exists()


def test_migrate_postgres_and_doctor(tmp_path: Path, pg_database: str) -> None:
    env = _env(tmp_path, pg_database)
    r = subprocess.run([*CLI, "migrate"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([*CLI, "doctor"], env=env, capture_output=True, text=True, timeout=120)
    assert "database" in r.stdout and "ffmpeg" in r.stdout
    assert "problem" not in r.stdout.split("database", 1)[1].splitlines()[0]
    assert "set TELEGRAM_TOKEN" in r.stdout


def test_doctor_names_a_bad_key(tmp_path: Path) -> None:
    env = _env(tmp_path, f"sqlite:///{tmp_path / 'd.db'}", SPACESCRIBE_PAYMENTS__NETWORK="bitcoin")
    r = subprocess.run([*CLI, "doctor"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "payments.network" in r.stderr and "SPACESCRIBE_PAYMENTS__NETWORK" in r.stderr


def test_run_serves_healthz_and_says_what_is_off(tmp_path: Path) -> None:
    port = _free_port()
    env = _env(
        tmp_path,
        f"sqlite:///{tmp_path / 'run.db'}",
        SPACESCRIBE_WEB__PORT=str(port),
        SPACESCRIBE_PAYMENTS__PAY_TO="0x" + "12" * 20,  # live mode, its RPC node unreachable
    )
    proc = subprocess.Popen(
        [*CLI, "run", "--roles", "web,scheduler,bots"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"app did not start: {proc.stdout.read() if proc.stdout else ''}")
                time.sleep(0.2)
        assert r.json() == {"status": "ok"}
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
        assert ready.json()["checks"]["database"] == "ok"
        assert ready.status_code == 503 and ready.json()["checks"]["rpc"].startswith("error")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "Telegram: off, TELEGRAM_TOKEN not set" in out
    assert "Discord: off, DISCORD_TOKEN not set" in out
    assert "OPENAI_API_KEY not set" in out
    assert (
        "Payments: off — set SPACESCRIBE_RELAYER_KEY or payments.facilitator_url to settle "
        "payments" in out
    )


def test_run_rejects_unknown_role(tmp_path: Path) -> None:
    r = subprocess.run(
        [*CLI, "run", "--roles", "web,bogus"],
        env=_env(tmp_path, f"sqlite:///{tmp_path / 'x.db'}"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "bogus" in r.stderr


async def test_run_with_telegram_token_starts_the_bot(tmp_path: Path) -> None:
    """`spacescribe run` with TELEGRAM_TOKEN set answers a member (Bot API stand-in)."""
    from tests.stand_ins.telegram_api import bot_api

    port = _free_port()
    async with bot_api() as api:
        env = _env(
            tmp_path,
            f"sqlite:///{tmp_path / 'tg.db'}",
            SPACESCRIBE_WEB__PORT=str(port),
            SPACESCRIBE_TELEGRAM__BASE_URL=api.url,
            TELEGRAM_TOKEN=api.token,
        )
        async with running_app(env, "bots,web") as app:
            await api.wait_for("setMyCommands", 2, timeout=60)
            api.command("/help")
            (reply,) = await api.wait_for("sendMessage", timeout=30)
            assert "0.20 USDC" in reply["text"]
            async with httpx.AsyncClient() as c:
                ready = await c.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
            assert ready.json()["bots"] == {"telegram": True}
            assert ready.json()["checks"]["adapters"] == "ok"
    out = app.output
    assert app.proc.returncode == 0, out
    assert "Telegram: on, TELEGRAM_TOKEN set" in out
    assert api.token not in out and api.token.split(":")[1] not in out  # never logged


def test_webhook_mode_without_its_secret_is_explained(tmp_path: Path) -> None:
    env = _env(
        tmp_path,
        f"sqlite:///{tmp_path / 'w.db'}",
        SPACESCRIBE_TELEGRAM__MODE="webhook",
        TELEGRAM_TOKEN="1:abc",
    )
    r = subprocess.run(
        [*CLI, "run", "--roles", "bots"], env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2 and "bots and web roles in one process" in r.stderr
