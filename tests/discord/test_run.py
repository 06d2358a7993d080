"""`spacescribe run` with DISCORD_TOKEN set starts the bot: a real subprocess, as an operator
runs it, against the stand-in (named by ``SPACESCRIBE_DISCORD__API_URL``)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from tests.stand_ins.discord_api import discord_api
from tests.test_cli import CLI, _env


async def test_run_with_a_token_starts_the_bot_and_answers(tmp_path: Path) -> None:
    async with discord_api() as api:
        env = _env(
            tmp_path,
            f"sqlite:///{tmp_path / 'spaces.db'}",
            DISCORD_TOKEN=api.token,
            SPACESCRIBE_DISCORD__API_URL=api.api_url,
        )
        proc = await asyncio.create_subprocess_exec(
            *CLI,
            "run",
            "--roles",
            "bots",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            await api.wait(lambda: bool(api.identifies) or proc.returncode is not None, 90)
            assert api.identifies, "the bot never identified on the gateway"
            status = await api.reply(await api.interact("status", {"space": "1ZZZZZZZZZZZZ"}))
            assert "has not been requested yet" in status.text  # the database answered
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    assert proc.returncode == 0, text
    assert "Discord: on, DISCORD_TOKEN set" in text
    assert "Telegram: off, TELEGRAM_TOKEN not set" in text
    assert "discord commands synced" in text and "discord bot started" in text
    assert api.token not in text  # the secret never reaches a log line
