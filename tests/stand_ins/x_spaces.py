"""A local X for yt-dlp's real X Spaces extractor (``TwitterSpacesIE``).

It answers the calls that extractor makes, in the shapes it parses: the guest token
(``POST api.x.com/1.1/guest/activate.json``), the Space's GraphQL metadata
(``GET x.com/i/api/graphql/<hash>/AudioSpaceById``), the stream status
(``GET api.x.com/1.1/live_video_stream/status/<media_key>``) and the HLS playlist and
segments. yt-dlp reaches it through its own networking layer: :class:`XStandInRH`, a
yt-dlp request handler registered for X's hosts, sends those requests to this server
instead (everything else goes to yt-dlp's usual handlers). The HLS media is served from
127.0.0.1 directly, as X serves it from its video CDN.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from yt_dlp.networking._urllib import UrllibRH
from yt_dlp.networking.common import register_preference, register_rh
from yt_dlp.networking.exceptions import UnsupportedRequest

from tests.stand_ins.http import serve

X_HOSTS = {"x.com", "api.x.com", "twitter.com", "api.twitter.com"}
_target: str | None = None  # base URL of the running stand-in (None: not intercepting)


@register_rh
class XStandInRH(UrllibRH):
    """yt-dlp's own urllib handler, for X's hosts only, pointed at the local stand-in."""

    RH_KEY = "XStandIn"
    RH_NAME = "x_stand_in"

    def _validate(self, request: Any) -> None:
        host = (urlsplit(request.url).hostname or "").lower()
        if _target is None or host not in X_HOSTS:
            raise UnsupportedRequest("not an X host (or no X stand-in running)")
        super()._validate(request)

    def _send(self, request: Any) -> Any:
        assert _target is not None
        parts = urlsplit(request.url)
        local = request.copy()
        query = f"?{parts.query}" if parts.query else ""
        local.url = f"{_target}/{parts.hostname}{parts.path}{query}"
        return super()._send(local)


@register_preference(XStandInRH)
def _prefer_stand_in(handler: Any, request: Any) -> int:
    return 10_000


@dataclass
class XSpace:
    """One Space as X describes it. ``state``: NotStarted, Running, Ended, TimedOut."""

    space_id: str
    state: str = "Ended"
    title: str = "Weekly weather space"
    creator: str = "Alice Weather"
    screen_name: str = "alice"
    replay: bool = True  # is_space_available_for_replay
    stream: bool = True  # the stream status has a playlist
    speakers: list[str] = field(default_factory=lambda: ["Alice Weather", "Bob"])
    started_at: float | None = field(default_factory=lambda: time.time() - 3600)
    scheduled_start: float | None = None


@dataclass
class XStandIn:
    url: str
    hls_path: str  # where the replay's playlist lives on this server
    spaces: dict[str, XSpace] = field(default_factory=dict)
    guest: str = "ok"  # ok | refused (403) | empty (no token)
    unauthorized: set[str] = field(default_factory=set)  # Space ids answered "Not authorized"
    calls: list[str] = field(default_factory=list)

    def add(self, space: XSpace) -> XSpace:
        self.spaces[space.space_id] = space
        return space

    def graphql_calls(self) -> int:
        return sum("AudioSpaceById" in c for c in self.calls)


def _metadata(sp: XSpace) -> dict[str, Any]:
    ms = lambda t: int(t * 1000) if t is not None else None  # noqa: E731
    meta: dict[str, Any] = {
        "rest_id": sp.space_id,
        "state": sp.state,
        "title": sp.title,
        "media_key": f"28_{sp.space_id}",
        "created_at": ms(sp.started_at or sp.scheduled_start),
        "is_space_available_for_replay": sp.replay,
        "creator_results": {
            "result": {
                "legacy": {
                    "name": sp.creator,
                    "screen_name": sp.screen_name,
                    "profile_image_url_https": "https://pbs.twimg.com/profile_images/1/a_normal.jpg",
                }
            }
        },
    }
    if sp.state != "NotStarted" and sp.started_at is not None:
        meta["started_at"] = ms(sp.started_at)
    if sp.scheduled_start is not None:
        meta["scheduled_start"] = ms(sp.scheduled_start)
    return meta


def _app(x: XStandIn, hls_root: Path) -> web.Application:
    async def guest(request: web.Request) -> web.Response:
        x.calls.append("guest")
        if x.guest == "refused":
            return web.json_response(
                {"errors": [{"code": 200, "message": "Forbidden."}]}, status=403
            )
        if x.guest == "empty":
            return web.json_response({})
        return web.json_response({"guest_token": "1234567890"})

    async def graphql(request: web.Request) -> web.Response:
        x.calls.append("AudioSpaceById")
        try:
            sid = json.loads(request.query["variables"])["id"]
        except (KeyError, ValueError):
            return web.json_response({"errors": [{"message": "bad query"}]}, status=400)
        if sid in x.unauthorized:
            return web.json_response(
                {"errors": [{"message": "Not authorized to view this Space.", "code": 37}]},
                status=403,
            )
        sp = x.spaces.get(sid)
        if sp is None:
            return web.json_response({"data": {"audioSpace": {}}})
        return web.json_response(
            {
                "data": {
                    "audioSpace": {
                        "metadata": _metadata(sp),
                        "participants": {
                            "admins": [{"display_name": sp.creator}],
                            "speakers": [{"display_name": n} for n in sp.speakers],
                        },
                    }
                }
            }
        )

    async def status(request: web.Request) -> web.Response:
        key = request.match_info["key"]
        x.calls.append(f"status:{key}")
        sp = x.spaces.get(key.removeprefix("28_"))
        if sp is None or not sp.stream:
            return web.json_response({"source": {}})
        location = f"{x.url}/audio-space/{sp.space_id}{x.hls_path}"
        return web.json_response({"source": {"location": location, "status": "LIVE_PUBLIC"}})

    async def media(request: web.Request) -> web.StreamResponse:
        rest = request.match_info["rest"]
        x.calls.append(f"media:{rest}")
        path = (hls_root / rest).resolve()
        if hls_root.resolve() not in path.parents or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    app = web.Application()
    app.router.add_post("/api.x.com/1.1/guest/activate.json", guest)
    app.router.add_get("/x.com/i/api/graphql/{hash}/AudioSpaceById", graphql)
    app.router.add_get("/api.x.com/1.1/live_video_stream/status/{key}", status)
    app.router.add_get("/audio-space/{sid}/{rest:.+}", media)
    return app


@asynccontextmanager
async def x_stand_in(
    hls_root: Path, hls_path: str = "/space/playlist.m3u8"
) -> AsyncIterator[XStandIn]:
    """Run the stand-in and point yt-dlp's requests for X's hosts at it."""
    global _target
    x = XStandIn(url="", hls_path=hls_path.removeprefix("/space"))
    app = _app(x, hls_root / "space")
    async with serve(app) as url:
        x.url = url
        _target = url
        try:
            yield x
        finally:
            _target = None


@asynccontextmanager
async def x_unreachable() -> AsyncIterator[None]:
    """X's hosts lead to a closed port: the network error a real outage gives."""
    global _target
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    _target = f"http://127.0.0.1:{port}"
    try:
        yield
    finally:
        _target = None
