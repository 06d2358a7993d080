"""spacescribe db copy: a populated SQLite database moves to PostgreSQL, verified."""

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core import accounts, outbox, queue, transcripts, wallet_link
from core.chat.index import index_segments
from core.chat.retrieve import retrieve
from core.config import Secrets
from core.context import Context
from core.db import (
    Base,
    Database,
    Invoice,
    PaymentCursor,
    PaymentReceipt,
    SiwxNonce,
    Space,
    SpaceEnrichment,
    StarPayment,
    TranscriptionPayment,
    User,
    WebSession,
    X402Request,
    utcnow,
)
from core.db import migrate as m
from core.db.copy import CopyError, copy_database
from core.results import Caller
from tests.conftest import make_settings
from tests.test_revenue import _populate

SEGMENTS = [
    {"start": 0.0, "end": 4.0, "speaker": "Ada", "text": "Welcome to the zeppelin hour."},
    {"start": 4.0, "end": 9.0, "speaker": "Bob", "text": "Our airships carry hydrogen."},
]


async def _populate_every_table(ctx: Context) -> None:
    """The revenue fixture's purchases, and a row in every other table, each written by the
    code that writes it in production (FTS index and sequences included)."""
    await _populate(ctx)
    token = "0x" + "ab" * 20
    async with ctx.db.session() as s:
        space = (await s.execute(select(Space).order_by(Space.id))).scalars().first()
        assert space is not None
        account = await accounts.get_or_create_account(s, Caller("telegram", "4242"))
        await accounts.link_account(s, account.id, 1)
        await wallet_link.create_link(s, ctx, account.id)
        await queue.enqueue(s, space.id)
        await index_segments(s, space.id, SEGMENTS)
        await outbox.add_message(
            s, kind="notice", platform="telegram", recipient="4242", payload={}, dedupe_key="k"
        )
        invoice = Invoice(
            public_id="inv_copytest",
            kind="transcription",
            account_id=account.id,
            space_ids=f'["{space.space_id}"]',
            amount_units=200_000,
            network="eip155:31337",
            token_address=token,
            pay_to=token,
            expires_at=utcnow(),
        )
        s.add(invoice)
        await s.flush()
        s.add(
            PaymentReceipt(
                invoice_id=invoice.id,
                method="transfer",
                network="eip155:31337",
                token_address=token,
                payer_address=token,
                pay_to=token,
                amount_units=200_000,
                transaction_hash="0x" + "cd" * 32,
                log_index=0,
                status="credited",
            )
        )
        s.add(
            PaymentCursor(network="eip155:31337", token_address=token, pay_to=token, last_block=7)
        )
        s.add(
            StarPayment(
                telegram_payment_charge_id="stxCopyTest1",
                invoice_id=invoice.id,
                telegram_user_id="4242",
                currency="XTR",
                amount=15,
                status="credited",
            )
        )
        s.add(
            X402Request(
                payment_id="pay_copytest_0001",
                authorization_key="eip155:31337/token/payer/0x01",
                request_hash="ab" * 32,
                body_hash="cd" * 32,
                route="transcription",
                payer_address=token,
                state="done",
                lease_until=utcnow(),
                response_status=200,
                response_body="{}",
                response_headers="{}",
            )
        )
        s.add(SiwxNonce(nonce="copytestnonce01", wallet_address=token))
        s.add(
            WebSession(
                token_hash="ab" * 32,
                wallet_address=token,
                csrf_token="copytestcsrf01",
                expires_at=utcnow(),
            )
        )
        # the transcript's documents, as the pipeline stores them (non-ASCII text included)
        await transcripts.store(s, space.id, {"md": "# Zeppelin hour – Ada\n", "json": "{}"})
        s.add(
            SpaceEnrichment(
                space_id=space.id,
                status="completed",
                method="extractive",
                data='{"takeaways": []}',
                tokens_used=0,
                attempts=1,
            )
        )


async def test_copy_sqlite_to_postgres(tmp_path: Path, fresh_pg_url: str) -> None:
    src_url = f"sqlite:///{tmp_path / 'src.db'}"
    await asyncio.to_thread(m.upgrade, src_url)
    ctx = Context(make_settings(src_url, tmp_path), Secrets.model_construct(), Database(src_url))
    await _populate_every_table(ctx)
    await ctx.close()

    report = await copy_database(src_url, fresh_pg_url)
    rows = {t.table: t.rows for t in report}
    assert rows["users"] == 3 and rows["spaces"] == 2 and rows["transcription_payments"] == 5
    assert rows["chat_sessions"] == 3 and rows["credits"] == 1
    empty = [t.name for t in Base.metadata.sorted_tables if not rows.get(t.name)]
    assert not empty, f"copied without rows: {empty}"

    dst = Database(fresh_pg_url)
    try:
        async with dst.session() as s:
            # ids kept and sequences reset: a new row gets the next id
            u = User(wallet_address="0x" + "ff" * 20)
            s.add(u)
            await s.flush()
            assert u.id == 4
            assert await s.scalar(select(func.count()).select_from(TranscriptionPayment)) == 5
            titles = (await s.execute(select(Space.title).order_by(Space.id))).scalars().all()
            assert titles == ["Big one", "Old"]
            # the copied passages are searchable through PostgreSQL's own full-text index
            pk = await s.scalar(select(Space.id).order_by(Space.id).limit(1))
            hits = await retrieve(s, [int(pk or 0)], "what do the airships carry?")
            assert hits and "hydrogen" in hits[0].text
    finally:
        await dst.dispose()

    with pytest.raises(CopyError, match="not empty"):
        await copy_database(src_url, fresh_pg_url)
    again = await copy_database(src_url, fresh_pg_url, overwrite=True)
    assert {t.table: t.rows for t in again}["users"] == 3


def test_cli_refuses_unmigrated_source(tmp_path: Path, fresh_pg_url: str) -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "db",
            "copy",
            "--from",
            f"sqlite:///{tmp_path / 'none.db'}",
            "--to",
            fresh_pg_url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "spacescribe migrate" in r.stderr


def test_cli_copies_and_verifies(tmp_path: Path, fresh_pg_url: str) -> None:
    src_url = f"sqlite:///{tmp_path / 'src.db'}"
    m.upgrade(src_url)

    async def fill() -> None:
        ctx = Context(
            make_settings(src_url, tmp_path), Secrets.model_construct(), Database(src_url)
        )
        await _populate(ctx)
        await ctx.close()

    asyncio.run(fill())
    r = subprocess.run(
        [sys.executable, "-m", "bot.cli", "db", "copy", "--from", src_url, "--to", fresh_pg_url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "verified" in r.stdout and "transcription_payments" in r.stdout
