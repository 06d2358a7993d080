"""/healthz, /readyz and /metrics through a real HTTP server and a local JSON-RPC peer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from bot.wiring import web_app
from core.context import Context
from core.db import ProcessingJob, Space, utcnow


@pytest.fixture
async def rpc_url() -> AsyncIterator[str]:
    """A minimal JSON-RPC peer answering eth_chainId like Base (0x2105)."""

    async def handle(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"jsonrpc": "2.0", "id": body["id"], "result": "0x2105"})

    app = web.Application()
    app.router.add_post("/", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/"
    await runner.cleanup()


async def test_readyz_and_metrics(ctx: Context, rpc_url: str) -> None:
    ctx.settings.payments.rpc_url = rpc_url
    async with ctx.db.session() as s:
        sp = Space(space_id="1AAAAAAAAAAAA", space_url="u", title="t")
        s.add(sp)
        await s.flush()
        s.add(ProcessingJob(space_id=sp.id, queued_at=utcnow()))
    transport = httpx.ASGITransport(app=web_app(ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        r = await client.get("/readyz")
        assert r.status_code == 200, r.text
        ctx.wiring.set_connected("telegram", False)
        r = await client.get("/readyz")
        assert r.status_code == 503 and "no bot connected" in json.dumps(r.json())
        ctx.wiring.set_connected("telegram", True)
        assert (await client.get("/readyz")).status_code == 200
        text = (await client.get("/metrics")).text
        assert 'spacescribe_queue_jobs{status="queued"} 1.0' in text
        assert "spacescribe_outbox_messages" in text
