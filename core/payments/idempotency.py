"""Idempotent x402 requests: one paid request answered once, whatever the retries.

A paid request is *reserved* in ``x402_requests`` before its payment is verified, under two
UNIQUE keys: the client's payment-identifier (x402 ``payment-identifier`` extension), if it
sent one, and its EIP-3009 authorization (network, token, payer, nonce), which can move money
once only. So a retry with the same id, or the same ``PAYMENT-SIGNATURE`` re-sent without an
id, finds the first request's row, in this process or any other sharing the database:

- ``done``: its stored response (status, body, headers) is replayed byte for byte;
- another request body or payment under the same id or authorization: a conflict (409);
- ``in_flight`` / ``unknown`` (being paid by someone else, or money may have moved and the
  outcome is not known yet): the retry polls the row for a while, then is told to retry;
- a row whose owner died (its lease ran out) is taken over by one retry, which first asks
  the payment receipts what became of the authorization before paying anything.

Only final paid answers are kept (``done``). A request refused before any money moved
releases its row, so the same payload can be tried again later.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, or_, select, update
from x402.extensions.payment_identifier import (
    extract_and_validate_payment_identifier,
)
from x402.schemas import PaymentPayload

from core.context import Context
from core.db import PaymentReceipt, X402Request, utcnow
from core.db.upsert import insert

LEASE_SECONDS = 120  # how long a reservation's process owns it before a retry may take over
WAIT_SECONDS = 30.0  # how long a concurrent retry waits for the first request's outcome
POLL_SECONDS = 0.1
RETRY_AFTER_SECONDS = 2

MESSAGES = {
    "payment_id_conflict": (
        "This payment-identifier was already used for a different request or payment; "
        "use a new id for a new payment."
    ),
    "authorization_conflict": (
        "This payment authorization was already used for a different request; sign a new one."
    ),
    "request_in_progress": (
        "The first request with this payment is still being processed; retry with the same "
        "payment to get its answer."
    ),
    "invalid_payment_identifier": (
        "The payment-identifier extension is malformed: its id must be 16-128 characters of "
        "letters, digits, '-' and '_'."
    ),
}


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Reserved:
    """This request owns the reservation; ``lease`` fences its later writes."""

    row_id: int
    lease: datetime
    taken_over: bool = False  # a previous owner died: ask the receipts before paying


@dataclass(frozen=True)
class Replay:
    response: StoredResponse


@dataclass(frozen=True)
class Conflict:
    code: str
    message: str


@dataclass(frozen=True)
class InProgress:
    code: str = "request_in_progress"
    message: str = MESSAGES["request_in_progress"]
    retry_after: int = RETRY_AFTER_SECONDS


Reservation = Reserved | Replay | Conflict | InProgress


@dataclass(frozen=True)
class RequestKey:
    payment_id: str | None
    authorization_key: str
    request_hash: str
    body_hash: str
    route: str
    payer: str
    nonce: str


def payment_identifier(payload: PaymentPayload) -> str | None | Conflict:
    """The client's payment id (None if it sent none), or why its extension is malformed."""
    pid, check = extract_and_validate_payment_identifier(payload)
    if not check.valid:
        return Conflict("invalid_payment_identifier", MESSAGES["invalid_payment_identifier"])
    return pid


