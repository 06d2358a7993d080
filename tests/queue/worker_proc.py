"""A real worker process for crash tests: `python -m tests.queue.worker_proc <db_url> <data>`.

Its processor marks the Space with a file, then works slowly, so the test can SIGKILL it
mid-job.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from core.config import Secrets
from core.context import Context
from core.db import Database
from core.worker import Worker
from tests.conftest import make_settings


async def main(db_url: str, data: str) -> None:
    settings = make_settings(db_url, Path(data), queue={"lease_seconds": 5, "poll_seconds": 0.1})
    ctx = Context(settings, Secrets.model_construct(), Database(db_url), instance="victim")

    async def slow(ctx: Context, space_pk: int) -> None:
        (Path(data) / f"started-{space_pk}").write_text("x")
        await asyncio.sleep(600)

    worker = Worker(ctx, slow)
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
