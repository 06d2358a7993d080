"""A Telegram Bot API stand-in that python-telegram-bot talks to through its base_url.

Implements getMe, getUpdates (long polling), sendMessage, sendDocument, sendPhoto, setMyCommands,
setWebhook, deleteWebhook; feeds updates the tests push and records every call. Users
can be marked as having blocked the bot (403) and a number of 429 answers can be queued.
As Telegram does, an update is kept until a later ``getUpdates`` confirms it with a higher
``offset``, so an answer lost on the way (a dropped connection) does not lose the update.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.stand_ins.http import serve

BOT = {
    "id": 4242,
    "is_bot": True,
    "first_name": "Spacescribe",
    "username": "spacescribe_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}


@dataclass
class BotAPI:
    token: str = "4242:stand-in-token-abcdefghijklmnopqrstuvwxyz"
    updates: list[dict[str, Any]] = field(default_factory=list)  # not yet confirmed
    _new_update: asyncio.Event = field(default_factory=asyncio.Event)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    blocked: set[str] = field(default_factory=set)
    rate_limited: int = 0
    url: str = ""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def sent(self, method: str) -> list[dict[str, Any]]:
        return [p for m, p in self.calls if m == method]

    def command(
        self, text: str, user_id: int = 7, chat_id: int | None = None, chat_type: str = "private"
    ) -> None:
        """A member sends ``text``: the bot receives it by long polling."""
        self.updates.append(self.update(text, user_id, chat_id, chat_type))
        self._new_update.set()

    def update(
        self, text: str, user_id: int = 7, chat_id: int | None = None, chat_type: str = "private"
    ) -> dict[str, Any]:
        """The Update object Telegram sends for a message (polled or posted to a webhook)."""
        uid = next(self._ids)
        cmd = text.split()[0]
        return {
            "update_id": uid,
            "message": {
                "message_id": uid,
                "date": int(time.time()),
                "text": text,
                "from": {
                    "id": user_id,
                    "is_bot": False,
                    "first_name": "Ann",
                    "username": "ann",
                },
                "chat": {"id": chat_id or user_id, "type": chat_type, "title": "group"}
                if chat_type != "private"
                else {"id": user_id, "type": "private", "first_name": "Ann"},
                "entities": [{"type": "bot_command", "offset": 0, "length": len(cmd)}],
            },
        }

    async def wait_for(self, method: str, n: int = 1, timeout: float = 15) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.sent(method)) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {method} after {timeout}s: {self.calls}")
            await asyncio.sleep(0.02)
        return self.sent(method)

    def _message(self, chat_id: Any, **extra: Any) -> dict[str, Any]:
        return {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": {"id": int(chat_id), "type": "private"},
            **extra,
        }

    async def handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        params: dict[str, Any] = {}
        if request.content_type == "application/json":
            params = await request.json()
        else:
            form = await request.post()
            for k, v in form.items():
                if isinstance(v, str):
                    try:
                        params[k] = json.loads(v)
                    except ValueError:
                        params[k] = v
                else:
                    raw = v.file.read()
                    params[k] = {
                        "filename": v.filename,
                        "size": len(raw),
                        "content": raw.decode(errors="replace"),
                    }
        if method != "getUpdates":
            self.calls.append((method, params))
        ok = lambda result: web.json_response({"ok": True, "result": result})  # noqa: E731
        if method == "getMe":
            return ok(BOT)
        if method in ("deleteWebhook", "setMyCommands", "setWebhook"):
            return ok(True)
        if method == "getUpdates":
            offset = int(params.get("offset") or 0)
            self.updates[:] = [u for u in self.updates if u["update_id"] >= offset]
            if not self.updates:
                self._new_update.clear()
                wait = min(float(params.get("timeout", 1) or 1), 1.0)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._new_update.wait(), timeout=wait)
            return ok(self.updates[:1])
        if method in ("sendMessage", "sendDocument", "sendPhoto"):
            chat = str(params.get("chat_id"))
            if chat in self.blocked:
                return web.json_response(
                    {
                        "ok": False,
                        "error_code": 403,
                        "description": "Forbidden: bot was blocked by the user",
                    },
                    status=403,
                )
            if self.rate_limited:
                self.rate_limited -= 1
                return web.json_response(
                    {
                        "ok": False,
                        "error_code": 429,
                        "description": "Too Many Requests: retry after 3",
                        "parameters": {"retry_after": 3},
                    },
                    status=429,
                )
            if method == "sendPhoto":
                return ok(
                    self._message(
                        chat,
                        photo=[
                            {"file_id": "p1", "file_unique_id": "p1", "width": 800, "height": 400}
                        ],
                    )
                )
            if method == "sendDocument":
                return ok(
                    self._message(
                        chat,
                        document={
                            "file_id": "f1",
                            "file_unique_id": "u1",
                            "file_name": "transcript.md",
                        },
                    )
                )
            return ok(self._message(chat, text=params.get("text", "")))
        return web.json_response(
            {"ok": False, "error_code": 404, "description": f"Not Found: {method}"}, status=404
        )


@asynccontextmanager
async def bot_api() -> AsyncIterator[BotAPI]:
    api = BotAPI()
    app = web.Application()
    app.router.add_route("*", "/bot{token}/{method}", api.handle)
    async with serve(app) as url:
        api.url = url
        yield api
