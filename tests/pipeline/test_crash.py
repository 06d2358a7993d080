"""A paid Space's job survives a SIGKILLed worker mid-transcription and completes exactly
once, reusing the audio and the chunks already transcribed (both engines, real processes)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import func, select

from core import accounts, queue
from core.config import Secrets
from core.context import Context
from core.db import Outbox, ProcessingJob, Space, TranscriptionPayment, utcnow
from core.results import Caller
from core.worker import Worker, reap_once
from tests.pipeline.conftest import LocalResolver
from tests.stand_ins.openai_audio import OpenAIAudio, openai_audio

SID = "1CRASHCRASH01"
ROOT = Path(__file__).resolve().parents[2]


async def test_sigkill_mid_job_then_exactly_once(
    ctx: Context, db_url: str, hls_url: str, tmp_path: Path
) -> None:
    async with ctx.db.session() as s:
        sp = Space(
            space_id=SID,
            space_url=f"https://x.com/i/spaces/{SID}",
            title="t",
            first_requested_at=utcnow(),
        )
        s.add(sp)
        await s.flush()
        u = await accounts.get_or_create_user(s, "0x" + "34" * 20)
        a = await accounts.get_or_create_account(s, Caller("telegram", "77"))
        await accounts.link_account(s, a.id, u.id)
        s.add(
            TranscriptionPayment(
                user_id=u.id, space_id=sp.id, amount_usdc="0.2", payment_verified=True
            )
        )
        await queue.enqueue(s, sp.id)
        pk = sp.id
    # the victim's second chunk never comes back, so it is mid-job when killed
    async with openai_audio(OpenAIAudio(faults=["ok", "hang"])) as stt:
        data = ctx.settings.resolve_path(ctx.settings.data_dir)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.pipeline.worker_proc",
                db_url,
                str(data),
                hls_url,
                stt.url,
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        first_chunk = ctx.spaces_dir / SID / "chunks" / "0000.json"
        try:
            deadline = time.monotonic() + 90
            while not first_chunk.exists():
                assert proc.poll() is None and time.monotonic() < deadline, "no progress"
                await asyncio.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        stt.faults.clear()  # the victim may have died before its hanging request was made
        calls_before = len(stt.requests)
        assert not (ctx.spaces_dir / SID / "transcript.md").exists()

        ctx.settings.queue.lease_seconds = 1
        await asyncio.sleep(1.2)
        assert await reap_once(ctx) == 1
        ctx.settings.transcription.backend = "openai"
        ctx.settings.transcription.chunk_seconds = 4
        ctx.settings.transcription.overlap_seconds = 1
        ctx.secrets = Secrets.model_construct(
            openai_api_key=SecretStr("sk-test"), openai_base_url=stt.url
        )
        ctx.wiring.resolver = LocalResolver(hls_url)
        w = Worker(ctx, worker_id="rescuer")
        assert await w.run_one()
        assert not await w.run_one()
        n_chunks = len(list((ctx.spaces_dir / SID / "chunks").glob("*.json")))
        # the finished chunk was not transcribed again (the killed one may have been)
        assert len(stt.requests) - calls_before <= n_chunks - 1
    async with ctx.db.session() as s:
        job = (await s.execute(select(ProcessingJob))).scalar_one()
        sp2 = await s.get(Space, pk)
        msgs = await s.scalar(select(func.count()).select_from(Outbox))
    assert (job.status, sp2.status if sp2 else None) == ("completed", "completed")
    assert msgs == 1  # delivered to the payer exactly once
    assert (ctx.spaces_dir / SID / "transcript.md").read_text().startswith("# Weekly")