def body_hash(route: str, body: dict[str, Any]) -> str:
    """SHA-256 of a request's route and body, whatever pays for it."""
    text = json.dumps({"route": route, "body": body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def request_key(
    route: str, body: dict[str, Any], payload: PaymentPayload, payer: str, payment_id: str | None
) -> RequestKey:
    """What identifies a paid request: the route, its body and its payment (extensions such
    as the payment-identifier itself are not part of what is compared)."""
    auth = payload.payload.get("authorization", {})
    nonce = str(auth.get("nonce", "")).lower()
    network = payload.accepted.network
    token = payload.accepted.asset.lower()
    signed = json.loads(payload.model_dump_json(exclude_none=True, exclude={"extensions"}))
    canonical = json.dumps(
        {"route": route, "body": body, "payment": signed}, sort_keys=True, separators=(",", ":")
    )
    return RequestKey(
        payment_id=payment_id,
        authorization_key=f"{network}:{token}:{payer.lower()}:{nonce}",
        request_hash=hashlib.sha256(canonical.encode()).hexdigest(),
        body_hash=body_hash(route, body),
        route=route,
        payer=payer.lower(),
        nonce=nonce,
    )


def _stored(row: X402Request) -> StoredResponse:
    return StoredResponse(
        int(row.response_status or 200),
        (row.response_body or "").encode(),
        json.loads(row.response_headers or "{}"),
    )


async def _insert(ctx: Context, key: RequestKey, lease: datetime) -> int | None:
    async with ctx.db.session() as s:
        stmt = (
            insert(s, X402Request)
            .values(
                payment_id=key.payment_id,
                authorization_key=key.authorization_key,
                request_hash=key.request_hash,
                body_hash=key.body_hash,
                route=key.route,
                payer_address=key.payer,
                state="in_flight",
                lease_until=lease,
                updated_at=utcnow(),
            )
            .on_conflict_do_nothing()  # either UNIQUE key: someone holds this request
            .returning(X402Request.id)
        )
        return (await s.execute(stmt)).scalar_one_or_none()


async def _rows(ctx: Context, key: RequestKey) -> list[X402Request]:
    cond = X402Request.authorization_key == key.authorization_key
    if key.payment_id is not None:
        cond = or_(cond, X402Request.payment_id == key.payment_id)
    async with ctx.db.session() as s:
        return list((await s.execute(select(X402Request).where(cond))).scalars())


def _conflict(key: RequestKey, rows: list[X402Request]) -> Conflict | None:
    for r in rows:
        same_id = key.payment_id is not None and r.payment_id == key.payment_id
        if r.request_hash != key.request_hash or len(rows) > 1:
            code = "payment_id_conflict" if same_id else "authorization_conflict"
            return Conflict(code, MESSAGES[code])
    return None


async def _take_over(ctx: Context, row: X402Request, lease: datetime) -> bool:
    """Claim a reservation whose owner's lease ran out (exactly one retry wins)."""
    async with ctx.db.session() as s:
        moved = await s.execute(
            update(X402Request)
            .where(
                X402Request.id == row.id,
                X402Request.state != "done",
                X402Request.lease_until == row.lease_until,
            )
            .values(lease_until=lease, updated_at=utcnow())
        )
        return bool(cast(CursorResult[Any], moved).rowcount)


async def reserve(
    ctx: Context, key: RequestKey, *, wait_seconds: float = WAIT_SECONDS
) -> Reservation:
    """Own this request, or learn what the first one with its id or authorization became."""
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while True:
        lease = utcnow() + timedelta(seconds=LEASE_SECONDS)
        row_id = await _insert(ctx, key, lease)
        if row_id is not None:
            return Reserved(int(row_id), lease)
        rows = await _rows(ctx, key)
        if rows:
            conflict = _conflict(key, rows)
            if conflict is not None:
                return conflict
            row = rows[0]
            if row.state == "done":
                return Replay(_stored(row))
            # pragma: "<" would differ only when the lease ends at this very microsecond
            expired = row.lease_until <= utcnow()  # pragma: no mutate
            if expired and await _take_over(ctx, row, lease):
                return Reserved(row.id, lease, taken_over=True)
        # else: the row was released between our insert and our read; try again
        # pragma: ">" would differ only at the deadline's very tick (one more poll, same answer)
        if asyncio.get_running_loop().time() >= deadline:  # pragma: no mutate
            return InProgress()
        await asyncio.sleep(POLL_SECONDS)


async def _set(ctx: Context, r: Reserved, **values: Any) -> bool:
    async with ctx.db.session() as s:
        moved = await s.execute(
            update(X402Request)
            .where(X402Request.id == r.row_id, X402Request.lease_until == r.lease)
            .values(updated_at=utcnow(), **values)
        )
        return bool(cast(CursorResult[Any], moved).rowcount)


async def mark_unknown(ctx: Context, r: Reserved) -> None:
    """Money may move from now on: a retry that outlives this lease must ask the receipts."""
    await _set(ctx, r, state="unknown")


async def finish(ctx: Context, r: Reserved, response: StoredResponse) -> None:
    """The final answer: every retry from now on gets exactly this."""
    await _set(
        ctx,
        r,
        state="done",
        response_status=response.status,
        response_body=response.body.decode(),
        response_headers=json.dumps(response.headers),
    )


async def still_unknown(ctx: Context, r: Reserved) -> None:
    """Paid but not confirmed yet: the next retry re-checks the receipts straight away."""
    await _set(ctx, r, state="unknown", lease_until=utcnow())


async def release(ctx: Context, r: Reserved) -> None:
    """Nothing was charged: forget the request, so the same payload may be tried again."""
    async with ctx.db.session() as s:
        await s.execute(
            delete(X402Request).where(
                X402Request.id == r.row_id, X402Request.lease_until == r.lease
            )
        )


@dataclass(frozen=True)
class PriorPayment:
    """What the receipts say about an authorization a dead request was paying with."""

    status: str  # settling | settled | credited | ...
    transaction_hash: str | None
    payer: str
    result: dict[str, Any] | None  # a fulfiller's answer stored with the receipt


async def prior_payment(ctx: Context, key: RequestKey, network: str) -> PriorPayment | None:
    async with ctx.db.session() as s:
        r = (
            await s.execute(
                select(PaymentReceipt).where(
                    PaymentReceipt.network == network,
                    PaymentReceipt.payer_address == key.payer,
                    PaymentReceipt.authorization_nonce == key.nonce,
                )
            )
        ).scalar_one_or_none()
    if r is None:
        return None
    try:
        result = json.loads(r.payload).get("fulfilment") if r.payload else None
    except ValueError:
        result = None
    return PriorPayment(r.status, r.transaction_hash, r.payer_address, result)


async def paid_answer(
    ctx: Context, route: str, payer: str, body_hash: str
) -> StoredResponse | None:
    """The stored paid answer this wallet got for this very request body (Sign-In-With-X
    re-access to an answer it already paid for), if any. Only a paid answer is ever
    :func:`finish`-ed ("done"); every other outcome is released or left to be re-checked."""
    async with ctx.db.session() as s:
        row = (
            await s.execute(
                select(X402Request)
                .where(
                    X402Request.route == route,
                    X402Request.payer_address == payer.lower(),
                    X402Request.body_hash == body_hash,
                    X402Request.state == "done",
                )
                .order_by(X402Request.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
    return _stored(row) if row is not None else None
