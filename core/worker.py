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
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from sqlalchemy import select

from core import metrics, payers, queue
from core.context import Context
from core.db import Space
from core.logging import get_logger, log_context, redact
from core.pipeline.errors import SpaceUnavailable
from core.pipeline.xspaces import Outcome, SpaceNotReady
from core.refunds import settle_failed_space
from core.statuses import JobStatus

log = get_logger("spacescribe.worker")

Processor = Callable[[Context, int], Coroutine[Any, Any, None]]


def default_processor() -> Processor:
    """The pipeline; what follows a completed Space (the chat index, enrichment) is on
    ``ctx.wiring.on_completed``, filled by the wiring."""
    from core.pipeline.run import process_space

    async def run(ctx: Context, space_pk: int) -> None:
        await process_space(ctx, space_pk)

    return run


def _gave_up(state: Outcome) -> str:
    if state is Outcome.SCHEDULED:
        return "This Space never started: there is nothing to transcribe."
    return "This Space ended without a replay that could be downloaded."


async def reap_once(ctx: Context) -> int:
    """Queue again jobs of dead workers; fail (and refund) those with no attempt left."""
    async with ctx.db.session() as s:
        n = await queue.reap(s, ctx.settings.queue.lease_seconds)
        for space_pk in await queue.fail_exhausted(s):
            await settle_failed_space(s, ctx.settings, space_pk)
    if n:
        log.warning("re-queued jobs of lost workers", jobs=n)
    return n


@dataclass
class _Running:
    job: queue.ClaimedJob
    task: asyncio.Task[None]
    started: float
    lost: bool = False  # its lease went to another worker: abandoned, never finished here


