"""The web storefront: ``/`` (library, search, paste a link) and ``/spaces/{space_id}`` (buy,
download, unlock, ask) — a third surface beside Discord and Telegram, on the same core calls.

A web buyer is the wallet that signed in (``/session``, SIWE through
:mod:`core.web_sessions`): an HttpOnly, SameSite=Lax cookie (Secure when ``web.public_url``
is https). Forms are plain HTML posts, CSRF-safe twice: a session's forms carry its CSRF
token, and every post from another origin is refused. Only signing needs JavaScript
(``static/session.js``); in test mode a form signs in with the demo wallet.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from adapters.web import refusals
from adapters.web.pages import document_response, json_response, page, read_json
from adapters.web.refusals import Family
from core.context import Context
from core.refusals import RefusalCode as C
from core.results import AlreadyOwned, Granted, Quote, Refused, SearchHit
from core.service import catalog, purchases, storefront
from core.service import chat as chat_service
from core.service.views import FORMATS
from core.web_sessions import (
    WebBuyer,
    challenge,
    close_session,
    csrf_ok,
    demo_sign_in,
    open_session,
    session_of,
    sign_in,
)

router = APIRouter(include_in_schema=False)
COOKIE = "spacescribe_session"
MAX_FORM = 8_192  # a question of chat.max_question_chars and a token, with room to spare
_TITLES = {400: "Not understood", 401: "Sign in first", 403: "Not allowed", 404: "Not found"}
UNKNOWN_PAGE = Refused(
    C.UNKNOWN_PAGE, "There is no such page. Paste a Space link on the home page."
)


def _ctx(request: Request) -> Context:
    return request.app.state.ctx  # type: ignore[no-any-return]


def _origin(ctx: Context) -> str:
    u = urlsplit(ctx.settings.web.public_url)
    return f"{u.scheme}://{u.netloc}"


async def _buyer(request: Request) -> WebBuyer | None:
    return await session_of(_ctx(request), request.cookies.get(COOKIE))


def _cross_site(request: Request) -> bool:
    """A post another site's page made, as the browser tells: Sec-Fetch-Site, or else an
    Origin that is not ours. (Our pages' ``Referrer-Policy: no-referrer`` makes Chromium send
    ``Origin: null`` on their own form posts, so "null" alone proves nothing; the session
    forms carry a CSRF token besides.)"""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    return origin is not None and origin not in ("null", _origin(_ctx(request)))


def _store_page(request: Request, name: str, status_code: int = 200, **kw: Any) -> Response:
    ctx = _ctx(request)
    kw.setdefault("public_url", ctx.settings.web.public_url)
    return page(request, name, status_code=status_code, **kw)


def _refusal_page(request: Request, r: Refused, buyer: WebBuyer | None, back: str) -> Response:
    status = refusals.status(Family.STORE, r)
    return _store_page(
        request,
        "store_message.html",
        status_code=status,
        title=_TITLES.get(status, "Not done"),
        message=r.message,
        code=r.code,
        back=back,
        buyer=buyer,
    )


def _refusal_json(r: Refused, status: int) -> Response:
    return json_response({"status": "refused", "code": r.code, "message": r.message}, status)


async def _form(request: Request) -> dict[str, str] | str:
    """The urlencoded form of a post, or why it cannot be read (size, type)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip()
    if ctype != "application/x-www-form-urlencoded":
        return "The form must be sent as application/x-www-form-urlencoded."
    length = request.headers.get("content-length")
    if length is None or not length.isdigit() or int(length) > MAX_FORM:
        return f"The form must have a Content-Length of at most {MAX_FORM} bytes."
    raw = await request.body()
    if len(raw) > MAX_FORM:
        return f"The form must have a Content-Length of at most {MAX_FORM} bytes."
    try:  # urlencoded only (no multipart): parsed here, strictly
        pairs = parse_qsl(
            raw.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=bool(raw),
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError):
        return "The form is not valid application/x-www-form-urlencoded UTF-8."
    return dict(pairs)


# ---------------------------------------------------------------- library


