"""Reads do not queue behind writes: ``Database.read`` runs beside an open write transaction."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError

from core.context import Context
from core.db import Space
from core.service import catalog
from tests.factories import completed_space


async def _add_space(ctx: Context, sid: str) -> None:
    async with ctx.db.session() as s:
        s.add(completed_space(sid, "Read test"))


async def test_a_read_runs_while_a_writer_holds_its_transaction(ctx: Context) -> None:
    await _add_space(ctx, "1ReadWhileWrt")
    read_done = asyncio.Event()

    async def writer() -> None:
        async with ctx.db.session() as s:
            await s.execute(update(Space).values(title="being written"))
            # Commit only after the reader finished: if reads took the write lock, the reader
            # would wait for this commit (and fail on SQLite's busy timeout), never set the event.
            await asyncio.wait_for(read_done.wait(), timeout=60)

    async def reader() -> None:
        async with ctx.db.read() as s:
            assert await s.scalar(select(func.count()).select_from(Space)) == 1
        async with ctx.db.read_connection() as conn:
            assert await conn.scalar(select(func.count()).select_from(Space)) == 1
        view = await catalog.status(ctx, "1ReadWhileWrt")
        assert not isinstance(view, catalog.Refused)
        read_done.set()

    w = asyncio.create_task(writer())
    await asyncio.sleep(0)  # the writer begins first
    await asyncio.wait_for(reader(), timeout=60)
    await w


async def test_postgresql_refuses_a_write_in_a_read_session(ctx: Context) -> None:
    if ctx.db.dialect != "postgresql":
        pytest.skip("SQLite has no read-only transaction; the rule is not to write in read()")
    with pytest.raises(DBAPIError, match="read-only"):
        async with ctx.db.read() as s:
            await s.execute(update(Space).values(title="x"))
    with pytest.raises(DBAPIError, match="read-only"):
        async with ctx.db.read_connection() as conn:
            await conn.execute(update(Space).values(title="x"))


async def test_a_sqlite_read_is_one_transaction(ctx: Context) -> None:
    """Its statements see one snapshot: a write committed between them is not seen."""
    if ctx.db.dialect != "sqlite":
        pytest.skip("PostgreSQL's READ ONLY transaction is READ COMMITTED, as its writes are")
    await _add_space(ctx, "1ReadSnapshot")
    titles = select(Space.title).where(Space.space_id == "1ReadSnapshot")
    async with ctx.db.read_connection() as conn:
        raw = await conn.get_raw_connection()
        assert raw.driver_connection is not None and raw.driver_connection.in_transaction
        assert await conn.scalar(titles) == "Read test"
        async with ctx.db.session() as s:
            await s.execute(update(Space).values(title="written meanwhile"))
        assert await conn.scalar(titles) == "Read test"
    async with ctx.db.read() as s:
        assert await s.scalar(titles) == "written meanwhile"


async def test_a_connection_goes_back_to_the_pool_without_its_transaction(ctx: Context) -> None:
    """The pool rolls back what is still open when a connection is returned (SQLite: only
    when something is, skipping a trip to the driver's thread): here a write lock that
    SQLAlchemy did not take itself, which would otherwise block every writer."""
    if ctx.db.dialect != "sqlite":
        pytest.skip("PostgreSQL keeps SQLAlchemy's own rollback-on-return")
    async with ctx.db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.execute("BEGIN IMMEDIATE")
        assert driver.in_transaction
    assert not driver.in_transaction
    await asyncio.wait_for(_add_space(ctx, "1AfterReturnd"), timeout=10)
