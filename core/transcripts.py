"""The transcript documents of a Space (md, json, srt, vtt): stored in the database and read
from there by every surface that delivers or serves one.

The database is the only thing the machines of one installation share. The worker that made
a transcript stores its documents (``transcript_documents``) before its job marks the Space
completed, so whichever machine runs the bots, the web server or the scheduler has them;
audio and chunk files stay in the worker's own ``data/``.

Spaces completed before migration 0011 have their documents only as files on the machine
that made them. ``spacescribe run`` copies what it finds of those into the table at start
(:func:`backfill`), and until then :func:`read` falls back to this machine's file for a Space
that has no stored document at all (never for one that has some).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import CursorResult, delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import Space, TranscriptDocument, utcnow
from core.db.upsert import insert
from core.spaces import space_dir
from core.statuses import SpaceStatus

if TYPE_CHECKING:
    from core.context import Context

# every format a transcript has, and its media type
FORMATS = {
    "md": "text/markdown",
    "json": "application/json",
    "srt": "application/x-subrip",
    "vtt": "text/vtt",
}
KEY = ["space_id", "format"]


async def store(
    session: AsyncSession, space_pk: int, documents: Mapping[str, str], *, replace: bool = True
) -> int:
    """Store a Space's documents (format → text), replacing stored ones unless ``replace`` is
    false. Idempotent. Returns how many rows were written."""
    now = utcnow()
    rows = [
        {"space_id": space_pk, "format": f, "content": c, "created_at": now, "updated_at": now}
        for f, c in documents.items()
        if f in FORMATS
    ]
    if not rows:
        return 0
    stmt = insert(session, TranscriptDocument).values(rows)
    if replace:
        stmt = stmt.on_conflict_do_update(
            index_elements=KEY,
            set_={"content": stmt.excluded.content, "updated_at": stmt.excluded.updated_at},
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=KEY)
    result = await session.execute(stmt)
    return int(result.rowcount) if isinstance(result, CursorResult) else 0


async def forget(session: AsyncSession, space_pk: int) -> None:
    """Drop a Space's documents (its audio is being replaced: they were made from another)."""
    await session.execute(delete(TranscriptDocument).where(TranscriptDocument.space_id == space_pk))


def _local(spaces_dir: Path, space_id: str, fmt: str) -> Path:
    """Where a Space completed before migration 0011 has its documents, on one machine."""
    return space_dir(spaces_dir, space_id) / f"transcript.{fmt}"


async def _stored_formats(session: AsyncSession, space_pk: int) -> set[str]:
    q = select(TranscriptDocument.format).where(TranscriptDocument.space_id == space_pk)
    return set((await session.scalars(q)).all())


async def read(session: AsyncSession, spaces_dir: Path, space: Space, fmt: str) -> bytes | None:
    """A Space's document in ``fmt`` (UTF-8), or None when it has none in that format."""
    if fmt not in FORMATS:
        return None
    content = await session.scalar(
        select(TranscriptDocument.content).where(
            TranscriptDocument.space_id == space.id, TranscriptDocument.format == fmt
        )
    )
    if content is not None:
        return content.encode()
    if await session.scalar(select(exists().where(TranscriptDocument.space_id == space.id))):
        return None  # stored, but not in this format
    try:  # made before 0011 and not copied in yet: this machine's file, if it has it
        return _local(spaces_dir, space.space_id, fmt).read_bytes()
    except OSError:
        return None


async def json_of(ctx: Context, space_pk: int) -> str | None:
    """A Space's transcript.json, what enrichment and the chat index are made from (on
    whichever machine runs them)."""
    async with ctx.db.read() as s:
        space = await s.get(Space, space_pk)
        raw = await read(s, ctx.spaces_dir, space, "json") if space is not None else None
    return raw.decode() if raw is not None else None


async def formats(session: AsyncSession, spaces_dir: Path, space: Space) -> list[str]:
    """The formats a Space's transcript can be had in, in FORMATS order."""
    have = await _stored_formats(session, space.id)
    if not have:
        have = {f for f in FORMATS if _local(spaces_dir, space.space_id, f).is_file()}
    return [f for f in FORMATS if f in have]


async def backfill(ctx: Context) -> list[str]:
    """Copy into the database the documents of completed Spaces that have none stored, from
    this machine's files (Spaces made before migration 0011). Never replaces a stored
    document; run by every ``spacescribe run`` at start. Returns the Space ids copied."""
    async with ctx.db.read() as s:
        rows = (
            await s.execute(
                select(Space.id, Space.space_id).where(
                    Space.status == SpaceStatus.COMPLETED,
                    ~exists().where(TranscriptDocument.space_id == Space.id),
                )
            )
        ).all()
    copied = []
    for pk, sid in rows:
        found = {}
        for fmt in FORMATS:
            try:
                found[fmt] = _local(ctx.spaces_dir, sid, fmt).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
        if found:
            async with ctx.db.session() as s:
                if await store(s, pk, found, replace=False):
                    copied.append(str(sid))
    return copied
