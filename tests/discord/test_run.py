"""`spacescribe run` with DISCORD_TOKEN set starts the bot: a real subprocess, as an operator
runs it, against the stand-in (named by ``SPACESCRIBE_DISCORD__API_URL``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.stand_ins.discord_api import discord_api
from tests.test_cli import _env, running_app


async def test_run_with_a_token_starts_the_bot_and_answers(tmp_path: Path) -> None:
    async with discord_api() as api:
        env = _env(
            tmp_path,
            f"sqlite:///{tmp_path / 'spaces.db'}",
            DISCORD_TOKEN=api.token,
            SPACESCRIBE_DISCORD__API_URL=api.api_url,
        )
        async with running_app(env, "bots") as app:
            await api.wait(lambda: bool(api.identifies) or app.proc.returncode is not None, 90)
            assert api.identifies, "the bot never identified on the gateway"
            status = await api.reply(await api.interact("status", {"space": "1ZZZZZZZZZZZZ"}))
            assert "has not been requested yet" in status.text  # the database answered
    assert app.proc.returncode == 0, app.output
    assert "Discord: on, DISCORD_TOKEN set" in app.output
    assert "Telegram: off, TELEGRAM_TOKEN not set" in app.output
    assert "discord commands synced" in app.output and "discord bot started" in app.output
    assert api.token not in app.output  # the secret never reaches a log line


async def test_run_with_a_refused_token_says_so(tmp_path: Path) -> None:
    async with discord_api() as api:
        env = _env(
            tmp_path,
            f"sqlite:///{tmp_path / 'spaces.db'}",
            DISCORD_TOKEN="not-the-token",
            SPACESCRIBE_DISCORD__API_URL=api.api_url,
        )
        async with running_app(env, "bots") as app:
            await asyncio.wait_for(app.proc.wait(), 90)
    assert app.proc.returncode == 2, app.output
    assert "DISCORD_TOKEN was refused by Discord" in app.output
    assert "not-the-token" not in app.output
