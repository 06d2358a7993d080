"""The pay page: ``/pay/{invoice}`` shows the invoice and lets a browser wallet pay it.

The page's script (``static/pay.js``) asks ``GET /pay/{invoice}/authorization?payer=…`` for
the exact EIP-3009 ``TransferWithAuthorization`` typed data (fresh random nonce, validity
window inside the invoice's), has the wallet sign it with ``eth_signTypedData_v4`` and posts
``{authorization, signature}`` back. The server builds the x402 v2 payment payload from it,
with the ``accepted`` terms taken from the invoice (never from the browser), and hands it to
:func:`core.payments.pay_invoice`, which verifies, settles, confirms and credits.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import time
from datetime import UTC
from typing import Any, TypedDict

import segno
from eth_utils import to_checksum_address
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from x402.schemas import PaymentRequirements

from adapters.web import refusals
from adapters.web.pages import json_response, message_page, page, read_json
from adapters.web.refusals import Family
from core.accounts import normalize_wallet
from core.context import Context
from core.db import Account, Invoice, Space, utcnow
from core.money import canonical_units
from core.payments import (
    Paid,
    PaymentPending,
    eip3009,
    get_invoice,
    invoice_requirements,
    pay_invoice,
)
from core.payments.demo import DEMO_ADDRESS, demo_refusal, sign_demo
from core.payments.invoices import direct_transfer, due_units, valid_public_id
from core.payments.pay import unreadable
from core.refusals import RefusalCode as C
from core.results import Refused
from core.service.notices import teaser
from core.service.views import space_view
from core.spaces import SPACE_ID_RE, canonical_url

router = APIRouter(include_in_schema=False)

KIND_LABELS = {
    "transcription": "Transcript",
    "chat_unlock": "Chat unlock",
    "chat_query": "Chat question",
}
_TG_BOT = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
_SNOWFLAKE = re.compile(r"^[0-9]{5,25}$")
VALIDITY_SLACK = 600  # validAfter this far in the past, as the official x402 client does


def _ctx(request: Request) -> Context:
    return request.app.state.ctx  # type: ignore[no-any-return]


def _status(inv: Invoice) -> str:
    if inv.status == "open" and inv.expires_at <= utcnow():
        return "expired"
    return inv.status


def return_link(inv: Invoice, acc: Account | None) -> str | None:
    """Back to where the purchase came from: a Telegram deep link, a Discord channel, or the
    storefront's Space page."""
    payload: dict[str, Any] = json.loads(inv.payload) if inv.payload else {}
    platform = acc.platform if acc else None
    if platform == "web":  # the storefront: back to the Space's page
        ids = json.loads(inv.space_ids)
        return f"/spaces/{ids[0]}" if ids and SPACE_ID_RE.fullmatch(str(ids[0])) else "/"
    bot = payload.get("bot_username")
    if platform == "telegram" and isinstance(bot, str) and _TG_BOT.match(bot):
        return f"https://t.me/{bot}?start=paid_{inv.public_id}"
    guild, chat = str(payload.get("guild_id", "")), inv.origin_chat_id or ""
    if platform == "discord" and _SNOWFLAKE.match(guild) and _SNOWFLAKE.match(chat):
        return f"https://discord.com/channels/{guild}/{chat}"
    return None


class _SpaceCard(TypedDict):
    """A Space as the pay page lists it."""

    id: str
    title: str
    url: str
    teaser: list[str]


async def _load(ctx: Context, public_id: str) -> tuple[Invoice, Account | None, list[_SpaceCard]]:
    async with ctx.db.read() as s:
        inv = await get_invoice(s, public_id)
        if inv is None:
            raise LookupError(public_id)
        acc = await s.get(Account, inv.account_id) if inv.account_id is not None else None
        ids: list[str] = json.loads(inv.space_ids)
        rows = (await s.execute(select(Space).where(Space.space_id.in_(ids)))).scalars().all()
        views = {r.space_id: space_view(r) for r in rows}
    payload: dict[str, Any] = json.loads(inv.payload) if inv.payload else {}
    spaces: list[_SpaceCard] = []
    for sid in ids:
        v = views.get(sid)
        spaces.append(
            {
                "id": sid,
                "title": (v.title if v else None) or str(payload.get("title") or "X Space"),
                "url": canonical_url(sid),
                # the free teaser (completed Spaces): never takeaways, quotes or text
                "teaser": teaser(v, lambda s: s) if v else [],
            }
        )
    return inv, acc, spaces


