"""Wiring: the one place where the parts of a process meet (the composition root).

:func:`wire` fills the application object every core use case reads (``ctx.wiring``, see
``core/wiring.py``) in one visible order, before any role starts: nothing registers itself
when imported. Adapters import ``core`` only, never each other; what one adapter serves on
another's transport is joined here (enforced by the import-linter contracts in
``pyproject.toml``):

- the web app gets the MCP endpoint at ``/mcp`` and the Telegram webhook route;
- a Telegram bot in webhook mode gets the receivers that route reads (``ctx.wiring``).

What adapters add while they run — their outbox sender, their connection state, a webhook
receiver — they add to the same ``ctx.wiring`` when they start and take out when they stop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from adapters.mcp.http import McpEndpoint
from adapters.mcp.server import build_server
from adapters.web import webhooks
from adapters.web.app import create_app
from core.chat import index as chat_index
from core.context import Context
from core.enrich import service as enrichment
from core.service import chat as chat_service

if TYPE_CHECKING:  # imported when a Telegram bot is built: a web-only process does without it
    from adapters.telegram.bot import TelegramBot


def wire(ctx: Context) -> Context:
    """The core's parts of every process, in order (idempotent). Runs before the web server
    serves ``/x402/*`` and before a worker claims a job."""
    w = ctx.wiring
    # paid questions are answered before settlement: by the web role (/x402/chat, pay
    # pages), MCP, and the payment recovery job of the scheduler
    w.add_fulfiller("chat_query", chat_service.fulfiller())
    # a Space's transcript is complete: its chat passage index, then its summary, chapters
    # and quotes (enrichment never fails the job)
    w.add_on_completed(chat_index.on_space_completed)
    w.add_on_completed(enrichment.on_space_completed)
    return ctx


def web_app(ctx: Context) -> FastAPI:
    """The web server's app with every route of the process: its own, MCP and webhooks."""
    app = create_app(ctx)
    app.include_router(webhooks.router)  # /telegram/webhook (404 unless a bot is in that mode)
    # MCP tools over streamable HTTP (stateless; JSON answers); stdio: `spacescribe mcp`
    mcp = McpEndpoint(build_server(ctx))  # an ASGI app: Starlette routes to it as it is
    app.add_route("/mcp", mcp, methods=["POST"])  # type: ignore[arg-type]
    return app


def telegram_bot(ctx: Context, token: str, webhook_secret: str | None = None) -> TelegramBot:
    """A Telegram bot whose webhook updates (telegram.mode = webhook) arrive at ``web_app``'s
    route, which reads the receivers on ``ctx.wiring``."""
    from adapters.telegram.bot import TelegramBot

    return TelegramBot(ctx, token, webhook_secret, webhooks=ctx.wiring)
