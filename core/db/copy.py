"""Copy a whole database to another (SQLite → PostgreSQL when an operator grows).

``sqlite3 .dump | psql``, which the seed suggested, breaks on AUTOINCREMENT, on 0/1 booleans
and on FTS5 virtual tables. Here both sides go through the same models: the target is
migrated to the same revision, every table is copied in foreign-key order preserving ids,
PostgreSQL sequences are reset past the copied ids, and each table's row count and checksum
(over every column, in primary-key order) are verified on both sides.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from core.db import Base, Database
from core.db import migrate as m
from core.errors import SpacescribeError

BATCH = 1000


class CopyError(SpacescribeError):
    code = "db_copy"


@dataclass(frozen=True)
class TableCopy:
    table: str
    rows: int
    checksum: str


def _norm(v: Any) -> str:
    if v is None:
        return "\x00"
    if isinstance(v, datetime):
        return v.replace(tzinfo=None).isoformat()
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return repr(v)
    return str(v)


async def table_checksum(conn: AsyncConnection, table: Table) -> tuple[int, str]:
    h = hashlib.sha256()
    n = 0
    pk = list(table.primary_key.columns)
    result = await conn.stream(select(table).order_by(*pk))
    async for row in result:
        h.update("\x1f".join(_norm(v) for v in row).encode())
        h.update(b"\x1e")
        n += 1
    return n, h.hexdigest()


async def _revision(db: Database) -> str | None:
    async with db.engine.connect() as conn:
        return await conn.run_sync(m.current_revision_sync)


async def copy_database(
    source_url: str, target_url: str, overwrite: bool = False
) -> list[TableCopy]:
    import asyncio

    head = m.head_revision()
    src, dst = Database(source_url), Database(target_url)
    try:
        if await _revision(src) != head:
            raise CopyError(
                "the source database is not at the newest schema: run "
                "`spacescribe migrate --database-url <source>` first"
            )
        await asyncio.to_thread(m.upgrade, target_url)
        tables = list(Base.metadata.sorted_tables)
        async with dst.engine.begin() as tconn:
            counts = {
                t.name: await tconn.scalar(select(func.count()).select_from(t)) for t in tables
            }
            if any(counts.values()) and not overwrite:
                busy = ", ".join(f"{k} ({v})" for k, v in counts.items() if v)
                raise CopyError(
                    f"the target database is not empty: {busy}. "
                    "Pass --overwrite to replace its contents."
                )
            for t in reversed(tables):
                await tconn.execute(delete(t))
            async with src.engine.connect() as sconn:
                for t in tables:
                    result = await sconn.stream(select(t).order_by(*t.primary_key.columns))
                    batch: list[dict[str, Any]] = []
                    async for row in result:
                        batch.append(dict(row._mapping))
                        if len(batch) >= BATCH:
                            await tconn.execute(t.insert(), batch)
                            batch = []
                    if batch:
                        await tconn.execute(t.insert(), batch)
            if dst.dialect == "postgresql":
                for t in tables:
                    if "id" in t.c:
                        await tconn.execute(
                            text(
                                f"SELECT setval(pg_get_serial_sequence('{t.name}', 'id'), "
                                f"COALESCE((SELECT MAX(id) FROM {t.name}), 1), "
                                f"(SELECT MAX(id) FROM {t.name}) IS NOT NULL)"
                            )
                        )
        report = []
        async with src.engine.connect() as sconn, dst.engine.connect() as tconn:
            for t in tables:
                s_n, s_sum = await table_checksum(sconn, t)
                d_n, d_sum = await table_checksum(tconn, t)
                if (s_n, s_sum) != (d_n, d_sum):
                    raise CopyError(
                        f"verification failed for {t.name}: source {s_n} rows "
                        f"{s_sum[:12]}, target {d_n} rows {d_sum[:12]}"
                    )
                report.append(TableCopy(t.name, s_n, s_sum))
        return report
    finally:
        await src.dispose()
        await dst.dispose()
