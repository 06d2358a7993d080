"""A Discord stand-in that discord.py talks to over real sockets: REST and the gateway.

REST (``/api/v10``): the bot's user and application, ``GET /gateway/bot``, bulk command sync
(global and per guild, validated as Discord does), interaction callbacks, followup webhooks,
DM channel creation and channel messages (JSON or multipart with files). Members can have
their DMs closed (HTTP 403, code 50007), a number of 429 answers with Discord's rate-limit
headers can be queued, and ``enforce_nonce`` is honoured (a repeated nonce returns the first
message, as Discord does), so a re-sent delivery shows up as one message.

Gateway (``/gateway``, JSON, optionally ``zlib-stream``): HELLO, heartbeat ACKs, IDENTIFY
(token checked, intents recorded), READY and GUILD_CREATE, then the INTERACTION_CREATE
dispatches the tests push: slash commands (type 2, options of type 11 carry an
:class:`Upload` as an attachment in ``data.resolved``, its bytes served at ``/cdn/…`` as
Discord's CDN does), autocomplete (type 4) and button clicks
(message components, type 3, carrying the message the button is on), from wherever a member
may use them: the bot's server, the bot's DM, a private channel (group DM) or another server,
through a server install or a user install (``authorizing_integration_owners`` and
``context`` as Discord sends them). A command is only dispatched where Discord would offer it:
its synced ``integration_types`` and ``contexts`` (Discord's defaults when absent: server
install; servers and the bot's DM), and a server's own commands only in that server. Interaction callbacks
are checked against the interaction's type as Discord does (8 only for autocomplete, 6 and 7
only for components), and sent messages get their components' numeric ids.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import secrets
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

from tests.stand_ins.http import serve

API = "/api/v10"
APP_ID = 900000000000000001
GUILD_ID = 800000000000000001
OTHER_GUILD_ID = 800000000000000002  # a server that never added the bot
OTHER_CHANNEL_ID = 810000000000000002  # a channel there
CHANNEL_ID = 810000000000000001
ADMIN_ROLE_ID = 820000000000000001
EPHEMERAL = 1 << 6
INTENT_GUILDS = 1 << 0
COMMAND, COMPONENT, AUTOCOMPLETE = 2, 3, 4  # interaction types
GUILD_INSTALL, USER_INSTALL = 0, 1  # application integration types
IN_GUILD, BOT_DM, PRIVATE_CHANNEL = 0, 1, 2  # interaction context types
# Discord's defaults for a command synced without them (observed: discord-api-docs #7108):
# a server install only, in servers and the bot's DM, never in private channels
DEFAULT_INSTALLS, DEFAULT_CONTEXTS = [GUILD_INSTALL], [IN_GUILD, BOT_DM]
# where a member uses a command → its context type; "other guild": a server without the bot
WHERE = {"guild": IN_GUILD, "other guild": IN_GUILD, "dm": BOT_DM, "private": PRIVATE_CHANNEL}
# callback types each interaction type accepts (4/5 message, 6/7 update, 8 choices, 9 modal)
CALLBACKS_FOR = {COMMAND: {4, 5, 9}, COMPONENT: {4, 5, 6, 7, 9}, AUTOCOMPLETE: {8}}
_COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")


class NotOffered(AssertionError):
    """Discord would not offer this command there: a member cannot send it."""


def user_payload(user_id: int, name: str = "ann", bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(user_id),
        "username": name,
        "discriminator": "0",
        "global_name": name.title(),
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
    }


BOT_USER = user_payload(APP_ID, "spacescribe", bot=True)


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class Upload:
    """A file a member attaches to a slash command option (type 11)."""

    content: bytes
    filename: str = "recording.m4a"
    content_type: str = "audio/mp4"
    size: int | None = None  # what Discord announces (default: the content's length)


@dataclass
class Call:
    """One REST request as the stand-in understood it."""

    method: str
    path: str  # below /api/v10
    query: dict[str, str]
    body: Any  # JSON body, or payload_json of a multipart body
    files: list[dict[str, Any]]  # {"field", "filename", "content": bytes}
    at: float
    status: int = 200


@dataclass
class Reply:
    """Something the bot said in answer to an interaction: callback, followup or edit."""

    how: str  # "callback" | "followup" | "edit"
    type: int | None  # callback type (4 message, 5 deferred, 8 autocomplete result)
    data: dict[str, Any]
    files: list[dict[str, Any]]

    @property
    def ephemeral(self) -> bool:
        return bool(int(self.data.get("flags") or 0) & EPHEMERAL)

    @property
    def text(self) -> str:
        """Content and embed text together, for assertions."""
        parts = [self.data.get("content") or ""]
        for e in self.data.get("embeds") or []:
            parts += [e.get("title") or "", e.get("description") or ""]
            parts += [f"{f['name']}: {f['value']}" for f in e.get("fields") or []]
            parts.append((e.get("footer") or {}).get("text") or "")
        return "\n".join(p for p in parts if p)

    @property
    def buttons(self) -> list[dict[str, Any]]:
        return [c for row in self.data.get("components") or [] for c in row["components"]]


@dataclass
class Interaction:
    id: int
    token: str
    user_id: int
    channel_id: int
    type: int = COMMAND
    replies: list[Reply] = field(default_factory=list)
    acknowledged: bool = False


class Gateway:
    """One connected gateway session."""

    def __init__(self, ws: web.WebSocketResponse, compress: bool) -> None:
        self.ws = ws
        self.seq = 0
        self.deflate = zlib.compressobj() if compress else None
        self.identified = asyncio.Event()
        self.heartbeats = 0

    async def send(self, payload: dict[str, Any]) -> None:
        raw = json.dumps(payload)
        if self.deflate is None:
            await self.ws.send_str(raw)
        else:  # zlib-stream: one shared deflate context, each payload ends with a sync flush
            data = self.deflate.compress(raw.encode()) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
            await self.ws.send_bytes(data)

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        self.seq += 1
        await self.send({"op": 0, "t": event, "s": self.seq, "d": data})


@dataclass
class DiscordAPI:
    token: str = "stand-in.discord-bot-token." + "x" * 20
    url: str = ""
    calls: list[Call] = field(default_factory=list)
    identifies: list[dict[str, Any]] = field(default_factory=list)
    commands: dict[int | None, list[dict[str, Any]]] = field(default_factory=dict)
    interactions: dict[int, Interaction] = field(default_factory=dict)
    messages: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # channel → sent
    dms_closed: set[int] = field(default_factory=set)
    dm_channels: dict[int, int] = field(default_factory=dict)  # user → DM channel
    rate_limited: int = 0  # this many message POSTs get a 429 first
    retry_after: float = 0.3
    gateways: list[Gateway] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _nonces: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    uploads: dict[str, bytes] = field(default_factory=dict)  # attachment id → bytes
    fetched: list[str] = field(default_factory=list)  # attachment ids the bot downloaded

    # ------------------------------------------------------------ ids and state

    def snowflake(self) -> int:
        # a plausible id: milliseconds since the Discord epoch shifted, plus a counter
        return ((int(time.time() * 1000) - 1420070400000) << 22) + next(self._ids)

    @property
    def api_url(self) -> str:
        return self.url + API

    @property
    def gateway_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/gateway"

    def sent(self, method: str, pattern: str) -> list[Call]:
        rx = re.compile(pattern)
        return [c for c in self.calls if c.method == method and rx.fullmatch(c.path)]

    def dms(self, user_id: int) -> list[dict[str, Any]]:
        channel = self.dm_channels.get(user_id)
        return list(self.messages.get(channel, [])) if channel else []

    def channel(self, channel_id: int = CHANNEL_ID) -> list[dict[str, Any]]:
        return list(self.messages.get(channel_id, []))

    async def wait(self, what: Any, timeout: float = 15.0) -> None:
        """Until ``what()`` is true (the bot works concurrently with the test)."""
        deadline = time.monotonic() + timeout
        while not what():
            if time.monotonic() > deadline:
                raise AssertionError(f"stand-in waited {timeout}s; calls: {self._summary()}")
            await asyncio.sleep(0.01)

    def _summary(self) -> list[str]:
        return [f"{c.method} {c.path} {c.status}" for c in self.calls[-30:]]

    # ------------------------------------------------------------ pushing interactions

    def _member(self, user_id: int, roles: list[int]) -> dict[str, Any]:
        return {
            "user": user_payload(user_id),
            "roles": [str(r) for r in roles],
            "joined_at": _now(),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "permissions": "0",
        }

    def _attachment(self, up: Upload) -> dict[str, Any]:
        aid = str(self.snowflake())
        self.uploads[aid] = up.content
        url = f"{self.url}/cdn/{aid}/{up.filename}"
        return {
            "id": aid,
            "filename": up.filename,
            "size": len(up.content) if up.size is None else up.size,
            "url": url,
            "proxy_url": url,
            "content_type": up.content_type,
            "ephemeral": True,
        }

    async def cdn(self, request: web.Request) -> web.Response:
        content = self.uploads.get(request.match_info["id"])
        if content is None:
            return web.Response(status=404)
        self.fetched.append(request.match_info["id"])
        return web.Response(body=content, content_type="application/octet-stream")

    def _options(
        self, options: dict[str, Any], focused: str | None, resolved: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        out = []
        for name, value in options.items():
            if isinstance(value, Upload):
                att = self._attachment(value)
                if resolved is not None:
                    resolved.setdefault("attachments", {})[att["id"]] = att
                out.append({"name": name, "type": 11, "value": att["id"]})
                continue
            opt: dict[str, Any] = {"name": name, "type": 3, "value": value}
            if name == focused:
                opt["focused"] = True
            out.append(opt)
        return out

    def _command(self, name: str, where: str, install: int) -> tuple[dict[str, Any], int | None]:
        """The synced command a member can use there, as Discord offers it: a server's own
        commands in that server through its install; global ones per their
        ``integration_types`` and ``contexts``."""
        if where == "guild" and install == GUILD_INSTALL:
            for c in self.commands.get(GUILD_ID, []):
                if c["name"] == name:
                    return c, GUILD_ID
        c = next((c for c in self.commands.get(None, []) if c["name"] == name), None)
        if c is None:
            if any(c["name"] == name for cs in self.commands.values() for c in cs):
                raise NotOffered(f"/{name} is a server command: not offered in {where}")
            raise AssertionError(f"/{name} was never synced")
        installs = c.get("integration_types") or DEFAULT_INSTALLS
        contexts = c.get("contexts") or DEFAULT_CONTEXTS
        if install not in installs or WHERE[where] not in contexts:
            kind = "user" if install == USER_INSTALL else "server"
            raise NotOffered(f"/{name} is not offered in {where} for a {kind} install")
        return c, None

    async def interact(
        self,
        command: str,
        options: dict[str, Any] | None = None,
        *,
        user_id: int = 7,
        roles: list[int] | None = None,
        in_guild: bool = True,
        focused: str | None = None,
        where: str | None = None,
        install: int = GUILD_INSTALL,
    ) -> Interaction:
        """Dispatch INTERACTION_CREATE for ``/command`` (type 4 when ``focused`` is set),
        used ``where`` (a key of :data:`WHERE`; default the bot's server, or its DM when not
        ``in_guild``) through a server or a user ``install``. :class:`NotOffered` if Discord
        would not show the command there."""
        await self.wait(self._connected)  # commands are synced before the gateway connects
        where = where or ("guild" if in_guild else "dm")
        if where in ("other guild", "private") and install != USER_INSTALL:
            raise NotOffered(f"only a user install reaches {where}")  # the bot is not there
        cmd, scope = self._command(command, where, install)
        resolved: dict[str, Any] = {}
        data: dict[str, Any] = {
            "id": cmd["id"],
            "name": command,
            "type": 1,
            "options": self._options(options or {}, focused, resolved),
        }
        if resolved:
            data["resolved"] = resolved
        if scope is not None:
            data["guild_id"] = str(scope)
        kind = AUTOCOMPLETE if focused else COMMAND
        return await self._dispatch(kind, data, user_id, roles, where, install)

    async def click(
        self,
        message: dict[str, Any],
        custom_id: str | None = None,
        *,
        user_id: int = 7,
        roles: list[int] | None = None,
    ) -> Interaction:
        """Dispatch INTERACTION_CREATE for a press on a button of ``message``, a message the
        bot sent to the guild channel: type 3, with the message as Discord sends it. Without
        ``custom_id`` the message's only button is pressed. As on Discord, only buttons the
        message carries can be pressed."""
        stored = next((m for m in self.channel(CHANNEL_ID) if m["id"] == message["id"]), None)
        assert stored is not None, "no such message in the channel"
        buttons = [
            c["custom_id"]
            for row in stored["components"]
            for c in row.get("components") or []
            if c.get("type") == 2 and "custom_id" in c
        ]
        if custom_id is None:
            (custom_id,) = buttons
        assert custom_id in buttons, f"the message has no button {custom_id!r}"
        data = {"custom_id": custom_id, "component_type": 2}
        return await self._dispatch(
            COMPONENT, data, user_id, roles, "guild", GUILD_INSTALL, _public(stored)
        )

    def _connected(self) -> bool:
        """A bot is on the gateway (one that left, e.g. restarted, does not count)."""
        return any(g.identified.is_set() and not g.ws.closed for g in self.gateways)

    def _place(
        self, where: str, install: int, user_id: int, roles: list[int] | None
    ) -> tuple[int, dict[str, Any]]:
        """The channel and the payload's fields of place and installation, as Discord sends
        them for an interaction ``where``: who authorised the app (the server, "0" in the
        bot's DM through a server install, or the member) and the context type."""
        owner = str(user_id) if install == USER_INSTALL else ("0" if where == "dm" else None)
        if where in ("guild", "other guild"):
            guild = GUILD_ID if where == "guild" else OTHER_GUILD_ID
            channel = CHANNEL_ID if where == "guild" else OTHER_CHANNEL_ID
            return channel, {
                "guild_id": str(guild),
                "guild_locale": "en-US",
                "guild": {"id": str(guild), "locale": "en-US", "features": []},
                "channel_id": str(channel),
                "channel": _text_channel(channel) | {"guild_id": str(guild), "permissions": "0"},
                "member": self._member(user_id, roles or []),
                "authorizing_integration_owners": {str(install): owner or str(guild)},
                "context": IN_GUILD,
            }
        if where == "dm":
            channel = self._dm_channel(user_id)
            raw = {"id": str(channel), "type": 1, "recipients": [user_payload(user_id)]}
        else:  # a group DM the member is in; the bot is not
            channel = self.snowflake()
            raw = {
                "id": str(channel),
                "type": 3,
                "name": "friends",
                "owner_id": str(user_id),
                "recipients": [user_payload(user_id), user_payload(user_id + 1, "bea")],
            }
        return channel, {
            "channel_id": str(channel),
            "channel": raw,
            "user": user_payload(user_id),
            "authorizing_integration_owners": {str(install): owner},
            "context": WHERE[where],
        }

    async def _dispatch(
        self,
        kind: int,
        data: dict[str, Any],
        user_id: int,
        roles: list[int] | None,
        where: str,
        install: int,
        message: dict[str, Any] | None = None,
    ) -> Interaction:
        await self.wait(self._connected)
        channel_id, place = self._place(where, install, user_id, roles)
        it = Interaction(self.snowflake(), secrets.token_urlsafe(48), user_id, channel_id, kind)
        self.interactions[it.id] = it
        payload: dict[str, Any] = {
            "id": str(it.id),
            "application_id": str(APP_ID),
            "type": kind,
            "data": data,
            "token": it.token,
            "version": 1,
            "app_permissions": "2248473465835073",
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
            **place,
        }
        if message is not None:
            payload["message"] = message
        for g in self.gateways:
            if g.identified.is_set() and not g.ws.closed:  # as _connected
                await g.dispatch("INTERACTION_CREATE", payload)
        return it

    async def replies(self, it: Interaction, n: int = 1, timeout: float = 15.0) -> list[Reply]:
        """The first ``n`` replies to an interaction, deferrals left out."""

        def shown() -> list[Reply]:
            return [r for r in it.replies if r.type != 5]

        await self.wait(lambda: len(shown()) >= n, timeout)
        return shown()

    async def reply(self, it: Interaction, timeout: float = 15.0) -> Reply:
        return (await self.replies(it, 1, timeout))[-1]

    async def choices(
        self,
        command: str,
        options: dict[str, Any],
        focused: str,
        timeout: float = 15.0,
        **kw: Any,
    ) -> Any:
        it = await self.interact(command, options, focused=focused, **kw)
        r = await self.reply(it, timeout)
        assert r.type == 8, r
        return r.data["choices"]

    # ------------------------------------------------------------ REST

    def _record(self, request: web.Request, body: Any, files: list[dict[str, Any]]) -> Call:
        call = Call(
            request.method,
            request.path.removeprefix(API),
            dict(request.query),
            body,
            files,
            time.monotonic(),
        )
        self.calls.append(call)
        return call

    async def _read(self, request: web.Request) -> tuple[Any, list[dict[str, Any]]]:
        if not request.can_read_body:
            return None, []
        if request.content_type.startswith("multipart/"):
            body, files = None, []
            reader = await request.multipart()
            async for part in reader:
                assert not isinstance(part, type(reader)), "nested multipart"
                data = await part.read()  # type: ignore[union-attr]
                if part.name == "payload_json":
                    body = json.loads(data)
                else:
                    files.append({"field": part.name, "filename": part.filename, "content": data})
            return body, files
        return await request.json(), []

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bot {self.token}"

    @staticmethod
    def _error(status: int, code: int, message: str) -> web.Response:
        return _json({"code": code, "message": message}, status=status)

    async def rest(self, request: web.Request) -> web.StreamResponse:
        body, files = await self._read(request)
        call = self._record(request, body, files)
        path = call.path
        webhook = path.startswith(("/webhooks/", "/interactions/"))
        if not webhook and not self._authorised(request):
            call.status = 401
            return self._error(401, 0, "401: Unauthorized")
        response = await self._route(request.method, path, body, files, request)
        call.status = response.status
        return response

    async def _route(
        self,
        method: str,
        path: str,
        body: Any,
        files: list[dict[str, Any]],
        request: web.Request,
    ) -> web.Response:
        parts = path.strip("/").split("/")
        if (method, path) == ("GET", "/users/@me"):
            return _json(BOT_USER)
        if (method, path) == ("GET", "/oauth2/applications/@me"):
            return _json(self._application())
        if (method, path) == ("GET", "/gateway/bot"):
            return _json(
                {
                    "url": self.gateway_url,
                    "shards": 1,
                    "session_start_limit": {
                        "total": 1000,
                        "remaining": 999,
                        "reset_after": 0,
                        "max_concurrency": 1,
                    },
                }
            )
        if method == "PUT" and parts[0] == "applications" and parts[-1] == "commands":
            guild = int(parts[3]) if len(parts) == 5 else None
            return self._sync(guild, body)
        if method == "POST" and parts[0] == "interactions" and parts[-1] == "callback":
            return self._callback(int(parts[1]), parts[2], body, files)
        if parts[0] == "webhooks" and len(parts) >= 3:
            return self._webhook(method, parts, body, files)
        if (method, path) == ("POST", "/users/@me/channels"):
            uid = int(body["recipient_id"])
            return _json(
                {
                    "id": str(self._dm_channel(uid)),
                    "type": 1,
                    "last_message_id": None,
                    "recipients": [user_payload(uid)],
                }
            )
        if method == "POST" and parts[0] == "channels" and parts[-1] == "messages":
            return self._message(int(parts[1]), body, files)
        return self._error(404, 0, f"404: Not Found ({method} {path})")

    def _application(self) -> dict[str, Any]:
        return {
            "id": str(APP_ID),
            "name": "spacescribe",
            "icon": None,
            "description": "",
            "rpc_origins": [],
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": user_payload(1, "owner"),
            "summary": "",
            "verify_key": "0" * 64,
            "team": None,
            "flags": 0,
            "interactions_endpoint_url": None,
            "bot": BOT_USER,
        }

    def _dm_channel(self, user_id: int) -> int:
        if user_id not in self.dm_channels:
            self.dm_channels[user_id] = self.snowflake()
        return self.dm_channels[user_id]

    # -- commands

    def _sync(self, guild: int | None, body: Any) -> web.Response:
        """Bulk overwrite, refusing what Discord refuses (names, descriptions, option order)."""
        problems = []
        for cmd in body:
            problems += self._validate(cmd)
        if problems:
            return _json(
                {"code": 50035, "message": "Invalid Form Body", "errors": problems}, status=400
            )
        out = []
        for cmd in body:
            stored = {
                **cmd,
                "id": str(self.snowflake()),
                "application_id": str(APP_ID),
                "version": str(self.snowflake()),
            }
            if cmd.get("default_member_permissions") is not None:  # a string, as Discord answers
                stored["default_member_permissions"] = str(cmd["default_member_permissions"])
            if guild is not None:
                stored["guild_id"] = str(guild)
            out.append(stored)
        self.commands[guild] = out
        return _json(out)

    @staticmethod
    def _validate(cmd: dict[str, Any]) -> list[str]:
        name = cmd.get("name", "")
        problems = []
        if not _COMMAND_NAME.match(name) or name != name.lower():
            problems.append(f"{name}: bad name")
        if not 1 <= len(cmd.get("description") or "") <= 100:
            problems.append(f"{name}: description must be 1-100 characters")
        options = cmd.get("options") or []
        if len(options) > 25:
            problems.append(f"{name}: more than 25 options")
        seen_optional = False
        for opt in options:
            if not 1 <= len(opt.get("description") or "") <= 100 or opt["description"] == "…":
                problems.append(f"{name}.{opt.get('name')}: no description")
            if opt.get("required"):
                if seen_optional:
                    problems.append(f"{name}.{opt['name']}: required after optional")
            else:
                seen_optional = True
            if opt.get("autocomplete") and opt.get("choices"):
                problems.append(f"{name}.{opt['name']}: autocomplete and choices")
        # where it is offered: null (Discord's defaults) or a list of known values, each once
        for key, allowed in (
            ("integration_types", {GUILD_INSTALL, USER_INSTALL}),
            ("contexts", {IN_GUILD, BOT_DM, PRIVATE_CHANNEL}),
        ):
            values = cmd.get(key)
            if values is None:
                continue
            if not isinstance(values, list) or not values:
                problems.append(f"{name}.{key}: a non-empty list or null")
            elif any(type(v) is not int or v not in allowed for v in values):
                problems.append(f"{name}.{key}: value must be one of {sorted(allowed)}")
            elif len(set(values)) != len(values):
                problems.append(f"{name}.{key}: duplicate values")
        return problems

    # -- interactions

    def _message_payload(
        self,
        channel_id: int,
        body: dict[str, Any],
        files: list[dict[str, Any]],
        **extra: Any,
    ) -> dict[str, Any]:
        return {
            "id": str(self.snowflake()),
            "channel_id": str(channel_id),
            "author": BOT_USER,
            "content": body.get("content") or "",
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [
                {
                    "id": str(self.snowflake()),
                    "filename": f["filename"],
                    "size": len(f["content"]),
                    "url": f"{self.url}/attachments/{f['filename']}",
                    "proxy_url": f"{self.url}/attachments/{f['filename']}",
                }
                for f in files
            ],
            "embeds": body.get("embeds") or [],
            "components": _numbered(body.get("components") or []),
            "pinned": False,
            "type": 0,
            "flags": int(body.get("flags") or 0),
            **extra,
        }

    def _callback(
        self, iid: int, token: str, body: dict[str, Any], files: list[dict[str, Any]]
    ) -> web.Response:
        it = self.interactions.get(iid)
        if it is None or it.token != token:
            return self._error(404, 10062, "Unknown interaction")
        if it.acknowledged:
            return self._error(400, 40060, "Interaction has already been acknowledged.")
        kind = int(body["type"])
        if kind not in CALLBACKS_FOR[it.type]:
            return _json(
                {
                    "code": 50035,
                    "message": "Invalid Form Body",
                    "errors": {"type": f"callback type {kind} for interaction type {it.type}"},
                },
                status=400,
            )
        it.acknowledged = True
        data = body.get("data") or {}
        it.replies.append(Reply("callback", kind, data, files))
        answer: dict[str, Any] = {
            "interaction": {
                "id": str(iid),
                "type": it.type,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(int(data.get("flags") or 0) & EPHEMERAL),
            }
        }
        if kind in (4, 5):
            msg = self._message_payload(it.channel_id, data, files)
            answer["interaction"]["response_message_id"] = msg["id"]
            answer["resource"] = {"type": kind, "message": msg}
        return _json(answer)

    def _by_token(self, token: str) -> Interaction | None:
        return next((i for i in self.interactions.values() if i.token == token), None)

    def _webhook(
        self, method: str, parts: list[str], body: Any, files: list[dict[str, Any]]
    ) -> web.Response:
        it = self._by_token(parts[2])
        if it is None or int(parts[1]) != APP_ID:
            return self._error(404, 10015, "Unknown Webhook")
        if not it.acknowledged:
            return self._error(404, 10015, "Unknown Webhook")  # as Discord: no followup yet
        how = "followup" if method == "POST" else "edit"
        it.replies.append(Reply(how, None, body or {}, files))
        return _json(
            self._message_payload(it.channel_id, body or {}, files, webhook_id=str(APP_ID))
        )

    # -- messages

    def _message(self, channel_id: int, body: Any, files: list[dict[str, Any]]) -> web.Response:
        if self.rate_limited > 0:
            self.rate_limited -= 1
            return _json(
                {
                    "message": "You are being rate limited.",
                    "retry_after": self.retry_after,
                    "global": False,
                },
                status=429,
                headers={
                    "Retry-After": str(max(1, round(self.retry_after))),
                    "X-RateLimit-Limit": "5",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset-After": str(self.retry_after),
                    "X-RateLimit-Bucket": "stand-in-messages",
                    "X-RateLimit-Scope": "user",
                    "Via": "1.1 google",
                },
            )
        owner = next((u for u, c in self.dm_channels.items() if c == channel_id), None)
        if owner is not None and owner in self.dms_closed:
            return self._error(403, 50007, "Cannot send messages to this user")
        nonce = body.get("nonce")
        if nonce and body.get("enforce_nonce") and (channel_id, nonce) in self._nonces:
            return _json(self._nonces[(channel_id, nonce)])
        msg = self._message_payload(channel_id, body, files, nonce=nonce)
        msg["_files"] = files  # kept for assertions; Discord would serve them from its CDN
        self.messages.setdefault(channel_id, []).append(msg)
        if nonce:
            self._nonces[(channel_id, nonce)] = _public(msg)
        return _json(_public(msg))

    # ------------------------------------------------------------ gateway

    async def gateway(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        if q.get("v") != "10" or q.get("encoding") != "json":
            return web.Response(status=400, text="v=10&encoding=json expected")
        if q.get("compress") not in (None, "zlib-stream"):
            return web.Response(status=400, text="unsupported compression")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        g = Gateway(ws, q.get("compress") == "zlib-stream")
        self.gateways.append(g)
        await g.send({"op": 10, "d": {"heartbeat_interval": 41250}})
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            data = json.loads(msg.data)
            if data["op"] == 1:
                g.heartbeats += 1
                await g.send({"op": 11})
            elif data["op"] == 2:
                if data["d"].get("token") != self.token:
                    await ws.close(code=4004, message=b"Authentication failed.")
                    break
                self.identifies.append(data["d"])
                await self._ready(g, int(data["d"].get("intents") or 0))
            elif data["op"] == 6:
                await g.dispatch("RESUMED", {})
                g.identified.set()
        return ws

    async def _ready(self, g: Gateway, intents: int) -> None:
        await g.dispatch(
            "READY",
            {
                "v": 10,
                "user": BOT_USER,
                "guilds": [{"id": str(GUILD_ID), "unavailable": True}],
                "session_id": secrets.token_hex(16),
                "resume_gateway_url": self.gateway_url,
                "application": {"id": str(APP_ID), "flags": 0},
                "private_channels": [],
            },
        )
        if intents & INTENT_GUILDS:
            await g.dispatch("GUILD_CREATE", self._guild())
        g.identified.set()

    def _guild(self) -> dict[str, Any]:
        def role(rid: int, name: str, perms: str) -> dict[str, Any]:
            return {
                "id": str(rid),
                "name": name,
                "permissions": perms,
                "position": 0 if rid == GUILD_ID else 1,
                "color": 0,
                "hoist": False,
                "managed": False,
                "mentionable": False,
                "flags": 0,
            }

        return {
            "id": str(GUILD_ID),
            "name": "Stand-in server",
            "owner_id": "1",
            "unavailable": False,
            "member_count": 3,
            "large": False,
            "joined_at": _now(),
            "features": [],
            "roles": [role(GUILD_ID, "@everyone", "0"), role(ADMIN_ROLE_ID, "ops", "8")],
            "channels": [_text_channel(CHANNEL_ID)],
            "members": [],
            "threads": [],
            "emojis": [],
            "stickers": [],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }


def _text_channel(channel_id: int) -> dict[str, Any]:
    return {
        "id": str(channel_id),
        "type": 0,
        "name": "general",
        "position": 0,
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": None,
        "topic": None,
    }


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON as Discord sends it: exactly ``application/json`` (discord.py reads nothing else)."""
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def _numbered(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Components as Discord returns them: each with a numeric ``id``, in order, unless the
    bot chose one."""
    ids = itertools.count(1)

    def walk(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for c in items:
            c = {**c, "id": c.get("id") or next(ids)}
            if "components" in c:
                c["components"] = walk(c["components"])
            out.append(c)
        return out

    return walk(components)


def _public(msg: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in msg.items() if k != "_files"}


@asynccontextmanager
async def discord_api(api: DiscordAPI | None = None) -> AsyncIterator[DiscordAPI]:
    api = api or DiscordAPI()
    app = web.Application(client_max_size=32 * 1024 * 1024)
    app.router.add_get("/gateway", api.gateway)
    app.router.add_get("/cdn/{id}/{filename}", api.cdn)
    app.router.add_route("*", API + "/{tail:.*}", api.rest)
    async with serve(app) as url:
        api.url = url
        try:
            yield api
        finally:
            for g in api.gateways:
                if not g.ws.closed:
                    await g.ws.close()