@router.get("/")
async def index(request: Request, q: str = "") -> Response:
    ctx = _ctx(request)
    buyer = await _buyer(request)
    lib = await storefront.library(ctx)
    hits: list[SearchHit] | None = None
    problem: Refused | None = None
    if q.strip():
        found = await chat_service.search(ctx, buyer.caller if buyer else None, q)
        if isinstance(found, Refused):
            problem = found
        else:
            hits = found
    return _store_page(
        request,
        "store_index.html",
        status_code=refusals.status(Family.STORE, problem) if problem else 200,
        lib=lib,
        q=q[:200],
        hits=hits,
        problem=problem.message if problem else None,
        buyer=buyer,
    )


@router.get("/spaces")
async def go_to_space(request: Request, link: str = "") -> Response:
    """The paste box: a Space link or id → its page."""
    sid = catalog.parse_or_refuse(link)
    if isinstance(sid, Refused):
        return _refusal_page(request, sid, await _buyer(request), "/")
    return RedirectResponse(f"/spaces/{sid}", 303)


# ---------------------------------------------------------------- one Space


@router.get("/spaces/{space_id}")
async def space(request: Request, space_id: str) -> Response:
    ctx = _ctx(request)
    buyer = await _buyer(request)
    sp = await storefront.space_page(ctx, buyer.caller if buyer else None, space_id)
    if isinstance(sp, Refused):
        return _refusal_page(request, sp, buyer, "/")
    return _store_page(
        request,
        "store_space.html",
        sp=sp,
        buyer=buyer,
        max_question=ctx.settings.chat.max_question_chars,
        canonical=f"{ctx.settings.web.public_url}/spaces/{sp.space_id}",
    )


