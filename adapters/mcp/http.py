"""Streamable HTTP at ``/mcp``: one stateless MCP exchange per request.

The SDK's session manager needs a task group that lives as long as the app (its lifespan);
a stateless exchange needs none beyond the request, so each request runs the server on its
own transport inside its own task group (what the manager does in stateless mode). The
endpoint then works however the app is served, lifespan or not, and keeps no sessions:
any web process behind a load balancer can answer any call. There is no DNS-rebinding check
(the SDK's default for a localhost server): the endpoint holds no ambient credential, every
payment and sign-in is signed for its own call.
"""

from __future__ import annotations

import anyio
from anyio.abc import TaskStatus
from mcp.server.fastmcp import FastMCP
from mcp.server.streamable_http import StreamableHTTPServerTransport
from starlette.types import Receive, Scope, Send


class McpEndpoint:
    def __init__(self, server: FastMCP) -> None:  # type: ignore[type-arg]
        self.server = server._mcp_server  # the low-level server FastMCP registers tools on

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = StreamableHTTPServerTransport(
            mcp_session_id=None, is_json_response_enabled=True
        )
        server = self.server

        async def run(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
            async with transport.connect() as (read, write):
                task_status.started()
                await server.run(
                    read, write, server.create_initialization_options(), stateless=True
                )

        async with anyio.create_task_group() as tg:
            await tg.start(run)
            try:
                await transport.handle_request(scope, receive, send)
            finally:
                with anyio.CancelScope(shield=True):
                    await transport.terminate()
