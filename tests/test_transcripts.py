"""Transcript documents live in the database (``core.transcripts``), on both engines: what
is stored is what every surface gets, whatever this machine's disk holds; a Space made before
migration 0011 is read from the local file until the start-up back-fill copies it in."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from core import accounts, transcripts
from core.context import Context
from core.db import Space, TranscriptDocument, TranscriptionPayment
from core.results import Caller, Refused
from core.service import catalog, purchases, storefront
from tests.factories import completed_space

SID, OLD = "1DOCSSTORED01", "1DOCSLEGACY01"
WALLET = "0x" + "5a" * 20
BUYER = Caller("telegram", "515", "ann")


async def _owned(ctx: Context, sid: str) -> int:
    async with ctx.db.session() as s:
        space = completed_space(sid)
        s.add(space)
        await s.flush()
        user = await accounts.get_or_create_user(s, WALLET)
        account = await accounts.get_or_create_account(s, BUYER)
        await accounts.link_account(s, account.id, user.id)
        s.add(TranscriptionPayment(user_id=user.id, space_id=space.id, amount_usdc="0.2"))
        return int(space.id)


def _local(ctx: Context, sid: str, fmt: str, text: str) -> Path:
    path = ctx.spaces_dir / sid / f"transcript.{fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


async def test_stored_documents_are_served_whatever_the_disk_holds(ctx: Context) -> None:
    pk = await _owned(ctx, SID)
    async with ctx.db.session() as s:
        assert await transcripts.store(s, pk, {"md": "# Stored – ü\n", "json": '{"a": 1}'}) == 2
    _local(ctx, SID, "md", "# another machine's stale copy\n")  # never read: the row wins
    _local(ctx, SID, "srt", "1\n")  # nor a format the database does not hold
    t = await catalog.transcript_for(ctx, BUYER, SID)
    assert not isinstance(t, Refused) and t.content == "# Stored – ü\n".encode()
    srt = await catalog.transcript_for(ctx, BUYER, SID, "srt")
    assert isinstance(srt, Refused) and srt.code == "not_ready"
    j = await purchases.transcript_for_wallet(ctx, SID, WALLET, "json")
    assert not isinstance(j, Refused) and j.content == b'{"a": 1}'
    page = await storefront.space_page(ctx, BUYER, SID)
    assert not isinstance(page, Refused) and page.formats == ["md", "json"]
    async with ctx.db.session() as s:  # a re-run replaces, never adds
        await transcripts.store(s, pk, {"md": "# Again\n"})
    t = await catalog.transcript_for(ctx, BUYER, SID)
    assert not isinstance(t, Refused) and t.content == b"# Again\n"
    async with ctx.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(TranscriptDocument)) == 2
    async with ctx.db.session() as s:  # a forced re-import drops what the old audio made
        await transcripts.forget(s, pk)
    async with ctx.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(TranscriptDocument)) == 0


async def test_a_space_made_before_0011_is_read_locally_then_copied_in(ctx: Context) -> None:
    pk = await _owned(ctx, OLD)
    assert isinstance(await catalog.transcript_for(ctx, BUYER, OLD), Refused)  # no file here
    _local(ctx, OLD, "md", "# Old\n")
    _local(ctx, OLD, "json", "{}")
    t = await catalog.transcript_for(ctx, BUYER, OLD)
    assert not isinstance(t, Refused) and t.content == b"# Old\n"
    assert await transcripts.backfill(ctx) == [OLD]
    assert await transcripts.backfill(ctx) == []  # once
    for path in (ctx.spaces_dir / OLD).iterdir():
        path.unlink()  # the files are gone (another machine now serves it): the rows serve it
    t = await catalog.transcript_for(ctx, BUYER, OLD, "json")
    assert not isinstance(t, Refused) and t.content == b"{}"
    async with ctx.db.read() as s:
        space = await s.get(Space, pk)
        assert space is not None
        assert await transcripts.formats(s, ctx.spaces_dir, space) == ["md", "json"]
