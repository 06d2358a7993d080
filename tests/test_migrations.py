"""Alembic: upgrade → downgrade → upgrade on both engines, and no drift from the models."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from core.db import Base, Database
from core.db import migrate as m
from core.db.migrate import include_object

SEED_TABLES = {
    "users",
    "spaces",
    "transcription_payments",
    "chat_unlocks",
    "chat_sessions",
    "processing_queue",
}
SEED_INDEXES = {
    "idx_wallet",
    "idx_space_id",
    "idx_completed_at",
    "idx_paid_at",
    "idx_unlocked_at",
    "idx_user_id",
    "idx_queried_at",
    "idx_session_id",
    "idx_priority_queued",
    # the seed's repeated names, table-prefixed (README: deviations from the seed)
    "idx_spaces_status",
    "idx_processing_queue_status",
    "idx_transcription_payments_user_space",
    "idx_chat_unlocks_user_space",
    # extensions
    "idx_processing_queue_claim",
    "idx_transcription_payments_space",
    "uq_processing_queue_live_space",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A brand-new, empty database (not the shared migrated one)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    return str(request.getfixturevalue("fresh_pg_url"))


def _diff(conn) -> list:  # type: ignore[no-untyped-def]
    mc = MigrationContext.configure(
        conn, opts={"include_object": include_object, "compare_type": True}
    )
    return compare_metadata(mc, Base.metadata)


def _tables_and_indexes(conn) -> tuple[set[str], set[str]]:  # type: ignore[no-untyped-def]
    insp = inspect(conn)
    tables = set(insp.get_table_names())
    idx = {i["name"] for t in tables for i in insp.get_indexes(t)}
    return tables, idx


async def _inspect(url: str) -> tuple[list, set[str], set[str], str | None]:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(_diff)
            tables, idx = await conn.run_sync(_tables_and_indexes)
            rev = await conn.run_sync(m.current_revision_sync)
        return diff, tables, idx, rev
    finally:
        await db.dispose()


async def test_round_trip_and_no_drift(empty_url: str) -> None:
    await asyncio.to_thread(m.upgrade, empty_url)
    await asyncio.to_thread(m.downgrade, empty_url, "base")
    _, tables, _, rev = await _inspect(empty_url)
    assert rev is None and not (tables & SEED_TABLES)
    await asyncio.to_thread(m.upgrade, empty_url)
    diff, tables, idx, rev = await _inspect(empty_url)
    assert rev == m.head_revision()
    assert diff == [], f"models and migrations drifted: {diff}"
    assert tables >= SEED_TABLES
    assert idx >= SEED_INDEXES, SEED_INDEXES - idx


async def test_full_text_search_on_titles_and_participants(empty_url: str) -> None:
    await asyncio.to_thread(m.upgrade, empty_url)
    db = Database(empty_url)
    try:
        async with db.session() as s:
            await s.execute(
                text(
                    "INSERT INTO spaces (space_id, space_url, title, participants) VALUES "
                    "('1AAAAAAAAAAAA', 'https://x.com/i/spaces/1AAAAAAAAAAAA', "
                    "'Bitcoin halving debate', '[\"alice\", \"bob\"]')"
                )
            )
            await s.execute(
                text(
                    "UPDATE spaces SET title = 'Ethereum scaling debate' "
                    "WHERE space_id = '1AAAAAAAAAAAA'"
                )
            )
            if db.dialect == "sqlite":
                q = "SELECT space_id FROM spaces_fts WHERE spaces_fts MATCH :q"
            else:
                q = (
                    "SELECT space_id FROM spaces WHERE to_tsvector('english', title) "
                    "@@ plainto_tsquery('english', :q)"
                )
            assert (await s.execute(text(q), {"q": "scaling"})).scalars().all() == ["1AAAAAAAAAAAA"]
            assert (await s.execute(text(q), {"q": "bitcoin"})).scalars().all() == []
            if db.dialect == "sqlite":
                hits = await s.execute(text(q), {"q": "alice"})
                assert hits.scalars().all() == ["1AAAAAAAAAAAA"]
    finally:
        await db.dispose()


_INVOICE = (
    "INSERT INTO invoices (public_id, kind, space_ids, payload, amount_units, network,"
    " token_address, pay_to, status, expires_at)"
    " VALUES (:public_id, 'transcription', '[]', :payload, 1, 'eip155:31337', '0x0', '0x0',"
    " 'open', CURRENT_TIMESTAMP)"
)
# payload → origin_chat_id after 0012: the chat_id as text, nothing where there was none
_PAYLOADS = [
    ('{"chat_id": "-1001", "guild_id": "5"}', "-1001"),
    ('{"chat_id": 42}', "42"),
    ('{"chat_id": ""}', None),
    ('{"question": "who?"}', None),
    ("[1, 2]", None),
    ("not json", None),
    (None, None),
]


async def _invoices(url: str) -> list[dict[str, object]]:
    db = Database(url)
    try:
        async with db.session() as s:
            rows = await s.execute(text("SELECT * FROM invoices ORDER BY id"))
            return [dict(r._mapping) for r in rows]
    finally:
        await db.dispose()


async def test_0012_moves_the_origin_chat_to_a_column_and_back(empty_url: str) -> None:
    """Invoices written at 0011 get origin_chat_id from their payload (more rows than one
    batch of the back-fill); the downgrade drops the column and keeps every row."""
    await asyncio.to_thread(m.upgrade, empty_url, "0011")
    db = Database(empty_url)
    try:
        async with db.session() as s:
            rows = [
                {"public_id": f"inv_{i}", "payload": _PAYLOADS[i % len(_PAYLOADS)][0]}
                for i in range(1_201)
            ]
            await s.execute(text(_INVOICE), rows)
            # a reference into invoices that a table rebuild on SQLite would have nulled
            await s.execute(
                text(
                    "INSERT INTO payment_receipts (invoice_id, method, network, token_address,"
                    " payer_address, pay_to, amount_units, status)"
                    " VALUES (1, 'transfer', 'eip155:31337', '0x0', '0x0', '0x0', 1, 'credited')"
                )
            )
    finally:
        await db.dispose()
    await asyncio.to_thread(m.upgrade, empty_url, "0012")
    after = await _invoices(empty_url)
    assert len(after) == 1_201
    for i, row in enumerate(after):
        assert row["origin_chat_id"] == _PAYLOADS[i % len(_PAYLOADS)][1], row
    await asyncio.to_thread(m.downgrade, empty_url, "0011")
    back = await _invoices(empty_url)
    assert [r["payload"] for r in back] == [r["payload"] for r in after]
    assert all("origin_chat_id" not in r for r in back)
    db = Database(empty_url)
    try:
        async with db.session() as s:
            assert await s.scalar(text("SELECT invoice_id FROM payment_receipts")) == 1
    finally:
        await db.dispose()
    await asyncio.to_thread(m.upgrade, empty_url)
    assert [r["origin_chat_id"] for r in await _invoices(empty_url)][:2] == ["-1001", "42"]
