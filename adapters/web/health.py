"""Liveness (/healthz), readiness (/readyz) and Prometheus metrics (/metrics)."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from core import health, metrics
from core.context import Context

router = APIRouter(tags=["health"])
RPC_TIMEOUT = 3.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


async def _database(ctx: Context) -> str:
    try:
        async with ctx.db.read() as s:
            await s.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:  # readiness reports, never raises
        return f"error: {type(exc).__name__}"


async def _rpc(ctx: Context) -> str:
    p = ctx.settings.payments
    try:
        async with httpx.AsyncClient(timeout=RPC_TIMEOUT) as client:
            r = await client.post(
                p.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
            )
            chain = int(r.json()["result"], 16)
        return "ok" if chain == p.chain_id else f"error: chain {chain}, expected {p.chain_id}"
    except Exception as exc:
        return f"error: {type(exc).__name__}"


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready to serve: database and RPC answer, and a bot is connected if this process runs any."""
    ctx: Context = request.app.state.ctx
    db, rpc = await asyncio.gather(_database(ctx), _rpc(ctx))
    checks = {"database": db, "rpc": rpc}
    bots = ctx.wiring.bots()
    if bots:
        checks["adapters"] = "ok" if any(bots.values()) else "error: no bot connected"
    ok = all(v == "ok" for v in checks.values())
    body: dict[str, object] = {"ready": ok, "checks": checks, "bots": bots}
    x = await health.x_refusal(ctx)
    if x:  # sales from the library go on; new Spaces cannot be fetched until fixed
        body["warnings"] = [x]
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", include_in_schema=False)
async def prometheus(request: Request) -> Response:
    return Response(await metrics.exposition(request.app.state.ctx), media_type=CONTENT_TYPE_LATEST)
