"""The pipeline through real peers: yt-dlp ← local HLS, openai client → local stand-in,
offline Whisper on espeak-ng speech; the worker and queue around it, on both engines."""

from __future__ import annotations

import asyncio
import errno
import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import delete, select, update

from core import queue
from core.config import Secrets
from core.context import Context
from core.db import Credit, Outbox, ProcessingJob, Space, utcnow
from core.pipeline import media, storage
from core.pipeline.errors import PipelineError, SpaceUnavailable
from core.pipeline.media import SpaceMeta
from core.pipeline.run import Checked, check_space, process_space
from core.pipeline.transcribe.offline import OfflineTranscriber
from core.pipeline.xspaces import SpaceNotReady
from core.results import Refused
from core.worker import Worker
from tests.pipeline.conftest import LocalResolver
from tests.stand_ins.openai_audio import OpenAIAudio, openai_audio

SID = "1PIPELINE0001"
ROOT = Path(__file__).resolve().parents[2]


def _openai(ctx: Context, url: str, model: str = "whisper-1") -> None:
    ctx.secrets = Secrets.model_construct(
        openai_api_key=SecretStr("sk-test-stand-in"), openai_base_url=url
    )
    ctx.settings.transcription.backend = "openai"
    ctx.settings.transcription.model = model
    ctx.settings.transcription.chunk_seconds = 4
    ctx.settings.transcription.overlap_seconds = 1


async def _queued_space(ctx: Context) -> int:
    async with ctx.db.session() as s:
        sp = Space(
            space_id=SID,
            space_url=f"https://x.com/i/spaces/{SID}",
            title=f"X Space {SID}",
            first_requested_at=utcnow(),
        )
        s.add(sp)
        await s.flush()
        await queue.enqueue(s, sp.id)
        return sp.id


async def test_offline_backend_on_real_speech(speech: Path, tmp_path: Path) -> None:
    from core.pipeline.chunks import Chunk, extract

    wav = await extract(speech, Chunk(0, 0, 12, 0, 12), "wav", tmp_path / "c.wav")
    segs = await OfflineTranscriber().transcribe(wav, 12)
    words = " ".join(s.text for s in segs).split()
    assert segs and segs[0].start < 2
    assert {"weather", "welcome", "morning", "weekly"} <= {w.strip(".,").lower() for w in words}


async def test_worker_runs_a_space_end_to_end(ctx: Context, resolver: LocalResolver) -> None:
    async with openai_audio() as stt:
        _openai(ctx, stt.url)
        pk = await _queued_space(ctx)
        assert await Worker(ctx, worker_id="w").run_one()
    async with ctx.db.session() as s:
        sp = await s.get(Space, pk)
        job = (await s.execute(select(ProcessingJob))).scalar_one()
    assert sp is not None and (sp.status, job.status) == ("completed", "completed")
    assert sp.title == "Weekly weather space" and sp.creator == "alice"
    assert sp.audio_file_path == f"data/spaces/{SID}/audio.m4a"
    assert sp.transcript_file_path == f"data/spaces/{SID}/transcript.md"
    assert 10 <= (sp.audio_duration_seconds or 0) <= 40 and (sp.audio_size_mb or 0) > 0
    assert json.loads(sp.participants or "[]") == ["alice"]
    root = ctx.spaces_dir / SID
    md = (root / "transcript.md").read_text()
    assert md.startswith("# Weekly weather space") and "chunk 0 says hello" in md
    assert sp.transcript_length == len(md)
    doc = json.loads((root / "transcript.json").read_text())
    starts = [s["start"] for s in doc["segments"]]
    assert starts == sorted(starts) and len(doc["segments"]) == len(stt.requests)
    assert all(
        r["auth"] == "Bearer sk-test-stand-in" and r["format"] == "verbose_json"
        for r in stt.requests
    )
    assert not list(root.glob("**/*.tmp")) and not list(root.glob(".download*"))


async def test_diarized_model_labels_speakers(ctx: Context, resolver: LocalResolver) -> None:
    async with openai_audio() as stt:
        _openai(ctx, stt.url, model="gpt-4o-transcribe-diarize")
        pk = await _queued_space(ctx)
        await process_space(ctx, pk)
    doc = json.loads((ctx.spaces_dir / SID / "transcript.json").read_text())
    speakers = {s["speaker"] for s in doc["segments"]}
    assert speakers and all(sp.startswith("Speaker ") for sp in speakers)
    assert {p["speaker"] for p in doc["speaker_profiles"]} == speakers


