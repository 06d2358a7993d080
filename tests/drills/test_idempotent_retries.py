"""Drill (issue 14): 50 simultaneous retries of one x402 payment-identifier, split over TWO web
processes (``spacescribe run --roles web``, real CLI) sharing one PostgreSQL database, paid on
anvil. Exactly one charge on chain and in the database; 50 byte-identical answers (status,
body, ``PAYMENT-RESPONSE``); a retry after both processes restarted gets the same answer.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from sqlalchemy import func, select
from x402.extensions.payment_identifier import append_payment_identifier_to_extensions
from x402.http.utils import encode_payment_signature_header
from x402.schemas import PaymentRequired

from core.db import Database, PaymentReceipt, TranscriptionPayment, X402Request
from tests.conftest import _in_thread, _truncate_pg
from tests.drills.figures import record
from tests.payments.conftest import make_client
from tests.stand_ins.chain import Chain
from tests.test_cli import _env, _free_port

LAUNCH = [sys.executable, "-m", "tests.drills.app_proc", "http://127.0.0.1:9"]
N = 50
SPACE = "1IdemRetry001"
PRICE = 200_000


@asynccontextmanager
async def _web(env: dict[str, str], port: int, log: Path) -> AsyncIterator[str]:
    env = {**env, "SPACESCRIBE_WEB__PORT": str(port)}
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            *LAUNCH, "run", "--roles", "web", env=env, stdout=out, stderr=out
        )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as c:
            for _ in range(600):  # up to 60 s for the process to start listening
                try:
                    if (await c.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.returncode is None, log.read_text()[-3000:]
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("web process did not start: " + log.read_text()[-3000:])
        yield base
    finally:
        proc.terminate()
        await proc.wait()


async def test_fifty_retries_over_two_processes_charge_once(
    pg_database: str, chain: Chain, tmp_path: Path
) -> None:
    _in_thread(asyncio.run, _truncate_pg(pg_database))
    payer = chain.new_funded_account()
    env = _env(
        tmp_path,
        pg_database,
        SPACESCRIBE_RELAYER_KEY=chain.relayer_key,
        SPACESCRIBE_WEB__HOST="127.0.0.1",
        SPACESCRIBE_WEB__PUBLIC_URL="http://127.0.0.1:8080",
    )
    env.update(
        {f"SPACESCRIBE_PAYMENTS__{k.upper()}": str(v) for k, v in chain.payment_settings().items()}
    )
    before = chain.balance(chain.pay_to)
    log = tmp_path / "web.log"
    body = {"space": SPACE}
    async with (
        _web(env, _free_port(), log) as a,
        _web(env, _free_port(), log) as b,
        httpx.AsyncClient(timeout=120) as c,
    ):
        r = await c.post(a + "/x402/transcribe", json=body)
        assert r.status_code == 402, r.text
        pr = PaymentRequired.model_validate(
            json.loads(base64.b64decode(r.headers["PAYMENT-REQUIRED"]))
        )
        pr.extensions = append_payment_identifier_to_extensions(
            dict(pr.extensions or {}), "pay_drill_two_processes_01"
        )
        header = encode_payment_signature_header(
            make_client(chain, payer).create_payment_payload(pr)
        )
        rs = await asyncio.gather(
            *(
                c.post(
                    (a, b)[i % 2] + "/x402/transcribe",
                    json=body,
                    headers={"PAYMENT-SIGNATURE": header},
                )
                for i in range(N)
            )
        )
    answers = {(x.status_code, x.content, x.headers.get("PAYMENT-RESPONSE")) for x in rs}
    assert len(answers) == 1, [(x.status_code, x.text[:200]) for x in rs]
    status, content, settlement = answers.pop()
    assert status == 200 and json.loads(content)["paid"] is True and settlement
    charged = chain.balance(chain.pay_to) - before
    assert charged == PRICE
    db = Database(pg_database)
    try:
        async with db.session() as s:
            receipts = await s.scalar(select(func.count()).select_from(PaymentReceipt))
            grants = await s.scalar(select(func.count()).select_from(TranscriptionPayment))
            rows = await s.scalar(select(func.count()).select_from(X402Request))
        assert (receipts, grants, rows) == (1, 1, 1)
    finally:
        await db.dispose()
    # both processes restarted: the retry still gets the very same answer, no new charge
    async with _web(env, _free_port(), log) as a2, httpx.AsyncClient(timeout=60) as c:
        again = await c.post(
            a2 + "/x402/transcribe", json=body, headers={"PAYMENT-SIGNATURE": header}
        )
    assert (again.status_code, again.content, again.headers.get("PAYMENT-RESPONSE")) == (
        status,
        content,
        settlement,
    )
    assert chain.balance(chain.pay_to) - before == PRICE
    record(
        "idempotency",
        f"{N} simultaneous retries of one payment id over 2 web processes (PostgreSQL): "
        f"{len({(x.status_code, x.content) for x in rs})} distinct answer, {charged} units charged "
        f"once (price {PRICE}), {receipts} receipt, {grants} grant; same answer after restart",
    )
