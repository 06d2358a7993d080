"""The x402 HTTP API for programs and agents (protocol v2 headers).

Paid routes answer ``402`` with a ``PAYMENT-REQUIRED`` header (base64 JSON of the x402
PaymentRequired) until the request carries ``PAYMENT-SIGNATURE`` (the client's signed
payload); then the sale (``core.service.x402_sale``, shared with the MCP tools) verifies,
settles and confirms it on chain and the answer carries ``PAYMENT-RESPONSE``. The payer's
wallet is the buyer. Each 402 declares bazaar discovery (``adapters.web.discovery``). Retries are idempotent (``core.payments.idempotency``: payment-identifier and
authorization, replayed from the database); a wallet that owns the thing signs in with
``SIGN-IN-WITH-X`` instead of paying (``core.payments.siwx``). Free routes:
``GET /api/spaces/{space_id}`` and, for a wallet that bought it,
``GET /api/spaces/{space_id}/transcript`` (SIWX; deprecated alias: headers
``X-Wallet-Address``, ``X-Wallet-Timestamp`` (unix seconds) and ``X-Wallet-Signature``, an
EIP-191 ``personal_sign`` of ``"spacescribe transcript <space_id> <timestamp>"``, 5 minutes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Receive, Scope, Send
from x402.extensions.payment_identifier import (
    PAYMENT_IDENTIFIER,
    declare_payment_identifier_extension,
)
from x402.extensions.sign_in_with_x import SIGN_IN_WITH_X
from x402.http.utils import (
    decode_payment_signature_header,
    encode_payment_required_header,
    encode_payment_response_header,
)
from x402.schemas import PaymentPayload, ResourceInfo, SettleResponse

from adapters.web import discovery, refusals
from adapters.web.pages import document_response
from adapters.web.refusals import Family
from core.context import Context
from core.errors import InvalidInput
from core.payments import idempotency as idem
from core.payments import siwx as siwx_auth
from core.payments.gateway import GatewayUnavailable, gateway_for
from core.payments.wallet_proof import transcript_message, verify_wallet_proof
from core.refusals import RefusalCode as C
from core.results import AlreadyOwned, Refused
from core.service import listing, purchases
from core.service.catalog import space_status
from core.service.views import format_problem, space_json
from core.service.x402_sale import Answer, SaleRequest, chat_request, payer_of, sell
from core.spaces import parse_space, validate_id

router = APIRouter(tags=["x402"])
MAX_PAYMENT_HEADER = 16_384  # a signed exact payload is ~1.5 KB
PAID: dict[int | str, dict[str, Any]] = {
    402: {"description": "Payment required: see the PAYMENT-REQUIRED header (x402 v2)."},
    400: {"description": "Malformed request or PAYMENT-SIGNATURE header."},
    503: {"description": "The chain or facilitator is unreachable; nothing was charged."},
}


class BodyLimit:
    """Refuse oversized or unsized bodies and oversized payment headers before parsing."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(("/x402/", "/api/", "/mcp")):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v for k, v in scope["headers"]}
        why: tuple[int, str] | None = None
        if len(headers.get("payment-signature", b"")) > MAX_PAYMENT_HEADER:
            why = (431, "PAYMENT-SIGNATURE header too large")
        elif len(headers.get("sign-in-with-x", b"")) > siwx_auth.MAX_HEADER:
            why = (431, "SIGN-IN-WITH-X header too large")
        elif scope["method"] == "POST":
            length = headers.get("content-length")
            if length is None:
                why = (411, "Content-Length required")
            elif not length.isdigit() or int(length) > self.max_body:
                why = (413, f"body larger than {self.max_body} bytes")
        if why is None:
            await self.app(scope, receive, send)
            return
        await JSONResponse({"error": "invalid_request", "message": why[1]}, why[0])(
            scope, receive, send
        )


class SpaceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    space: str = Field(max_length=2048, description="Space link or 13-character id")


class ChatRequest(BaseModel):
    # the upper limits are chat.max_question_chars and chat.max_spaces, checked by the route
    # and published in the schema by adapters.web.errors (the body limit bounds the rest)
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1)
    spaces: list[str] = Field(min_length=1)


