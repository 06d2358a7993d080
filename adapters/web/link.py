"""Wallet linking pages: ``/link/{token}`` (one-time, from ``/wallet``) with SIWE (EIP-4361).

``static/link.js`` asks ``GET /link/{token}/nonce?address=…`` for the message fields, builds
the EIP-4361 text, has the wallet sign it with ``personal_sign`` and posts
``{message, signature}``; :func:`core.wallet_link.link_wallet` verifies and links.
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request
from fastapi.responses import Response

from adapters.web.pages import json_response, message_page, page, read_json
from core.context import Context
from core.results import Refused
from core.wallet_link import MESSAGES, link_page, link_wallet, valid_token
from core.wallet_link import issue_nonce as issue

router = APIRouter(include_in_schema=False)
PLATFORMS = {"telegram": "Telegram", "discord": "Discord", "web": "web"}
_STATUS = {"unknown_link": 404, "link_expired": 410, "link_used": 410}


def _ctx(request: Request) -> Context:
    return request.app.state.ctx  # type: ignore[no-any-return]


def _refused(r: Refused) -> Response:
    return json_response(
        {"status": "refused", "code": r.code, "message": r.message}, _STATUS.get(r.code, 400)
    )


@router.get("/link/{token}")
async def show(request: Request, token: str) -> Response:
    if not valid_token(token):
        return message_page(request, "Link not valid", MESSAGES["unknown_link"], 404)
    info = await link_page(_ctx(request), token)
    if isinstance(info, Refused):
        title = {"link_expired": "Link expired", "link_used": "Link already used"}.get(
            info.code, "Link not valid"
        )
        return message_page(request, title, info.message, _STATUS.get(info.code, 400))
    return page(
        request,
        "link.html",
        info=info,
        platform=PLATFORMS.get(info.platform, info.platform),
    )


@router.get("/link/{token}/nonce")
async def nonce(request: Request, token: str, address: str = "") -> Response:
    if not valid_token(token):
        return _refused(Refused("unknown_link", MESSAGES["unknown_link"]))
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
        return _refused(Refused("unknown_link", MESSAGES["unknown_link"]))
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        return _refused(Refused("malformed_message", MESSAGES["malformed_message"]))
    sig = body.get("signature")
    if not isinstance(sig, str):
        return _refused(Refused("invalid_signature", MESSAGES["invalid_signature"]))
    res = await link_wallet(_ctx(request), token, body["message"], sig)
    if isinstance(res, Refused):
        return _refused(res)
    return json_response({"status": "linked", **asdict(res)})


@router.get("/link/{rest:path}")
async def not_a_link_page(request: Request, rest: str) -> Response:
    """Any other path under /link/ (``../..``, ``%2F`` in a token) is no link either."""
    return message_page(request, "Link not valid", MESSAGES["unknown_link"], 404)


@router.post("/link/{rest:path}")
async def not_a_link(request: Request, rest: str) -> Response:
    return _refused(Refused("unknown_link", MESSAGES["unknown_link"]))
