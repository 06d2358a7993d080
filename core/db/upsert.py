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
