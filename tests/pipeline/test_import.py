"""Importing a recording X cannot give: ``core.service.imports`` and ``spacescribe import``.

Real ffmpeg (checks, conversion), espeak-ng speech, the offline backend, the worker's own
job; X is never asked (a resolver that fails the test if it is). On both engines.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from core.context import Context
from core.db import Outbox, ProcessingJob, Space, TranscriptionPayment, utcnow
from core.pipeline.media import SpaceMeta
from core.pipeline.storage import SpaceFiles
from core.refunds import settle_failed_space
from core.results import Caller, Refused
from core.service.imports import Imported, Metadata, import_recording
from core.worker import Worker
from tests.chat.helpers import member
from tests.factories import completed_space
from tests.snapshot import snapshot
from tests.stand_ins.audio import ffmpeg
from tests.test_cli import CLI, _env

SID = "1IMPORT000001"


class NoX:
    """A resolver that records any question to X: an import never asks one."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def resolve(self, space_id: str) -> SpaceMeta:
        self.calls.append(space_id)
        raise AssertionError("X was asked about an imported Space")


@pytest.fixture
def no_x(ctx: Context) -> NoX:
    r = NoX()
    ctx.wiring.resolver = r
    return r


@pytest.fixture
def offline(ctx: Context) -> Context:
    ctx.settings.transcription.backend = "offline"
    ctx.settings.transcription.chunk_seconds = 30
    return ctx


async def _row(ctx: Context, sid: str = SID) -> Space | None:
    async with ctx.db.session() as s:
        return (await s.execute(select(Space).where(Space.space_id == sid))).scalar_one_or_none()


async def _ready_messages(ctx: Context) -> list[str]:
    async with ctx.db.session() as s:
        rows = await s.execute(select(Outbox.recipient).where(Outbox.kind == "transcript_ready"))
        return sorted(r[0] for r in rows)


async def test_unknown_space_gets_a_row_and_the_same_job(
    offline: Context, no_x: NoX, speech: Path
) -> None:
    ctx = offline
    started = datetime(2026, 11, 30, 17, 0)
    out = await import_recording(
        ctx,
        None,
        f"https://x.com/i/spaces/{SID}",
        speech,
        meta=Metadata(title="Weather, imported", creator="alice", started_at=started),
    )
    assert isinstance(out, Imported), out
    assert out.created and out.payers == 0 and 8 < out.duration_seconds < 20
    row = await _row(ctx)
    assert row is not None and row.status == "pending"
    assert (row.title, row.creator, row.space_started_at) == ("Weather, imported", "alice", started)
    files = SpaceFiles.of(ctx.spaces_dir, SID)
    assert files.audio.is_file() and not (ctx.spaces_dir / ".imports").exists()
    assert await Worker(ctx, worker_id="w").run_space(SID)
    row = await _row(ctx)
    assert row is not None and row.status == "completed", row and row.error_message
    assert row.audio_duration_seconds and 8 <= row.audio_duration_seconds <= 20
    assert "weather" in files.markdown.read_text().lower()
    doc = json.loads(files.json.read_text())
    assert doc["title"] == "Weather, imported" and doc["creator"] == "alice"
    assert no_x.calls == []


async def _waiting_space(
    ctx: Context, status: str, payers: tuple[str, ...] = ("ann", "bob")
) -> int:
    """A Space members paid for that X cannot give: still waiting (a live Space's job
    deferred) or failed."""
    async with ctx.db.session() as s:
        sp = Space(
            space_id=SID,
            space_url=f"https://x.com/i/spaces/{SID}",
            title="Live talk",
            status="pending" if status == "waiting" else "failed",
            error_message=None if status == "waiting" else "ended without a replay",
            first_requested_at=utcnow(),
        )
        s.add(sp)
        await s.flush()
        pk = sp.id
        if status == "waiting":
            s.add(
                ProcessingJob(
                    space_id=pk,
                    status="queued",
                    queued_at=utcnow(),
                    available_at=utcnow() + timedelta(hours=1),
                    error_message="This Space is live",
                    max_retries=3,
                )
            )
        else:
            s.add(
                ProcessingJob(
                    space_id=pk, status="failed", queued_at=utcnow(), retry_count=1, max_retries=3
                )
            )
    for name in payers:
        await member(ctx, name, owns=[pk])
    return pk


