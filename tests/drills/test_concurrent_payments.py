"""Drill (issue 9): 50 concurrent submissions of the same payment, then replays of spent ones.

A payment reaches the shop three ways, each drilled on both engines against the real chain
(anvil) and the real web server (uvicorn on a socket):

- the x402 HTTP API: one signed ``PAYMENT-SIGNATURE`` sent 50 times at once: one request
  pays, the 49 retries get its answer replayed (``x402_requests``), and the spent
  authorization offered for another request is a 409;
- the pay page: one wallet signature posted 50 times at once for the same invoice;
- a plain USDC transfer: its transaction hash submitted 50 times at once, with the transfer
  watcher running alongside.

Each payment must be credited exactly once (chain = database, to the unit), every other
submission answered with a specific reason, and every replay of the spent payment on another
invoice refused with a specific error, crediting nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from x402.http.utils import encode_payment_signature_header
from x402.schemas import PaymentPayload

from core.context import Context
from core.db import Credit, Invoice, PaymentReceipt, TranscriptionPayment
from core.payments import Paid, submit_transaction_hash, watch_transfers
from core.payments.outcomes import MESSAGES
from core.results import Caller, Refused
from tests.drills.figures import record
from tests.pay_flow import sign_on_page, submit_on_page
from tests.payments.conftest import client_payload, pay_ctx, recorded_spaces  # noqa: F401
from tests.payments.test_transfers import _link
from tests.payments.test_x402_api import server  # noqa: F401
from tests.payments.test_x402_pay import _quote, _reqs
from tests.stand_ins.chain import Chain

N = 50  # concurrent submissions of one payment
REPLAYS = 10  # the spent payment offered again, each on another invoice
PRICE = 200_000
NONCE_USED = ("nonce_used", "invalid_exact_evm_nonce_already_used")
IN_PROGRESS_OR_DONE = ("payment_in_progress", "already_paid", *NONCE_USED)
BOB = Caller("telegram", "2002", "bob", chat_id="-600")

TALLY: dict[str, Any] = {
    "engines": [],
    "paths": 0,
    "credits": 0,
    "expected": 0,
    "double": 0,
    "lost": 0,
    "replays": 0,
}


@pytest.fixture(scope="module", autouse=True)
def _figures() -> Iterator[None]:
    yield
    t = TALLY
    if t["engines"]:
        record(
            "payments",
            f"{N} concurrent × {t['paths'] // len(t['engines'])} paths × "
            f"{len(t['engines'])} engines: {t['credits']} credits (expected {t['expected']}), "
            f"{t['double']} double, {t['lost']} lost; {t['replays']} replays refused",
        )


def _space(tag: str, i: int = 0) -> str:
    return f"1C{tag[:3]}{i:08d}"  # 13 characters, as X's ids


async def _count(ctx: Context, model: Any, *where: Any) -> int:
    async with ctx.db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def _credited(ctx: Context, *where: Any) -> int:
    return await _count(ctx, PaymentReceipt, PaymentReceipt.status == "credited", *where)


async def _x402_api(ctx: Context, chain: Chain, web: httpx.AsyncClient, payer: Any) -> int:
    """The same PAYMENT-SIGNATURE 50 times at once on /x402/transcribe; then replays."""
    payload = client_payload(chain, payer, _reqs(ctx))
    nonce = payload["payload"]["authorization"]["nonce"].lower()
    header = {
        "PAYMENT-SIGNATURE": encode_payment_signature_header(PaymentPayload.model_validate(payload))
    }
    rs = await asyncio.gather(
        *(
            web.post("/x402/transcribe", json={"space": _space("Api")}, headers=header)
            for _ in range(N)
        )
    )
    # retries of one request: every one gets the first answer, replayed (issue 14)
    first = rs[0]
    assert first.status_code == 200 and first.json().get("paid"), first.text
    for r in rs:
        assert (r.status_code, r.content) == (first.status_code, first.content), r.text
    replays = await asyncio.gather(
        *(
            web.post("/x402/transcribe", json={"space": _space("Apr", i)}, headers=header)
            for i in range(REPLAYS)
        )
    )
    for r in replays:  # the spent authorization offered for another request
        assert r.status_code == 409 and r.json()["error"] == "authorization_conflict", r.text
    TALLY["replays"] += len(replays)
    return await _credited(ctx, PaymentReceipt.authorization_nonce == nonce)


async def _pay_page(ctx: Context, chain: Chain, web: httpx.AsyncClient, payer: Any) -> int:
    """One wallet signature posted 50 times at once to the invoice's pay page; then replays."""
    q = await _quote(ctx, _space("Page"))
    path, body = await sign_on_page(web, q.pay_url, payer)
    outs = await asyncio.gather(*(submit_on_page(web, path, body) for _ in range(N)))
    assert any(o["status"] == "credited" for o in outs), outs
    for o in outs:  # credited (the winner, and repeats of it) or a specific reason
        assert o["status"] == "credited" or o["code"] in IN_PROGRESS_OR_DONE, o
    others = [await _quote(ctx, _space("Pgr", i)) for i in range(REPLAYS)]
    replays = await asyncio.gather(
        *(submit_on_page(web, f"/pay/{o.invoice_id}", body) for o in others)
    )
    for r in replays:
        assert r["status"] == "refused" and r["code"] in NONCE_USED, r
        assert r["message"] == MESSAGES["nonce_used"]
    TALLY["replays"] += len(replays)
    nonce = json.loads(body)["authorization"]["nonce"]
    return await _credited(ctx, PaymentReceipt.authorization_nonce == nonce)


