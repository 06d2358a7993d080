"""``spacescribe doctor``: each check returns (name, ok, detail); ok=None means "off"."""

from __future__ import annotations

import shutil
import tempfile

from sqlalchemy import text

from core.config import load_secrets, load_settings
from core.db import Database
from core.db import migrate as m
from core.db.engine import safe_url

Row = tuple[str, bool | None, str]


def ffmpeg_path() -> str | None:
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception:
        return None


async def run_checks() -> list[Row]:
    settings = load_settings()  # raises ConfigError naming the bad key
    secrets = load_secrets()
    rows: list[Row] = [("config", True, "config.toml and environment are valid")]
    db = Database(settings.database.url)
    try:
        async with db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            current = await conn.run_sync(m.current_revision_sync)
        head = m.head_revision()
        if current == head:
            rows.append(("database", True, f"{safe_url(settings.database.url)} at {head}"))
        else:
            rows.append(
                (
                    "database",
                    False,
                    f"at {current or 'empty'}, head is {head}: run `spacescribe migrate`",
                )
            )
    except Exception as exc:
        rows.append(
            ("database", False, f"cannot connect ({type(exc).__name__}): check database.url")
        )
    finally:
        await db.dispose()

    data = settings.resolve_path(settings.data_dir)
    try:
        data.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=data):
            pass
        rows.append(("data dir", True, str(data)))
    except OSError as exc:
        rows.append(("data dir", False, f"{data} not writable ({exc.strerror}): fix permissions"))

    ff = ffmpeg_path()
    rows.append(("ffmpeg", bool(ff), ff or "install ffmpeg or the imageio-ffmpeg package"))

    for name, val, env in (
        ("telegram", secrets.telegram_token, "TELEGRAM_TOKEN"),
        ("discord", secrets.discord_token, "DISCORD_TOKEN"),
        ("openai", secrets.openai_api_key, "OPENAI_API_KEY"),
    ):
        rows.append((name, True if val else None, f"{env} set" if val else f"off: set {env}"))
    return rows
