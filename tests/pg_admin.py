"""Scratch PostgreSQL databases for tests and benchmarks: created under a random name on the
server of a URL, dropped (connections and all) afterwards."""

from __future__ import annotations

import uuid

from sqlalchemy.engine import make_url


async def pg_admin(server_url: str, sql: str) -> None:
    """Run one statement on the database named by ``server_url`` (no transaction)."""
    import asyncpg

    u = make_url(server_url)
    conn = await asyncpg.connect(
        host=u.host,
        port=u.port or 5432,
        user=u.username,
        password=u.password,
        database=u.database or "postgres",
        timeout=5,
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def create_scratch(server_url: str, prefix: str) -> str:
    """A new empty database on that server; its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    await pg_admin(server_url, f'CREATE DATABASE "{name}"')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def drop_scratch(server_url: str, url: str) -> None:
    """Drop a database made by :func:`create_scratch`, even with connections still open."""
    await pg_admin(server_url, f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
