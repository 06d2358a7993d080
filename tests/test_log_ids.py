"""Log lines carry the id of what they belong to: the HTTP request (also returned in
``X-Request-ID``) and the queue job, even when several run at once."""

from __future__ import annotations

import asyncio

import httpx
import structlog
from structlog.testing import capture_logs

from bot.wiring import web_app
from core.context import Context
from core.logging import get_logger
from core.worker import Worker
from tests.queue.test_batch import _queued

log = get_logger("test")


async def test_every_request_has_an_id_on_its_log_lines_and_in_its_response(ctx: Context) -> None:
    app = web_app(ctx)

    async def noisy() -> dict[str, str]:
        log.info("inside the request")
        return {}

    app.add_api_route("/noisy", noisy)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            mine = await client.get("/noisy", headers={"X-Request-ID": "trace-1234abcd"})
            forged = await client.get("/noisy", headers={"X-Request-ID": "x\nlevel=error"})
            fresh = await client.get("/noisy")
        refused = await client.post("/x402/transcribe", content=b"{}" * 10**6)
    assert mine.headers["x-request-id"] == "trace-1234abcd"
    assert forged.headers["x-request-id"] != "x\nlevel=error"
    ids = [e.get("request_id") for e in logs if e["event"] == "inside the request"]
    assert ids == ["trace-1234abcd", forged.headers["x-request-id"], fresh.headers["x-request-id"]]
    assert len(set(ids)) == 3
    assert refused.status_code == 413 and len(refused.headers["x-request-id"]) == 32
    assert structlog.contextvars.get_contextvars() == {}  # nothing leaks out of the request


async def test_every_pipeline_log_line_names_its_job(ctx: Context) -> None:
    pks = await _queued(ctx, 3)
    ctx.settings.queue.concurrency = 3
    both = asyncio.Barrier(3)  # the three jobs run at the same time

    async def work(_c: Context, space_pk: int) -> None:
        await both.wait()
        log.info("stage", pk=space_pk)

    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        await asyncio.wait_for(Worker(ctx, work, "w").run(until_idle=True), 30)
    stages = [e for e in logs if e["event"] == "stage"]
    assert sorted(e["pk"] for e in stages) == sorted(pks)
    assert all(e["space_pk"] == e["pk"] and isinstance(e["job"], int) for e in stages)
    assert len({e["job"] for e in stages}) == 3
