"""The app's web server: the storefront, pay and wallet-link pages, x402 API, health, metrics.

Routes served by other adapters (MCP at ``/mcp``, the Telegram webhook) are added by the
wiring in ``bot/wiring.py``: an adapter imports no other adapter. What answers paid questions
(``ctx.wiring.fulfillers``) is set by the wiring too, before the server starts."""

from __future__ import annotations

from fastapi import FastAPI

from adapters.web import errors, health, link, pay, store, x402_api
from adapters.web.docs import add_docs
from adapters.web.pages import static_files
from adapters.web.request_ids import RequestIds
from core.context import Context


def create_app(ctx: Context) -> FastAPI:
    app = FastAPI(
        title="spacescribe",
        version="0.1.0",
        description="Transcripts of X Spaces and AI chat over them, paid in USDC via x402.",
        docs_url=None,  # served by add_docs with local assets (no CDN)
        redoc_url=None,
    )
    add_docs(app)
    app.state.ctx = ctx
    errors.install(app, ctx.settings)  # one error shape; the published limits are enforced ones
    app.include_router(health.router)
    app.include_router(x402_api.router)
    app.include_router(pay.router)
    app.include_router(link.router)
    app.include_router(store.router)  # the storefront: /, /spaces/…, /session
    app.mount("/static", static_files, name="static")
    app.add_middleware(x402_api.BodyLimit, max_body=ctx.settings.web.max_body_bytes)
    app.add_middleware(RequestIds)  # outermost: refusals by BodyLimit carry an id too
    return app