class Worker:
    """Runs up to ``queue.concurrency`` jobs at once.

    Free slots are filled by one :func:`queue.claim_many`; jobs that end together are
    completed in one transaction; one heartbeat renews every held lease.
    """

    name = "worker"

    def __init__(
        self,
        ctx: Context,
        processor: Processor | None = None,
        worker_id: str | None = None,
        concurrency: int | None = None,
    ) -> None:
        self.ctx = ctx
        self.processor = processor or default_processor()
        self.worker_id = worker_id or ctx.instance
        self.slots = concurrency or ctx.settings.queue.concurrency
        self._running: dict[int, _Running] = {}
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="spacescribe-worker")

    async def stop(self) -> None:
        """Stop claiming; the jobs already running are finished first."""
        self._stop.set()
        self._wake.set()
        if self._task:
            await self._task

    async def run(self, until_idle: bool = False) -> None:
        """Work until stopped, or with ``until_idle`` until nothing is claimable or running."""
        poll = self.ctx.settings.queue.poll_seconds
        beat = asyncio.create_task(self._renew_leases())
        try:
            while not (self._stop.is_set() and not self._running):
                claimed = 0
                if not self._stop.is_set():
                    try:
                        claimed = await self._claim(self.slots - len(self._running))
                    except Exception:
                        log.exception("claim failed; retrying")
                        claimed = -1
                if not self._running:
                    if until_idle and claimed == 0:
                        return
                    self._wake.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), poll)
                    continue
                # a slot is free: also look again on wake-up or after a poll interval
                free = len(self._running) < self.slots and not self._stop.is_set()
                await self._wait_for_an_end(poll if free else None, wakeable=free)
                try:
                    await self._finish_ended()
                except Exception:
                    log.exception("recording finished jobs failed; their leases will expire")
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def run_one(self) -> bool:
        """Claim and process one job. False if the queue had nothing to do."""
        if not await self._claim(1):
            return False
        await self._run_claimed()
        return True

    async def run_space(self, space_id: str) -> bool:
        """Claim and process the queued job of one Space (``spacescribe import`` runs the
        job it queued). False if there was none to claim (e.g. a running worker took it)."""
        async with self.ctx.db.session() as s:
            pk = await s.scalar(select(Space.id).where(Space.space_id == space_id))
            job = await queue.claim_space(s, self.worker_id, pk) if pk is not None else None
        if job is None:
            return False
        self._start(job, time.monotonic())
        log.info("job claimed", job=job.id, space_pk=job.space_pk, attempt=job.retry_count + 1)
        await self._run_claimed()
        return True

    async def _run_claimed(self) -> None:
        beat = asyncio.create_task(self._renew_leases())
        try:
            while self._running:
                await self._wait_for_an_end(None, wakeable=False)
                await self._finish_ended()
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _claim(self, free: int) -> int:
        if free < 1:
            return 0
        async with self.ctx.db.session() as s:
            jobs = await queue.claim_many(s, self.worker_id, free)
        now = time.monotonic()
        for job in jobs:
            self._start(job, now)
        # one line per claim statement: a line per job costs as much CPU as its claim
        if len(jobs) == 1:
            job = jobs[0]
            log.info("job claimed", job=job.id, space_pk=job.space_pk, attempt=job.retry_count + 1)
        elif jobs:
            log.info(
                "jobs claimed",
                jobs=[j.id for j in jobs],
                space_pks=[j.space_pk for j in jobs],
                attempts=[j.retry_count + 1 for j in jobs],
            )
        return len(jobs)

    def _start(self, job: queue.ClaimedJob, now: float) -> None:
        stale = self._running.pop(job.id, None)
        if stale is not None:  # reaped while we ran it, and now ours again: start afresh
            stale.task.cancel()
        task = asyncio.create_task(self._process(job))
        self._running[job.id] = _Running(job, task, now)

    async def _process(self, job: queue.ClaimedJob) -> None:
        with log_context(job=job.id, space_pk=job.space_pk):  # on every pipeline log line
            await self.processor(self.ctx, job.space_pk)

    async def _wait_for_an_end(self, timeout: float | None, wakeable: bool) -> None:
        waits: set[asyncio.Future[Any]] = {r.task for r in self._running.values()}
        waker = None
        if wakeable:
            self._wake.clear()
            waker = asyncio.ensure_future(self._wake.wait())
            waits.add(waker)
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if waker is not None:
                waker.cancel()

    async def _finish_ended(self) -> None:
        """Record every job whose processor has returned or raised: completions together."""
        ended = [r for r in self._running.values() if r.task.done()]
        for r in ended:
            del self._running[r.job.id]
        done: list[_Running] = []
        for r in ended:
            if r.lost or r.task.cancelled():
                log.warning("lease lost; job abandoned to its new owner", job=r.job.id)
            elif r.task.exception() is None:
                done.append(r)
            else:
                await self._fail(r, r.task.exception())
        if not done:
            return
        async with self.ctx.db.session() as s:
            completed = await queue.complete_many(s, [r.job.id for r in done], self.worker_id)
            await payers.transcript_ready(s, list(completed.values()))
        now = time.monotonic()
        for r in done:
            status = JobStatus.COMPLETED if r.job.id in completed else "lost"
            metrics.JOB_SECONDS.labels(status=status).observe(now - r.started)
        if len(done) == 1:
            r = done[0]
            status = JobStatus.COMPLETED if r.job.id in completed else "lost"
            log.info(
                "job completed", job=r.job.id, seconds=round(now - r.started, 1), status=status
            )
        else:
            log.info(
                "jobs completed",
                jobs=[r.job.id for r in done if r.job.id in completed],
                lost=[r.job.id for r in done if r.job.id not in completed],
                seconds=[round(now - r.started, 1) for r in done],
            )

    async def _fail(self, r: _Running, error: BaseException | None) -> None:
        q = self.ctx.settings.queue
        if isinstance(error, SpaceNotReady):
            waited = await self._wait(r, error)
            if waited is not None:
                return
            error = SpaceUnavailable(_gave_up(error.outcome), retryable=False)
        retryable = bool(getattr(error, "retryable", True))
        async with self.ctx.db.session() as s:
            status = (
                await queue.fail(
                    s,
                    r.job.id,
                    self.worker_id,
                    redact(str(error)) or type(error).__name__,  # stored and told to payers
                    retryable,
                    q.backoff_base_seconds,
                    q.backoff_max_seconds,
                )
                or "lost"
            )
            if status == JobStatus.FAILED:
                await settle_failed_space(s, self.ctx.settings, r.job.space_pk)
        metrics.JOB_SECONDS.labels(status=status).observe(time.monotonic() - r.started)
        log.warning("job failed", job=r.job.id, status=status, error=str(error)[:300])

    async def _wait(self, r: _Running, error: SpaceNotReady) -> float | None:
        """A live / scheduled / not-yet-downloadable Space: the job waits (no attempt
        counted), polling X with backoff, until ``live_wait_hours`` after the Space's
        (scheduled) start. Returns the delay, or None once that time is over."""
        t = self.ctx.settings.transcription
        now = time.time()
        since = error.since
        if since is None:
            async with self.ctx.db.session() as s:
                space = await s.get(Space, r.job.space_pk)
                first = space.first_requested_at if space is not None else None
            since = first.replace(tzinfo=UTC).timestamp() if first else now
        if now - since > t.live_wait_hours * 3600:
            return None
        # backoff grows with the time waited (or left before a scheduled start)
        delay = min(t.live_poll_max_seconds, max(t.live_poll_seconds, abs(now - since) / 4))
        async with self.ctx.db.session() as s:
            held = await queue.defer(s, r.job.id, self.worker_id, str(error), delay)
        metrics.JOB_SECONDS.labels(status="waiting").observe(time.monotonic() - r.started)
        log.info("space not ready; waiting", job=r.job.id, state=error.outcome, delay=delay)
        return delay if held else 0.0

    async def _renew_leases(self) -> None:
        """One heartbeat for every held job; a job whose lease was lost is cancelled."""
        interval = max(1.0, self.ctx.settings.queue.lease_seconds / 4)
        while True:
            await asyncio.sleep(interval)
            held = [i for i, r in self._running.items() if not r.lost]
            if not held:
                continue
            try:
                async with self.ctx.db.session() as s:
                    alive = await queue.heartbeat_many(s, held, self.worker_id)
            except Exception:
                log.exception("heartbeat failed; will retry")
                continue
            for job_id in held:
                r = self._running.get(job_id)
                if job_id not in alive and r is not None and not r.task.done():
                    r.lost = True
                    r.task.cancel()
