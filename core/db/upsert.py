"""Dialect-aware INSERT … ON CONFLICT DO NOTHING, the one idempotent-write primitive."""

from __future__ import annotations

from typing import Any

from sqlalchemy import CursorResult
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession


def dialect_name(session: AsyncSession) -> str:
    bind = session.get_bind()
    return bind.dialect.name


def insert(session: AsyncSession, model: Any) -> Any:
    """``INSERT`` for the session's engine, supporting ``.on_conflict_do_nothing``."""
    return (pg_insert if dialect_name(session) == "postgresql" else sqlite_insert)(model)


async def insert_ignore(
    session: AsyncSession,
    model: Any,
    values: dict[str, Any],
    index_elements: list[str],
    index_where: Any = None,
) -> bool:
    """Insert unless a row with the same unique key exists. True if a row was added."""
    stmt = (
        insert(session, model)
        .values(**values)
        .on_conflict_do_nothing(index_elements=index_elements, index_where=index_where)
    )
    result = await session.execute(stmt)
    return bool(result.rowcount) if isinstance(result, CursorResult) else False


_MANY: dict[tuple[str, str, tuple[str, ...]], Any] = {}


async def insert_ignore_many(
    session: AsyncSession, model: Any, rows: list[dict[str, Any]], index_elements: list[str]
) -> int:
    """:func:`insert_ignore` for many rows of the same columns. Returns how many were added.

    One statement per dialect and table, compiled once: SQLAlchemy sends the rows as
    multi-row ``VALUES`` batches ("insertmanyvalues") and RETURNING counts the added ones.
    """
    if not rows:
        return 0
    table = getattr(model, "__table__", model)  # Core: no ORM bookkeeping for plain rows
    key = (dialect_name(session), table.name, tuple(index_elements))
    stmt = _MANY.get(key)
    if stmt is None:
        pk = list(table.primary_key.columns)
        stmt = _MANY[key] = (
            insert(session, table)
            .on_conflict_do_nothing(index_elements=index_elements)
            .returning(*pk)
        )
    result = await session.execute(stmt, rows)
    return len(result.all())