def _not_found(request: Request) -> Response:
    return message_page(
        request,
        "Invoice not found",
        "There is no invoice at this address. Check the link, or ask the bot for a new one.",
        404,
    )


@router.get("/pay/{public_id}")
async def pay_page(request: Request, public_id: str) -> Response:
    if not valid_public_id(public_id):
        return _not_found(request)
    ctx = _ctx(request)
    try:
        inv, acc, spaces = await _load(ctx, public_id)
    except LookupError:
        return _not_found(request)
    status = _status(inv)
    due = due_units(inv)
    direct = direct_transfer(ctx, due) if status == "open" and due > 0 else None
    p = ctx.settings.payments
    return page(
        request,
        "pay.html",
        inv=inv,
        kind=KIND_LABELS.get(inv.kind, inv.kind),
        spaces=spaces,
        question=(json.loads(inv.payload) if inv.payload else {}).get("question"),
        price=canonical_units(due),
        credit=canonical_units(int(inv.credit_units)) if inv.credit_units else None,
        total=canonical_units(int(inv.amount_units)),
        status=status,
        expires=inv.expires_at.replace(tzinfo=UTC),
        expires_epoch=int(inv.expires_at.replace(tzinfo=UTC).timestamp()),
        direct=direct,
        token_name=p.token_name,
        chain_id=p.chain_id,
        back=return_link(inv, acc),
        back_label="Back to the Space" if acc and acc.platform == "web" else "Back to the chat",
        demo=p.test_mode,
    )


@router.get("/pay/{public_id}/qr.svg")
async def pay_qr(request: Request, public_id: str) -> Response:
    """The EIP-681 transfer link as a QR code, drawn here (no third-party QR service)."""
    if not valid_public_id(public_id):
        return Response(status_code=404)
    ctx = _ctx(request)
    async with ctx.db.session() as s:
        inv = await get_invoice(s, public_id)
    if inv is None or _status(inv) != "open" or due_units(inv) <= 0:
        return Response(status_code=404)
    direct = direct_transfer(ctx, due_units(inv))
    if direct is None:
        return Response(status_code=404)
    buf = io.BytesIO()
    segno.make(direct.eip681_uri, error="m").save(buf, kind="svg", scale=4, border=2)
    return Response(
        buf.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": "no-store"}
    )


UNKNOWN_INVOICE = Refused(C.UNKNOWN_INVOICE, "No such invoice.")


def _refused(r: Refused, **extra: Any) -> Response:
    body = {"status": "refused", "code": r.code, "message": r.message, **extra}
    return json_response(body, refusals.status(Family.PAY, r))


@router.get("/pay/{public_id}/authorization")
async def authorization(request: Request, public_id: str, payer: str = "") -> Response:
    """The EIP-712 typed data the wallet signs: every field chosen here, from the invoice."""
    if not valid_public_id(public_id):
        return _refused(UNKNOWN_INVOICE)
    try:
        payer_addr = normalize_wallet(payer)
    except ValueError:
        return _refused(Refused(C.INVALID_ADDRESS, "The wallet did not give a valid address."))
    ctx = _ctx(request)
    reqs = await invoice_requirements(ctx, public_id)
    if isinstance(reqs, Refused):
        return _refused(reqs)
    typed = await _typed_authorization(ctx, public_id, reqs, payer_addr)
    if typed is None:
        return _refused(UNKNOWN_INVOICE)
    return json_response(
        {
            "chainId": ctx.settings.payments.chain_id,
            "chainIdHex": hex(ctx.settings.payments.chain_id),
            "typedData": typed,
            "amount": canonical_units(int(reqs.amount)),
        }
    )


async def _typed_authorization(
    ctx: Context, public_id: str, reqs: PaymentRequirements, payer: str
) -> dict[str, Any] | None:
    """The EIP-712 typed data of one authorization for this invoice (None: no invoice)."""
    async with ctx.db.session() as s:
        inv = await get_invoice(s, public_id)
    if inv is None:
        return None
    now = int(time.time())
    expires = int(inv.expires_at.replace(tzinfo=UTC).timestamp())
    valid_before = min(expires, now + int(reqs.max_timeout_seconds))
    extra = reqs.extra or {}
    message = {
        "from": to_checksum_address(payer),
        "to": to_checksum_address(reqs.pay_to),
        "value": str(reqs.amount),
        "validAfter": str(now - VALIDITY_SLACK),
        "validBefore": str(valid_before),
        "nonce": "0x" + secrets.token_hex(32),
    }
    return eip3009.typed_data(
        str(extra.get("name", "")),
        str(extra.get("version", "")),
        ctx.settings.payments.chain_id,
        reqs.asset,
        message,
    )


