"""Worker processes for the drills, forked from one pre-imported server ("zygote").

Starting a worker with ``python -m ...`` costs seconds of imports on these 2-core machines;
multiprocessing's fork server imports the worker module (and yt-dlp, the openai client,
SQLAlchemy) once and forks each worker from it. Every worker is still a real, separate
process (its own pid, event loop, database connections and ffmpeg children) that a drill
can SIGKILL.
"""

from __future__ import annotations

import multiprocessing
import signal
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess

from tests.pipeline import worker_proc

PRELOAD = [
    "tests.pipeline.worker_proc",
    "core.pipeline.run",
    "core.chat.index",
    "core.pipeline.transcribe.openai_stt",
    "openai",
    "yt_dlp",
    "asyncpg",
]


def fork_server() -> ForkServerContext:
    """The fork server context; its server imports :data:`PRELOAD` when first used."""
    mp = multiprocessing.get_context("forkserver")
    mp.set_forkserver_preload(PRELOAD)
    return mp


class Crew:
    """Pipeline workers (``tests.pipeline.worker_proc``) started and killed by name."""

    def __init__(self, args: tuple[str, ...], **options: object) -> None:
        self.mp = fork_server()
        self.args, self.options = args, options
        self.live: dict[str, BaseProcess] = {}
        self.started = 0

    def start(self) -> str:
        self.started += 1
        name = f"drill-worker-{self.started}"
        p = self.mp.Process(
            target=worker_proc.run,
            args=self.args,
            kwargs={**self.options, "worker_id": name},
            name=name,
            daemon=True,
        )
        p.start()
        self.live[name] = p
        return name

    def kill(self, name: str) -> None:
        """SIGKILL the worker and wait for it to be gone."""
        p = self.live.pop(name)
        p.kill()
        p.join()
        assert p.exitcode == -signal.SIGKILL, (name, p.exitcode)

    def dead(self) -> dict[str, int | None]:
        """Workers that ended on their own (they never should): name → exit code."""
        return {n: p.exitcode for n, p in self.live.items() if not p.is_alive()}

    def stop(self) -> None:
        """End the remaining (idle) workers."""
        for p in self.live.values():
            p.terminate()
        for p in self.live.values():
            p.join(10)
        self.live.clear()
