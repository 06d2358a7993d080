"""A real worker process running the real pipeline against local peers, to be SIGKILLed.

`python -m tests.pipeline.worker_proc <db_url> <data_dir> <hls_base> <openai_base_url>`;
the SIGKILL drill forks it through a pre-imported server instead (:func:`run`).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from pydantic import SecretStr

from bot.wiring import wire
from core.config import Secrets
from core.context import Context
from core.db import Database
from core.worker import Worker
from tests.conftest import make_settings
from tests.pipeline.conftest import LocalResolver


async def main(
    db_url: str,
    data: str,
    hls_base: str,
    openai_url: str,
    *,
    worker_id: str = "victim",
    lease_seconds: int = 5,
    concurrency: int = 1,
) -> None:
    settings = make_settings(
        db_url,
        Path(data),
        queue={"lease_seconds": 5, "poll_seconds": 0.1, "concurrency": concurrency},
        transcription={
            "backend": "openai",
            "model": "whisper-1",
            "chunk_seconds": 4,
            "overlap_seconds": 1,
            "concurrency": 1,
            # whole chunks uploaded: the drills time kills against uploads, not the VAD's CPU
            "vad": False,
        },
    )
    settings.queue.lease_seconds = lease_seconds  # drills go below the operator minimum
    secrets = Secrets.model_construct(
        openai_api_key=SecretStr("sk-test"), openai_base_url=openai_url
    )
    ctx = wire(Context(settings, secrets, Database(db_url), instance=worker_id))  # as a worker
    ctx.wiring.resolver = LocalResolver(hls_base)
    await Worker(ctx).run()


def run(*args: str, **options: object) -> None:
    """Entry point for a forked process (multiprocessing target)."""
    asyncio.run(main(*args, **options))  # type: ignore[arg-type]


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