def _authorization(body: dict[str, Any]) -> tuple[dict[str, str], str] | str:
    """The signed authorization from the page (shape checked by the payments core), or why
    it cannot be read."""
    # JSON values of any type until authorization_problem has checked them
    auth: Any = body.get("authorization")
    sig: Any = body.get("signature")
    problem = eip3009.authorization_problem(auth, sig)
    if problem:
        return problem
    out: dict[str, str] = {k: auth[k] for k in eip3009.FIELDS}
    # checksummed: web3 (used by the x402 facilitator) accepts no other form
    out["from"], out["to"] = to_checksum_address(auth["from"]), to_checksum_address(auth["to"])
    out["nonce"] = auth["nonce"].lower()
    return out, sig


@router.post("/pay/{public_id}")
async def submit(request: Request, public_id: str) -> Response:
    if not valid_public_id(public_id):
        return _refused(UNKNOWN_INVOICE)
    body = await read_json(request)
    parsed = _authorization(body) if isinstance(body, dict) else body
    if isinstance(parsed, str):
        return _refused(unreadable(parsed))
    auth, signature = parsed
    ctx = _ctx(request)
    reqs = await invoice_requirements(ctx, public_id)
    if isinstance(reqs, Refused):
        return _refused(reqs)
    return await _pay(ctx, public_id, reqs, auth, signature)


@router.post("/pay/{public_id}/demo")
async def pay_with_demo_wallet(request: Request, public_id: str) -> Response:
    """Test mode: the server signs the authorization with the demo wallet's (public, test-only)
    key and pays through the same x402 path as a browser wallet. Live mode refuses (403).
    JSON only, like the other pay-page posts: a cross-site form cannot trigger it."""
    ctx = _ctx(request)
    refusal = demo_refusal(ctx.settings.payments)
    if refusal is not None:
        return _refused(refusal)
    if not valid_public_id(public_id):
        return _refused(UNKNOWN_INVOICE)
    body = await read_json(request)
    if isinstance(body, str):
        return _refused(unreadable(body))
    if body:
        return _refused(Refused(C.INVALID_PAYLOAD, "The demo wallet takes no input: send {}."))
    reqs = await invoice_requirements(ctx, public_id)
    if isinstance(reqs, Refused):
        return _refused(reqs)
    typed = await _typed_authorization(ctx, public_id, reqs, DEMO_ADDRESS)
    if typed is None:
        return _refused(UNKNOWN_INVOICE)
    signature = sign_demo(typed, ctx.settings.payments)
    return await _pay(ctx, public_id, reqs, typed["message"], signature)


async def _pay(
    ctx: Context,
    public_id: str,
    reqs: PaymentRequirements,
    auth: dict[str, str],
    signature: str,
) -> Response:
    """The x402 v2 payload of a signed authorization, paid by the payments core."""
    payload = {
        "x402Version": 2,
        "accepted": reqs.model_dump(mode="json", by_alias=True, exclude_none=True),
        "payload": {"authorization": auth, "signature": signature},
    }
    outcome = await pay_invoice(ctx, public_id, payload)
    back = None
    try:
        inv, acc, _ = await _load(ctx, public_id)
        back = return_link(inv, acc)
    except LookupError:
        pass
    if isinstance(outcome, Paid):
        msg = "Paid and credited. You can go back to the chat."
        if back and back.startswith("/"):
            msg = "Paid and credited. Go back to the Space to read it."
        if outcome.credit_units:
            credit = canonical_units(outcome.credit_units)
            msg = f"Paid. You already owned this, so {credit} USDC became account credit."
        return json_response(
            {
                "status": "credited",
                "message": msg,
                "transaction": outcome.transaction_hash,
                "payer": outcome.payer,
                "back": back,
            }
        )
    if isinstance(outcome, PaymentPending):
        return json_response(
            {
                "status": "pending",
                "message": outcome.message,
                "transaction": outcome.transaction_hash,
                "back": back,
            },
            202,
        )
    return _refused(outcome, back=back)


@router.get("/pay/{rest:path}")
async def not_an_invoice_page(request: Request, rest: str) -> Response:
    """Any other path under /pay/ (``../..``, ``%2F`` in an id) is no invoice either."""
    return _not_found(request)


@router.post("/pay/{rest:path}")
async def not_an_invoice(request: Request, rest: str) -> Response:
    return _refused(UNKNOWN_INVOICE)