@pytest.mark.parametrize("status", ["waiting", "failed"])
async def test_waiting_payers_are_served_once(
    offline: Context, no_x: NoX, speech: Path, status: str
) -> None:
    """A live Space's deferred job starts now on the imported audio; a Space that failed
    (refund policy "none": its payers still own it) gets a fresh job. Every payer gets
    ``transcript_ready`` once, however often the completion is recorded."""
    ctx = offline
    ctx.settings.payments.refund_policy = "none"
    pk = await _waiting_space(ctx, status)
    out = await import_recording(ctx, None, SID, speech)
    assert isinstance(out, Imported) and not out.created and out.payers == 2, out
    row = await _row(ctx)
    assert row is not None and row.title == "Live talk" and row.status == "pending"
    async with ctx.db.session() as s:
        live = (
            await s.execute(select(ProcessingJob).where(ProcessingJob.status == "queued"))
        ).scalar_one()
    assert live.available_at is not None and live.available_at <= utcnow()
    assert await Worker(ctx, worker_id="w").run_space(SID)
    row = await _row(ctx)
    assert row is not None and row.status == "completed", row and row.error_message
    assert await _ready_messages(ctx) == ["tg-ann", "tg-bob"]
    assert not await Worker(ctx, worker_id="w").run_one()  # nothing left to do
    # importing again does not tell anybody twice: a completed Space is refused
    again = await import_recording(ctx, None, SID, speech)
    assert isinstance(again, Refused) and again.code == "already_transcribed", again
    assert await _ready_messages(ctx) == ["tg-ann", "tg-bob"]
    assert no_x.calls == [] and pk == row.id


async def test_refunded_payers_are_not_served_again(
    offline: Context, no_x: NoX, speech: Path
) -> None:
    """Under the credit policy a failed Space's payers got their money back as credit: the
    import makes the Space sellable from the library, it does not deliver it to them free."""
    ctx = offline
    pk = await _waiting_space(ctx, "failed")
    async with ctx.db.session() as s:
        await settle_failed_space(s, ctx.settings, pk)
    out = await import_recording(ctx, None, SID, speech)
    assert isinstance(out, Imported) and out.payers == 0, out
    assert await Worker(ctx, worker_id="w").run_space(SID)
    assert await _ready_messages(ctx) == []
    async with ctx.db.session() as s:
        refunded = await s.scalar(
            select(func.count())
            .select_from(TranscriptionPayment)
            .where(TranscriptionPayment.refunded_at.is_not(None))
        )
    assert refunded == 2


def _bad_file(kind: str, tmp: Path, speech: Path) -> Path:
    if kind == "missing":
        return tmp / "nope.m4a"
    if kind == "folder":
        (tmp / "a-folder").mkdir()
        return tmp / "a-folder"
    if kind == "empty":
        (tmp / "empty.m4a").write_bytes(b"")
        return tmp / "empty.m4a"
    if kind == "text":
        (tmp / "notes.m4a").write_text("these are notes, not audio\n" * 50)
        return tmp / "notes.m4a"
    if kind == "video only":
        out = tmp / "picture.mp4"
        ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x64:rate=5:duration=2", str(out))
        return out
    return speech  # too long, too big: the limits are set below the speech


BAD = {  # kind → (refusal code, phrase of the message)
    "missing": ("import_missing", "There is no file"),
    "folder": ("import_folder", "is a folder, not an audio file"),
    "empty": ("import_empty", "is empty"),
    "text": ("import_not_audio", "holds no audio stream"),
    "video only": ("import_not_audio", "holds no audio stream"),
    "too long": ("import_too_long", "transcription.import_max_hours"),
    "too big": ("import_too_big", "transcription.import_max_mb"),
}


@pytest.mark.parametrize("kind", list(BAD))
async def test_a_bad_file_is_refused_and_leaves_nothing(
    ctx: Context, no_x: NoX, speech: Path, tmp_path: Path, kind: str
) -> None:
    t = ctx.settings.transcription
    if kind == "too long":
        t.import_max_hours = 5 / 3600  # 5 s; the speech lasts about 12 s
    if kind == "too big":
        t.import_max_mb = 0.01
    path = _bad_file(kind, tmp_path, speech)
    before = await snapshot(ctx)
    out = await import_recording(ctx, None, SID, path)
    code, phrase = BAD[kind]
    assert isinstance(out, Refused) and out.code == code and phrase in out.message, out
    assert str(path) in out.message  # names the file it refuses
    assert await snapshot(ctx) == before  # no row, no job, no folder
    assert not SpaceFiles.of(ctx.spaces_dir, SID).root.exists()


async def test_who_and_which_space(ctx: Context, no_x: NoX, speech: Path) -> None:
    before = await snapshot(ctx)
    member_ = Caller("telegram", "7", is_admin=False)
    out = await import_recording(ctx, member_, SID, speech)
    assert isinstance(out, Refused) and out.code == "not_admin"
    out = await import_recording(ctx, None, "https://evil.com/i/spaces/1IMPORT000001", speech)
    assert isinstance(out, Refused) and "Only X (Twitter) Space links" in out.message
    assert await snapshot(ctx) == before


