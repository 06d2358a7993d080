"""Subprocess for the crash test: pays an invoice and stops dead right after settlement.

argv[1] = JSON {"db_url", "data_dir", "payments", "relayer_key", "invoice", "payload",
"stage"}; stage "settle" stops inside settle (tx sent, hash never recorded), stage
"confirm" stops after the hash is recorded, before crediting. It prints STOPPED and waits
to be killed (SIGKILL by the test).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from pydantic import SecretStr

from core.config import Secrets, load_settings
from core.context import Context
from core.db import Database
from core.payments.gateway import SettleResult, gateway_for
from core.payments.onchain import ChainReader, TxCheck
from core.payments.pay import pay_invoice


def _stop() -> None:
    print("STOPPED", flush=True)
    time.sleep(120)


class SettleThenStop:
    def __init__(self, real: Any) -> None:
        self.real = real

    def requirements(self, amount_units: int) -> Any:
        return self.real.requirements(amount_units)

    async def verify(self, payload: Any, reqs: Any) -> Any:
        return await self.real.verify(payload, reqs)

    async def settle(self, payload: Any, reqs: Any) -> SettleResult:
        result: SettleResult = await self.real.settle(payload, reqs)
        _stop()
        return result


class StopBeforeCredit(ChainReader):
    async def check_transaction(self, tx_hash: str) -> TxCheck:
        _stop()
        return await super().check_transaction(tx_hash)


async def main(cfg: dict[str, Any]) -> None:
    settings = load_settings(
        database={"url": cfg["db_url"]}, data_dir=cfg["data_dir"], payments=cfg["payments"]
    )
    secrets = Secrets.model_construct(relayer_key=SecretStr(cfg["relayer_key"]))
    ctx = Context(settings, secrets, Database(cfg["db_url"]), instance="crash:1")
    gw = gateway_for(settings.payments, secrets)
    if cfg["stage"] == "settle":
        await pay_invoice(ctx, cfg["invoice"], cfg["payload"], gateway=SettleThenStop(gw))
    else:
        await pay_invoice(
            ctx, cfg["invoice"], cfg["payload"], reader=StopBeforeCredit(settings.payments)
        )
    print("FINISHED", flush=True)


async def pay_and_kill(
    ctx: Context, chain: Any, invoice_id: str, payload: dict[str, Any], stage: str
) -> None:
    """Pay ``invoice_id`` in a subprocess that stops at ``stage``, then SIGKILL it."""
    import os
    import subprocess

    cfg = {
        "db_url": ctx.db.url,
        "data_dir": str(ctx.settings.data_dir),
        "payments": chain.payment_settings(),
        "relayer_key": chain.relayer_key,
        "invoice": invoice_id,
        "payload": payload,
        "stage": stage,
    }
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = await asyncio.to_thread(
        subprocess.Popen,
        [sys.executable, "-m", "tests.payments.crash_payer", json.dumps(cfg)],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = await asyncio.to_thread(proc.stdout.readline)  # type: ignore[union-attr]
        assert line.strip() == "STOPPED", line
    finally:
        proc.kill()
        proc.wait(10)
    assert proc.returncode == -9


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
