"""Wiring: the one place where adapters meet. Adapters import ``core`` only, never each other;
what one adapter serves on another's transport is joined here (enforced by the import-linter
contracts in ``pyproject.toml``).

- the web app gets the MCP endpoint at ``/mcp`` and the Telegram webhook route;
- a Telegram bot in webhook mode gets the web server's webhook route to receive its updates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from adapters.mcp.http import McpEndpoint
from adapters.mcp.server import build_server
from adapters.web import webhooks
from adapters.web.app import create_app
from core.context import Context

if TYPE_CHECKING:  # imported when a Telegram bot is built: a web-only process does without it
    from adapters.telegram.bot import TelegramBot


def web_app(ctx: Context) -> FastAPI:
    """The web server's app with every route of the process: its own, MCP and webhooks."""
    app = create_app(ctx)
    app.include_router(webhooks.router)  # /telegram/webhook (404 unless a bot is in that mode)
    # MCP tools over streamable HTTP (stateless; JSON answers); stdio: `spacescribe mcp`
    mcp = McpEndpoint(build_server(ctx))  # an ASGI app: Starlette routes to it as it is
    app.add_route("/mcp", mcp, methods=["POST"])  # type: ignore[arg-type]
    return app


def telegram_bot(ctx: Context, token: str, webhook_secret: str | None = None) -> TelegramBot:
    """A Telegram bot whose webhook updates (telegram.mode = webhook) arrive at ``web_app``."""
    from adapters.telegram.bot import TelegramBot

    return TelegramBot(ctx, token, webhook_secret, webhooks=webhooks)
