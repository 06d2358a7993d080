"""Wallet linking pages: ``/link/{token}`` (one-time, from ``/wallet``) with SIWE (EIP-4361).

``static/link.js`` asks ``GET /link/{token}/nonce?address=…`` for the message fields, builds
the EIP-4361 text, has the wallet sign it with ``personal_sign`` and posts
``{message, signature}``; :func:`core.wallet_link.link_wallet` verifies and links.
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request
from fastapi.responses import Response

from adapters.web import refusals
from adapters.web.pages import json_response, message_page, page, read_json
from adapters.web.refusals import Family
from core.context import Context
from core.refusals import RefusalCode as C
from core.results import Refused
from core.wallet_link import MESSAGES, link_page, link_wallet, valid_token
from core.wallet_link import issue_nonce as issue

router = APIRouter(include_in_schema=False)
PLATFORMS = {"telegram": "Telegram", "discord": "Discord", "web": "web"}
UNKNOWN_LINK = Refused(C.UNKNOWN_LINK, MESSAGES[C.UNKNOWN_LINK])
TITLES: dict[str, str] = {C.LINK_EXPIRED: "Link expired", C.LINK_USED: "Link already used"}


def _ctx(request: Request) -> Context:
    return request.app.state.ctx  # type: ignore[no-any-return]


def _refused(r: Refused) -> Response:
    return json_response(
        {"status": "refused", "code": r.code, "message": r.message},
        refusals.status(Family.LINK, r),
    )


def _not_a_link(request: Request) -> Response:
    return message_page(
        request, "Link not valid", UNKNOWN_LINK.message, refusals.status(Family.LINK, UNKNOWN_LINK)
    )


@router.get("/link/{token}")
async def show(request: Request, token: str) -> Response:
    if not valid_token(token):
        return _not_a_link(request)
    info = await link_page(_ctx(request), token)
    if isinstance(info, Refused):
        title = TITLES.get(info.code, "Link not valid")
        return message_page(request, title, info.message, refusals.status(Family.LINK, info))
    return page(
        request,
        "link.html",
        info=info,
        platform=PLATFORMS.get(info.platform, info.platform),
    )


@router.get("/link/{token}/nonce")
async def nonce(request: Request, token: str, address: str = "") -> Response:
    if not valid_token(token):
        return _refused(UNKNOWN_LINK)
    req = await issue(_ctx(request), token, address)
    if isinstance(req, Refused):
        return _refused(req)
    return json_response(
        {
            "domain": req.domain,
            "address": req.address,
            "statement": req.statement,
            "uri": req.uri,
            "version": req.version,
            "chainId": req.chain_id,
            "nonce": req.nonce,
            "issuedAt": req.issued_at,
            "expirationTime": req.expiration_time,
        }
    )


@router.post("/link/{token}")
async def submit(request: Request, token: str) -> Response:
    if not valid_token(token):
        return _refused(UNKNOWN_LINK)
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        return _refused(Refused(C.MALFORMED_MESSAGE, MESSAGES[C.MALFORMED_MESSAGE]))
    sig = body.get("signature")
    if not isinstance(sig, str):
        return _refused(Refused(C.INVALID_SIGNATURE, MESSAGES[C.INVALID_SIGNATURE]))
    res = await link_wallet(_ctx(request), token, body["message"], sig)
    if isinstance(res, Refused):
        return _refused(res)
    return json_response({"status": "linked", **asdict(res)})


@router.get("/link/{rest:path}")
async def not_a_link_page(request: Request, rest: str) -> Response:
    """Any other path under /link/ (``../..``, ``%2F`` in a token) is no link either."""
    return _not_a_link(request)


@router.post("/link/{rest:path}")
async def not_a_link(request: Request, rest: str) -> Response:
    return _refused(UNKNOWN_LINK)
