"""One x402 sale, whatever carries it: the HTTP API (``PAYMENT-SIGNATURE`` header) and the
MCP tools (``_meta["x402/payment"]``) both hand the payer's signed payload here.

The rules are the HTTP API's, in one place: the request is reserved for idempotency
(``core.payments.idempotency``) before anything is checked; a payer who owns the thing is
told so and charged nothing; otherwise the invoice is paid (verify, settle, confirm,
credit in ``core.payments``). A :class:`Render` turns each outcome into the transport's
bytes (:class:`~core.payments.idempotency.StoredResponse`), so the final paid answer is
stored as the transport sends it and every retry replays it byte for byte.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from x402.schemas import PaymentPayload, SettleResponse

from core.accounts import normalize_wallet
from core.context import Context
from core.errors import InvalidInput
from core.payments import idempotency as idem
from core.payments.outcomes import Paid, PaymentPending
from core.refusals import RefusalCode as C
from core.results import AlreadyOwned, Refused
from core.service import purchases
from core.service.catalog import space_status
from core.service.chat import clean_question
from core.service.views import space_json
from core.spaces import parse_space
from core.statuses import ReceiptStatus

# the authorization of a request that died is being settled or confirmed: money may move
_CONFIRMING = (ReceiptStatus.SETTLING, ReceiptStatus.SETTLED, ReceiptStatus.CONFIRMED)


@dataclass(frozen=True)
class SaleRequest:
    """What is bought: ``route`` and ``body`` identify the request for idempotency (the
    transport's own names: ``/x402/transcribe``, ``mcp:buy_transcript``); ``payload`` goes
    with the invoice (the Space's metadata, the question)."""

    route: str
    kind: str  # transcription | chat_unlock | chat_query
    space_ids: list[str]
    body: dict[str, Any]
    payload: dict[str, Any] | None = None


class Answer(StrEnum):
    """What a sale's answer says; the transport gives it its form (over HTTP, its status)."""

    PAID = "paid"  # sold now, or again from its receipt after a crash
    OWNED = "already_owned"  # nothing charged: the payer owns it already
    CONFIRMING = "confirming"  # paid, the transaction not confirmed yet: ask again


class Render(Protocol):
    """The transport's form of each outcome."""

    def answer(
        self, outcome: Answer, body: dict[str, Any], settlement: SettleResponse | None = None
    ) -> idem.StoredResponse: ...

    def refuse(self, refusal: Refused, retry_after: int | None = None) -> idem.StoredResponse:
        """Nothing sold: the transport chooses how to say it (over HTTP, its status)."""
        ...

    def payment_required(self, message: str) -> idem.StoredResponse: ...


def payer_of(p: PaymentPayload) -> str | None:
    """The lower-case wallet an exact-EVM payload pays from, or None if it names none."""
    auth = p.payload.get("authorization") if isinstance(p.payload, dict) else None
    frm = auth.get("from") if isinstance(auth, dict) else None
    try:
        return normalize_wallet(frm) if isinstance(frm, str) else None
    except ValueError:
        return None


async def space_body(ctx: Context, sid: str) -> dict[str, Any]:
    view = await space_status(ctx.db.reader, sid)
    return {} if view is None else {"space": space_json(view)}


async def sell(
    ctx: Context, req: SaleRequest, p: PaymentPayload, payer: str, render: Render
) -> idem.StoredResponse:
    """Sell ``req`` to ``payer`` with payload ``p``, exactly once whatever the retries."""
    pid = idem.payment_identifier(p)
    if isinstance(pid, idem.Conflict):
        return render.refuse(Refused(pid.code, pid.message))
    key = idem.request_key(req.route, req.body, p, payer, pid)
    held = await _reserve(ctx, key, render)
    if not isinstance(held, idem.Reserved):
        return held
    try:  # until money may move, a failure gives the request back
        prior = await _prior_moved(ctx, key, p, held)
        if prior is None:
            stop = await _preflight(ctx, req, payer, held, render)
            if stop is not None:
                return stop
            await idem.mark_unknown(ctx, held)  # from here on money may move
    except BaseException:
        await asyncio.shield(idem.release(ctx, held))
        raise
    if prior is not None:
        return await _resume(ctx, req, p, held, prior, render)
    return await _buy(ctx, req, p, payer, held, render)


async def _reserve(
    ctx: Context, key: idem.RequestKey, render: Render
) -> idem.Reserved | idem.StoredResponse:
    """The request reserved for this sale, or the answer to give at once: a replay of the
    first answer, a conflict, or the same request still running elsewhere."""
    held = await idem.reserve(ctx, key)
    if isinstance(held, idem.Replay):
        return held.response
    if isinstance(held, idem.Conflict):
        return render.refuse(Refused(held.code, held.message))
    if isinstance(held, idem.InProgress):
        return render.refuse(Refused(held.code, held.message), held.retry_after)
    return held


async def _prior_moved(
    ctx: Context, key: idem.RequestKey, p: PaymentPayload, held: idem.Reserved
) -> idem.PriorPayment | None:
    """For a request whose first process died: the payment of its authorization if money
    has moved (being settled or confirmed, or credited); None when nothing moved."""
    if not held.taken_over:
        return None
    prior = await idem.prior_payment(ctx, key, p.accepted.network)
    if prior is None:
        return None
    if prior.status in _CONFIRMING or prior.status == ReceiptStatus.CREDITED:
        return prior
    return None


async def _preflight(
    ctx: Context, req: SaleRequest, payer: str, held: idem.Reserved, render: Render
) -> idem.StoredResponse | None:
    """The answer when nothing is to be charged (refused, or the payer owns it already),
    with the request released; None when the invoice is to be paid."""
    pre = await purchases.x402_preflight(ctx, req.kind, req.space_ids, payer)
    if isinstance(pre, Refused):
        await idem.release(ctx, held)
        return render.refuse(pre)
    if isinstance(pre, AlreadyOwned):  # nothing is settled: a member never pays twice
        await idem.release(ctx, held)  # nothing charged: the authorization stays unspent
        return render.answer(
            Answer.OWNED, {"paid": False, "already_owned": True, "space": space_json(pre.space)}
        )
    return None


async def _resume(
    ctx: Context,
    req: SaleRequest,
    p: PaymentPayload,
    held: idem.Reserved,
    prior: idem.PriorPayment,
    render: Render,
) -> idem.StoredResponse:
    """The answer of a taken-over request whose authorization already moved money."""
    if prior.status in _CONFIRMING:
        await idem.still_unknown(ctx, held)
        return render.answer(Answer.CONFIRMING, _confirming(prior.transaction_hash))
    resp = await _prior_paid(ctx, req, p, prior, render)
    await idem.finish(ctx, held, resp)
    return resp


async def _buy(
    ctx: Context,
    req: SaleRequest,
    p: PaymentPayload,
    payer: str,
    held: idem.Reserved,
    render: Render,
) -> idem.StoredResponse:
    """Pay the invoice (verify, settle, confirm, credit) and answer what became of it."""
    out = await purchases.x402_buy(ctx, req.kind, req.space_ids, payer, p, req.payload)
    if isinstance(out, Paid):
        answer = await _paid_body(ctx, req, out.transaction_hash, out.payer, out.result)
        resp = render.answer(Answer.PAID, answer, out.settlement)
        await idem.finish(ctx, held, resp)
        return resp
    if isinstance(out, PaymentPending):
        await idem.still_unknown(ctx, held)
        return render.answer(Answer.CONFIRMING, _confirming(out.transaction_hash))
    await idem.release(ctx, held)  # refused: nothing charged, the payload may be tried again
    if out.retry_later:
        return render.refuse(out)
    return render.payment_required(out.message)


def _confirming(transaction: str | None) -> dict[str, Any]:
    """The body of a CONFIRMING answer: paid, the transaction still being confirmed."""
    return {"paid": True, "status": "confirming", "transaction": transaction}


async def _paid_body(
    ctx: Context,
    req: SaleRequest,
    transaction: str | None,
    payer: str | None,
    result: dict[str, Any] | None,
) -> dict[str, Any]:
    """The body of a paid answer, whether it was just paid or replayed from its receipt."""
    answer: dict[str, Any] = {"paid": True, "transaction": transaction, "payer": payer}
    if result is not None:
        answer["answer"] = result
    if req.kind != "chat_query":
        answer.update(await space_body(ctx, req.space_ids[0]))
    return answer


async def _prior_paid(
    ctx: Context, req: SaleRequest, p: PaymentPayload, prior: idem.PriorPayment, render: Render
) -> idem.StoredResponse:
    """The answer of a paid request whose process died before answering (from its receipt)."""
    answer = await _paid_body(ctx, req, prior.transaction_hash, prior.payer, prior.result)
    settled = SettleResponse(
        success=True,
        transaction=prior.transaction_hash or "",
        network=p.accepted.network,
        payer=prior.payer,
    )
    return render.answer(Answer.PAID, answer, settled)


def chat_request(ctx: Context, question: str, spaces: list[str]) -> list[str] | Refused:
    """The Space ids of a paid question (x402 API and MCP ``ask_spaces``), or why it is
    refused before any price is asked."""
    c = ctx.settings.chat
    if len(question) > c.max_question_chars:
        return Refused(C.QUESTION_TOO_LONG, f"At most {c.max_question_chars} characters.")
    if not clean_question(question):
        return Refused(C.EMPTY_QUESTION, "The question is empty once control characters go.")
    if len(spaces) > c.max_spaces:
        return Refused(C.TOO_MANY_SPACES, f"At most {c.max_spaces} Spaces per question.")
    try:
        sids = list(dict.fromkeys(parse_space(s) for s in spaces))
    except InvalidInput as exc:
        return Refused(C.INVALID_SPACE, str(exc))
    if ctx.wiring.fulfiller_for("chat_query") is None:
        return Refused(C.CHAT_UNAVAILABLE, "Chat is not available on this server.")
    return sids