async def _transfer(ctx: Context, chain: Chain, payer: Any) -> int:
    """A plain transfer's hash submitted 50 times at once, the watcher alongside; replays."""
    await _link(ctx, BOB, payer.address)
    q = await _quote(ctx, _space("Xfer"), BOB)
    tx = chain.transfer(payer, chain.pay_to, PRICE)
    outs = await asyncio.gather(
        *(submit_transaction_hash(ctx, q.invoice_id, tx) for _ in range(N)),
        *(watch_transfers(ctx) for _ in range(3)),
    )
    submitted, watched = outs[:N], outs[N:]
    fresh = [o for o in submitted if isinstance(o, Paid)]
    assert len(fresh) + sum(watched) == 1, (fresh, watched)
    for o in submitted:
        assert isinstance(o, Paid) or (
            isinstance(o, Refused) and o.code in ("tx_already_used", "already_paid")
        ), o
    others = [await _quote(ctx, _space("Xfr", i), BOB) for i in range(REPLAYS)]
    replays = await asyncio.gather(
        *(submit_transaction_hash(ctx, o.invoice_id, tx) for o in others)
    )
    for r in replays:
        assert isinstance(r, Refused) and r.code == "tx_already_used", r
    TALLY["replays"] += len(replays)
    return await _credited(ctx, PaymentReceipt.transaction_hash == tx.lower())


async def test_fifty_concurrent_submissions_and_replays_credit_once(
    pay_ctx: Context,  # noqa: F811 (the fixtures imported above)
    chain: Chain,
    server: str,  # noqa: F811
    db_url: str,
) -> None:
    payers = [chain.new_funded_account() for _ in range(3)]
    before = {p.address: chain.balance(p.address) for p in payers}
    shop_before = chain.balance(chain.pay_to)
    async with httpx.AsyncClient(base_url=server, timeout=120) as web:
        credits = {
            "x402 API": await _x402_api(pay_ctx, chain, web, payers[0]),
            "pay page": await _pay_page(pay_ctx, chain, web, payers[1]),
            "transfer": await _transfer(pay_ctx, chain, payers[2]),
        }
    engine = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    TALLY["engines"].append(engine)
    TALLY["paths"] += len(credits)
    TALLY["credits"] += sum(credits.values())
    TALLY["expected"] += len(credits)
    TALLY["double"] += sum(max(0, c - 1) for c in credits.values())
    TALLY["lost"] += sum(c == 0 for c in credits.values())
    assert credits == {"x402 API": 1, "pay page": 1, "transfer": 1}, credits
    # the chain and the database agree: three payments moved once, were credited once
    for p in payers:
        assert before[p.address] - chain.balance(p.address) == PRICE, p.address
    assert chain.balance(chain.pay_to) - shop_before == 3 * PRICE
    assert await _count(pay_ctx, PaymentReceipt) == 3
    assert await _count(pay_ctx, Invoice, Invoice.status == "credited") == 3
    assert await _count(pay_ctx, TranscriptionPayment) == 3
    assert await _count(pay_ctx, Credit) == 0  # no second settlement turned into credit
