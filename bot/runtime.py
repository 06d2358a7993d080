"""Process roles: which parts of the application run in this process.

``spacescribe run`` runs every role by default; ``--roles`` picks some, so an operator can
run one web+bots process and several ``worker`` processes sharing one PostgreSQL queue.
"""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.wiring import web_app, wire
from core.context import Context
from core.errors import ConfigError
from core.logging import get_logger

log = get_logger("spacescribe.runtime")

ROLES = ("bots", "web", "scheduler", "worker")
OUTBOX_DRAIN_SECONDS = 2.0


class Component(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class StatusLine:
    name: str
    on: bool
    why: str
    label: str | None = None  # printed instead of on/off, e.g. "TEST MODE"


class WebServer:
    name = "web"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.app = web_app(ctx)
        cfg = uvicorn.Config(
            self.app,
            host=ctx.settings.web.host,
            port=ctx.settings.web.port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
        self.server = uvicorn.Server(cfg)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                self.task.result()  # raises the bind error, if any
                raise RuntimeError("web server stopped during start-up")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task:
            await self.task


class Scheduler:
    """APScheduler's AsyncIOScheduler; roles add their periodic jobs to ``.scheduler``."""

    name = "scheduler"

    def __init__(self) -> None:
        self.scheduler = AsyncIOScheduler(timezone="UTC")

    def add_job(
        self, func: Callable[..., Any], trigger: str, args: list[Any], job_id: str, seconds: float
    ) -> None:
        """A periodic job; never two runs of it at once, late runs coalesced. Roles that
        share a job (the outbox drain of the web and bots roles) add it once: the first wins."""
        if self.scheduler.get_job(job_id) is not None:
            return
        self.scheduler.add_job(
            func,
            trigger,
            args=args,
            id=job_id,
            seconds=seconds,
            max_instances=1,
            coalesce=True,
            replace_existing=True,
        )

    async def start(self) -> None:
        self.scheduler.start()

    async def stop(self) -> None:
        self.scheduler.shutdown(wait=False)


# Role builders: each returns the components of a role plus status lines to print.
RoleBuilder = Callable[[Context, Scheduler], tuple[list[Component], list[StatusLine]]]


def _web(ctx: Context, sched: Scheduler) -> tuple[list[Component], list[StatusLine]]:
    from adapters.web.sender import WebSender

    w = ctx.settings.web
    # the storefront's buyers' messages: drained here (the same job id as the bots' drain,
    # so a process running both has one drain for every sender)
    ctx.wiring.add_sender(WebSender(ctx))
    sched.add_job(_drain_outbox, "interval", [ctx], "outbox-drain", OUTBOX_DRAIN_SECONDS)
    return [WebServer(ctx)], [
        StatusLine("Web", True, f"http://{w.host}:{w.port} — storefront at {w.public_url}/")
    ]


async def _drain_outbox(ctx: Context) -> None:
    from core.outbox import drain_once

    while await drain_once(ctx, ctx.instance, policy=ctx.settings.outbox):
        pass


def _bots(ctx: Context, sched: Scheduler) -> tuple[list[Component], list[StatusLine]]:
    # The process running the bots delivers their messages: it owns the senders.
    sched.add_job(_drain_outbox, "interval", [ctx], "outbox-drain", OUTBOX_DRAIN_SECONDS)
    comps: list[Component] = []
    lines: list[StatusLine] = []
    for platform, token, env in (
        ("Telegram", ctx.secrets.telegram_token, "TELEGRAM_TOKEN"),
        ("Discord", ctx.secrets.discord_token, "DISCORD_TOKEN"),
    ):
        if token is None or not token.get_secret_value():
            lines.append(StatusLine(platform, False, f"{env} not set"))
            continue
        try:
            comps.append(BOT_BUILDERS[platform](ctx, sched))
        except ConfigError as e:  # e.g. webhook mode without its secret: say why, run the rest
            lines.append(StatusLine(platform, False, str(e)))
            continue
        lines.append(StatusLine(platform, True, f"{env} set"))
    return comps, lines


def _scheduler_role(ctx: Context, sched: Scheduler) -> tuple[list[Component], list[StatusLine]]:
    from datetime import UTC, datetime

    from core.payments.jobs import payment_jobs
    from core.worker import reap_once

    q = ctx.settings.queue
    sched.add_job(reap_once, "interval", [ctx], "queue-reaper", max(2.0, q.lease_seconds / 4))
    for job_id, (func, seconds) in PERIODIC_JOBS.items():
        sched.add_job(func, "interval", [ctx], job_id, seconds(ctx))
    for job in payment_jobs(ctx):
        # recovery runs at start too: a crash between settle and credit is finished at once
        first = {"next_run_time": datetime.now(UTC)} if job.at_start else {}
        sched.scheduler.add_job(
            job.run,
            "interval",
            seconds=job.every_seconds,
            id=job.id,
            max_instances=1,
            coalesce=True,
            replace_existing=True,
            **first,
        )
    jobs = ", ".join(j.id for j in sched.scheduler.get_jobs()) or "none"
    return [], [StatusLine("Scheduler", True, f"periodic jobs: {jobs}")]


def _worker(ctx: Context, sched: Scheduler) -> tuple[list[Component], list[StatusLine]]:
    from core.worker import Worker

    return [Worker(ctx)], [StatusLine("Worker", True, f"instance {ctx.instance}")]


def _telegram(ctx: Context, _sched: Scheduler) -> Component:
    from bot.wiring import telegram_bot

    assert ctx.secrets.telegram_token is not None
    secret = ctx.secrets.telegram_webhook_secret
    return telegram_bot(
        ctx,
        ctx.secrets.telegram_token.get_secret_value(),
        secret.get_secret_value() if secret else None,
    )


def _discord(ctx: Context, _sched: Scheduler) -> Component:
    from adapters.discord.bot import DiscordBot

    assert ctx.secrets.discord_token is not None
    return DiscordBot(ctx, ctx.secrets.discord_token.get_secret_value())


BOT_BUILDERS: dict[str, Callable[[Context, Scheduler], Component]] = {
    "Telegram": _telegram,
    "Discord": _discord,
}


async def _retry_enrichments(ctx: Context) -> None:
    from core.enrich.service import retry_failed

    await retry_failed(ctx)


# Periodic jobs of the scheduler role: id → (async function of ctx, interval in seconds).
PERIODIC_JOBS: dict[str, tuple[Callable[[Context], Awaitable[Any]], Callable[[Context], float]]] = {
    "enrich-retry": (_retry_enrichments, lambda c: c.settings.enrichment.retry_seconds),
}
ROLE_BUILDERS: dict[str, RoleBuilder] = {
    "web": _web,
    "bots": _bots,
    "worker": _worker,
    "scheduler": _scheduler_role,  # last: reports the jobs the other roles registered
}


def parse_roles(text: str) -> list[str]:
    roles = [r.strip() for r in text.split(",") if r.strip()]
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise ValueError(
            f"unknown role(s) {', '.join(bad) or '(none)'}; choose from {', '.join(ROLES)}"
        )
    return roles


def feature_lines(ctx: Context) -> list[StatusLine]:
    openai = ctx.openai_enabled
    backend = ctx.settings.transcription.backend or ("openai" if openai else "offline")
    return [
        StatusLine(
            "OpenAI",
            openai,
            "OPENAI_API_KEY set"
            if openai
            else "OPENAI_API_KEY not set: offline transcription and extractive chat answers",
        ),
        StatusLine("Transcription", True, f"backend {backend}"),
    ]


async def stop_each(components: Iterable[Component]) -> None:
    """Stop every component, in the order given. One that fails to stop does not keep the
    others running: its exception is logged, with the component's name, and passed over."""
    for c in components:
        try:
            await c.stop()
        except Exception as exc:
            log.exception("component failed to stop", component=c.name, error=repr(exc)[:300])


def settle_heap() -> None:
    """Hide what start-up built from the garbage collector. Modules, mappers, compiled
    statements and the app (~270,000 objects in a web process) live as long as the process,
    yet every full collection walked them all: ~150 ms with the event loop stopped, a few
    times a minute under load, which set the web server's p99 (``python -m bench http``).
    Frozen, they are never walked again; what requests make is collected as before."""
    gc.collect()
    gc.freeze()


class Runtime:
    def __init__(self, ctx: Context, roles: list[str]) -> None:
        self.ctx = ctx
        self.roles = roles
        if (
            ctx.settings.telegram.mode == "webhook"
            and "bots" in roles
            and "web" not in roles
            and ctx.secrets.telegram_token is not None
        ):
            raise ConfigError(
                "telegram.mode = webhook: run the bots and web roles in one process "
                "(updates arrive at the web server's /telegram/webhook)"
            )
        # The application object first: any role may credit a paid question (web, the
        # recovery job) and a worker's completed Spaces get their index; then the roles.
        wire(ctx)
        self.sched = Scheduler()
        self.components: list[Component] = []
        self.status: list[StatusLine] = []
        for role in ROLE_BUILDERS:
            if role in roles:
                comps, lines = ROLE_BUILDERS[role](ctx, self.sched)
                self.components += comps
                self.status += lines
        self.status += feature_lines(ctx)
        self._stop = asyncio.Event()

    async def start(self) -> None:
        if self.sched.scheduler.get_jobs():
            await self.sched.start()
        for c in self.components:
            await c.start()
            log.info("component started", component=c.name)
        settle_heap()

    async def stop(self) -> None:
        await stop_each(reversed(self.components))
        if self.sched.scheduler.running:
            await self.sched.stop()

    def request_stop(self) -> None:
        self._stop.set()

    async def run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # POSIX event loops (Linux, the target)
            loop.add_signal_handler(sig, self.request_stop)
        try:  # a component failing to start stops the ones already started
            await self.start()
            await self._stop.wait()
        finally:
            await self.stop()
