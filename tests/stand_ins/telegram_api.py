"""A Telegram Bot API stand-in that python-telegram-bot talks to through its base_url.

Implements getMe, getUpdates (long polling), sendMessage, sendDocument, sendPhoto, setMyCommands,
setWebhook, deleteWebhook, answerCallbackQuery, the Telegram Stars payments API (sendInvoice,
answerPreCheckoutQuery, refundStarPayment), and files members send: ``getFile`` and the
download at ``/file/bot<token>/<file_path>`` (refused above 20 MB, as the cloud Bot API does);
feeds updates the tests push and records every call. Inline mode: with ``inline`` on (BotFather
``/setinline``; ``getMe`` says so) :meth:`BotAPI.inline_query` sends an ``inline_query``
update and ``answerInlineQuery`` is checked as Telegram does (a known query answered once, at
most 50 results with unique ids of 1-64 bytes, articles with a title and a 1-4096 character
message whose HTML parses, buttons with a valid URL or callback data).
:meth:`BotAPI.checkout` pays an invoice the way Telegram does: a ``pre_checkout_query``, then,
only if the bot answered ok, a ``successful_payment`` message. Users
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
from html.parser import HTMLParser
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
    "supports_inline_queries": True,
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
    charges: dict[str, int] = field(default_factory=dict)  # Stars charge id → payer id
    refunded: set[str] = field(default_factory=set)
    files: dict[str, bytes] = field(default_factory=dict)  # file_id → what the member sent
    downloads: list[str] = field(default_factory=list)  # file_paths fetched by the bot
    inline: bool = True  # inline mode on (BotFather /setinline)
    inline_queries: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → answer or {}

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

    def upload_update(
        self,
        content: bytes,
        caption: str,
        user_id: int = 7,
        file_name: str = "recording.m4a",
        kind: str = "document",
        mime_type: str = "audio/mp4",
        file_size: int | None = None,
    ) -> dict[str, Any]:
        """A member sends a file (``document``, ``audio`` or ``voice``) with a caption, as
        Telegram delivers it: the file is only an id the bot fetches with ``getFile``.
        ``file_size`` overrides the announced size (Telegram's own figure)."""
        uid = next(self._ids)
        file_id = f"file{uid:04d}"
        self.files[file_id] = content
        media: dict[str, Any] = {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_size": len(content) if file_size is None else file_size,
            "mime_type": mime_type,
        }
        if kind == "voice":
            media["duration"] = 1
        else:
            media["file_name"] = file_name
        if kind == "audio":
            media["duration"] = 1
        cmd = caption.split()[0] if caption.split() else ""
        return {
            "update_id": uid,
            "message": {
                "message_id": uid,
                "date": int(time.time()),
                "from": self._user(user_id),
                "chat": {"id": user_id, "type": "private", "first_name": "Ann"},
                kind: media,
                "caption": caption,
                "caption_entities": [{"type": "bot_command", "offset": 0, "length": len(cmd)}]
                if cmd.startswith("/")
                else [],
            },
        }

    def upload(self, content: bytes, caption: str, user_id: int = 7, **kw: Any) -> None:
        self._push(self.upload_update(content, caption, user_id, **kw))

    async def file(self, request: web.Request) -> web.Response:
        """A file the bot fetches with the ``file_path`` getFile gave it."""
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        content = self.files.get(path.rsplit("/", 1)[-1])
        if content is None:
            return web.Response(status=404)
        self.downloads.append(path)
        return web.Response(body=content, content_type="application/octet-stream")

    def _push(self, update: dict[str, Any]) -> dict[str, Any]:
        self.updates.append(update)
        self._new_update.set()
        return update

    @staticmethod
    def _user(user_id: int) -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": "Ann", "username": "ann"}

    def press_update(self, data: str, user_id: int = 7) -> dict[str, Any]:
        """The Update for a press on an inline button whose callback data is ``data``."""
        uid = next(self._ids)
        return {
            "update_id": uid,
            "callback_query": {
                "id": f"cb{uid}",
                "from": self._user(user_id),
                "chat_instance": "ci1",
                "data": data,
                "message": {
                    "message_id": uid,
                    "date": int(time.time()),
                    "chat": {"id": user_id, "type": "private", "first_name": "Ann"},
                    "text": "quote",
                },
            },
        }

    def press(self, data: str, user_id: int = 7) -> None:
        self._push(self.press_update(data, user_id))

    def pre_checkout_update(
        self, payload: str, total_amount: int, user_id: int = 7, currency: str = "XTR"
    ) -> dict[str, Any]:
        """What Telegram sends when the member confirms an invoice, before charging."""
        uid = next(self._ids)
        return {
            "update_id": uid,
            "pre_checkout_query": {
                "id": f"pcq{uid}",
                "from": self._user(user_id),
                "currency": currency,
                "total_amount": total_amount,
                "invoice_payload": payload,
            },
        }

    def payment_update(
        self,
        payload: str,
        total_amount: int,
        user_id: int = 7,
        charge_id: str | None = None,
        currency: str = "XTR",
    ) -> dict[str, Any]:
        """The service message Telegram sends once the Stars are charged."""
        uid = next(self._ids)
        charge = charge_id or f"stxCharge{uid:06d}"
        self.charges[charge] = user_id
        return {
            "update_id": uid,
            "message": {
                "message_id": uid,
                "date": int(time.time()),
                "from": self._user(user_id),
                "chat": {"id": user_id, "type": "private", "first_name": "Ann"},
                "successful_payment": {
                    "currency": currency,
                    "total_amount": total_amount,
                    "invoice_payload": payload,
                    "telegram_payment_charge_id": charge,
                    "provider_payment_charge_id": "",
                },
            },
        }

    def inline_query_update(
        self, query: str, user_id: int = 7, chat_type: str = "supergroup"
    ) -> dict[str, Any]:
        """What Telegram sends while a member types ``@bot <query>`` in a chat of
        ``chat_type`` (only to bots with inline mode on)."""
        assert self.inline, "inline mode is off: Telegram sends no inline queries"
        uid = next(self._ids)
        qid = f"iq{uid}"
        self.inline_queries[qid] = {}
        return {
            "update_id": uid,
            "inline_query": {
                "id": qid,
                "from": self._user(user_id),
                "query": query,
                "offset": "",
                "chat_type": chat_type,
            },
        }

    def inline_query(self, query: str, user_id: int = 7, chat_type: str = "supergroup") -> str:
        return str(
            self._push(self.inline_query_update(query, user_id, chat_type))["inline_query"]["id"]
        )

    async def inline_answer(self, query_id: str, timeout: float = 15) -> dict[str, Any]:
        """The bot's answerInlineQuery for that query (accepted by the checks)."""
        deadline = time.monotonic() + timeout
        while not self.inline_queries.get(query_id):
            if time.monotonic() > deadline:
                raise AssertionError(f"no answer to inline query {query_id}: {self.calls[-5:]}")
            await asyncio.sleep(0.02)
        return self.inline_queries[query_id]

    def _answer_inline(self, params: dict[str, Any]) -> str | None:
        """Telegram's checks of answerInlineQuery: the problem, or None when accepted."""
        qid = str(params.get("inline_query_id"))
        if self.inline_queries.get(qid) != {}:  # unknown, or answered already
            return "query is too old and response timeout expired or query ID is invalid"
        results = params.get("results")
        if not isinstance(results, list):
            return "can't parse inline query results"
        if len(results) > 50:
            return "RESULTS_TOO_MUCH"
        ids = [str(r.get("id", "")) for r in results]
        if any(not 1 <= len(i.encode()) <= 64 for i in ids):
            return "RESULT_ID_INVALID"
        if len(set(ids)) != len(ids):
            return "RESULT_ID_DUPLICATE"
        if not isinstance(params.get("cache_time", 0), int) or params.get("cache_time", 0) < 0:
            return 'field "cache_time" must be a non-negative Integer'
        for r in results:
            if r.get("type") != "article":
                return f"RESULT_TYPE_INVALID ({r.get('type')})"  # the only type spacescribe sends
            if not str(r.get("title") or "").strip():
                return "RESULT_TITLE_EMPTY"
            content = r.get("input_message_content") or {}
            text = str(content.get("message_text") or "")
            if not text.strip():
                return "MESSAGE_EMPTY"
            if len(text) > 4096:
                return "MESSAGE_TOO_LONG"
            if content.get("parse_mode") == "HTML" and (bad := _html_problem(text)):
                return f"can't parse entities: {bad}"
            for row in (r.get("reply_markup") or {}).get("inline_keyboard", []):
                for b in row:
                    kinds = [k for k in ("url", "callback_data", "switch_inline_query") if k in b]
                    if not b.get("text") or len(kinds) != 1:
                        return "BUTTON_TYPE_INVALID"
                    if "url" in b and not str(b["url"]).startswith(
                        ("https://", "http://", "tg://")
                    ):
                        return "BUTTON_URL_INVALID"
        self.inline_queries[qid] = params
        return None

    def answer_to(self, query_id: str) -> dict[str, Any] | None:
        return next(
            (
                p
                for p in self.sent("answerPreCheckoutQuery")
                if p["pre_checkout_query_id"] == query_id
            ),
            None,
        )

    async def checkout(
        self, invoice: dict[str, Any], user_id: int = 7, charge_id: str | None = None
    ) -> tuple[dict[str, Any], str | None]:
        """Pay a sent invoice as Telegram does: ask the bot (pre_checkout_query), wait for its
        answer (Telegram allows 10 s), and charge only if it said ok. Returns the answer and
        the charge id (None when refused)."""
        total = sum(int(p["amount"]) for p in invoice["prices"])
        q = self._push(
            self.pre_checkout_update(invoice["payload"], total, user_id, invoice["currency"])
        )
        qid = q["pre_checkout_query"]["id"]
        deadline = time.monotonic() + 10
        while (answer := self.answer_to(qid)) is None:
            if time.monotonic() > deadline:
                raise AssertionError("the bot did not answer the pre_checkout_query within 10 s")
            await asyncio.sleep(0.02)
        if not answer.get("ok"):
            return answer, None
        paid = self.payment_update(
            invoice["payload"], total, user_id, charge_id, invoice["currency"]
        )
        self._push(paid)
        return answer, paid["message"]["successful_payment"]["telegram_payment_charge_id"]

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

    @staticmethod
    def _bad(description: str) -> web.Response:
        return web.json_response(
            {"ok": False, "error_code": 400, "description": description}, status=400
        )

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
            return ok({**BOT, "supports_inline_queries": self.inline})
        if method == "answerInlineQuery":
            problem = self._answer_inline(params)
            return self._bad(f"Bad Request: {problem}") if problem else ok(True)
        if method in ("deleteWebhook", "setMyCommands", "setWebhook", "answerCallbackQuery"):
            return ok(True)
        if method == "answerPreCheckoutQuery":
            if not params.get("ok") and not params.get("error_message"):
                return self._bad("Bad Request: error_message is required when ok is false")
            return ok(True)
        if method == "sendInvoice":
            prices = params.get("prices") or []
            if params.get("currency") == "XTR" and (
                len(prices) != 1 or params.get("provider_token")
            ):
                return self._bad("Bad Request: STARS_INVOICE_INVALID")
            if not 1 <= len(str(params.get("payload", "")).encode()) <= 128:
                return self._bad("Bad Request: INVOICE_PAYLOAD_INVALID")
            invoice = {
                "title": params.get("title"),
                "description": params.get("description"),
                "start_parameter": "",
                "currency": params.get("currency"),
                "total_amount": sum(int(p["amount"]) for p in prices),
            }
            return ok(self._message(params.get("chat_id"), invoice=invoice))
        if method == "getFile":
            file_id = str(params.get("file_id"))
            content = self.files.get(file_id)
            if content is None:
                return self._bad("Bad Request: invalid file_id")
            if len(content) > 20 * 1024 * 1024:
                return self._bad("Bad Request: file is too big")
            return ok(
                {
                    "file_id": file_id,
                    "file_unique_id": f"u{file_id}",
                    "file_size": len(content),
                    "file_path": f"documents/{file_id}",
                }
            )
        if method == "refundStarPayment":
            charge = str(params.get("telegram_payment_charge_id"))
            if self.charges.get(charge) != int(params.get("user_id", 0)):
                return self._bad("Bad Request: CHARGE_NOT_FOUND")
            if charge in self.refunded:
                return self._bad("Bad Request: CHARGE_ALREADY_REFUNDED")
            self.refunded.add(charge)
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


_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre"}
_TAGS |= {"tg-spoiler", "span", "blockquote", "tg-emoji"}


def _html_problem(text: str) -> str | None:
    """What Telegram's HTML parse mode refuses: unknown or unbalanced tags, a bare ``<``."""

    class Check(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=False)  # entities apart from the text
            self.open: list[str] = []
            self.problem: str | None = None

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag not in _TAGS:
                self.problem = self.problem or f'unsupported start tag "{tag}"'
            self.open.append(tag)

        def handle_endtag(self, tag: str) -> None:
            if not self.open or self.open.pop() != tag:
                self.problem = self.problem or f'unexpected end tag "{tag}"'

        def handle_data(self, data: str) -> None:
            if "<" in data:  # a "<" that opens no tag
                self.problem = self.problem or 'unexpected "<"'

    c = Check()
    c.feed(text)
    c.close()
    if c.problem is None and c.open:
        return f'unclosed start tag "{c.open[-1]}"'
    return c.problem


@asynccontextmanager
async def bot_api() -> AsyncIterator[BotAPI]:
    api = BotAPI()
    app = web.Application()
    app.router.add_route("*", "/bot{token}/{method}", api.handle)
    app.router.add_get("/file/bot{token}/{path:.*}", api.file)
    async with serve(app) as url:
        api.url = url
        yield api
