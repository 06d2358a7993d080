"""Where one discord.py client talks to: Discord, or ``discord.api_url`` (a rate-limit proxy,
the tests' stand-in), for that client only.

discord.py builds every REST URL from the class attribute ``Route.BASE`` and connects to the
class attribute ``DiscordWebSocket.DEFAULT_GATEWAY``: changing those would move every client
of the process. Instead the client's own HTTP client rebases the URLs it is handed — its REST
requests and the gateway it connects to — and so does its own webhook adapter, which sends
the answers to interactions (discord.py takes that adapter from a context variable, which the
client sets in its gateway task: the task every interaction's handler is started from).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import HTTPClient, Route
from discord.webhook.async_ import AsyncWebhookAdapter


class Endpoints:
    """Discord's URLs rebased on ``api_url`` (none: Discord's own, unchanged)."""

    def __init__(self, api_url: str) -> None:
        self.api = api_url.rstrip("/")
        # the gateway that API names (GET /gateway/bot), known after login
        self.gateway: yarl.URL | None = None

    def rest(self, url: str) -> str:
        base = Route.BASE  # discord.py's, e.g. https://discord.com/api/v10
        return self.api + url[len(base) :] if self.api and url.startswith(base) else url

    def websocket(self, url: str) -> str:
        """discord.py's default gateway → ours, with discord.py's query (version, encoding,
        compression). A gateway Discord named itself (to resume a session) is kept."""
        asked = yarl.URL(url)
        if self.gateway is None or asked.host != DiscordWebSocket.DEFAULT_GATEWAY.host:
            return url
        return str(self.gateway.with_query(asked.query))


class RebasedHTTPClient(HTTPClient):
    """discord.py's HTTP client, sending to :class:`Endpoints`."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, endpoints: Endpoints, **options: Any
    ) -> None:
        super().__init__(loop, **options)
        self.endpoints = endpoints

    async def request(self, route: Route, **kwargs: Any) -> Any:
        route.url = self.endpoints.rest(route.url)
        return await super().request(route, **kwargs)

    async def ws_connect(self, url: str, *, compress: int = 0) -> aiohttp.ClientWebSocketResponse:
        return await super().ws_connect(self.endpoints.websocket(url), compress=compress)


class RebasedWebhooks(AsyncWebhookAdapter):
    """discord.py's webhook adapter (interaction responses, follow-ups), sending to
    :class:`Endpoints`."""

    def __init__(self, endpoints: Endpoints) -> None:
        super().__init__()
        self.endpoints = endpoints

    async def request(self, route: Route, *args: Any, **kwargs: Any) -> Any:
        route.url = self.endpoints.rest(route.url)
        return await super().request(route, *args, **kwargs)
