"""The processing worker: claims jobs, runs the pipeline with a renewed lease, records the end.

Several workers (processes or machines) share one queue: claims are atomic, leases expire
when a worker dies (:func:`reap_once` puts its job back), and every end state is written
conditionally on the lease so a job completes — and its payers are notified — once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any

from core import metrics, queue
from core.context import Context
from core.logging import get_logger
from core.refunds import settle_failed_space

log = get_logger("spacescribe.worker")

Processor = Callable[[Context, int], Coroutine[Any, Any, None]]


def default_processor() -> Processor:
    from core.chat.index import register as index_for_chat
    from core.pipeline.run import process_space

    index_for_chat()  # completed Spaces get their chat passage index

    async def run(ctx: Context, space_pk: int) -> None:
        await process_space(ctx, space_pk)

    return run


async def reap_once(ctx: Context) -> int:
    """Queue again jobs of dead workers; fail (and refund) those with no attempt left."""
    async with ctx.db.session() as s:
        n = await queue.reap(s, ctx.settings.queue.lease_seconds)
        for space_pk in await queue.fail_exhausted(s):
            await settle_failed_space(s, ctx.settings, space_pk)
    if n:
        log.warning("re-queued jobs of lost workers", jobs=n)
    return n


class Worker:
    name = "worker"

    def __init__(
        self, ctx: Context, processor: Processor | None = None, worker_id: str | None = None
    ) -> None:
        self.ctx = ctx
        self.processor = processor or default_processor()
        self.worker_id = worker_id or ctx.instance
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Look for work now (e.g. after an enqueue in this process)."""
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="spacescribe-worker")

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._task:
            await self._task

    async def run(self) -> None:
        q = self.ctx.settings.queue
        while not self._stop.is_set():
            try:
                worked = await self.run_one()
            except Exception:
                log.exception("worker loop error; retrying")
                worked = False
            if not worked:
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), q.poll_seconds)

    async def run_one(self) -> bool:
        """Claim and process one job. False if the queue had nothing to do."""
        async with self.ctx.db.session() as s:
            job = await queue.claim(s, self.worker_id)
        if job is None:
            return False
        log.info("job claimed", job=job.id, space_pk=job.space_pk, attempt=job.retry_count + 1)
        started = time.monotonic()
        lost = asyncio.Event()
        beat = asyncio.create_task(self._heartbeat(job.id, lost))
        work = asyncio.create_task(self.processor(self.ctx, job.space_pk))
        waiter = asyncio.create_task(lost.wait())
        try:
            await asyncio.wait({work, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if lost.is_set() and not work.done():
                work.cancel()
                log.warning("lease lost; job abandoned to its new owner", job=job.id)
                with contextlib.suppress(BaseException):
                    await work
                return True
            error = work.exception()
        finally:
            for t in (beat, waiter):
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        await self._finish(job, error, time.monotonic() - started)
        return True

    async def _finish(
        self, job: queue.ClaimedJob, error: BaseException | None, took: float
    ) -> None:
        q = self.ctx.settings.queue
        async with self.ctx.db.session() as s:
            if error is None:
                ok = await queue.complete(s, job.id, self.worker_id)
                status = "completed" if ok else "lost"
            else:
                retryable = bool(getattr(error, "retryable", True))
                status = (
                    await queue.fail(
                        s,
                        job.id,
                        self.worker_id,
                        str(error) or type(error).__name__,
                        retryable,
                        q.backoff_base_seconds,
                        q.backoff_max_seconds,
                    )
                    or "lost"
                )
                if status == "failed":
                    await settle_failed_space(s, self.ctx.settings, job.space_pk)
        metrics.JOB_SECONDS.labels(status=status).observe(took)
        if error is None:
            log.info("job completed", job=job.id, seconds=round(took, 1), status=status)
        else:
            log.warning("job failed", job=job.id, status=status, error=str(error)[:300])

    async def _heartbeat(self, job_id: int, lost: asyncio.Event) -> None:
        interval = max(1.0, self.ctx.settings.queue.lease_seconds / 4)
        while True:
            await asyncio.sleep(interval)
            try:
                async with self.ctx.db.session() as s:
                    alive = await queue.heartbeat(s, job_id, self.worker_id)
            except Exception:
                log.exception("heartbeat failed; will retry")
                continue
            if not alive:
                lost.set()
                return
