"""The hot read path (a Space's status): Core statements that write nothing, each its own
snapshot, run the cheapest way each engine allows. ``python -m bench http`` measures it: 50
concurrent readers beside a writer went from 671 req/s (p99 225 ms) to ~1,700 on SQLite and
from 661 (p99 271 ms) to ~1,400 on PostgreSQL, p99 under 60 ms on both.

- SQLite (:class:`LoopReader`): a synchronous connection on the event loop's own thread. A
  point read takes microseconds there; sent to aiosqlite's thread it took six round trips and
  ~1 ms of CPU (``python -m bench readcpu``).
- PostgreSQL (:class:`PoolReader`): a pool of its own, in autocommit and read-only, taken in
  the order asked. Three things set the tail there: connections the main pool opened under
  load and closed again (its overflow), a connection handed to one waiter and taken by a
  newcomer, and a ping before every checkout.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Mapping
from typing import Any, Protocol
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, Executable, Result, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


class Reader(Protocol):
    """Core statements that write nothing, each seeing the database as it is when it runs."""

    async def execute(
        self, statement: Executable, params: Mapping[str, Any] | None = None
    ) -> Result[Any]: ...

    async def dispose(self) -> None: ...


class LoopReader:
    """SQLite. A WAL reader takes no lock a writer holds, so it does not wait; in the rare
    moments it would (another connection recovering or closing the WAL), SQLite answers
    "busy" at once and the read is made on the main pool's connections, which wait in their
    own threads. ``:memory:`` is one database per connection: there only the pool reads."""

    def __init__(self, url: URL, pool: AsyncEngine) -> None:
        self._pool = pool  # the main engine's read-only side (a deferred transaction)
        self._engine: Engine | None = None
        if url.database and url.database != ":memory:":
            # never wait for a lock on the loop's thread; any thread may use the connection
            self._engine = create_sync_engine(
                url, connect_args={"timeout": 0, "check_same_thread": False}
            )
            event.listen(self._engine, "connect", _read_only_autocommit)

    async def execute(
        self, statement: Executable, params: Mapping[str, Any] | None = None
    ) -> Result[Any]:
        if self._engine is not None:
            try:
                with self._engine.connect() as conn:
                    return conn.execute(statement, params).freeze()()
            except OperationalError as e:
                if not isinstance(e.orig, sqlite3.OperationalError) or "locked" not in str(e):
                    raise
        async with self._pool.begin() as conn:
            return (await conn.execute(statement, params)).freeze()()

    async def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def _read_only_autocommit(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # no BEGIN: each SELECT is its own snapshot
    dbapi_conn.execute("PRAGMA query_only=ON")  # a write is refused, as PostgreSQL's is


class PoolReader:
    """PostgreSQL. Its own pool, so a read never waits for a connection a write holds, of a
    fixed size (no overflow to open and close under load), no ping before each use (a
    connection found dead is dropped with the rest of the pool and the read made once more),
    and connections in autocommit with ``default_transaction_read_only``: one round trip per
    read, and a write refused."""

    def __init__(self, url: URL, size: int) -> None:
        settings = {"timezone": "UTC", "default_transaction_read_only": "on"}
        self._engine = create_async_engine(
            url, pool_size=size, max_overflow=0, connect_args={"server_settings": settings}
        ).execution_options(isolation_level="AUTOCOMMIT")
        self._size = size
        self._gates: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            WeakKeyDictionary()
        )

    async def execute(
        self, statement: Executable, params: Mapping[str, Any] | None = None
    ) -> Result[Any]:
        async with self._gate():
            try:
                return await self._once(statement, params)
            except DBAPIError as e:
                if not e.connection_invalidated:  # not a lost connection: the read's fault
                    raise
            return await self._once(statement, params)

    async def _once(self, statement: Executable, params: Mapping[str, Any] | None) -> Result[Any]:
        async with self._engine.connect() as conn:
            return (await conn.execute(statement, params)).freeze()()

    def _gate(self) -> asyncio.Semaphore:
        """First come, first served. The pool's own queue lets a newcomer take a connection
        just handed to a waiter, who then queues again: under 50 concurrent reads a few
        waited 4-5 times the median. A semaphore of the pool's size in front of it queues
        them in order, and the pool never has to. One per event loop (a semaphore belongs
        to the loop it first waits in)."""
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = asyncio.Semaphore(self._size)
        return gate

    async def dispose(self) -> None:
        await self._engine.dispose()
