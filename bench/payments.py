"""x402 exact payments on a local anvil: verify latency (target p95 ≤ 50 ms), settle, and
settle+confirm+credit through ``core.payments.pay_invoice`` on SQLite.

``python -m bench.payments [N]`` (default N = 40 payments). Uses the test peers: anvil from
node_modules and contracts/TestUSDC.json.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr
from x402 import x402ClientSync
from x402.mechanisms.evm.exact import ExactEvmClientScheme
from x402.mechanisms.evm.signers import EthAccountSigner
from x402.schemas import PaymentPayload, PaymentRequired

from core.config import Secrets, load_settings
from core.context import Context
from core.db import Database
from core.db.migrate import upgrade
from core.payments import pay_invoice
from core.payments.gateway import gateway_for
from core.payments.onchain import ChainReader
from core.results import Quote
from core.service.invoicing import create_invoice
from tests.stand_ins.chain import Anvil, deploy_chain

SPACES = ["1RDxlAoOeQRKL", "1YqJDqWqbNVGV"]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def line(name: str, ms: list[float]) -> str:
    return (
        f"{name:<28} n={len(ms):<4} p50={pct(ms, 0.5):7.1f} ms  p95={pct(ms, 0.95):7.1f} ms  "
        f"mean={statistics.fmean(ms):7.1f} ms"
    )


async def run(n: int) -> None:
    node = Anvil()
    node.start()
    try:
        chain = deploy_chain(node)
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            await asyncio.to_thread(upgrade, url)
            settings = load_settings(
                database={"url": url}, data_dir=tmp, payments=chain.payment_settings()
            )
            secrets = Secrets.model_construct(relayer_key=SecretStr(chain.relayer_key))
            ctx = Context(settings, secrets, Database(url), instance="bench")
            gw = gateway_for(settings.payments, secrets)
            reqs = gw.requirements(200_000)
            payers = [chain.new_funded_account() for _ in range(4)]
            clients = []
            for acct in payers:
                c = x402ClientSync()
                c.register(node.network, ExactEvmClientScheme(signer=EthAccountSigner(acct)))
                c.set_spend_controls(
                    {"allowed_assets": [{"network": node.network, "asset": chain.token_address}]}
                )
                clients.append(c)

            def payload(i: int) -> PaymentPayload:
                pr = PaymentRequired(x402_version=2, accepts=[reqs])
                return clients[i % len(clients)].create_payment_payload(pr)

            await gw.verify(payload(0), reqs)  # warm-up (connections, caches)
            verify_ms: list[float] = []
            for i in range(n):
                p = payload(i)
                t0 = time.perf_counter()
                r = await gw.verify(p, reqs)
                verify_ms.append((time.perf_counter() - t0) * 1000)
                assert r.ok, r
            settle_ms: list[float] = []
            confirm_ms: list[float] = []
            reader = ChainReader(settings.payments)
            for i in range(min(n, 20)):
                p = payload(i)
                t0 = time.perf_counter()
                s = await gw.settle(p, reqs)
                t1 = time.perf_counter()
                assert s.ok and s.transaction, s
                chk = await reader.check_transaction(s.transaction)
                t2 = time.perf_counter()
                assert chk.status == "ok"
                settle_ms.append((t1 - t0) * 1000)
                confirm_ms.append((t2 - t1) * 1000)
            full_ms: list[float] = []
            for i in range(min(n, 20)):
                async with ctx.db.session() as sess:
                    q = await create_invoice(
                        sess,
                        ctx,
                        caller=None,
                        user_id=None,
                        kind="transcription",
                        space_ids=[SPACES[i % 2]],
                        amount_units=200_000,
                        payload=None,
                    )
                assert isinstance(q, Quote)
                p = payload(i)
                t0 = time.perf_counter()
                out = await pay_invoice(ctx, q.invoice_id, p)
                full_ms.append((time.perf_counter() - t0) * 1000)
                assert type(out).__name__ == "Paid", out
            await ctx.close()
        print(line("x402 verify", verify_ms))
        print(line("x402 settle (in-process)", settle_ms))
        print(line("confirm (receipt+logs)", confirm_ms))
        print(line("pay_invoice end to end", full_ms))
        p95 = pct(verify_ms, 0.95)
        print(f"verify p95 target 50 ms: {'met' if p95 <= 50 else 'MISSED'} ({p95:.1f} ms)")
        print(
            "ratios: settle/verify p50 = "
            f"{pct(settle_ms, 0.5) / pct(verify_ms, 0.5):.1f}x, "
            f"end-to-end/verify p50 = {pct(full_ms, 0.5) / pct(verify_ms, 0.5):.1f}x"
        )
    finally:
        node.stop()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    asyncio.run(run(int(args[0]) if args else 40))


if __name__ == "__main__":
    main()
