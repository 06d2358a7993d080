"""The one async engine / session factory, for ``sqlite+aiosqlite`` and ``postgresql+asyncpg``.

SQLite runs in WAL mode with foreign keys ON and a busy timeout, and every transaction of
:meth:`Database.session` starts with ``BEGIN IMMEDIATE`` so that a read-then-write never fails
half-way on a lock upgrade: SQLite has one writer at a time and we take the write lock up front.
:meth:`Database.read` is for work that writes nothing: a deferred transaction on SQLite (WAL
readers run beside the writer instead of queueing for its lock) and a READ ONLY one on
PostgreSQL. :attr:`Database.reader` is the hot path's (a Space's status, ``core.db.reads``):
Core statements, each its own snapshot, run the cheapest way each engine allows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from core.config import ROOT
from core.db.reads import LoopReader, PoolReader, Reader

SQLITE_BUSY_TIMEOUT_MS = 30_000
OVERFLOW = 2  # under load the pool opens up to pool_size × OVERFLOW more connections
READ_ONLY = "spacescribe_read_only"  # execution option: begin a deferred, read-only transaction


def async_url(url: str) -> str:
    """Accept plain ``sqlite:///…`` / ``postgresql://…`` URLs; return the async-driver form.

    Relative SQLite paths are taken from the project root, so ``data/database/spaces.db``
    is the same file whatever the working directory.
    """
    u = make_url(
        url.replace("postgres://", "postgresql://", 1) if url.startswith("postgres://") else url
    )
    backend = u.get_backend_name()
    if backend == "sqlite":
        u = u.set(drivername="sqlite+aiosqlite")
        if u.database and u.database != ":memory:" and not Path(u.database).is_absolute():
            u = u.set(database=str(ROOT / u.database))
    elif backend == "postgresql":
        u = u.set(drivername="postgresql+asyncpg")
    else:
        raise ValueError(f"unsupported database URL scheme {u.drivername!r}")
    return u.render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    """The same database addressed without the async driver (for display and tooling)."""
    u = make_url(async_url(url))
    return u.set(drivername=u.get_backend_name()).render_as_string(hide_password=False)


def safe_url(url: str) -> str:
    """A URL fit for logs: the password, if any, masked."""
    return make_url(async_url(url)).render_as_string(hide_password=True)


def create_engine(url: str, pool_size: int = 5, echo: bool = False) -> AsyncEngine:
    aurl = make_url(async_url(url))
    kwargs: dict[str, Any] = {"echo": echo}
    in_memory = aurl.get_backend_name() == "sqlite" and aurl.database in (None, "", ":memory:")
    if not in_memory:  # (an in-memory database is one shared connection)
        kwargs.update(pool_size=pool_size, max_overflow=pool_size * OVERFLOW)
    if aurl.get_backend_name() == "sqlite":
        if not in_memory:
            Path(str(aurl.database)).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        kwargs["pool_reset_on_return"] = None  # done by _on_reset (below)
    else:
        kwargs.update(pool_pre_ping=True, connect_args={"server_settings": {"timezone": "UTC"}})
    engine = create_async_engine(aurl, **kwargs)
    if aurl.get_backend_name() == "sqlite":
        _sqlite_pragmas(engine)
    return engine


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY, False):
            # One trip to aiosqlite's thread instead of three (cursor, execute, close): reads
            # are the web server's hot path. A deferred BEGIN takes no lock, so it has no busy
            # error for SQLAlchemy to wrap as the write path's can.
            conn.connection.dbapi_connection.run_async(_begin_deferred)
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(dbapi_conn: Any, _record: Any, state: Any) -> None:
        # The pool's rollback-on-return, without its trip to aiosqlite's thread when no
        # transaction is open (every committed one): sqlite3's rollback() does nothing then.
        if state.asyncio_safe and _in_transaction(dbapi_conn):
            dbapi_conn.rollback()


def _in_transaction(dbapi_conn: Any) -> bool:
    try:
        return bool(dbapi_conn.driver_connection.in_transaction)
    except (ValueError, sqlite3.Error):  # closed: rollback() knows what to do, as before
        return True


def _begin_deferred(driver_conn: Any) -> Any:
    return driver_conn.execute_fetchall("BEGIN DEFERRED")


class Database:
    """Owns the engine and the session factory; one per process."""

    def __init__(self, url: str, pool_size: int = 5, echo: bool = False) -> None:
        self.url = url
        self.engine = create_engine(url, pool_size=pool_size, echo=echo)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        options: dict[str, Any] = {READ_ONLY: True}
        if self.engine.dialect.name == "postgresql":
            options["postgresql_readonly"] = True
        self.read_engine = self.engine.execution_options(**options)
        self.read_sessionmaker = async_sessionmaker(self.read_engine, expire_on_commit=False)
        self.reader: Reader = (
            LoopReader(make_url(sync_url(url)), self.read_engine)
            if self.dialect == "sqlite"  # PostgreSQL: as many as the main pool may hand out
            else PoolReader(self.engine.url, pool_size * (1 + OVERFLOW))
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on error."""
        async with self.sessionmaker() as s, s.begin():
            yield s

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for work that writes nothing: on SQLite it never waits for the write
        lock (a writer's open transaction does not hold it up); PostgreSQL refuses a write in
        it. Use :meth:`session` for anything that may write."""
        async with self.read_sessionmaker() as s, s.begin():
            yield s

    async def dispose(self) -> None:
        await self.reader.dispose()
        await self.engine.dispose()
