"""Process roles: which parts of the application run in this process.

``spacescribe run`` runs every role by default; ``--roles`` picks some, so an operator can
run one web+bots process and several ``worker`` processes sharing one PostgreSQL queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from adapters.web.app import create_app
from core.context import Context
from core.logging import get_logger

log = get_logger("spacescribe.runtime")

ROLES = ("bots", "web", "scheduler", "worker")


class Component(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class StatusLine:
    name: str
    on: bool
    why: str


class WebServer:
    name = "web"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.app = create_app(ctx)
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

    async def start(self) -> None:
        self.scheduler.start()

    async def stop(self) -> None:
        self.scheduler.shutdown(wait=False)


# Role builders: each returns the components of a role plus status lines to print.
RoleBuilder = Callable[[Context, Scheduler], tuple[list[Component], list[StatusLine]]]


def _web(ctx: Context, _sched: Scheduler) -> tuple[list[Component], list[StatusLine]]:
    w = ctx.settings.web
    return [WebServer(ctx)], [StatusLine("Web", True, f"http://{w.host}:{w.port} ({w.public_url})")]


def _bots(ctx: Context, sched: Scheduler) -> tuple[list[Component], list[StatusLine]]:
    comps: list[Component] = []
    lines: list[StatusLine] = []
    for platform, token, env in (
        ("Telegram", ctx.secrets.telegram_token, "TELEGRAM_TOKEN"),
        ("Discord", ctx.secrets.discord_token, "DISCORD_TOKEN"),
    ):
        if token is None or not token.get_secret_value():
            lines.append(StatusLine(platform, False, f"{env} not set"))
            continue
        builder = BOT_BUILDERS.get(platform)
        if builder is None:
            lines.append(StatusLine(platform, False, "adapter not available in this build"))
            continue
        comps.append(builder(ctx, sched))
        lines.append(StatusLine(platform, True, f"{env} set"))
    return comps, lines


def _scheduler_role(ctx: Context, sched: Scheduler) -> tuple[list[Component], list[StatusLine]]:
    from datetime import UTC, datetime

    from core.payments.jobs import payment_jobs

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
            **first,
        )
    return [], [
        StatusLine(
            "Scheduler",
            True,
            "periodic jobs: " + (", ".join(j.id for j in sched.scheduler.get_jobs()) or "none"),
        )
    ]


def _worker(ctx: Context, sched: Scheduler) -> tuple[list[Component], list[StatusLine]]:
    builder = WORKER_BUILDER
    if builder is None:
        return [], [StatusLine("Worker", False, "processing pipeline not available in this build")]
    return [builder(ctx, sched)], [StatusLine("Worker", True, f"instance {ctx.instance}")]


BOT_BUILDERS: dict[str, Callable[[Context, Scheduler], Component]] = {}
WORKER_BUILDER: Callable[[Context, Scheduler], Component] | None = None
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


class Runtime:
    def __init__(self, ctx: Context, roles: list[str]) -> None:
        self.ctx = ctx
        self.roles = roles
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
        if "scheduler" in self.roles or "worker" in self.roles:
            await self.sched.start()
        for c in self.components:
            await c.start()
            log.info("component started", component=c.name)

    async def stop(self) -> None:
        for c in reversed(self.components):
            with contextlib.suppress(Exception):
                await c.stop()
        if self.sched.scheduler.running:
            await self.sched.stop()

    def request_stop(self) -> None:
        self._stop.set()

    async def run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self.request_stop)
        await self.start()
        try:
            await self._stop.wait()
        finally:
            await self.stop()
