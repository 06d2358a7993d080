"""The payment jobs the scheduler runs: recovery (also at start), the transfer watcher and
invoice expiry. Each run is independent and idempotent; a failure is logged and retried at
the next tick."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from core.context import Context
from core.logging import get_logger
from core.payments.invoices import expire_invoices
from core.payments.pay import recover_payments
from core.payments.transfers import watch_transfers

log = get_logger("spacescribe.payments.jobs")


@dataclass(frozen=True)
class Job:
    id: str
    run: Callable[[], Awaitable[Any]]
    every_seconds: float
    at_start: bool


def _guarded(
    name: str, fn: Callable[[Context], Awaitable[Any]], ctx: Context
) -> Callable[[], Awaitable[Any]]:
    async def run() -> Any:
        try:
            return await fn(ctx)
        except Exception as exc:
            log.error("payment job failed", job=name, error=f"{type(exc).__name__}: {exc}")
            return None

    return run


def payment_jobs(ctx: Context) -> list[Job]:
    p = ctx.settings.payments
    if not p.pay_to:
        return []
    return [
        Job("payments_recover", _guarded("recover", recover_payments, ctx), 30.0, True),
        Job(
            "payments_watch",
            _guarded("watch", watch_transfers, ctx),
            p.watch_interval_seconds,
            True,
        ),
        Job("invoices_expire", _guarded("expire", expire_invoices, ctx), 60.0, False),
    ]