def _ctx(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def _error(r: Refused, family: Family = Family.API) -> JSONResponse:
    return JSONResponse({"error": r.code, "message": r.message}, refusals.status(family, r))


def _discovery(ctx: Context, path: str) -> dict[str, Any]:
    """The bazaar declaration of the paid route at ``path`` (adapters.web.discovery)."""
    bodies: dict[str, tuple[str, type[BaseModel]]] = {
        "/x402/transcribe": ("transcription", SpaceRequest),
        "/x402/unlock": ("chat_unlock", SpaceRequest),
        "/x402/chat": ("chat_query", ChatRequest),
    }
    if path in bodies:
        kind, model = bodies[path]
        return discovery.for_body(kind, model, ctx.settings, path)
    return discovery.for_transcript(path)


def _extensions(ctx: Context, path: str, siwx: bool) -> dict[str, Any]:
    """The x402 extensions a 402 answer declares: bazaar discovery (how to call the route)
    and payment-identifier (idempotent retries) on every paid route, sign-in-with-x
    (re-access without paying) where a wallet can own it."""
    ext: dict[str, Any] = {
        **_discovery(ctx, path),
        PAYMENT_IDENTIFIER: declare_payment_identifier_extension(),
    }
    if siwx:
        ext[SIGN_IN_WITH_X] = siwx_auth.declaration(ctx, path)
    return ext


def _payment_required(
    request: Request,
    ctx: Context,
    units: int,
    description: str,
    error: str | None = None,
    *,
    siwx: bool = True,
) -> JSONResponse:
    try:
        gw = gateway_for(ctx.settings.payments, ctx.secrets)
        reqs = gw.requirements(units)
    except GatewayUnavailable:
        return _error(
            Refused(C.PAYMENTS_UNAVAILABLE, "Payments are not configured on this server.")
        )
    except Exception:
        return _error(
            Refused(C.RPC_UNAVAILABLE, "The payment facilitator is unreachable; try later.")
        )
    resource = ResourceInfo(
        url=str(request.url),
        description=description,
        mime_type="application/json",
        service_name=listing.SERVICE_NAME,
        tags=listing.SERVICE_TAGS,
    )
    pr = gw.payment_required(reqs, resource, error)
    pr.extensions = _extensions(ctx, request.url.path, siwx)
    return JSONResponse(
        pr.model_dump(mode="json", by_alias=True, exclude_none=True),
        402,
        headers={"PAYMENT-REQUIRED": encode_payment_required_header(pr)},
    )


def _decode(header: str) -> PaymentPayload | None:
    try:
        p = decode_payment_signature_header(header)
    except Exception:
        return None
    return p if isinstance(p, PaymentPayload) else None


class _HttpRender:
    """x402 sale outcomes as HTTP answers (``core.service.x402_sale.Render``)."""

    def __init__(self, request: Request, units: int) -> None:
        self.request = request
        self.units = units

    def answer(
        self, outcome: Answer, body: dict[str, Any], settlement: SettleResponse | None = None
    ) -> idem.StoredResponse:
        headers = {}
        if settlement is not None:
            headers["PAYMENT-RESPONSE"] = encode_payment_response_header(settlement)
        status = 202 if outcome == Answer.CONFIRMING else 200  # 202: the money is on its way
        return _stored(JSONResponse(body, status, headers=headers))

    def refuse(self, refusal: Refused, retry_after: int | None = None) -> idem.StoredResponse:
        r = _error(refusal)
        if retry_after is not None:
            r.headers["Retry-After"] = str(retry_after)
        return _stored(r)

    def payment_required(self, message: str) -> idem.StoredResponse:
        ctx = _ctx(self.request)
        return _stored(
            _payment_required(self.request, ctx, self.units, "retry with a valid payment", message)
        )


def _stored(resp: Response) -> idem.StoredResponse:
    keep = ("content-type", "payment-response", "payment-required", "retry-after")
    headers = {k: v for k, v in resp.headers.items() if k.lower() in keep}
    return idem.StoredResponse(resp.status_code, bytes(resp.body), headers)


def _replay(stored: idem.StoredResponse) -> Response:
    return Response(stored.body, stored.status, headers=stored.headers)


async def _signed_in(
    request: Request, kind: str, space_ids: list[str], header: str, body: dict[str, Any]
) -> Response | None:
    """SIGN-IN-WITH-X on a paid route: what the wallet already owns, with no payment; None
    when it owns nothing here (the caller answers 402 so it can pay)."""
    ctx = _ctx(request)
    wallet = await siwx_auth.sign_in(ctx, header)
    if isinstance(wallet, Refused):
        return _error(wallet, Family.SIGN_IN)
    if kind == "chat_query":  # the answer it paid for: the same question over the same Spaces
        key = idem.body_hash(request.url.path, body)
        stored = await idem.paid_answer(ctx, request.url.path, wallet, key)
        return _replay(stored) if stored is not None else None
    pre = await purchases.x402_preflight(ctx, kind, space_ids, wallet)
    if not isinstance(pre, AlreadyOwned):
        return None
    answer: dict[str, Any] = {"paid": False, "already_owned": True, "payer": wallet}
    answer["space"] = space_json(pre.space)
    if kind == "transcription":
        answer["transcript_url"] = f"/api/spaces/{space_ids[0]}/transcript"
    return JSONResponse(answer)


async def _paid_route(
    request: Request,
    kind: str,
    space_ids: list[str],
    signature: str | None,
    payload: dict[str, Any] | None = None,
    body: dict[str, Any] | None = None,
) -> Response:
    ctx = _ctx(request)
    units = purchases.price_units(ctx, kind, len(space_ids))
    what = {"transcription": "transcript", "chat_unlock": "chat unlock", "chat_query": "answer"}
    siwx_header = request.headers.get(siwx_auth.HEADER)
    if signature is None:  # the payer is not known yet: ownership is checked on payment
        if siwx_header is not None:
            owned = await _signed_in(request, kind, space_ids, siwx_header, body or {})
            if owned is not None:
                return owned
            return _payment_required(
                request, ctx, units, f"spacescribe {what[kind]}", "This wallet has not paid for it."
            )
        return _payment_required(request, ctx, units, f"spacescribe {what[kind]}")
    p = _decode(signature)
    payer = payer_of(p) if p else None
    if p is None or payer is None:
        r = Refused(C.INVALID_PAYMENT_HEADER, "PAYMENT-SIGNATURE is not an x402 v2 payload")
        return _error(r)
    sale = SaleRequest(request.url.path, kind, space_ids, body or {}, payload)
    return _replay(await sell(ctx, sale, p, payer, _HttpRender(request, units)))


def _space(text: str, parse: Callable[[str], str]) -> str | Response:
    """The Space id in ``text`` (a link for purchases, a bare id in paths), or a 400."""
    try:
        return parse(text)
    except InvalidInput as exc:
        return _error(Refused(C.INVALID_SPACE, str(exc)))


@router.post("/x402/transcribe", responses=PAID, summary="Buy a Space transcript (x402)")
async def transcribe(
    request: Request,
    body: SpaceRequest,
    payment_signature: str | None = Header(None, alias="PAYMENT-SIGNATURE"),
) -> Response:
    sid = _space(body.space, parse_space)
    if isinstance(sid, Response):
        return sid
    return await _buy_transcript(request, sid, payment_signature)


async def _buy_transcript(request: Request, sid: str, payment_signature: str | None) -> Response:
    """Quote or sell one Space's transcript (``/x402/transcribe`` and a paid transcript GET)."""
    checked = await purchases.default_check_space()(_ctx(request), sid)
    if isinstance(checked, Refused):
        return _error(checked)
    response = await _paid_route(
        request,
        "transcription",
        [sid],
        payment_signature,
        purchases.checked_payload(checked),
        {"space": sid},
    )
    note = getattr(checked, "note", None)
    if note:  # a live or scheduled Space: "will be transcribed when it ends"
        response.headers["X-Spacescribe-Note"] = note
    return response


@router.post("/x402/unlock", responses=PAID, summary="Unlock chat on a Space you own (x402)")
async def unlock(
    request: Request,
    body: SpaceRequest,
    payment_signature: str | None = Header(None, alias="PAYMENT-SIGNATURE"),
) -> Response:
    sid = _space(body.space, parse_space)
    if isinstance(sid, Response):
        return sid
    return await _paid_route(request, "chat_unlock", [sid], payment_signature, None, {"space": sid})


@router.post(
    "/x402/chat", responses=PAID, summary="Ask a question over Spaces (verify → answer → settle)"
)
async def chat(
    request: Request,
    body: ChatRequest,
    payment_signature: str | None = Header(None, alias="PAYMENT-SIGNATURE"),
) -> Response:
    sids = chat_request(_ctx(request), body.question, body.spaces)
    if isinstance(sids, Refused):
        return _error(sids)
    return await _paid_route(
        request,
        "chat_query",
        sids,
        payment_signature,
        {"question": body.question},
        {"question": body.question, "spaces": sids},
    )


@router.get("/api/spaces/{space_id}", tags=["spaces"], summary="A Space's status (free)")
async def get_space(request: Request, space_id: str) -> Response:
    sid = _space(space_id, validate_id)
    if isinstance(sid, Response):
        return sid
    view = await space_status(_ctx(request).db.reader, sid)
    if view is None:
        return _error(Refused(C.UNKNOWN_SPACE, f"Space {sid} has not been requested yet."))
    return JSONResponse(space_json(view))


@router.get(
    "/api/spaces/{space_id}/transcript",
    tags=["spaces"],
    responses=PAID,
    summary="The transcript, for a wallet that bought it (SIGN-IN-WITH-X), or buy it (x402)",
)
async def get_transcript(
    request: Request,
    space_id: str,
    sign_in_with_x: str | None = Header(None, alias="SIGN-IN-WITH-X"),
    payment_signature: str | None = Header(None, alias="PAYMENT-SIGNATURE"),
    x_wallet_address: str | None = Header(None, max_length=64),
    x_wallet_timestamp: int | None = Header(None),
    x_wallet_signature: str | None = Header(None, max_length=200),
    format: str = Query("md", max_length=10, description="md, json, srt or vtt"),  # noqa: A002
) -> Response:
    """``SIGN-IN-WITH-X`` from a wallet that bought the Space → the transcript (markdown).
    ``X-Wallet-*`` (deprecated alias, see the README) works as before. Neither → 402 with the
    transcript's price and a sign-in challenge; paying here buys it like ``/x402/transcribe``."""
    sid = _space(space_id, validate_id)
    if isinstance(sid, Response):
        return sid
    if bad := format_problem(format):
        return _error(bad)
    ctx = _ctx(request)
    legacy = (x_wallet_address, x_wallet_timestamp, x_wallet_signature)
    deprecated = False
    if sign_in_with_x is not None:
        wallet: str | Refused = await siwx_auth.sign_in(ctx, sign_in_with_x)
        if isinstance(wallet, Refused):
            return _error(wallet, Family.SIGN_IN)
    elif any(h is not None for h in legacy):
        if x_wallet_address is None or x_wallet_timestamp is None or x_wallet_signature is None:
            return _error(
                Refused(
                    C.INCOMPLETE_WALLET_PROOF,
                    "X-Wallet-Address, X-Wallet-Timestamp and X-Wallet-Signature go together; "
                    "prefer SIGN-IN-WITH-X.",
                )
            )
        wallet = verify_wallet_proof(
            transcript_message(sid, x_wallet_timestamp),
            x_wallet_address,
            x_wallet_timestamp,
            x_wallet_signature,
        )
        if isinstance(wallet, Refused):
            return _error(wallet)
        deprecated = True
    elif payment_signature is not None:
        return await _buy_transcript(request, sid, payment_signature)
    else:
        units = purchases.price_units(ctx, "transcription")
        return _payment_required(request, ctx, units, "spacescribe transcript")
    t = await purchases.transcript_for_wallet(ctx, sid, wallet, format)
    if isinstance(t, Refused) and t.code == C.NOT_OWNED and not deprecated:
        units = purchases.price_units(ctx, "transcription")
        return _payment_required(request, ctx, units, "spacescribe transcript", t.message)
    if isinstance(t, Refused):
        return _error(t)
    headers = {"Deprecation": "true"} if deprecated else None
    return document_response(t, f"{sid}.{format}", headers)


@router.get("/api/spaces/{rest:path}", include_in_schema=False)
async def not_a_space(request: Request, rest: str) -> Response:
    """Anything else under /api/spaces/ (``../..``, ``%2F``): not a Space id, said so."""
    sid = _space(rest, validate_id)
    return sid if isinstance(sid, Response) else _error(Refused(C.NOT_FOUND, "No such route."))