async def test_rate_limits_are_retried_and_results_resume(
    ctx: Context, resolver: LocalResolver
) -> None:
    stand_in = OpenAIAudio(faults=["429", "429"])
    async with openai_audio(stand_in) as stt:
        _openai(ctx, stt.url)
        pk = await _queued_space(ctx)
        await process_space(ctx, pk)
        first = len(stt.requests)
        assert first >= 4  # two 429s retried by the client (Retry-After honoured)
        (ctx.spaces_dir / SID / "transcript.md").unlink()
        await process_space(ctx, pk)  # chunk results and audio reused: no new STT call
        assert len(stt.requests) == first
    assert resolver.calls == [SID]  # the audio is held: X is not asked again


async def test_stt_500_fails_retryably_and_keeps_finished_chunks(
    ctx: Context, resolver: LocalResolver
) -> None:
    stand_in = OpenAIAudio(faults=["500"] * 20)
    async with openai_audio(stand_in) as stt:
        _openai(ctx, stt.url)
        ctx.settings.transcription.concurrency = 1
        pk = await _queued_space(ctx)
        with pytest.raises(PipelineError) as err:
            await process_space(ctx, pk)
    assert err.value.retryable and "speech-to-text failed" in str(err.value)
    assert not (ctx.spaces_dir / SID / "transcript.md").exists()


class _Gone:
    async def resolve(self, space_id: str) -> SpaceMeta:
        raise SpaceUnavailable("This Space is private.", retryable=False)


async def test_download_404_and_unavailable_spaces(ctx: Context, hls_url: str) -> None:
    pk = await _queued_space(ctx)
    ctx.wiring.resolver = LocalResolver(hls_url, path="/missing.m3u8")
    with pytest.raises(PipelineError) as err:
        await process_space(ctx, pk)
    assert err.value.retryable and "download" in str(err.value)
    assert not (ctx.spaces_dir / SID / "audio.m4a").exists()
    async with ctx.db.session() as s:  # not held yet: X is asked before payment
        await s.execute(delete(ProcessingJob))
        await s.execute(update(Space).values(status="failed"))
    ctx.wiring.resolver = LocalResolver(hls_url, live=True)
    live = await check_space(ctx, SID)  # a live Space is accepted, told it waits
    assert isinstance(live, Checked) and live.note and "when it ends" in live.note
    with pytest.raises(SpaceNotReady, match="is live"):
        await process_space(ctx, pk)
    ctx.wiring.resolver = _Gone()
    gone = await check_space(ctx, SID)
    assert isinstance(gone, Refused) and gone.code == "space_unavailable"
    assert "private" in gone.message
    ctx.wiring.resolver = LocalResolver(hls_url)
    meta = await check_space(ctx, SID)
    assert isinstance(meta, Checked) and meta.title == "Weekly weather space"


