"""The app's web server: health, (later) pay pages, x402 API, metrics, Telegram webhook."""

from __future__ import annotations

from fastapi import FastAPI

from adapters.web import health, x402_api
from core.context import Context


def create_app(ctx: Context) -> FastAPI:
    app = FastAPI(
        title="spacescribe",
        version="0.1.0",
        description="Transcripts of X Spaces and AI chat over them, paid in USDC via x402.",
    )
    app.state.ctx = ctx
    app.include_router(health.router)
    app.include_router(x402_api.router)
    app.add_middleware(x402_api.BodyLimit, max_body=ctx.settings.web.max_body_bytes)
    return app
