"""Prometheus metrics: counters the core increments, gauges read from the database at scrape.

One registry for the process. Counters and histograms are incremented where things happen
(payments, jobs, STT, chat); queue depth and outbox backlog are read from the database when
``/metrics`` is scraped, so several processes never disagree about them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select

from core.context import Context
from core.db import Outbox, ProcessingJob
from core.statuses import JobStatus, OutboxStatus

REGISTRY = CollectorRegistry(auto_describe=True)

PAYMENTS = Counter(
    "spacescribe_payments_total",
    "Payments seen, by outcome (verified / rejected) and reason code.",
    ["outcome", "reason"],
    registry=REGISTRY,
)
JOB_SECONDS = Histogram(
    "spacescribe_job_duration_seconds",
    "Processing job durations, by final status.",
    ["status"],
    buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 2400, 3600, 7200),
    registry=REGISTRY,
)
STT_MINUTES = Counter(
    "spacescribe_stt_minutes_total",
    "Audio minutes sent to speech-to-text, by backend.",
    ["backend"],
    registry=REGISTRY,
)
CHAT_TOKENS = Counter(
    "spacescribe_chat_tokens_total",
    "Chat model tokens used, by model.",
    ["model"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "spacescribe_queue_jobs", "processing_queue rows by status.", ["status"], registry=REGISTRY
)
OUTBOX_BACKLOG = Gauge(
    "spacescribe_outbox_messages", "Outbox rows by status.", ["status"], registry=REGISTRY
)
X_REFUSES_US = Gauge(
    "spacescribe_x_refuses_us",
    "1 while X refuses this server (set transcription.cookies_file), else 0.",
    registry=REGISTRY,
)
QUEUE_STATUSES = tuple(JobStatus)
OUTBOX_STATUSES = tuple(OutboxStatus)


def payment(outcome: str, reason: str = "ok") -> None:
    PAYMENTS.labels(outcome=outcome, reason=reason).inc()


async def refresh_gauges(ctx: Context) -> None:
    async with ctx.db.read() as s:
        q = dict(
            (
                await s.execute(
                    select(ProcessingJob.status, func.count()).group_by(ProcessingJob.status)
                )
            )
            .tuples()
            .all()
        )
        o = dict(
            (await s.execute(select(Outbox.status, func.count()).group_by(Outbox.status)))
            .tuples()
            .all()
        )
    for st in set(QUEUE_STATUSES) | set(q):
        QUEUE_DEPTH.labels(status=st).set(q.get(st, 0))
    for st in set(OUTBOX_STATUSES) | set(o):
        OUTBOX_BACKLOG.labels(status=st).set(o.get(st, 0))
    from core.health import x_refusal

    X_REFUSES_US.set(1 if await x_refusal(ctx) else 0)


async def exposition(ctx: Context) -> bytes:
    await refresh_gauges(ctx)
    return generate_latest(REGISTRY)