@router.get("/spaces/{space_id}/transcript.{fmt}")
async def transcript(request: Request, space_id: str, fmt: str) -> Response:
    buyer = await _buyer(request)
    if buyer is None:
        r = Refused(C.NOT_SIGNED_IN, "Sign in with the wallet that bought this transcript.")
        return _refusal_page(request, r, None, f"/spaces/{space_id}")
    if fmt not in FORMATS:
        r = Refused(C.INVALID_FORMAT, f"There is no transcript.{fmt[:10]} file.")
        return _refusal_page(request, r, buyer, "/")
    t = await catalog.transcript_for(_ctx(request), buyer.caller, space_id, fmt)
    if isinstance(t, Refused):
        return _refusal_page(request, t, buyer, "/")
    return document_response(
        t,
        f"{t.space.space_id}.{fmt}",
        {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


async def _signed_form(
    request: Request, space_id: str
) -> tuple[WebBuyer, dict[str, str]] | Response:
    """The buyer and form of a post that may act: same origin, signed in, right CSRF token."""
    back = f"/spaces/{space_id}" if catalog.parse_or_refuse(space_id) == space_id else "/"
    if _cross_site(request):
        r = Refused(C.CROSS_SITE, "This form was posted from another website; nothing was done.")
        return _refusal_page(request, r, None, back)
    buyer = await _buyer(request)
    if buyer is None:
        r = Refused(C.NOT_SIGNED_IN, "Sign in with your wallet first; nothing was done.")
        return _refusal_page(request, r, None, back)
    form = await _form(request)
    if isinstance(form, str):
        return _refusal_page(request, Refused(C.BAD_FORM, form), buyer, back)
    if not csrf_ok(buyer, form.get("csrf")):
        r = Refused(C.BAD_CSRF, "This form is out of date; reload the page and try again.")
        return _refusal_page(request, r, buyer, back)
    return buyer, form


def _after(
    request: Request,
    result: Refused | AlreadyOwned | Quote | Granted,
    buyer: WebBuyer,
    space_id: str,
) -> Response:
    if isinstance(result, Refused):
        return _refusal_page(request, result, buyer, f"/spaces/{space_id}")
    if isinstance(result, Quote):
        return RedirectResponse(result.pay_url, 303)
    return RedirectResponse(f"/spaces/{space_id}", 303)  # owned, or paid from credit


@router.post("/spaces/{space_id}/buy")
async def buy(request: Request, space_id: str) -> Response:
    got = await _signed_form(request, space_id)
    if isinstance(got, Response):
        return got
    buyer, _ = got
    result = await purchases.request_transcription(_ctx(request), buyer.caller, space_id)
    return _after(request, result, buyer, space_id)


@router.post("/spaces/{space_id}/unlock")
async def unlock(request: Request, space_id: str) -> Response:
    got = await _signed_form(request, space_id)
    if isinstance(got, Response):
        return got
    buyer, _ = got
    result = await purchases.request_unlock(_ctx(request), buyer.caller, space_id)
    return _after(request, result, buyer, space_id)


@router.post("/spaces/{space_id}/ask")
async def ask(request: Request, space_id: str) -> Response:
    got = await _signed_form(request, space_id)
    if isinstance(got, Response):
        return got
    buyer, form = got
    question = form.get("question", "")
    result = await chat_service.ask(_ctx(request), buyer.caller, question, [space_id])
    return _after(request, result, buyer, space_id)


# ---------------------------------------------------------------- sessions


def _local_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site only (no open redirect)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value[:300]
    return "/"


def _with_cookie(resp: Response, ctx: Context, token: str) -> Response:
    resp.set_cookie(
        COOKIE,
        token,
        max_age=ctx.settings.web.session_ttl_seconds,
        path="/",
        httponly=True,
        secure=ctx.settings.web.public_url.startswith("https://"),
        samesite="lax",
    )
    return resp


@router.get("/session/challenge")
async def session_challenge(request: Request, address: str = "") -> Response:
    """The EIP-4361 message a browser wallet signs to sign in, and its fields."""
    ch = challenge(_ctx(request), address)
    if isinstance(ch, Refused):
        return _refusal_json(ch, refusals.status(Family.STORE, ch))
    return json_response({"info": ch.info, "address": ch.address, "message": ch.message})


@router.post("/session")
async def session_sign_in(request: Request) -> Response:
    """``{payload: {…challenge fields, address, signature}}`` (JSON, same origin)."""
    ctx = _ctx(request)
    if _cross_site(request):
        r = Refused(C.CROSS_SITE, "Sign in on this website.")
        return _refusal_json(r, refusals.status(Family.STORE, r))
    body = await read_json(request)
    data = body.get("payload") if isinstance(body, dict) else None
    if isinstance(body, str):
        wallet: str | Refused = Refused(
            C.INVALID_SIWX_HEADER, f"The sign-in could not be read: {body}."
        )
    elif not isinstance(data, dict):
        wallet = Refused(C.INVALID_SIWX_HEADER, "Send {payload: the signed sign-in}.")
    else:
        wallet = await sign_in(ctx, data)
    if isinstance(wallet, Refused):
        return _refusal_json(wallet, refusals.status(Family.SIGN_IN, wallet))
    token, _ = await open_session(ctx, wallet)
    return _with_cookie(json_response({"status": "signed_in", "wallet": wallet}), ctx, token)


@router.post("/session/demo")
async def session_demo(request: Request) -> Response:
    """Test mode: sign in as the demo wallet (a form, no JavaScript). Live mode: 403."""
    ctx = _ctx(request)
    form = await _form(request)
    back = _local_next(form.get("next") if isinstance(form, dict) else None)
    if _cross_site(request):
        r = Refused(C.CROSS_SITE, "This form was posted from another website; nothing was done.")
        return _refusal_page(request, r, None, back)
    wallet = await demo_sign_in(ctx)
    if isinstance(wallet, Refused):
        return _refusal_page(request, wallet, None, back)
    token, _ = await open_session(ctx, wallet)
    return _with_cookie(RedirectResponse(back, 303), ctx, token)


@router.post("/session/end")
async def session_end(request: Request) -> Response:
    ctx = _ctx(request)
    buyer = await _buyer(request)
    form = await _form(request)
    if _cross_site(request) or not csrf_ok(
        buyer, form.get("csrf") if isinstance(form, dict) else None
    ):
        r = Refused(C.BAD_CSRF, "This form is out of date; reload the page and try again.")
        return _refusal_page(request, r, buyer, "/")
    await close_session(ctx, request.cookies.get(COOKIE))
    resp = RedirectResponse("/", 303)
    resp.delete_cookie(COOKIE, path="/")
    return resp


# ---------------------------------------------------------------- anything else


@router.get("/spaces/{rest:path}")
async def not_a_space_page(request: Request, rest: str) -> Response:
    """Any other path under /spaces/ (extra segments, ``..%2F``) is no page."""
    return _refusal_page(request, UNKNOWN_PAGE, await _buyer(request), "/")


@router.post("/spaces/{rest:path}")
async def not_a_space_form(request: Request, rest: str) -> Response:
    return _refusal_page(request, UNKNOWN_PAGE, None, "/")