async def test_completed_space_only_with_force(offline: Context, no_x: NoX, speech: Path) -> None:
    ctx = offline
    files = SpaceFiles.of(ctx.spaces_dir, SID)
    files.root.mkdir(parents=True)
    files.markdown.write_text("# an old transcript\n")
    (files.chunks).mkdir()
    files.chunk_result(0).write_text('{"segments": []}')  # made from other audio
    async with ctx.db.session() as s:
        s.add(completed_space(SID, "Old"))
    before = await snapshot(ctx)
    out = await import_recording(ctx, None, SID, speech)
    assert isinstance(out, Refused) and out.code == "already_transcribed"
    assert "--force" in out.message and await snapshot(ctx) == before
    out = await import_recording(ctx, None, SID, speech, force=True, meta=Metadata(title="New"))
    assert isinstance(out, Imported), out
    assert not files.markdown.exists() and not files.chunks.exists()  # voided with the audio
    assert await Worker(ctx, worker_id="w").run_space(SID)
    row = await _row(ctx)
    assert row is not None and (row.status, row.title) == ("completed", "New")
    assert "weather" in files.markdown.read_text().lower()


async def test_a_space_being_processed_is_refused(ctx: Context, no_x: NoX, speech: Path) -> None:
    await _waiting_space(ctx, "waiting")
    async with ctx.db.session() as s:
        await s.execute(update(ProcessingJob).values(status="processing", locked_by="w2"))
        await s.execute(update(Space).values(status="processing"))
    before = await snapshot(ctx)
    out = await import_recording(ctx, None, SID, speech)
    assert isinstance(out, Refused) and out.code == "being_processed", out
    assert await snapshot(ctx) == before


async def test_a_failed_commit_puts_the_folder_back(
    ctx: Context, no_x: NoX, speech: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database refuses the import after the audio was swapped in: the Space's folder
    is as it was (its old audio back), the staging folder gone, no row changed."""
    from core.service import imports

    await _waiting_space(ctx, "failed")
    files = SpaceFiles.of(ctx.spaces_dir, SID)
    files.root.mkdir(parents=True)
    files.audio.write_bytes(b"old audio")
    before = await snapshot(ctx)

    async def broken(*a: object, **k: object) -> list[object]:
        raise RuntimeError("database went away")

    monkeypatch.setattr(imports, "payers", broken)
    with pytest.raises(RuntimeError):
        await import_recording(ctx, None, SID, speech)
    assert files.audio.read_bytes() == b"old audio"
    assert not (ctx.spaces_dir / ".imports").exists()
    assert await snapshot(ctx) == before


# ---------------------------------------------------------------- spacescribe import


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
async def test_cli_import_on_a_fresh_database(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path, speech: Path
) -> None:
    """``spacescribe import`` on a database nobody migrated: the schema is made, the file
    imported and transcribed in the command's own process (offline backend), X not asked
    (its hosts are unreachable from the test's environment anyway)."""
    if engine == "sqlite":
        url = f"sqlite:///{tmp_path / 'db' / 'spaces.db'}"
    else:
        url = request.getfixturevalue("fresh_pg_url")
    env = _env(
        tmp_path,
        url,
        SPACESCRIBE_TRANSCRIPTION__BACKEND="offline",
        SPACESCRIBE_TRANSCRIPTION__CHUNK_SECONDS="30",
        COLUMNS="300",
    )
    argv = [
        *CLI, "import", f"https://x.com/i/spaces/{SID}", str(speech),
        "--title", "Imported weather", "--creator", "@alice",
        "--started-at", "2026-11-30T18:00+01:00",
    ]  # fmt: skip
    r = await asyncio.to_thread(
        subprocess.run, argv, env=env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "imported" in r.stdout and "new Space row" in r.stdout and "done" in r.stdout
    transcript = tmp_path / "data" / "spaces" / SID / "transcript.md"
    assert "weather" in transcript.read_text().lower()
    from core.db import Database

    db = Database(url)
    try:
        async with db.session() as s:
            row = (await s.execute(select(Space))).scalar_one()
            job = (await s.execute(select(ProcessingJob))).scalar_one()
    finally:
        await db.dispose()
    assert (row.space_id, row.title, row.creator) == (SID, "Imported weather", "alice")
    assert row.space_started_at == datetime(2026, 11, 30, 17, 0)  # stored as UTC
    assert (row.status, job.status) == ("completed", "completed")
    # again: refused (completed), exit 2, nothing changed
    again = await asyncio.to_thread(
        subprocess.run, argv, env=env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 2 and "already transcribed" in again.stderr, again.stderr
