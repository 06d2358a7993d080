"""spacescribe db copy: a populated SQLite database moves to PostgreSQL, verified."""

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.config import Secrets
from core.context import Context
from core.db import Database, Space, TranscriptionPayment, User
from core.db import migrate as m
from core.db.copy import CopyError, copy_database
from tests.conftest import make_settings
from tests.test_revenue import _populate


async def test_copy_sqlite_to_postgres(tmp_path: Path, fresh_pg_url: str) -> None:
    src_url = f"sqlite:///{tmp_path / 'src.db'}"
    await asyncio.to_thread(m.upgrade, src_url)
    ctx = Context(make_settings(src_url, tmp_path), Secrets.model_construct(), Database(src_url))
    await _populate(ctx)
    await ctx.close()

    report = await copy_database(src_url, fresh_pg_url)
    rows = {t.table: t.rows for t in report}
    assert rows["users"] == 3 and rows["spaces"] == 2 and rows["transcription_payments"] == 5
    assert rows["chat_sessions"] == 3 and rows["credits"] == 1

    dst = Database(fresh_pg_url)
    try:
        async with dst.session() as s:
            # ids kept and sequences reset: a new row gets the next id
            u = User(wallet_address="0x" + "ff" * 20)
            s.add(u)
            await s.flush()
            assert u.id == 4
            assert await s.scalar(select(func.count()).select_from(TranscriptionPayment)) == 5
            titles = (await s.execute(select(Space.title).order_by(Space.id))).scalars().all()
            assert titles == ["Big one", "Old"]
    finally:
        await dst.dispose()

    with pytest.raises(CopyError, match="not empty"):
        await copy_database(src_url, fresh_pg_url)
    again = await copy_database(src_url, fresh_pg_url, overwrite=True)
    assert {t.table: t.rows for t in again}["users"] == 3


def test_cli_refuses_unmigrated_source(tmp_path: Path, fresh_pg_url: str) -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "db",
            "copy",
            "--from",
            f"sqlite:///{tmp_path / 'none.db'}",
            "--to",
            fresh_pg_url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "spacescribe migrate" in r.stderr


def test_cli_copies_and_verifies(tmp_path: Path, fresh_pg_url: str) -> None:
    src_url = f"sqlite:///{tmp_path / 'src.db'}"
    m.upgrade(src_url)

    async def fill() -> None:
        ctx = Context(
            make_settings(src_url, tmp_path), Secrets.model_construct(), Database(src_url)
        )
        await _populate(ctx)
        await ctx.close()

    asyncio.run(fill())
    r = subprocess.run(
        [sys.executable, "-m", "bot.cli", "db", "copy", "--from", src_url, "--to", fresh_pg_url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "verified" in r.stdout and "transcription_payments" in r.stdout
