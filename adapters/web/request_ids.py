"""Every HTTP request gets an id: on each log line emitted while serving it and in the
``X-Request-ID`` response header, so an operator can match a client's report to the logs.

A caller's own ``X-Request-ID`` is kept when it is a plain token (proxies set one); anything
else is replaced, so a header can never inject text into the logs.
"""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.logging import log_context

HEADER = "x-request-id"
_PLAIN = re.compile(r"[A-Za-z0-9._-]{8,64}")


class RequestIds:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(HEADER.encode(), b"").decode("latin-1")
        rid = given if _PLAIN.fullmatch(given) else uuid.uuid4().hex

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = rid
            await send(message)

        with log_context(request_id=rid):
            await self.app(scope, receive, send_with_id)
