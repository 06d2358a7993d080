"""Snapshots of everything a request could change: every table's checksum and the data dir.

Bad-input tests take one before and after: "changes nothing" is then an equality.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from core.context import Context
from core.db import Base
from core.db.copy import table_checksum


async def db_snapshot(ctx: Context) -> dict[str, tuple[int, str]]:
    async with ctx.db.engine.connect() as conn:
        return {t.name: await table_checksum(conn, t) for t in Base.metadata.sorted_tables}


def files_snapshot(root: Path) -> dict[str, str]:
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


async def snapshot(ctx: Context) -> tuple[dict[str, tuple[int, str]], dict[str, str]]:
    return await db_snapshot(ctx), files_snapshot(ctx.settings.resolve_path(ctx.settings.data_dir))
