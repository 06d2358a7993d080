"""Structured logging (structlog over stdlib) with secret redaction.

Every secret value known to the process is replaced by ``***`` in every log line, whatever
logger emitted it (ours, discord.py, httpx …): the filter sits on the root handler.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import Any

import structlog

_secrets: list[str] = []
# Telegram bot tokens also appear inside URLs that libraries log (…/bot<token>/getMe).
_TOKEN_URL = re.compile(r"bot[0-9]{5,12}:[A-Za-z0-9_-]{30,}")


def add_secrets(values: Iterable[str]) -> None:
    for v in values:
        if v and len(v) >= 6 and v not in _secrets:
            _secrets.append(v)


def redact(text: str) -> str:
    for s in _secrets:
        if s in text:
            text = text.replace(s, "***")
    return _TOKEN_URL.sub("bot***", text)


def _redact_event(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    for k, v in list(event.items()):
        if isinstance(v, str):
            event[k] = redact(v)
    return event


class _RedactingFormatter(logging.Formatter):
    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record))


def configure(level: str = "INFO", json_logs: bool = False, secrets: Iterable[str] = ()) -> None:
    add_secrets(secrets)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_event,
    ]
    # Tracebacks as plain text: rich's would show local variables, cut to a width, and a cut
    # secret no longer matches its redaction.
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_logs
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    tracebacks = [structlog.processors.format_exc_info] if json_logs else []
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *tracebacks,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter(formatter))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    sys.excepthook = _log_uncaught  # a crash's traceback passes the redaction too
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "aiosqlite", "apscheduler.executors.default", "web3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("spacescribe").critical("uncaught exception", exc_info=(kind, exc, tb))


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


# Ids that every log line emitted inside the block carries (request_id, job, update, …).
# contextvars: each asyncio task has its own copy, so concurrent requests and jobs never mix.
log_context = structlog.contextvars.bound_contextvars
# The same ids for the rest of the current task (e.g. a Discord interaction's own task).
bind_log_context = structlog.contextvars.bind_contextvars