async def test_disk_full_leaves_no_half_written_file(
    ctx: Context, resolver: LocalResolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = storage.os.replace

    def full(src: str, dst: str) -> None:
        if str(dst).endswith("transcript.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(src, dst)

    async with openai_audio() as stt:
        _openai(ctx, stt.url)
        pk = await _queued_space(ctx)
        monkeypatch.setattr(storage.os, "replace", full)
        with pytest.raises(PipelineError, match="No space left"):
            await process_space(ctx, pk)
    root = ctx.spaces_dir / SID
    assert not (root / "transcript.json").exists() and not (root / "transcript.md").exists()
    assert not list(root.glob("**/.transcript*"))


async def test_a_restarted_job_clears_what_a_killed_attempt_left(
    ctx: Context, resolver: LocalResolver
) -> None:
    """A SIGKILL between a temporary file and its rename leaves the temporary behind (the
    download directory, an atomic write, a chunk being cut); the next attempt, the only
    holder of the job, removes them, even when the finished files are all there."""
    root = ctx.spaces_dir / SID
    left = [
        root / ".download-k1ll3d" / "download.mp4.part",
        root / ".transcript.md.k1ll3d.tmp",
        root / "chunks" / ".0001.json.k1ll3d.tmp",
        root / "chunks" / "0002.m4a.part",
        root / "chunks" / "0002.m4a",
    ]
    async with openai_audio() as stt:
        _openai(ctx, stt.url)
        pk = await _queued_space(ctx)
        await process_space(ctx, pk)
        for path in left:
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(b"half")
        await process_space(ctx, pk)
    assert [p.name for p in left if p.exists()] == []
    assert not list(root.glob(".download*"))
    assert (root / "transcript.md").read_text().startswith("# Weekly")


async def test_failed_job_tells_payers_through_the_outbox(ctx: Context, hls_url: str) -> None:
    from core import accounts
    from core.db import TranscriptionPayment
    from core.results import Caller

    pk = await _queued_space(ctx)
    async with ctx.db.session() as s:
        u = await accounts.get_or_create_user(s, "0x" + "12" * 20)
        a = await accounts.get_or_create_account(s, Caller("discord", "55"))
        await accounts.link_account(s, a.id, u.id)
        s.add(
            TranscriptionPayment(
                user_id=u.id, space_id=pk, amount_usdc="0.2", payment_verified=True
            )
        )
    ctx.wiring.resolver = LocalResolver(hls_url, path="/missing.m3u8")
    ctx.settings.queue.backoff_base_seconds = 0
    w = Worker(ctx, worker_id="w")
    for _ in range(3):
        assert await w.run_one()
    async with ctx.db.session() as s:
        sp = await s.get(Space, pk)
        kinds = sorted((await s.execute(select(Outbox.kind))).scalars())
        credits = (
            await s.execute(select(Credit.user_id, Credit.amount_units, Credit.reason))
        ).all()
        refunded = (
            await s.execute(select(Outbox.payload).where(Outbox.kind == "refunded"))
        ).scalar_one()
    assert sp is not None and sp.status == "failed" and "download" in (sp.error_message or "")
    assert kinds == ["job_failed", "refunded"]
    # the payer's 0.2 USDC is back as account credit, once, and the message says so
    assert [tuple(c) for c in credits] == [(u.id, 200_000, "refund")]
    assert json.loads(refunded)["amount"] == "0.2"


def test_cli_transcribes_a_recording_offline(speech: Path, tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "SPACESCRIBE_DATA_DIR": str(tmp_path / "data"),
        "HOME": str(tmp_path),
    }
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "transcribe",
            str(speech),
            "--backend",
            "offline",
            "--model",
            "tiny.en",
            "--language",
            "en",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr + r.stdout
    md = next((tmp_path / "data" / "spaces").glob("L*/transcript.md")).read_text()
    assert md.startswith("# speech") and "backend offline" in r.stdout
    assert "- Speakers: not detected" in md and "Speaker:" not in md
    assert re.search(r"^\[00:00:0\d\] Good morning,? and welcome to the weekly space", md, re.M), md
    assert "overview (extractive)" in r.stdout and "## Overview" in md
    root = next((tmp_path / "data" / "spaces").glob("L*"))
    assert (root / "transcript.srt").read_text().startswith("1\n00:00:")
    assert (root / "transcript.vtt").read_text().startswith("WEBVTT")


async def test_a_failed_chunk_stops_the_attempts_other_chunks(
    ctx: Context, resolver: LocalResolver
) -> None:
    """When one chunk fails, the attempt's other uploads are cancelled at once (and clean
    up), instead of running on beside the retry."""
    import asyncio

    from core.pipeline import run as pipeline
    from core.pipeline.transcribe.base import Segment

    started: list[int] = []
    cancelled: list[int] = []

    class FailsSecond:
        name, chunk_format, diarizes = "test", "wav", False

        async def transcribe(self, audio: Path, duration: float) -> list[Segment]:
            n = int(audio.stem)
            started.append(n)
            if n == 1:
                await asyncio.sleep(0.2)
                raise PipelineError("speech-to-text failed: 500", retryable=True)
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.append(n)
                raise
            return []

    ctx.settings.transcription.chunk_seconds = 4
    ctx.settings.transcription.overlap_seconds = 1
    ctx.settings.transcription.concurrency = 3
    real = pipeline.make_transcriber
    pipeline.make_transcriber = lambda *_a: FailsSecond()  # type: ignore[assignment]
    try:
        pk = await _queued_space(ctx)
        with pytest.raises(PipelineError):
            await asyncio.wait_for(process_space(ctx, pk), 20)
    finally:
        pipeline.make_transcriber = real  # type: ignore[assignment]
    assert 1 in started and sorted(cancelled) == sorted(n for n in started if n != 1)
    assert cancelled, "another chunk was running when the second one failed"
    assert not [p for p in (ctx.spaces_dir / SID / "chunks").iterdir() if p.suffix == ".wav"]


async def test_two_attempts_downloading_at_once_keep_their_own_files(
    ctx: Context, resolver: LocalResolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker too starved to renew its lease is still downloading when the job's next
    attempt starts: the second attempt must not delete the first one's files (it did when
    both used one ``.download`` directory), and both end with the same audio in place."""
    meta = await resolver.resolve(SID)
    target = ctx.spaces_dir / SID / "audio.m4a"
    real = media._download_sync
    first_has_its_file = threading.Event()
    second_done = threading.Event()

    def slow_first(url: str, work: Path, cookies: str) -> Path:
        got = real(url, work, cookies)
        if not first_has_its_file.is_set():
            first_has_its_file.set()
            assert second_done.wait(60), "the second attempt never finished"
        return got

    monkeypatch.setattr(media, "_download_sync", slow_first)
    first = asyncio.create_task(media.download(meta, target))
    assert await asyncio.to_thread(first_has_its_file.wait, 60)
    assert await media.download(meta, target) == target  # the next attempt, meanwhile
    second_done.set()
    assert await first == target and target.stat().st_size > 0
    assert not list(target.parent.glob(".download*"))
