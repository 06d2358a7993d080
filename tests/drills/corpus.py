"""The bad-input corpus: every case names its entry point, what is sent and the specific
error it must get (a phrase of the reply; for HTTP also the status and the error code).

Chat commands are ``(text, user)`` for Telegram and ``(command, options, user)`` for Discord;
HTTP cases build their request from the :class:`~tests.drills.bad_input_world.World` (ids,
tokens and signed payloads exist only once the world is set up); CLI cases are argv lists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.discord.conftest import ADMIN, ANN
from tests.drills.bad_input_world import (
    ELEVEN,
    FAILED,
    FOREIGN,
    FRESH,
    OWNED,
    OWNED_PENDING,
    OWNED_UNLOCKED,
    PAID_SPACE,
    PENDING,
    TG_ADMIN,
    TG_ANN,
    UNKNOWN,
    UNRECORDED,
    WEBHOOK_SECRET,
    World,
    header,
    now,
)
from tests.stand_ins.discord_api import USER_INSTALL, Upload

# ---------------------------------------------------------------- expected phrases (core's)
ONLY_X = "Only X (Twitter) Space links are accepted"
BAD_ID = "That link does not contain a valid Space id"
NOT_LINK = "That is not a Space link"
UNREADABLE = "That link could not be read"
LONG_LINK = "That link is too long"
NO_SPACE = "No Space given"
UNKNOWN_STATUS = "has not been requested yet"
UNRECORDED_MSG = "This Space ended without a replay"
NEEDS_TRANSCRIPT = "Chat needs the transcript first"
ALREADY_UNLOCKED = "Chat is already unlocked"
EMPTY_Q = "Ask a question"
LONG_Q = "the limit is 1000"
TOO_MANY = "at most 10 Spaces; you named 11"
TWICE = "is named twice"
NOT_HERE = "has not been transcribed here"
NOT_DONE = "is not transcribed yet"
NOT_BOUGHT = "You have not bought the transcript"
LOCKED = "Chat is not unlocked for Space"
NOT_READY = "is not ready yet"
FAILED_MSG = "failed: the recording could not be downloaded"
NOT_ADMIN = "Only the bot's admins can see revenue"
NOT_ANSWER_ID = "That is not an answer id"
BAD_FORMAT = "Unknown format"
NO_SUCH_ANSWER = "You have no answer with this id"
UNKNOWN_ANSWER = "0f8fad5b-d9cb-469f-a165-70867728950e"
PERIOD = "Period must be one of: day, week, month, all"
LONG_SEARCH = "Search with at most 200 characters"
EMPTY_SEARCH = "Search for some words"
# importing a recording (core.service.imports, core.pipeline.imported)
NOT_ADMIN_IMPORT = "Only the bot's admins can import recordings"
IMPORT_HOWTO = "with the caption"
DONE_ALREADY = "is already transcribed"
NO_FILE = "There is no file"
A_FOLDER = "is a folder, not an audio file"
EMPTY_FILE = "is empty"
NOT_AUDIO = "holds no audio stream"
TOO_BIG = "MB; an imported recording may be at most"
NOT_A_FILE = "is not a regular file"
# files on every machine that runs the drill (a CLI case is an argv list)
HERE = Path(__file__).resolve()
EMPTY = HERE.parent.parent / "__init__.py"  # tests/__init__.py: 0 bytes
# x402 / payments (core.payments.outcomes)
SIG = "The payment signature is not valid for this payer, token and chain."
AMOUNT = "The amount does not match the price."
RECIPIENT = "The payment is addressed to the wrong recipient."
TOKEN = "The payment is in the wrong token."
CHAIN = "The payment is for another chain."
EXPIRED_AUTH = "The payment authorization has expired."
EARLY_AUTH = "The payment authorization is not valid yet."
NONCE_USED = "This payment authorization was already used."
BROKE = "The paying wallet does not hold enough USDC."
SCHEME = "Only the x402 exact scheme on the configured chain is accepted."
UNREADABLE_PAYMENT = "The payment could not be read"

Send = Any


@dataclass(frozen=True)
class Req:
    method: str
    path: str
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    chunked: bool = False  # send the body without Content-Length


@dataclass(frozen=True)
class Case:
    entry: str
    name: str
    send: Send
    expect: str  # a phrase of the reply (the specific error)
    status: int | None = None  # HTTP status
    code: str | None = None  # HTTP error code ("error" or "code" field)


# ================================================================ Telegram commands

_LINKS = [  # (what, link, phrase): every way a "link" can be wrong
    ("other host", "https://evil.com/i/spaces/1RDxlAoOeQRKL", ONLY_X),
    ("loopback", "http://127.0.0.1/i/spaces/1RDxlAoOeQRKL", ONLY_X),
    ("metadata service", "http://169.254.169.254/latest/meta-data/", ONLY_X),
    ("file url", "file:///etc/passwd", ONLY_X),
    ("traversal", "../../etc/passwd", ONLY_X),
    ("encoded traversal", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", ONLY_X),
    ("traversal in path", "https://x.com/i/spaces/../../etc/passwd", BAD_ID),
    ("encoded traversal in path", "https://x.com/i/spaces/%2e%2e%2f%2e%2e", BAD_ID),
    ("not an id", "https://x.com/i/spaces/not-an-id", BAD_ID),
    ("not a Space page", "https://x.com/home", NOT_LINK),
    ("broadcast", "twitter.com/i/broadcasts/1RDxlAoOeQRKL", NOT_LINK),
    ("odd port", "https://x.com:8080/i/spaces/1RDxlAoOeQRKL", ONLY_X),
    ("credentials", "https://user:pw@x.com/i/spaces/1RDxlAoOeQRKL", ONLY_X),
    ("look-alike host", "https://x.com.evil.com/i/spaces/1RDxlAoOeQRKL", ONLY_X),
    ("userinfo trick", "https://x.com@127.0.0.1/i/spaces/1RDxlAoOeQRKL", ONLY_X),
    ("fragment trick", "https://127.0.0.1#@x.com/i/spaces/1RDxlAoOeQRKL", ONLY_X),
    ("javascript", "javascript:alert(1)", UNREADABLE),
    ("gopher", "gopher://x.com/i/spaces/1RDxlAoOeQRKL", ONLY_X),
    ("ipv6 loopback", "http://[::1]/i/spaces/1RDxlAoOeQRKL", ONLY_X),
    ("broken ipv6", "http://[::1", UNREADABLE),
    ("hex ip", "http://0x7f000001/i/spaces/1RDxlAoOeQRKL", ONLY_X),
    ("port out of range", "https://x.com:99999/i/spaces/1RDxlAoOeQRKL", UNREADABLE),
    ("12-character id", "1RDxlAoOeQRK", ONLY_X),
    ("14-character id", "1RDxlAoOeQRKLL", ONLY_X),
    ("over-long link", "https://x.com/i/spaces/" + "A" * 3000, LONG_LINK),
    ("cyrillic host", "https://\u0445.com/i/spaces/1RDxlAoOeQRKL", ONLY_X),
    ("fullwidth digit", "\uff11RDxlAoOeQRKL", ONLY_X),
    ("control char", "1RDxlAoOeQRKL\x00", ONLY_X),
    ("rtl override", "https://x.com/i/spaces/\u202e1RDxlAoOeQRKL", BAD_ID),
    ("zero-width space", "1RDxl\u200bAoOeQRKL", ONLY_X),
    ("sql", "'OR'1'='1", ONLY_X),
    ("html", "<script>alert(1)</script>", ONLY_X),
]


def _tg(name: str, text: str, expect: str, user: int = TG_ANN) -> Case:
    return Case("telegram", name, (text, user), expect)


TELEGRAM: list[Case] = [
    _tg("/transcribe without a link", "/transcribe", "Usage: /transcribe"),
    *[_tg(f"/transcribe {what}", f"/transcribe {link}", p) for what, link, p in _LINKS],
    _tg("/transcribe an unrecorded Space", f"/transcribe https://x.com/i/spaces/{UNRECORDED}",
        UNRECORDED_MSG),
    _tg("/transcribe a link then a loopback url", "/transcribe https://x.com/i/spaces/"
        "1RDxlAoOeQRKL\nhttp://127.0.0.1/", BAD_ID),
    _tg("/unlock without a Space", "/unlock", "Usage: /unlock"),
    _tg("/unlock traversal", "/unlock ../../etc/passwd", ONLY_X),
    _tg("/unlock metadata service", "/unlock http://169.254.169.254/", ONLY_X),
    _tg("/unlock file url", "/unlock file:///etc/shadow", ONLY_X),
    _tg("/unlock encoded traversal in path", "/unlock https://x.com/i/spaces/%2e%2e", BAD_ID),
    _tg("/unlock a foreign Space", f"/unlock {FOREIGN}", NEEDS_TRANSCRIPT),
    _tg("/unlock an unknown Space", f"/unlock {UNKNOWN}", NEEDS_TRANSCRIPT),
    _tg("/unlock twice", f"/unlock {OWNED_UNLOCKED}", ALREADY_UNLOCKED),
    _tg("/chat without arguments", "/chat", "Usage: /chat"),
    _tg("/chat without a Space", "/chat what was decided", "Usage: /chat"),
    _tg("/chat without a question", f"/chat {OWNED_UNLOCKED}", "Usage: /chat"),
    _tg("/chat traversal as Space", "/chat what ../../etc/passwd", "Usage: /chat"),
    _tg("/chat loopback url as Space", "/chat what http://127.0.0.1/i/spaces/1RDxlAoOeQRKL",
        "Usage: /chat"),
    _tg("/chat over-long question", f"/chat {'why ' * 300}{OWNED_UNLOCKED}", LONG_Q),
    _tg("/chat eleven Spaces", f"/chat what {' '.join(ELEVEN)}", TOO_MANY),
    _tg("/chat a Space twice", f"/chat what {OWNED_UNLOCKED} {OWNED_UNLOCKED}", TWICE),
    _tg("/chat an unknown Space", f"/chat what {UNKNOWN}", NOT_HERE),
    _tg("/chat a pending Space", f"/chat what {PENDING}", NOT_DONE),
    _tg("/chat a failed Space", f"/chat what {FAILED}", NOT_DONE),
    _tg("/chat a foreign Space", f"/chat what {FOREIGN}", NOT_BOUGHT),
    _tg("/chat a locked Space", f"/chat what {OWNED}", LOCKED),
    _tg("/chat a question of control characters", f"/chat \x00\x07\x1b {OWNED_UNLOCKED}",
        EMPTY_Q),
    _tg("/chat a question of invisible characters", f"/chat \u200b\u202e\u2060 {OWNED_UNLOCKED}",
        EMPTY_Q),
    _tg("/myspaces traversal", "/myspaces ../../etc/passwd srt", ONLY_X),
    _tg("/myspaces a format traversal", f"/myspaces {OWNED} ../../etc/passwd", BAD_FORMAT),
    _tg("/myspaces a foreign Space's subtitles", f"/myspaces {FOREIGN} srt", NOT_BOUGHT),
    _tg("/myspaces too many words", f"/myspaces {OWNED} srt more", "Usage: /myspaces"),
    _tg("/status without a Space", "/status", "Usage: /status"),
    _tg("/status an unknown Space", f"/status {UNKNOWN}", UNKNOWN_STATUS),
    _tg("/status traversal", "/status ../../etc/passwd", ONLY_X),
    _tg("/status encoded traversal", "/status %2e%2e%2f", ONLY_X),
    _tg("/status encoded traversal in path", "/status https://x.com/i/spaces/..%2f..%2fetc",
        BAD_ID),
    _tg("/status metadata service", "/status http://169.254.169.254/latest/meta-data/iam",
        ONLY_X),
    _tg("/status file url", "/status file:///etc/passwd", ONLY_X),
    _tg("/status sql", "/status 1ZZZZZZZZZZZ'--", ONLY_X),
    _tg("/search without words", "/search", "Usage: /search"),
    _tg("/search over-long", "/search " + "a" * 201, LONG_SEARCH),
    _tg("/search only punctuation", '/search !!! ??? *** "', EMPTY_SEARCH),
    _tg("/search only stop-words", "/search the and of", EMPTY_SEARCH),
    _tg("/search fts operators", "/search \"*\" ^ - : ( )", EMPTY_SEARCH),
    _tg("/start resend traversal", "/start resend_../../etc/passwd", ONLY_X),
    _tg("/start resend nothing", "/start resend_", NO_SPACE),
    _tg("/start resend encoded traversal", "/start resend_%2e%2e%2f", ONLY_X),
    _tg("/start resend loopback", "/start resend_http://127.0.0.1/x", ONLY_X),
    _tg("/start resend an unknown Space", f"/start resend_{UNKNOWN}", NOT_BOUGHT),
    _tg("/start resend a foreign Space", f"/start resend_{FOREIGN}", NOT_BOUGHT),
    _tg("/start resend a pending Space", f"/start resend_{OWNED_PENDING}", NOT_READY),
    _tg("/start resend a failed Space", f"/start resend_{FAILED}", FAILED_MSG),
    _tg("/start answer traversal", "/start answer_../../etc/passwd", NOT_ANSWER_ID),
    _tg("/start answer nothing", "/start answer_", NOT_ANSWER_ID),
    _tg("/start answer sql", "/start answer_'OR'1'='1", NOT_ANSWER_ID),
    _tg("/start answer control char", f"/start answer_{UNKNOWN_ANSWER[:-1]}\x00", NOT_ANSWER_ID),
    _tg("/start answer unknown", f"/start answer_{UNKNOWN_ANSWER}", NO_SUCH_ANSWER),
    _tg("/start buy traversal", "/start buy_../../etc/passwd", ONLY_X),
    _tg("/start buy nothing", "/start buy_", NO_SPACE),
    _tg("/start buy loopback", "/start buy_http://127.0.0.1/i/spaces/1RDxlAoOeQRKL", ONLY_X),
    _tg("/start buy sql", "/start buy_'OR'1'='1", ONLY_X),
    _tg("/start buy control char", "/start buy_1RDxlAoOeQRK\x00", ONLY_X),
    _tg("/revenue by a member", "/revenue", NOT_ADMIN),
    _tg("/revenue all by a member", "/revenue all", NOT_ADMIN),
    _tg("/revenue sql by a member", "/revenue 'OR'1'='1", NOT_ADMIN),
    _tg("/revenue unknown period", "/revenue year", PERIOD, TG_ADMIN),
    _tg("/revenue traversal", "/revenue ../../etc", PERIOD, TG_ADMIN),
    _tg("/revenue sql", "/revenue week;DROP TABLE spaces", PERIOD, TG_ADMIN),
    _tg("/revenue control char", "/revenue week\x00", PERIOD, TG_ADMIN),
    _tg("/import by a member", f"/import {UNKNOWN}", NOT_ADMIN_IMPORT),
    _tg("/import traversal by a member", "/import ../../etc/passwd", NOT_ADMIN_IMPORT),
    _tg("/import without a file", f"/import {UNKNOWN}", IMPORT_HOWTO, TG_ADMIN),
    _tg("/paysupport with arguments", "/paysupport ../../etc/passwd", "Payment support"),
    _tg("/terms with arguments", "/terms 'OR'1'='1", "Terms of sale"),
]  # fmt: skip


# ================================================================ Telegram Stars updates
# (update builder, the Bot API method that answers): a pre_checkout_query is answered by
# answerPreCheckoutQuery (ok=False, error_message), a "Pay with Stars" press by a message.

NOT_INVOICE = "That is not an invoice of this bot"
NOT_YOURS = "made for somebody else"
INV_EXPIRED = "This invoice has expired"
INV_PAID = "This invoice is already paid"
PRICE_CHANGED = "The price changed"
ONLY_STARS = "Only Telegram Stars (XTR)"
PAYER_TG = 55  # the bad-input world's invoices belong to this Telegram member


def _checkout(
    name: str, invoice: str | Callable[[World], str], stars: int, expect: str,
    user: int = PAYER_TG, currency: str = "XTR",
) -> Case:  # fmt: skip
    def build(w: World) -> dict[str, Any]:
        payload = invoice(w) if callable(invoice) else invoice
        return w.tg.pre_checkout_update(payload, stars, user, currency)

    return Case("telegram payments", f"pre-checkout {name}", (build, "answerPreCheckoutQuery"),
                expect)  # fmt: skip


def _press(
    name: str, data: str | Callable[[World], str], expect: str, user: int = PAYER_TG
) -> Case:
    def build(w: World) -> dict[str, Any]:
        return w.tg.press_update(data(w) if callable(data) else data, user)

    return Case("telegram payments", f"stars button {name}", (build, "sendMessage"), expect)


def _inv(state: str) -> Callable[[World], str]:
    return lambda w: w.invoices[state]


STARS: list[Case] = [
    _checkout("traversal payload", "../../etc/passwd", 15, NOT_INVOICE),
    _checkout("sql payload", "'OR'1'='1", 15, NOT_INVOICE),
    _checkout("over-long payload", "A" * 128, 15, NOT_INVOICE),
    _checkout("control char payload", "AAAAAAAAAAAAAAAAAAAAAAA\x00", 15, NOT_INVOICE),
    _checkout("unknown invoice", "NoSuchInvoice-0123456789ab", 15, NOT_INVOICE),
    _checkout("expired invoice", _inv("expired"), 15, INV_EXPIRED),
    _checkout("paid invoice", _inv("credited"), 15, INV_PAID),
    _checkout("someone else's invoice", _inv("open"), 15, NOT_YOURS, user=TG_ANN),
    _checkout("in another currency", _inv("open"), 15, ONLY_STARS, currency="USD"),
    _checkout("one Star", _inv("open"), 1, PRICE_CHANGED),
    _checkout("zero Stars", _inv("open"), 0, PRICE_CHANGED),
    _checkout("negative Stars", _inv("open"), -15, PRICE_CHANGED),
    _checkout("a billion Stars", _inv("open"), 10**9, PRICE_CHANGED),
    _press("traversal", "stars:../../etc/passwd", NOT_INVOICE),
    _press("without an invoice", "stars:", NOT_INVOICE),
    _press("sql", "stars:'OR'1'='1", NOT_INVOICE),
    _press("unknown invoice", "stars:NoSuchInvoice-0123456789ab", NOT_INVOICE),
    _press("someone else's invoice", lambda w: f"stars:{w.invoices['open']}", NOT_YOURS,
           user=TG_ANN),
    _press("expired invoice", lambda w: f"stars:{w.invoices['expired']}", INV_EXPIRED),
    _press("paid invoice", lambda w: f"stars:{w.invoices['credited']}", INV_PAID),
]  # fmt: skip


# ================================================================ Telegram inline queries
# "@bot <query>" in any chat (core.service.cards): answered by answerInlineQuery, never a
# message; a refusal is one result saying what is wrong, an unknown Space an offer to order.

NO_CONTROL = "Control characters are not allowed"
LONG_INLINE = "Type at most 256 characters"
EMPTY_INLINE = "Type a Space link, or words"


def _inline(name: str, query: str, expect: str) -> Case:
    return Case("telegram inline", name, query, expect)


INLINE: list[Case] = [
    *[_inline(f"link {what}", link, p) for what, link, p in _LINKS
      if len(link) <= 256 and " " not in link and ("/" in link or "." in link)
      and not any(ord(c) < 32 for c in link)],
    _inline("over-long", "https://x.com/i/spaces/" + "A" * 300, LONG_INLINE),
    _inline("NUL", "bitcoin\x00", NO_CONTROL),
    _inline("escape sequence", "\x1b[2J\x1b[H", NO_CONTROL),
    _inline("newline", "bitcoin\nweekly", NO_CONTROL),
    _inline("bell in a link", f"https://x.com/i/spaces/{UNKNOWN}\x07", NO_CONTROL),
    _inline("only punctuation", '!!! ??? *** "', EMPTY_INLINE),
    _inline("only stop-words", "the and of", EMPTY_INLINE),
    _inline("fts operators", '"*" ^ - : ( )', EMPTY_INLINE),
    _inline("html", "<b>", EMPTY_INLINE),
    _inline("unknown Space id", UNKNOWN, "Not requested yet"),
    _inline("unknown Space link", f"https://x.com/i/spaces/{UNKNOWN}", "Not requested yet"),
    _inline("no match", "zqxnothingmatches", "No Space matches"),
]  # fmt: skip


# ================================================================ Telegram uploads
# A file captioned "/import <space>" (an admin's recording): one message answers it.


def _upload(
    name: str, caption: str, expect: str, content: bytes = b"RIFF", user: int = TG_ADMIN,
    **kw: Any,
) -> Case:  # fmt: skip
    def build(w: World) -> dict[str, Any]:
        return w.tg.upload_update(content, caption, user, **kw)

    return Case("telegram uploads", name, (build, "sendMessage"), expect)


UPLOADS: list[Case] = [
    _upload("by a member", f"/import {UNKNOWN}", NOT_ADMIN_IMPORT, user=TG_ANN),
    _upload("traversal as Space", "/import ../../etc/passwd", ONLY_X),
    _upload("loopback as Space", "/import http://127.0.0.1/i/spaces/1RDxlAoOeQRKL", ONLY_X),
    _upload("no Space", "/import", NO_SPACE),
    _upload("a completed Space", f"/import {OWNED}", DONE_ALREADY),
    _upload("a text file", f"/import {UNKNOWN}", NOT_AUDIO, b"notes\n" * 300,
            file_name="notes.txt", mime_type="text/plain"),
    _upload("an empty file", f"/import {UNKNOWN}", EMPTY_FILE, b""),
    _upload("announced too big", f"/import {UNKNOWN}", TOO_BIG, file_size=10**10),
    _upload("traversal as file name", f"/import {UNKNOWN}", NOT_AUDIO, b"<html>",
            file_name="../../etc/passwd"),
]  # fmt: skip


# ================================================================ Telegram webhook (HTTP)


def _hook(
    name: str, body: Any, status: int, code: str, phrase: str, secret: str | None = WEBHOOK_SECRET,
    ctype: str = "application/json",
) -> Case:  # fmt: skip
    headers = {"content-type": ctype}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    raw = body if isinstance(body, bytes) else None
    return Case(
        "telegram webhook",
        name,
        lambda w: Req(
            "POST", "/telegram/webhook", json=None if raw else body, content=raw, headers=headers
        ),  # fmt: skip
        phrase,
        status,
        code,
    )


_UPDATE = {"update_id": 1, "message": {"message_id": 1, "date": 0, "chat": {"id": 7}}}
WEBHOOK: list[Case] = [
    _hook("no secret token", _UPDATE, 403, "forbidden", "Wrong secret token", secret=None),
    _hook("wrong secret token", _UPDATE, 403, "forbidden", "Wrong secret token", secret="nope"),
    _hook("secret token in other case", _UPDATE, 403, "forbidden", "Wrong secret token",
          secret=WEBHOOK_SECRET.upper()),
    _hook("secret token prefix", _UPDATE, 403, "forbidden", "Wrong secret token",
          secret=WEBHOOK_SECRET[:-1]),
    _hook("not json", b"update_id=1", 400, "invalid_update", "the body is not JSON"),
    _hook("json array", b"[1, 2]", 400, "invalid_update", "the body is not a JSON object"),
    _hook("no update_id", {"message": {}}, 400, "invalid_update", "it has no update_id"),
    _hook("update_id as text", {"update_id": "1"}, 400, "invalid_update", "it has no update_id"),
    _hook("form body", b"update_id=1", 400, "invalid_update", "must be sent as application/json",
          ctype="application/x-www-form-urlencoded"),
    _hook("oversized body", b'{"update_id": 1, "x": "' + b"a" * 70_000 + b'"}', 413,
          "invalid_update", "larger than"),
    _hook("malformed message", {"update_id": 3, "message": {"text": 5}}, 400, "invalid_update",
          "could not read it"),
    _hook("message as text", {"update_id": 4, "message": "hello"}, 400, "invalid_update",
          "could not read it"),
]  # fmt: skip


# ================================================================ Discord slash commands


def _dc(
    name: str, command: str, options: dict[str, Any], expect: str, user: int = ANN,
    where: str = "guild",
) -> Case:  # fmt: skip
    """``where``: the bot's server, or through a member's user install ("dm", "private",
    "other guild": a server that never added the bot)."""
    place = {} if where == "guild" else {"where": where, "install": USER_INSTALL}
    return Case("discord", name, (command, options, user, place), expect)


DISCORD: list[Case] = [
    *[_dc(f"/transcribe {what}", "transcribe", {"space": link}, p) for what, link, p in _LINKS
      if len(link) < 2000],
    _dc("/transcribe an unrecorded Space", "transcribe", {"space": UNRECORDED}, UNRECORDED_MSG),
    _dc("/transcribe blank", "transcribe", {"space": "   "}, NO_SPACE),
    _dc("/transcribe mention", "transcribe", {"space": "@everyone"}, ONLY_X),
    _dc("/unlock traversal", "unlock", {"space": "../../etc/passwd"}, ONLY_X),
    _dc("/unlock loopback", "unlock", {"space": "http://127.0.0.1:8080/i/spaces/x"}, ONLY_X),
    _dc("/unlock a foreign Space", "unlock", {"space": FOREIGN}, NEEDS_TRANSCRIPT),
    _dc("/unlock an unknown Space", "unlock", {"space": UNKNOWN}, NEEDS_TRANSCRIPT),
    _dc("/unlock twice", "unlock", {"space": OWNED_UNLOCKED}, ALREADY_UNLOCKED),
    _dc("/unlock markdown", "unlock", {"space": "**bold** <@1>"}, ONLY_X),
    _dc("/chat blank question", "chat", {"question": " ", "space1": OWNED_UNLOCKED}, EMPTY_Q),
    _dc("/chat control characters", "chat", {"question": "\x00\x1b", "space1": OWNED_UNLOCKED},
        EMPTY_Q),
    _dc("/chat over-long question", "chat", {"question": "why? " * 400, "space1": OWNED_UNLOCKED},
        LONG_Q),
    _dc("/chat a Space twice", "chat",
        {"question": "why?", "space1": OWNED_UNLOCKED, "space2": OWNED_UNLOCKED}, TWICE),
    _dc("/chat traversal as Space", "chat", {"question": "why?", "space1": "../../etc/passwd"},
        ONLY_X),
    _dc("/chat metadata service as Space", "chat",
        {"question": "why?", "space1": "http://169.254.169.254/"}, ONLY_X),
    _dc("/chat an unknown Space", "chat", {"question": "why?", "space1": UNKNOWN}, NOT_HERE),
    _dc("/chat a pending Space", "chat", {"question": "why?", "space1": PENDING}, NOT_DONE),
    _dc("/chat a foreign Space", "chat", {"question": "why?", "space1": FOREIGN}, NOT_BOUGHT),
    _dc("/chat a locked Space", "chat", {"question": "why?", "space1": OWNED}, LOCKED),
    _dc("/chat a locked second Space", "chat",
        {"question": "why?", "space1": OWNED_UNLOCKED, "space2": OWNED}, LOCKED),
    _dc("/status an unknown Space", "status", {"space": UNKNOWN}, UNKNOWN_STATUS),
    _dc("/status traversal", "status", {"space": "../../etc/passwd"}, ONLY_X),
    _dc("/status encoded traversal in path", "status",
        {"space": "https://x.com/i/spaces/..%2f..%2fetc"}, BAD_ID),
    _dc("/status file url", "status", {"space": "file:///etc/passwd"}, ONLY_X),
    _dc("/search blank", "search", {"words": "   "}, EMPTY_SEARCH),
    _dc("/search over-long", "search", {"words": "b" * 201}, LONG_SEARCH),
    _dc("/search stop-words", "search", {"words": "the of and"}, EMPTY_SEARCH),
    # the same rules through a user install, where the server never added the bot
    _dc("/transcribe traversal in a private channel", "transcribe",
        {"space": "../../etc/passwd"}, ONLY_X, where="private"),
    _dc("/transcribe loopback in another server", "transcribe",
        {"space": "http://127.0.0.1/i/spaces/1RDxlAoOeQRKL"}, ONLY_X, where="other guild"),
    _dc("/myspaces a foreign Space in a DM", "myspaces", {"space": FOREIGN}, NOT_BOUGHT,
        where="dm"),
    _dc("/chat a locked Space in a private channel", "chat",
        {"question": "why?", "space1": OWNED}, LOCKED, where="private"),
    _dc("/unlock a foreign Space in another server", "unlock", {"space": FOREIGN},
        NEEDS_TRANSCRIPT, where="other guild"),
    _dc("/myspaces traversal", "myspaces", {"space": "../../etc/passwd"}, ONLY_X),
    _dc("/myspaces a foreign Space", "myspaces", {"space": FOREIGN}, NOT_BOUGHT),
    _dc("/myspaces a pending Space", "myspaces", {"space": OWNED_PENDING}, NOT_READY),
    _dc("/myspaces a failed Space", "myspaces", {"space": FAILED}, FAILED_MSG),
    _dc("/myspaces a foreign Space's subtitles", "myspaces", {"space": FOREIGN, "format": "vtt"},
        NOT_BOUGHT),
    _dc("/myspaces a format traversal", "myspaces", {"space": OWNED, "format": "../../x"},
        BAD_FORMAT),
    _dc("/revenue by a member", "revenue", {"period": "all"}, NOT_ADMIN),
    _dc("/revenue unknown period", "revenue", {"period": "year"}, PERIOD, ADMIN),
    _dc("/revenue traversal", "revenue", {"period": "../../etc"}, PERIOD, ADMIN),
    _dc("/import by a member", "import", {"space": UNKNOWN, "attachment": Upload(b"RIFF")},
        NOT_ADMIN_IMPORT),
    _dc("/import traversal as Space", "import",
        {"space": "../../etc/passwd", "attachment": Upload(b"RIFF")}, ONLY_X, ADMIN),
    _dc("/import a completed Space", "import", {"space": OWNED, "attachment": Upload(b"RIFF")},
        DONE_ALREADY, ADMIN),
    _dc("/import a text file", "import",
        {"space": UNKNOWN, "attachment": Upload(b"notes\n" * 300, "notes.txt", "text/plain")},
        NOT_AUDIO, ADMIN),
    _dc("/import announced too big", "import",
        {"space": UNKNOWN, "attachment": Upload(b"RIFF", size=10**10)}, TOO_BIG, ADMIN),
    _dc("/import an empty file", "import", {"space": UNKNOWN, "attachment": Upload(b"")},
        EMPTY_FILE, ADMIN),
]  # fmt: skip


# ================================================================ HTTP API (x402 and /api)


def _api(
    name: str, build: Callable[[World], Req], status: int, code: str | None, phrase: str
) -> Case:
    return Case("http api", name, build, phrase, status, code)


def _post(path: str, body: Any, **kw: Any) -> Callable[[World], Req]:
    return lambda w: Req("POST", path, json=body, **kw)


def _paid(
    path: str, body: Any, payload: Callable[[World], Any], **kw: Any
) -> Callable[[World], Req]:
    return lambda w: Req(
        "POST", path, json=body, headers={"PAYMENT-SIGNATURE": header(payload(w))}, **kw
    )


def _get(path: str, **kw: Any) -> Callable[[World], Req]:
    return lambda w: Req("GET", path, **kw)


def _proof(
    space: str, *, signer: str = "stranger", address: str | None = None, ts: int | None = None,
    message_space: str | None = None, signature: str | None = None,
) -> Callable[[World], Req]:  # fmt: skip
    """GET the transcript with wallet-proof headers (EIP-191 over the transcript message)."""

    def build(w: World) -> Req:
        from eth_account import Account
        from eth_account.messages import encode_defunct

        from core.payments.wallet_proof import transcript_message

        acct = getattr(w, signer)
        t = now() if ts is None else ts
        msg = transcript_message(message_space or space, t)
        sig = (
            signature
            or "0x" + Account.sign_message(encode_defunct(text=msg), acct.key).signature.hex()
        )
        return Req(
            "GET",
            f"/api/spaces/{space}/transcript",
            headers={
                "X-Wallet-Address": address or acct.address,
                "X-Wallet-Timestamp": str(t),
                "X-Wallet-Signature": sig,
            },
        )

    return build


T, U, C = "/x402/transcribe", "/x402/unlock", "/x402/chat"
SP = {"space": FRESH}
ASK = {"question": "what was decided?", "spaces": [OWNED_UNLOCKED]}


def _forge(path: str, body: Any, phrase: str, name: str, kind: str = "transcription",
           **forge: Any) -> Case:  # fmt: skip
    def payload(w: World) -> Any:
        return w.forged(kind, **{k: (v(w) if callable(v) else v) for k, v in forge.items()})

    return _api(name, _paid(path, body, payload), 402, None, phrase)


def _signed(path: str, body: Any, phrase: str, name: str, kind: str = "transcription",
            status: int = 402, code: str | None = None, **sign: Any) -> Case:  # fmt: skip
    def payload(w: World) -> Any:
        args = {k: (v(w) if callable(v) else v) for k, v in sign.items()}
        return w.payload(kind, **args)

    return _api(name, _paid(path, body, payload), status, code, phrase)


HTTP_API: list[Case] = [
    # ------------------------------------------------ /api/spaces/{id}
    _api("space: unknown id", _get(f"/api/spaces/{UNKNOWN}"), 404, "unknown_space",
         UNKNOWN_STATUS),
    _api("space: short id", _get("/api/spaces/short"), 400, "invalid_space", "not a Space id"),
    _api("space: encoded traversal", _get("/api/spaces/..%2F..%2Fetc%2Fpasswd"), 400,
         "invalid_space", "not a Space id"),
    _api("space: encoded dots", _get("/api/spaces/%2e%2e"), 400, "invalid_space",
         "not a Space id"),
    _api("space: NUL", _get("/api/spaces/1RDxlAoOeQRK%00"), 400, "invalid_space",
         "not a Space id"),
    _api("space: html", _get("/api/spaces/%3Cscript%3E"), 400, "invalid_space", "not a Space id"),
    _api("space: trailing space", _get("/api/spaces/1RDxlAoOeQRKL%20"), 400, "invalid_space",
         "not a Space id"),
    _api("space: a link as id", _get("/api/spaces/x.com"), 400, "invalid_space",
         "not a Space id"),
    _api("space: over-long id", _get("/api/spaces/" + "A" * 3000), 400, "invalid_space",
         "not a Space id"),
    _api("space: unicode id", _get("/api/spaces/%EF%BC%91RDxlAoOeQRKL"), 400, "invalid_space",
         "not a Space id"),
    # ------------------------------------------------ /api/spaces/{id}/transcript
    _api("transcript: no proof headers", _get(f"/api/spaces/{OWNED_UNLOCKED}/transcript"), 402,
         None, "sign-in-with-x"),
    _api("transcript: address not an address", _proof(PAID_SPACE, address="0x1234"), 400,
         "invalid_wallet", "X-Wallet-Address is not an Ethereum address"),
    _api("transcript: stale timestamp", _proof(PAID_SPACE, ts=now() - 3600), 401,
         "stale_signature", "more than 5 minutes off"),
    _api("transcript: future timestamp", _proof(PAID_SPACE, ts=now() + 3600), 401,
         "stale_signature", "more than 5 minutes off"),
    _api("transcript: timestamp not a number", lambda w: Req(
        "GET", f"/api/spaces/{PAID_SPACE}/transcript", headers={
            "X-Wallet-Address": w.payer.address, "X-Wallet-Timestamp": "soon",
            "X-Wallet-Signature": "0x00"}), 422, "invalid_request", "x-wallet-timestamp"),
    _api("transcript: garbage signature", _proof(PAID_SPACE, signature="0xdeadbeef"), 401,
         "invalid_signature", "X-Wallet-Signature could not be verified"),
    _api("transcript: over-long signature", _proof(PAID_SPACE, signature="0x" + "ab" * 200),
         422, "invalid_request", "x-wallet-signature"),
    _api("transcript: signed by another wallet", lambda w: _proof(
        PAID_SPACE, signer="stranger", address=w.payer.address)(w), 401, "invalid_signature",
         "The signature is not from X-Wallet-Address"),
    _api("transcript: signature for another Space", _proof(
        PAID_SPACE, signer="payer", message_space=OWNED), 401, "invalid_signature",
         "The signature is not from X-Wallet-Address"),
    _api("transcript: wallet never bought it", _proof(PAID_SPACE, signer="stranger"), 403,
         "not_owned", "This wallet has not bought Space"),
    _api("transcript: not ready yet", _proof(PAID_SPACE, signer="payer"), 409, "not_ready",
         "The transcript is not ready (status: pending)"),
    _api("transcript: traversal id", _proof("..%2F..%2Fetc"), 400, "invalid_space",
         "not a Space id"),
    # ------------------------------------------------ request bodies
    _api("transcribe: not json", lambda w: Req("POST", T, content=b"space=1RDxlAoOeQRKL",
         headers={"content-type": "application/json"}), 422, "invalid_request", "json_invalid"),
    _api("transcribe: form body", lambda w: Req("POST", T, content=b"space=1RDxlAoOeQRKL",
         headers={"content-type": "application/x-www-form-urlencoded"}), 415,
         "unsupported_media_type", "Send the body as application/json"),
    _api("transcribe: empty object", _post(T, {}), 422, "invalid_request", '"missing"'),
    _api("transcribe: extra field", _post(T, {**SP, "price": "0"}), 422, "invalid_request",
         "extra_forbidden"),
    _api("transcribe: number as Space", _post(T, {"space": 123}), 422, "invalid_request",
         "string_type"),
    _api("transcribe: over-long Space", _post(T, {"space": "A" * 3000}), 422, "invalid_request",
         "string_too_long"),
    _api("transcribe: other host", _post(T, {"space": "https://evil.com/i/spaces/1RDxlAoOeQRKL"}),
         400, "invalid_space", ONLY_X),
    _api("transcribe: loopback", _post(T, {"space": "http://127.0.0.1:8080/i/spaces/x"}), 400,
         "invalid_space", ONLY_X),
    _api("transcribe: metadata service", _post(T, {"space": "http://169.254.169.254/latest"}),
         400, "invalid_space", ONLY_X),
    _api("transcribe: file url", _post(T, {"space": "file:///etc/passwd"}), 400, "invalid_space",
         ONLY_X),
    _api("transcribe: traversal", _post(T, {"space": "../../etc/passwd"}), 400, "invalid_space",
         ONLY_X),
    _api("transcribe: traversal in path", _post(T, {
        "space": "https://x.com/i/spaces/../../etc/passwd"}), 400, "invalid_space", BAD_ID),
    _api("transcribe: unrecorded Space", _post(T, {"space": UNRECORDED}), 422,
         "space_no_replay", UNRECORDED_MSG),
    _api("transcribe: oversized body", lambda w: Req("POST", T, content=b'{"space": "' +
         b"a" * 70_000 + b'"}', headers={"content-type": "application/json"}), 413,
         "invalid_request", "body larger than 65536 bytes"),
    _api("transcribe: body without length", lambda w: Req("POST", T, content=b'{"space": "x"}',
         headers={"content-type": "application/json"}, chunked=True), 411, "invalid_request",
         "Content-Length required"),
    _api("mcp: oversized body", lambda w: Req("POST", "/mcp", content=b'{"jsonrpc": "' +
         b"a" * 70_000 + b'"}', headers={"content-type": "application/json"}), 413,
         "invalid_request", "body larger than 65536 bytes"),
    _api("mcp: body without length", lambda w: Req("POST", "/mcp", content=b'{"id": 1}',
         headers={"content-type": "application/json"}, chunked=True), 411, "invalid_request",
         "Content-Length required"),
    _api("mcp: GET (no SSE stream: stateless)", _get("/mcp"), 405, "method_not_allowed",
         "does not accept that method"),
    _api("unlock: traversal", _post(U, {"space": "%2e%2e/%2e%2e/etc"}), 400, "invalid_space",
         ONLY_X),
    _api("unlock: extra field", _post(U, {**SP, "owner": "me"}), 422, "invalid_request",
         "extra_forbidden"),
    _api("chat: empty question", _post(C, {"question": "", "spaces": [OWNED_UNLOCKED]}), 422,
         "invalid_request", "string_too_short"),
    _api("chat: over-long question", _post(C, {"question": "q" * 1001,
         "spaces": [OWNED_UNLOCKED]}), 400, "question_too_long", "At most 1000 characters"),
    _api("chat: huge question", _post(C, {"question": "q" * 20_001,
         "spaces": [OWNED_UNLOCKED]}), 400, "question_too_long", "At most 1000 characters"),
    _api("chat: control characters only", _post(C, {"question": "\x00\x1b\u200b \x7f",
         "spaces": [OWNED_UNLOCKED]}), 400, "empty_question", "The question is empty"),
    _api("chat: no Spaces", _post(C, {"question": "q", "spaces": []}), 422, "invalid_request",
         "too_short"),
    _api("chat: eleven Spaces", _post(C, {"question": "q", "spaces": ELEVEN}), 400,
         "too_many_spaces", "At most 10 Spaces per question"),
    _api("chat: fifty-one Spaces", _post(C, {"question": "q", "spaces": [FRESH] * 51}), 400,
         "too_many_spaces", "At most 10 Spaces per question"),
    _api("chat: traversal as Space", _post(C, {"question": "q", "spaces": ["../../etc"]}), 400,
         "invalid_space", ONLY_X),
    _api("chat: SSRF as Space", _post(C, {"question": "q", "spaces": ["http://10.0.0.1/"]}),
         400, "invalid_space", ONLY_X),
    _api("chat: Spaces not a list", _post(C, {"question": "q", "spaces": OWNED_UNLOCKED}), 422,
         "invalid_request", "list_type"),
    _api("chat: question not text", _post(C, {"question": ["q"], "spaces": [OWNED]}), 422,
         "invalid_request", "string_type"),
    # ------------------------------------------------ PAYMENT-SIGNATURE headers
    _api("payment header: oversized", lambda w: Req("POST", T, json=SP,
         headers={"PAYMENT-SIGNATURE": "A" * 20_000}), 431, "invalid_request",
         "PAYMENT-SIGNATURE header too large"),
    _api("payment header: not base64", lambda w: Req("POST", T, json=SP,
         headers={"PAYMENT-SIGNATURE": "not-base64!!"}), 400, "invalid_payment_header",
         "not an x402 v2 payload"),
    _api("payment header: base64 of text", _paid(T, SP, lambda w: b"hello"), 400,
         "invalid_payment_header", "not an x402 v2 payload"),
    _api("payment header: empty object", _paid(T, SP, lambda w: {}), 400,
         "invalid_payment_header", "not an x402 v2 payload"),
    _api("payment header: x402 v1", _paid(T, SP, lambda w: w.forged(top={"x402Version": 1})),
         400, "invalid_payment_header", "not an x402 v2 payload"),
    _api("payment header: no payer", _paid(T, SP, lambda w: w.forged(auth={"from": None})), 400,
         "invalid_payment_header", "not an x402 v2 payload"),
    _api("payment header: payer not an address", _paid(T, SP, lambda w: w.forged(
        auth={"from": "0xnot-an-address"})), 400, "invalid_payment_header",
         "not an x402 v2 payload"),
    # ------------------------------------------------ forged / mismatched payments
    _forge(T, SP, SIG, "transcribe: signature of another key",
           sig="0x" + "11" * 65),
    _signed(T, SP, SIG, "transcribe: signed by someone else", signer=lambda w: w.payer),
    _forge(T, SP, AMOUNT, "transcribe: value lowered after signing", auth={"value": "100000"}),
    _signed(T, SP, AMOUNT, "transcribe: signed for less", value=100_000),
    _signed(T, SP, AMOUNT, "transcribe: signed for more", value=300_000),
    _forge(T, SP, AMOUNT, "transcribe: accepted amount lowered", accepted={"amount": "1"}),
    _forge(T, SP, AMOUNT, "transcribe: decimal amount", accepted={"amount": "0.2"}),
    _forge(T, SP, AMOUNT, "transcribe: negative amount", accepted={"amount": "-200000"}),
    _forge(T, SP, AMOUNT, "transcribe: float amount", accepted={"amount": "200000.0"}),
    _forge(T, SP, AMOUNT, "transcribe: exponent amount", accepted={"amount": "2e5"}),
    _forge(T, SP, AMOUNT, "transcribe: huge amount", accepted={"amount": "9" * 80}),
    _forge(T, SP, AMOUNT, "transcribe: seven decimals", accepted={"amount": "0.2000001"}),
    _forge(T, SP, UNREADABLE_PAYMENT, "transcribe: value with decimals",
           auth={"value": "200000.0000001"}),
    _forge(T, SP, UNREADABLE_PAYMENT, "transcribe: decimal value", auth={"value": "0.2"}),
    _forge(T, SP, UNREADABLE_PAYMENT, "transcribe: negative value", auth={"value": "-1"}),
    _forge(T, SP, UNREADABLE_PAYMENT, "transcribe: float value", auth={"value": 200000.0}),
    _forge(T, SP, UNREADABLE_PAYMENT, "transcribe: huge value", auth={"value": "9" * 80}),
    _signed(T, SP, RECIPIENT, "transcribe: signed to another address",
            to=lambda w: w.chain.other.address),
    _forge(T, SP, RECIPIENT, "transcribe: accepted payTo changed",
           accepted={"payTo": "0x" + "66" * 20}),
    _forge(T, SP, TOKEN, "transcribe: accepted asset changed",
           accepted={"asset": "0x" + "77" * 20}),
    _signed(T, SP, SIG, "transcribe: signed for another token", token="0x" + "77" * 20),
    _forge(T, SP, CHAIN, "transcribe: accepted network Base", accepted={"network": "eip155:8453"}),
    _signed(T, SP, SIG, "transcribe: signed for another chain", chain_id=8453),
    _forge(T, SP, SCHEME, "transcribe: other scheme", accepted={"scheme": "upto"}),
    _signed(T, SP, EXPIRED_AUTH, "transcribe: validBefore passed",
            valid_before=lambda w: now() - 60),
    _signed(T, SP, EARLY_AUTH, "transcribe: validAfter in the future",
            valid_after=lambda w: now() + 3600),
    _signed(T, SP, NONCE_USED, "transcribe: spent nonce", account=lambda w: w.payer,
            nonce=lambda w: w.spent_nonce),
    _signed(T, SP, BROKE, "transcribe: payer without USDC", account=lambda w: w.broke),
    _forge(T, SP, UNREADABLE_PAYMENT, "transcribe: short nonce", auth={"nonce": "0x12"}),
    _forge(T, SP, UNREADABLE_PAYMENT, "transcribe: short signature", sig="0x" + "ab" * 10),
    _signed(U, SP, "Chat needs the transcript first", "unlock: a Space the payer does not own",
            kind="chat_unlock", status=403, code="not_owned"),
    _forge(U, {"space": PAID_SPACE}, SIG, "unlock: forged by the owner", kind="chat_unlock",
           sig="0x" + "22" * 65, account=lambda w: w.payer),
    _signed(T, {"space": PAID_SPACE}, '"already_owned":true', "transcribe: paying twice",
            status=200, account=lambda w: w.payer),
    _forge(C, ASK, SIG, "chat: forged signature", kind="chat_query", sig="0x" + "33" * 65),
    _signed(C, ASK, AMOUNT, "chat: signed for one Space's less", kind="chat_query",
            value=900_000),
    _signed(C, ASK, "This wallet has not bought the transcript of Space",
            "chat: the payer does not own the Space", kind="chat_query"),
]  # fmt: skip


# ================================================================ pay page


def _page(name: str, build: Callable[[World], Req], status: int, code: str | None,
          phrase: str) -> Case:  # fmt: skip
    return Case("pay page", name, build, phrase, status, code)


def _submit(invoice: str, body: Callable[[World], Any]) -> Callable[[World], Req]:
    return lambda w: Req("POST", f"/pay/{w.invoices[invoice]}", json=body(w))


def _raw_submit(content: bytes, ctype: str = "application/json") -> Callable[[World], Req]:
    return lambda w: Req(
        "POST", f"/pay/{w.invoices['open']}", content=content, headers={"content-type": ctype}
    )


def _auth_with(**auth: Any) -> Callable[[World], Any]:
    return lambda w: w.page_body(w.forged(auth=auth))


INVOICE_NOT_FOUND = "There is no invoice at this address"
DEMO_LIVE = "The demo wallet exists only in test mode"
PAY_PAGE: list[Case] = [
    _page("page: traversal", _get("/pay/..%2F..%2Fetc%2Fpasswd"), 404, None, INVOICE_NOT_FOUND),
    _page("page: short id", _get("/pay/abc"), 404, None, INVOICE_NOT_FOUND),
    _page("page: unknown id", _get("/pay/" + "Z" * 24), 404, None, INVOICE_NOT_FOUND),
    _page("page: html id", _get("/pay/%3Cscript%3Ealert(1)%3C%2Fscript%3E"), 404, None,
          INVOICE_NOT_FOUND),
    _page("page: over-long id", _get("/pay/" + "a" * 500), 404, None, INVOICE_NOT_FOUND),
    _page("authorization: no payer", lambda w: Req("GET",
          f"/pay/{w.invoices['open']}/authorization"), 400, "invalid_address",
          "The wallet did not give a valid address"),
    _page("authorization: short payer", lambda w: Req("GET",
          f"/pay/{w.invoices['open']}/authorization", params={"payer": "0x123"}), 400,
          "invalid_address", "The wallet did not give a valid address"),
    _page("authorization: payer with html", lambda w: Req("GET",
          f"/pay/{w.invoices['open']}/authorization", params={"payer": "<script>"}), 400,
          "invalid_address", "The wallet did not give a valid address"),
    _page("authorization: unknown invoice", _get("/pay/" + "Z" * 24 + "/authorization",
          params={"payer": "0x" + "11" * 20}), 404, "unknown_invoice", "No such invoice"),
    _page("authorization: expired invoice", lambda w: Req("GET",
          f"/pay/{w.invoices['expired']}/authorization", params={"payer": "0x" + "11" * 20}),
          409, "invoice_expired", "This invoice has expired"),
    _page("authorization: paid invoice", lambda w: Req("GET",
          f"/pay/{w.invoices['credited']}/authorization", params={"payer": "0x" + "11" * 20}),
          409, "already_paid", "This invoice is already paid"),
    _page("submit: not json", _raw_submit(b"not json"), 400, "invalid_payload",
          "the body is not JSON"),
    _page("submit: json array", _raw_submit(b"[]"), 400, "invalid_payload", "not a JSON object"),
    _page("submit: text/plain", _raw_submit(b"{}", "text/plain"), 400, "invalid_payload",
          "must be sent as application/json"),
    _page("submit: oversized", _raw_submit(b"{" + b" " * 20_000 + b"}"), 400, "invalid_payload",
          "larger than 16384 bytes"),
    _page("submit: no signature", _submit("open", lambda w: {
          "authorization": w.page_body(w.payload())["authorization"]}), 400, "invalid_payload",
          "signature"),
    _page("submit: short signature", _submit("open", lambda w: {
          **w.page_body(w.payload()), "signature": "0x" + "ab" * 10}), 400, "invalid_payload",
          "signature"),
    _page("submit: extra field", _submit("open", _auth_with(extra="1")), 400, "invalid_payload",
          "authorization"),
    _page("submit: missing field", _submit("open", lambda w: {**w.page_body(w.payload()),
          "authorization": {"from": w.stranger.address}}), 400, "invalid_payload",
          "authorization"),
    _page("submit: negative value", _submit("open", _auth_with(value="-1")), 400,
          "invalid_payload", "value"),
    _page("submit: decimal value", _submit("open", _auth_with(value="0.2")), 400,
          "invalid_payload", "value"),
    _page("submit: exponent value", _submit("open", _auth_with(value="2e5")), 400,
          "invalid_payload", "value"),
    _page("submit: numeric value", _submit("open", _auth_with(value=200000)), 400,
          "invalid_payload", "authorization"),
    _page("submit: huge value", _submit("open", _auth_with(value="9" * 79)), 400,
          "invalid_payload", "value"),
    _page("submit: seven decimals", _submit("open", _auth_with(value="0.2000001")), 400,
          "invalid_payload", "value"),
    _page("submit: float value", _submit("open", _auth_with(value=200000.0)), 400,
          "invalid_payload", "value"),
    _page("submit: short nonce", _submit("open", _auth_with(nonce="0x12")), 400,
          "invalid_payload", "nonce"),
    _page("submit: payer not an address", _submit("open", _auth_with(**{"from": "0xabc"})), 400,
          "invalid_payload", "from"),
    _page("submit: validBefore not a number", _submit("open", _auth_with(validBefore="soon")),
          400, "invalid_payload", "validBefore"),
    _page("submit: unknown invoice", lambda w: Req("POST", "/pay/" + "Z" * 24,
          json=w.page_body(w.payload())), 404, "unknown_invoice", "No such invoice"),
    _page("submit: traversal invoice", lambda w: Req("POST", "/pay/..%2F..%2Fetc",
          json=w.page_body(w.payload())), 404, "unknown_invoice", "No such invoice"),
    _page("submit: expired invoice", _submit("expired", lambda w: w.page_body(w.payload())),
          409, "invoice_expired", "This invoice has expired"),
    _page("submit: paid invoice", _submit("credited", lambda w: w.page_body(w.payload())), 409,
          "already_paid", "This invoice is already paid"),
    _page("submit: forged signature", _submit("open", lambda w: {
          **w.page_body(w.payload()), "signature": "0x" + "11" * 65}), 409,
          "invalid_exact_evm_failed_to_verify_signature", SIG),
    _page("submit: value lowered after signing", _submit("open", _auth_with(value="100000")),
          409, None, AMOUNT),
    _page("submit: signed for less", _submit("open", lambda w: w.page_body(
          w.payload(value=100_000))), 409, None, AMOUNT),
    _page("submit: signed to another address", _submit("open", lambda w: w.page_body(
          w.payload(to=w.chain.other.address))), 409, None, RECIPIENT),
    _page("submit: signed for another chain", _submit("open", lambda w: w.page_body(
          w.payload(chain_id=1))), 409, None, SIG),
    _page("submit: signed for another token", _submit("open", lambda w: w.page_body(
          w.payload(token="0x" + "77" * 20))), 409, None, SIG),
    _page("submit: expired authorization", _submit("open", lambda w: w.page_body(
          w.payload(valid_before=now() - 60))), 409, None, EXPIRED_AUTH),
    _page("submit: future authorization", _submit("open", lambda w: w.page_body(
          w.payload(valid_after=now() + 3600))), 409, None, EARLY_AUTH),
    _page("submit: spent nonce", _submit("open", lambda w: w.page_body(
          w.payload(account=w.payer, nonce=w.spent_nonce))), 409, None, NONCE_USED),
    _page("submit: payer without USDC", _submit("open", lambda w: w.page_body(
          w.payload(account=w.broke))), 409, None, BROKE),
    _page("submit: signed by someone else", _submit("open", lambda w: w.page_body(
          w.payload(signer=w.payer))), 409, None, SIG),
    # the demo wallet of test mode: this world is live (pay_to set), so every use is refused
    _page("demo wallet: live mode", lambda w: Req("POST", f"/pay/{w.invoices['open']}/demo",
          json={}), 403, "test_mode_only", DEMO_LIVE),
    _page("demo wallet: live mode, unknown invoice", lambda w: Req("POST", "/pay/" + "Z" * 24
          + "/demo", json={}), 403, "test_mode_only", DEMO_LIVE),
    _page("demo wallet: live mode, not json", lambda w: Req("POST",
          f"/pay/{w.invoices['open']}/demo", content=b"pay", headers={"content-type":
          "text/plain"}), 403, "test_mode_only", DEMO_LIVE),
    _page("demo wallet: live mode, an authorization sent", lambda w: Req("POST",
          f"/pay/{w.invoices['open']}/demo", json=w.page_body(w.payload())), 403,
          "test_mode_only", DEMO_LIVE),
]  # fmt: skip


# ================================================================ wallet link page


def _link(name: str, build: Callable[[World], Req], status: int, code: str | None,
          phrase: str) -> Case:  # fmt: skip
    return Case("link page", name, build, phrase, status, code)


def _link_post(state: str, body: Callable[[World], Any]) -> Callable[[World], Req]:
    return lambda w: Req("POST", f"/link/{w.links[state]}", json=body(w))


def _siwe(**changes: Any) -> Callable[[World], Any]:
    from dataclasses import replace

    return lambda w: w.siwe_signed(replace(w.siwe, **changes))  # type: ignore[arg-type]


LINK_INVALID = "This wallet link is not valid"
LINK_PAGE: list[Case] = [
    _link("page: traversal", _get("/link/..%2F..%2Fetc%2Fpasswd"), 404, None, LINK_INVALID),
    _link("page: short token", _get("/link/abc"), 404, None, LINK_INVALID),
    _link("page: unknown token", _get("/link/" + "Q" * 32), 404, None, LINK_INVALID),
    _link("page: expired", lambda w: Req("GET", f"/link/{w.links['expired']}"), 410, None,
          "This wallet link has expired"),
    _link("page: used", lambda w: Req("GET", f"/link/{w.links['used']}"), 410, None,
          "This wallet link was already used"),
    _link("nonce: no address", lambda w: Req("GET", f"/link/{w.links['fresh']}/nonce"), 400,
          "invalid_address", "That is not an Ethereum address"),
    _link("nonce: bad address", lambda w: Req("GET", f"/link/{w.links['fresh']}/nonce",
          params={"address": "0x" + "zz" * 20}), 400, "invalid_address",
          "That is not an Ethereum address"),
    _link("nonce: unknown token", _get("/link/" + "Q" * 32 + "/nonce",
          params={"address": "0x" + "11" * 20}), 404, "unknown_link", LINK_INVALID),
    _link("nonce: expired link", lambda w: Req("GET", f"/link/{w.links['expired']}/nonce",
          params={"address": "0x" + "11" * 20}), 410, "link_expired",
          "This wallet link has expired"),
    _link("nonce: used link", lambda w: Req("GET", f"/link/{w.links['used']}/nonce",
          params={"address": "0x" + "11" * 20}), 410, "link_used",
          "This wallet link was already used"),
    _link("submit: not json", lambda w: Req("POST", f"/link/{w.links['nonce']}", content=b"nope",
          headers={"content-type": "application/json"}), 400, "malformed_message",
          "not a valid Sign-In with Ethereum message"),
    _link("submit: oversized", lambda w: Req("POST", f"/link/{w.links['nonce']}",
          content=b"{" + b" " * 20_000 + b"}", headers={"content-type": "application/json"}),
          400, "malformed_message", "not a valid Sign-In with Ethereum message"),
    _link("submit: no signature", _link_post("nonce", lambda w: {
          "message": w.siwe_signed()["message"]}), 400, "invalid_signature",
          "The signature does not match the wallet address"),
    _link("submit: signature not text", _link_post("nonce", lambda w: {
          "message": w.siwe_signed()["message"], "signature": 5}), 400, "invalid_signature",
          "The signature does not match the wallet address"),
    _link("submit: not a SIWE message", _link_post("nonce", lambda w: {
          "message": "please link me", "signature": "0x" + "11" * 65}), 400,
          "malformed_message", "not a valid Sign-In with Ethereum message"),
    _link("submit: over-long message", _link_post("nonce", lambda w: {
          "message": w.siwe_signed()["message"] + "x" * 4000,
          "signature": w.siwe_signed()["signature"]}), 400, "malformed_message",
          "not a valid Sign-In with Ethereum message"),
    _link("submit: another website", _link_post("nonce", _siwe(domain="evil.example")), 400,
          "domain_mismatch", "The signed message is for another website"),
    _link("submit: another page", _link_post("nonce", _siwe(
          uri="http://127.0.0.1:8080/link/other")), 400, "uri_mismatch",
          "The signed message is for another page"),
    _link("submit: another nonce", _link_post("nonce", _siwe(nonce="abcdefgh12345678")), 400,
          "nonce_mismatch", "does not carry this page's current nonce"),
    _link("submit: expired message", _link_post("nonce", _siwe(
          expiration_time="2020-01-01T00:00:00Z")), 400, "message_expired",
          "The signed message has expired"),
    _link("submit: signed by another wallet", _link_post("nonce", lambda w: w.siwe_signed(
          key=w.stranger.key)), 400, "invalid_signature",
          "The signature does not match the wallet address"),
    _link("submit: garbage signature", _link_post("nonce", lambda w: {
          "message": w.siwe_signed()["message"], "signature": "0xdeadbeef"}), 400,
          "invalid_signature", "The signature does not match the wallet address"),
    _link("submit: before a nonce", _link_post("fresh", lambda w: w.siwe_signed()), 400,
          "no_nonce", "Ask for a nonce before signing"),
    _link("submit: expired link", _link_post("expired", lambda w: w.siwe_signed()), 410,
          "link_expired", "This wallet link has expired"),
    _link("submit: used link", _link_post("used", lambda w: w.siwe_signed()), 410, "link_used",
          "This wallet link was already used"),
    _link("submit: unknown link", lambda w: Req("POST", "/link/" + "Q" * 32,
          json=w.siwe_signed()), 404, "unknown_link", LINK_INVALID),
]  # fmt: skip


# ================================================================ storefront


def _store(name: str, build: Callable[[World], Req], status: int, code: str | None,
           phrase: str) -> Case:  # fmt: skip
    return Case("storefront", name, build, phrase, status, code)


def _signed_in(w: World) -> dict[str, str]:
    return {"Cookie": f"spacescribe_session={w.web_token}"}


def _form(path: str, csrf: bool = True, cookie: bool = True, headers: dict[str, str] | None = None,
          token: str | None = None, **fields: str) -> Callable[[World], Req]:  # fmt: skip
    """A urlencoded form post, signed in as the payer, with their CSRF token (or ``token``)."""
    from urllib.parse import urlencode

    def build(w: World) -> Req:
        data = ({"csrf": w.csrf} if csrf else {"csrf": token} if token else {}) | fields
        hdrs = {"content-type": "application/x-www-form-urlencoded"}
        hdrs |= (_signed_in(w) if cookie else {}) | (headers or {})
        return Req("POST", path, content=urlencode(data).encode(), headers=hdrs)

    return build


def _store_get(path: str, cookie: bool = True, **params: str) -> Callable[[World], Req]:
    return lambda w: Req("GET", path, headers=_signed_in(w) if cookie else {}, params=params)


NO_PAGE = "There is no such page"
SIGN_IN_FIRST = "Sign in with your wallet first"
STALE_FORM = "This form is out of date"
CROSS_SITE = "This form was posted from another website"
NOT_A_FORM = "must be sent as application/x-www-form-urlencoded"
STOREFRONT: list[Case] = [
    _store("page: not a Space id", _store_get("/spaces/not-an-id"), 400, None, ONLY_X),
    _store("page: traversal", _store_get("/spaces/..%2F..%2Fetc%2Fpasswd"), 404, None, NO_PAGE),
    _store("page: extra segment", _store_get(f"/spaces/{OWNED}/more"), 404, None, NO_PAGE),
    _store("paste: another website", _store_get("/spaces", link="https://evil.example/i/spaces/"
           + FRESH), 400, None, ONLY_X),
    _store("paste: empty", _store_get("/spaces", link=""), 400, None, NO_SPACE),
    _store("paste: loopback", _store_get("/spaces", link="http://127.0.0.1/i/spaces/x"), 400,
           None, ONLY_X),
    _store("paste: bad id", _store_get("/spaces", link="https://x.com/i/spaces/short"), 400,
           None, BAD_ID),
    _store("paste: too long", _store_get("/spaces", link="x" * 3000), 400, None, LONG_LINK),
    _store("search: too long", _store_get("/", q="w" * 201), 400, None, LONG_SEARCH),
    _store("search: only punctuation", _store_get("/", q="!!! ???"), 400, None, EMPTY_SEARCH),
    _store("transcript: unknown format", _store_get(f"/spaces/{OWNED_UNLOCKED}/transcript.exe"),
           404, None, "There is no transcript.exe file"),
    _store("transcript: not signed in", _store_get(f"/spaces/{OWNED_UNLOCKED}/transcript.md",
           cookie=False), 401, None, "Sign in with the wallet that bought"),
    _store("transcript: not bought", _store_get(f"/spaces/{FOREIGN}/transcript.md"), 403, None,
           NOT_BOUGHT),
    _store("transcript: bad id", _store_get("/spaces/short/transcript.md"), 400, None, ONLY_X),
    _store("transcript: forged cookie", lambda w: Req(
           "GET", f"/spaces/{OWNED_UNLOCKED}/transcript.md",
           headers={"Cookie": "spacescribe_session=" + "A" * 43}), 401, None,
           "Sign in with the wallet that bought"),
    _store("buy: not signed in", _form(f"/spaces/{FRESH}/buy", cookie=False), 401, None,
           SIGN_IN_FIRST),
    _store("buy: no CSRF token", _form(f"/spaces/{FRESH}/buy", csrf=False, x="1"), 403, None,
           STALE_FORM),
    _store("buy: wrong CSRF token", _form(f"/spaces/{FRESH}/buy", csrf=False,
           token="not-the-token-0123456789"), 403, None, STALE_FORM),
    _store("buy: from another website", _form(f"/spaces/{FRESH}/buy", headers={
           "Origin": "https://evil.example"}), 403, None, CROSS_SITE),
    _store("buy: cross-site fetch", _form(f"/spaces/{FRESH}/buy", headers={
           "Sec-Fetch-Site": "cross-site"}), 403, None, CROSS_SITE),
    _store("buy: JSON body", lambda w: Req("POST", f"/spaces/{FRESH}/buy", json={"csrf": w.csrf},
           headers=_signed_in(w)), 400, None, NOT_A_FORM),
    _store("buy: oversized form", _form(f"/spaces/{FRESH}/buy", pad="x" * 9000), 400, None,
           "Content-Length of at most 8192 bytes"),
    _store("buy: not UTF-8", lambda w: Req("POST", f"/spaces/{FRESH}/buy",
           content=b"csrf=%ff%fe", headers={**_signed_in(w),
           "content-type": "application/x-www-form-urlencoded"}), 400, None,
           "not valid application/x-www-form-urlencoded"),
    _store("buy: not a Space", _form("/spaces/1abc/buy"), 400, None, ONLY_X),
    _store("buy: live Space X says", _form(f"/spaces/{UNRECORDED}/buy"), 409, None,
           UNRECORDED_MSG),
    _store("unlock: not bought", _form(f"/spaces/{FOREIGN}/unlock"), 403, None,
           NEEDS_TRANSCRIPT),
    _store("unlock: not a Space", _form("/spaces/..%2Fx/unlock"), 404, None, NO_PAGE),
    _store("ask: empty question", _form(f"/spaces/{OWNED_UNLOCKED}/ask", question="   "), 400,
           None, EMPTY_Q),
    _store("ask: question too long", _form(f"/spaces/{OWNED_UNLOCKED}/ask",
           question="why " * 300), 400, None, LONG_Q),
    _store("ask: not bought", _form(f"/spaces/{FOREIGN}/ask", question="what?"), 403, None,
           NOT_BOUGHT),
    _store("ask: not transcribed", _form(f"/spaces/{PENDING}/ask", question="what?"), 409,
           None, NOT_DONE),
    _store("ask: unknown Space", _form(f"/spaces/{UNKNOWN}/ask", question="what?"), 404, None,
           NOT_HERE),
    _store("ask: not signed in", _form(f"/spaces/{OWNED_UNLOCKED}/ask", cookie=False,
           question="what?"), 401, None, SIGN_IN_FIRST),
    _store("session: not JSON", lambda w: Req("POST", "/session", content=b"nope",
           headers={"content-type": "application/json"}), 401, "invalid_siwx_header",
           "The sign-in could not be read: the body is not JSON"),
    _store("session: no payload", _post("/session", {"message": "hi"}), 401,
           "invalid_siwx_header", "Send {payload"),
    _store("session: unsigned payload", _post("/session", {"payload": {"domain": "x"}}), 401,
           "invalid_siwx_header", "not a signed SIWE message"),
    _store("session: from another website", _post("/session", {"payload": {}},
           headers={"Sec-Fetch-Site": "cross-site"}), 403, "cross_site", "Sign in on this website"),
    _store("session: demo wallet in live mode", _form("/session/demo", csrf=False, cookie=False,
           next="/"), 403, None, DEMO_LIVE),
    _store("session: end without token", _form("/session/end", csrf=False, x="1"), 403, None,
           STALE_FORM),
    _store("challenge: no address", _get("/session/challenge"), 400, "invalid_address",
           "That is not an Ethereum address"),
    _store("challenge: bad address", _get("/session/challenge", params={
           "address": "0x" + "zz" * 20}), 400, "invalid_address",
           "That is not an Ethereum address"),
    _store("post: unknown page", _form(f"/spaces/{OWNED}/more/deeper"), 404, None, NO_PAGE),
]  # fmt: skip


# ================================================================ CLI

CLI: list[Case] = [
    Case("cli", "revenue --period bogus", ["revenue", "--period", "bogus"], PERIOD),
    Case("cli", "revenue --period traversal", ["revenue", "--period", "../../etc"], PERIOD),
    Case("cli", "chat-index traversal", ["chat-index", "../../etc/passwd"], ONLY_X),
    Case("cli", "chat-index bad id", ["chat-index", "https://x.com/i/spaces/bad"], BAD_ID),
    Case("cli", "chat-index metadata service", ["chat-index", "http://169.254.169.254/"],
         ONLY_X),
    # neither a link nor an existing file: said to be a missing file (`transcribe` takes both)
    Case("cli", "transcribe encoded traversal", ["transcribe", "%2e%2e%2fetc%2fpasswd"],
         "file not found"),
    Case("cli", "transcribe loopback", ["transcribe", "http://127.0.0.1/i/spaces/x"], ONLY_X),
    Case("cli", "import a missing file", ["import", UNKNOWN, "/nonexistent/talk.m4a"], NO_FILE),
    Case("cli", "import a folder", ["import", UNKNOWN, str(HERE.parent)], A_FOLDER),
    Case("cli", "import an empty file", ["import", UNKNOWN, str(EMPTY)], EMPTY_FILE),
    Case("cli", "import a text file", ["import", UNKNOWN, str(HERE)], NOT_AUDIO),
    Case("cli", "import a device", ["import", UNKNOWN, "/dev/null"], NOT_A_FILE),
    Case("cli", "import traversal as Space", ["import", "../../etc/passwd", str(HERE)], ONLY_X),
    Case("cli", "import a completed Space", ["import", OWNED, str(HERE)], DONE_ALREADY),
    Case("cli", "import bad --started-at", ["import", UNKNOWN, str(HERE), "--started-at",
         "yesterday"], "--started-at must be an ISO 8601"),
    Case("cli", "import over-long --title", ["import", UNKNOWN, str(HERE), "--title", "t" * 301],
         "--title must be 1 to 300 characters"),
    Case("cli", "doctor unknown role", ["doctor", "--roles", "worker,miner"],
         "unknown role(s) miner; choose from bots, web, scheduler, worker"),
]  # fmt: skip


from tests.drills.corpus_mcp import MCP  # noqa: E402 (its cases use the phrases above)

ALL: dict[str, list[Case]] = {
    "telegram": TELEGRAM,
    "telegram webhook": WEBHOOK,
    "telegram payments": STARS,
    "telegram uploads": UPLOADS,
    "telegram inline": INLINE,
    "discord": DISCORD,
    "http api": HTTP_API,
    "pay page": PAY_PAGE,
    "link page": LINK_PAGE,
    "storefront": STOREFRONT,
    "cli": CLI,
    "mcp": MCP,
}


def _unique() -> None:
    for entry, cases in ALL.items():
        names = [c.name for c in cases]
        dupes = {n for n in names if names.count(n) > 1}
        assert not dupes, f"{entry}: duplicate case names {dupes}"


_unique()
assert all(c.expect for cases in ALL.values() for c in cases), "every case names its error"
