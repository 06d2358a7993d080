"""Reads do not queue behind writes: ``Database.read`` runs beside an open write transaction."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from core.context import Context
from core.db import Database, Space, sync_url
from core.service import catalog
from tests.factories import completed_space
from tests.pg_admin import pg_admin


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
        count = await ctx.db.reader.execute(select(func.count()).select_from(Space))
        assert count.scalar() == 1
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
        await ctx.db.reader.execute(update(Space).values(title="x"))


async def test_a_sqlite_reader_refuses_a_write(ctx: Context) -> None:
    if ctx.db.dialect != "sqlite":
        pytest.skip("PostgreSQL's is the test above")
    await _add_space(ctx, "1ReaderNoWrit")
    with pytest.raises(OperationalError, match="readonly"):
        await ctx.db.reader.execute(update(Space).values(title="x"))
    async with ctx.db.read() as s:
        assert await s.scalar(select(Space.title)) == "Read test"


async def test_a_sqlite_read_session_is_one_transaction(ctx: Context) -> None:
    """Its statements see one snapshot: a write committed between them is not seen."""
    if ctx.db.dialect != "sqlite":
        pytest.skip("PostgreSQL's READ ONLY transaction is READ COMMITTED, as its writes are")
    await _add_space(ctx, "1ReadSnapshot")
    titles = select(Space.title).where(Space.space_id == "1ReadSnapshot")
    async with ctx.db.read() as s:
        assert await s.scalar(titles) == "Read test"
        async with ctx.db.session() as w:
            await w.execute(update(Space).values(title="written meanwhile"))
        assert await s.scalar(titles) == "Read test"
    # each of the reader's statements sees what is committed when it runs
    assert (await ctx.db.reader.execute(titles)).scalar() == "written meanwhile"


async def test_a_sqlite_read_runs_on_the_loop_thread(ctx: Context) -> None:
    """No trip to aiosqlite's thread: the status read is done before the coroutine yields."""
    if ctx.db.dialect != "sqlite":
        pytest.skip("PostgreSQL's reads go over the network")
    await _add_space(ctx, "1LoopThreadRd")
    ran_beside = False

    async def beside() -> None:
        nonlocal ran_beside
        ran_beside = True

    task = asyncio.create_task(beside())
    view = await catalog.status(ctx, "1LoopThreadRd")  # no await inside yields to the task
    assert not ran_beside
    assert not isinstance(view, catalog.Refused) and view.title == "Read test"
    await task


async def test_a_busy_sqlite_read_goes_to_the_pool_and_never_blocks_the_loop(
    ctx: Context, tmp_path: Path
) -> None:
    """While another process's connection holds the database exclusively (what recovery or
    the last connection's close do for a moment), the loop's read is answered "busy" at once
    and made again on a pooled connection, which waits in its own thread: the loop keeps
    running meanwhile, and the answer is the same."""
    if ctx.db.dialect != "sqlite":
        pytest.skip("SQLite's locks")
    await _add_space(ctx, "1BusyLoopRead")
    path = make_url(sync_url(ctx.db.url)).database
    assert path
    await ctx.db.dispose()  # no other connection open: exclusive mode takes the file
    hold = sqlite3.connect(path, isolation_level=None)
    hold.execute("PRAGMA locking_mode=EXCLUSIVE")
    hold.execute("BEGIN EXCLUSIVE")
    ticks, gap, last = 0, 0.0, time.monotonic()

    async def ticker() -> None:
        nonlocal ticks, gap, last
        while True:
            ticks += 1
            gap, last = max(gap, time.monotonic() - last), time.monotonic()
            await asyncio.sleep(0.01)

    async def release() -> None:
        while ticks < 20:  # the loop ran ~20 times while the read waited
            await asyncio.sleep(0.01)
        hold.execute("COMMIT")
        hold.close()  # leaves exclusive mode: the pooled connection can read

    t, r = asyncio.create_task(ticker()), asyncio.create_task(release())
    try:
        view = await asyncio.wait_for(catalog.status(ctx, "1BusyLoopRead"), timeout=60)
    finally:
        t.cancel()
    await r
    assert not isinstance(view, catalog.Refused) and view.title == "Read test"
    assert ticks >= 20
    # sqlite3 waits 5 s for a lock by default: a read that waited on the loop would stop it
    # that long (a loaded machine's own stalls are a fraction of it)
    assert gap < 2.5


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


async def test_a_postgresql_read_outlives_its_lost_connections(ctx: Context) -> None:
    """The read pool does not ping before each use: a connection the server dropped (a
    restart, a failover) fails the read once, the pool drops all it had, and the read is
    made again on a new one. Any other error is the read's own and is raised."""
    if ctx.db.dialect != "postgresql":
        pytest.skip("SQLite has no connection to lose")
    await _add_space(ctx, "1LostConnRead")
    for _ in range(3):  # the read pool has connections open
        await catalog.status(ctx, "1LostConnRead")
    database = make_url(ctx.db.url).database
    await pg_admin(
        ctx.db.url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{database}' AND pid <> pg_backend_pid()",
    )
    view = await catalog.status(ctx, "1LostConnRead")
    assert not isinstance(view, catalog.Refused) and view.title == "Read test"
    with pytest.raises(DBAPIError, match="no_such_table"):
        await ctx.db.reader.execute(text("SELECT * FROM no_such_table"))


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
async def test_an_in_memory_database_is_read_through_its_one_connection(url: str) -> None:
    """In memory, each connection is a database of its own: the reader uses the pool's."""
    db = Database(url)
    try:
        async with db.session() as s:
            await s.execute(text("CREATE TABLE t (x INTEGER)"))
            await s.execute(text("INSERT INTO t VALUES (7)"))
        assert (await db.reader.execute(text("SELECT x FROM t"))).scalar_one() == 7
    finally:
        await db.dispose()
