"""Direct USDC transfers on anvil: the watcher and submitted hashes, credited once."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy import insert as sa_insert
from structlog.testing import capture_logs

from core.accounts import get_or_create_account, get_or_create_user, link_account
from core.context import Context
from core.db import Account, Invoice, PaymentCursor, PaymentReceipt, TranscriptionPayment
from core.payments import Paid, PaymentPending
from core.payments.account_credit import add_credit
from core.payments.invoices import insert_invoice
from core.payments.onchain import ChainReader, ChainUnavailable, TransferLog, TxCheck
from core.payments.transfers import linked_wallets, submit_transaction_hash, watch_transfers
from core.results import Caller, Quote, Refused
from tests.payments.test_x402_pay import ALICE, _quote
from tests.snapshot import snapshot
from tests.stand_ins.chain import Chain


async def _link(ctx: Context, caller: Caller, wallet: str) -> None:
    async with ctx.db.session() as s:
        acc = await get_or_create_account(s, caller)
        user = await get_or_create_user(s, wallet)
        await link_account(s, acc.id, user.id)


async def _grants(ctx: Context) -> int:
    async with ctx.db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(TranscriptionPayment)) or 0)


async def test_watcher_credits_a_linked_transfer_once(
    pay_ctx: Context, chain: Chain, fresh_payer
) -> None:  # type: ignore[no-untyped-def]
    await _link(pay_ctx, ALICE, fresh_payer.address)
    q = await _quote(pay_ctx)
    assert q.direct is not None and q.direct.amount_units == 200_000
    assert q.direct.eip681_uri == (
        f"ethereum:{chain.token_address}@31337/transfer?address={chain.pay_to}&uint256=200000"
    )
    h = chain.transfer(fresh_payer, chain.pay_to, 200_000)
    assert await watch_transfers(pay_ctx) == 1
    assert await watch_transfers(pay_ctx) == 0
    assert await _grants(pay_ctx) == 1
    out = await submit_transaction_hash(pay_ctx, q.invoice_id, h)
    assert isinstance(out, Refused) and out.code == "already_paid"
    async with pay_ctx.db.session() as s:
        inv = (await s.execute(select(Invoice))).scalar_one()
        assert inv.status == "credited" and inv.transaction_hash == h.lower()


async def test_submitted_hash_checks(pay_ctx: Context, chain: Chain, fresh_payer) -> None:  # type: ignore[no-untyped-def]
    await _link(pay_ctx, ALICE, fresh_payer.address)
    q: Quote = await _quote(pay_ctx)
    snap = await snapshot(pay_ctx)
    # someone else's transfer (a wallet not linked to Alice)
    theirs = chain.transfer(chain.other, chain.pay_to, 200_000)
    out = await submit_transaction_hash(pay_ctx, q.invoice_id, theirs)
    assert isinstance(out, Refused) and out.code == "not_your_transfer", out
    # wrong amount, wrong recipient
    wrong = chain.transfer(fresh_payer, chain.pay_to, 199_999)
    out = await submit_transaction_hash(pay_ctx, q.invoice_id, wrong)
    assert isinstance(out, Refused) and out.code == "wrong_amount", out
    elsewhere = chain.transfer(fresh_payer, chain.other.address, 200_000)
    out = await submit_transaction_hash(pay_ctx, q.invoice_id, elsewhere)
    assert isinstance(out, Refused) and out.code == "no_matching_transfer", out
    # reverted: more than the balance, mined with a fixed gas limit
    tx = chain.token.functions.transfer(chain.pay_to, 10**15).build_transaction(
        {"from": fresh_payer.address, "gas": 100_000}
    )
    bad = chain.send(fresh_payer, {"to": tx["to"], "data": tx["data"], "gas": 100_000})
    chain.w3.eth.wait_for_transaction_receipt(bad)  # type: ignore[arg-type]
    out = await submit_transaction_hash(pay_ctx, q.invoice_id, bad)
    assert isinstance(out, Refused) and out.code == "tx_reverted", out
    for junk, code in (("0x1234", "invalid_tx_hash"), ("0x" + "ab" * 32, "tx_not_found")):
        out = await submit_transaction_hash(pay_ctx, q.invoice_id, junk)
        assert isinstance(out, Refused) and out.code == code, out
    out = await submit_transaction_hash(pay_ctx, "NoSuchInvoiceAtAll12345", wrong)
    assert isinstance(out, Refused) and out.code == "unknown_invoice"
    assert await _grants(pay_ctx) == 0
    assert await snapshot(pay_ctx) == snap  # every refusal changed nothing
    # the right one, then a replay of it on another invoice
    good = chain.transfer(fresh_payer, chain.pay_to, 200_000)
    out = await submit_transaction_hash(pay_ctx, q.invoice_id, good)
    assert isinstance(out, Paid), out
    q2 = await _quote(pay_ctx, "1YqJDqWqbNVGV")
    out = await submit_transaction_hash(pay_ctx, q2.invoice_id, good)
    assert isinstance(out, Refused) and out.code == "tx_already_used", out
    assert await _grants(pay_ctx) == 1
    async with pay_ctx.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(PaymentReceipt)) == 1


async def test_unconfirmed_transfer_waits(pay_ctx: Context, chain: Chain, fresh_payer) -> None:  # type: ignore[no-untyped-def]
    await _link(pay_ctx, ALICE, fresh_payer.address)
    pay_ctx.settings.payments.confirmations = 3
    q = await _quote(pay_ctx)
    h = chain.transfer(fresh_payer, chain.pay_to, 200_000)
    out: Any = await submit_transaction_hash(pay_ctx, q.invoice_id, h)
    assert isinstance(out, PaymentPending) and out.code == "unconfirmed"
    assert await watch_transfers(pay_ctx) == 0
    assert await _grants(pay_ctx) == 0
    chain.anvil.mine(2)
    assert await watch_transfers(pay_ctx) == 1
    assert await _grants(pay_ctx) == 1


async def test_scheduler_role_registers_payment_jobs(
    pay_ctx: Context, chain: Chain, fresh_payer
) -> None:  # type: ignore[no-untyped-def]
    from bot.runtime import Scheduler, _scheduler_role
    from core.payments.jobs import payment_jobs

    sched = Scheduler()
    _, lines = _scheduler_role(pay_ctx, sched)
    ids = {j.id for j in sched.scheduler.get_jobs()}
    assert {"payments_recover", "payments_watch", "invoices_expire"} <= ids
    assert "payments_watch" in lines[0].why
    # the jobs themselves run and do the work: a linked transfer is credited by the watch job
    await _link(pay_ctx, ALICE, fresh_payer.address)
    await _quote(pay_ctx)
    chain.transfer(fresh_payer, chain.pay_to, 200_000)
    jobs = {j.id: j for j in payment_jobs(pay_ctx)}
    assert await jobs["payments_recover"].run() == 0
    assert await jobs["payments_watch"].run() == 1
    assert await _grants(pay_ctx) == 1


# ------------------------------------------------- a scripted chain reader (issue #22)
#
# The rules of a direct transfer, each pinned with a reader that answers exactly what a test
# scripts: every refusal's code and message, the receipt's columns, the watcher's block ranges.

NOW = datetime(2026, 3, 4, 5, 6, 7)
PAY_TO = "0x" + "Ab" * 20
TOKEN = "0x" + "cd" * 20
MINE = "0x" + "a1" * 20
THEIRS = "0x" + "b2" * 20
SPACE_A, SPACE_B = "1AAAAAAAAAAAA", "1BBBBBBBBBBBB"


def _h(n: int) -> str:
    return "0x" + f"{n:064x}"


class ScriptedReader(ChainReader):
    def __init__(self) -> None:  # no RPC node: everything is scripted
        self.head = 0
        self.logs: list[TransferLog] = []
        self.txs: dict[str, TxCheck] = {}
        self.down: set[str] = set()
        self.calls: list[tuple[Any, ...]] = []

    async def block_number(self) -> int:
        self.calls.append(("head",))
        if "head" in self.down:
            raise ChainUnavailable("down")
        return self.head

    async def check_transaction(self, tx_hash: str) -> TxCheck:
        self.calls.append(("check", tx_hash))
        if "check" in self.down:
            raise ChainUnavailable("down")
        return self.txs.get(tx_hash, TxCheck("not_found", []))

    async def transfers_to(self, pay_to: str, from_block: int, to_block: int) -> list[TransferLog]:
        self.calls.append(("logs", pay_to, from_block, to_block))
        if "logs" in self.down:
            raise ChainUnavailable("down")
        return [t for t in self.logs if from_block <= t.block_number <= to_block]

    def pay(
        self,
        n: int,
        value: int,
        *,
        sender: str = MINE,
        to: str = PAY_TO,
        block: int = 50,
        tx_from: str | None = None,
        status: str = "ok",
        token: str = TOKEN,
    ) -> TransferLog:
        t = TransferLog(_h(n), n % 7, block, token, sender, to.lower(), value)
        self.logs.append(t)
        self.txs[t.transaction_hash] = TxCheck(status, [t], block, 1, tx_from or sender)
        return t


@pytest.fixture
def scripted(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> ScriptedReader:
    for mod in (
        "core.payments.transfers",
        "core.payments.credit",
        "core.payments.invoices",
        "core.payments.account_credit",
    ):
        monkeypatch.setattr(f"{mod}.utcnow", lambda: NOW)
    ctx.settings.payments.pay_to = PAY_TO
    ctx.settings.payments.token_address = TOKEN
    return ScriptedReader()


async def _invoice_of(
    ctx: Context, wallet: str | None = MINE, units: int = 200_000, credit: int = 0, **kw: Any
) -> Invoice:
    async with ctx.db.session() as s:
        uid = int((await get_or_create_user(s, wallet)).id) if wallet else None
        if credit and uid is not None:
            await add_credit(s, uid, credit, "refund", f"test:{units}:{credit}")
        values: dict[str, Any] = {
            "kind": "transcription",
            "account_id": None,
            "user_id": uid,
            "space_ids": [SPACE_A],
        }
        inv = await insert_invoice(s, ctx, **(values | kw), amount_units=units)
        s.expunge(inv)
        return inv


async def test_a_submitted_hash_is_refused_exactly_or_credited(
    ctx: Context, scripted: ScriptedReader
) -> None:
    r = scripted
    ctx.settings.payments.confirmations = 3
    inv = await _invoice_of(ctx, units=200_000, credit=50_000)  # 150_000 left to transfer
    pid = inv.public_id

    async def submit(tx: str, public_id: str = pid) -> Any:
        return await submit_transaction_hash(ctx, public_id, tx, reader=r)

    assert await submit("0x1234") == Refused(
        "invalid_tx_hash", "A transaction hash is 0x followed by 64 hex digits."
    )
    assert await submit(_h(1), "NoSuchInvoiceAtAll12345") == Refused(
        "unknown_invoice", "No such invoice."
    )
    assert await submit(_h(1)) == Refused("tx_not_found", "No such transaction on this chain.")
    r.down.add("check")
    assert await submit(_h(1)) == Refused(
        "rpc_unavailable",
        "The blockchain node is unreachable; try again later.",
        retry_later=True,
        invoice_id=pid,
    )
    r.down.clear()
    r.pay(2, 150_000, status="reverted")
    assert await submit(_h(2)) == Refused(
        "tx_reverted", "That transaction failed (reverted) on chain."
    )
    for n, status in ((3, "pending"), (4, "unconfirmed")):
        r.pay(n, 150_000, status=status)
        assert await submit(_h(n)) == PaymentPending(
            pid,
            _h(n),
            "unconfirmed",
            "Waiting for 3 confirmations; it will be credited when they arrive.",
        )
    r.pay(5, 150_000, to=THEIRS)
    assert await submit(_h(5)) == Refused(
        "no_matching_transfer",
        "This transaction carries no USDC transfer to the payment address.",
    )
    not_yours = Refused(
        "not_your_transfer",
        "This transfer was not sent from a wallet linked to your account. "
        "Link your wallet with /wallet first.",
    )
    r.pay(6, 150_000, sender=THEIRS)
    assert await submit(_h(6)) == not_yours
    r.pay(7, 150_000, tx_from=THEIRS)  # sent by a relayer: the x402 path credits those
    assert await submit(_h(7)) == not_yours
    wrong = Refused("wrong_amount", "The amount transferred does not match the price.")
    for n, value in ((8, 149_999), (9, 150_001), (10, 200_000)):
        r.pay(n, value)
        assert await submit(_h(n)) == wrong
    assert await snapshot_counts(ctx) == (0, 0)
    # one transaction, two transfers to pay-to: the one of the exact amount is credited
    short = TransferLog(_h(11), 0, 60, TOKEN, MINE, PAY_TO.lower(), 1)
    exact = TransferLog(_h(11), 3, 60, TOKEN, MINE, PAY_TO.lower(), 150_000)
    r.txs[_h(11)] = TxCheck("ok", [short, exact], 60, 1, MINE)
    out = await submit(_h(11).upper().removeprefix("0X"))
    assert out == Paid(pid, "transcription", _h(11), MINE, [SPACE_A], 0)
    async with ctx.db.session() as s:
        rc = (await s.execute(select(PaymentReceipt))).scalar_one()
        row = await s.get(Invoice, inv.id)
        assert row is not None and (row.status, row.transaction_hash) == ("credited", _h(11))
    assert (rc.invoice_id, rc.method, rc.network, rc.token_address, rc.payer_address) == (
        inv.id,
        "transfer",
        inv.network,
        TOKEN,
        MINE,
    )
    assert (rc.pay_to, rc.amount_units, rc.transaction_hash, rc.log_index) == (
        PAY_TO.lower(),
        150_000,
        _h(11),
        3,
    )
    assert (rc.block_number, rc.status, rc.created_at, rc.credited_at) == (60, "credited", NOW, NOW)
    assert await submit(_h(11)) == Refused(
        "already_paid", "This invoice is already paid.", invoice_id=pid
    )
    # the same transfer for another invoice of the same price
    again = await _invoice_of(ctx, space_ids=[SPACE_B], units=150_000)
    assert await submit(_h(11), again.public_id) == Refused(
        "tx_already_used", "This transfer was already credited."
    )
    assert await snapshot_counts(ctx) == (1, 1)
    async with ctx.db.session() as s:
        row = await s.get(Invoice, inv.id)
        assert row is not None and row.payer_address == MINE
    # paid for what is owned already: it becomes the payer's credit, and the outcome says so
    owned = await _invoice_of(ctx, units=100_000)
    r.pay(14, 100_000)
    assert await submit(_h(14), owned.public_id) == Paid(
        owned.public_id, "transcription", _h(14), MINE, [], 100_000
    )
    # an expired invoice, or one made for another network, is refused
    expired = Refused("invoice_expired", "This invoice has expired; ask for a new one.")
    async with ctx.db.session() as s:
        await s.execute(update(Invoice).where(Invoice.id == again.id).values(status="expired"))
    assert await submit(_h(12), again.public_id) == expired
    third = await _invoice_of(ctx, space_ids=[SPACE_B], units=150_000)
    ctx.settings.payments.network = "eip155:1"
    assert await submit(_h(12), third.public_id) == expired
    assert ("check", _h(12)) not in r.calls


async def snapshot_counts(ctx: Context) -> tuple[int, int]:
    async with ctx.db.session() as s:
        receipts = await s.scalar(select(func.count()).select_from(PaymentReceipt))
        grants = await s.scalar(select(func.count()).select_from(TranscriptionPayment))
        return int(receipts or 0), int(grants or 0)


async def test_the_wallets_that_may_pay_an_invoice(ctx: Context, scripted: ScriptedReader) -> None:
    linked = "0x" + "c3" * 20
    async with ctx.db.session() as s:
        acc = await get_or_create_account(s, ALICE)
        acc.user_id = int((await get_or_create_user(s, linked)).id)
        account_id = acc.id
    inv = await _invoice_of(ctx, account_id=account_id, payer_address="0x" + "Dd" * 20)
    async with ctx.db.session() as s:
        assert await linked_wallets(s, inv) == {MINE, linked, "0x" + "dd" * 20}
    bare = await _invoice_of(ctx, wallet=None)
    async with ctx.db.session() as s:
        assert await linked_wallets(s, bare) == set()


async def test_the_watcher_scans_in_chunks_from_its_cursor(
    ctx: Context, scripted: ScriptedReader
) -> None:
    r = scripted
    ctx.settings.payments.confirmations = 3
    r.head = 10_002  # safe: 10_000; the first scan starts 5_000 blocks behind the head
    assert await watch_transfers(ctx, r) == 0
    assert r.calls == [
        ("head",),
        ("logs", PAY_TO, 5_003, 7_002),
        ("logs", PAY_TO, 7_003, 9_002),
        ("logs", PAY_TO, 9_003, 10_000),
    ]
    cursor_cols = (
        PaymentCursor.network,
        PaymentCursor.token_address,
        PaymentCursor.pay_to,
        PaymentCursor.last_block,
        PaymentCursor.updated_at,
    )
    assert await _cursor_rows(ctx, cursor_cols) == [
        ("eip155:8453", TOKEN, PAY_TO.lower(), 10_000, NOW)
    ]
    r.calls.clear()
    assert await watch_transfers(ctx, r) == 0  # nothing new is safe yet
    assert r.calls == [("head",)]
    r.head = 10_003
    r.calls.clear()
    assert await watch_transfers(ctx, r) == 0
    assert r.calls == [("head",), ("logs", PAY_TO, 10_001, 10_001)]


async def test_the_watcher_of_a_young_chain_starts_at_block_zero(
    ctx: Context, scripted: ScriptedReader
) -> None:
    scripted.head = 100
    assert await watch_transfers(ctx, scripted) == 0
    assert scripted.calls == [("head",), ("logs", PAY_TO, 0, 100)]


async def test_the_watcher_credits_only_an_exact_transfer_from_a_linked_wallet(
    ctx: Context, scripted: ScriptedReader
) -> None:
    r = scripted
    r.head = 100
    stranger = await _invoice_of(ctx, wallet=THEIRS)  # same price, another wallet's
    # same price, same wallet, but to be paid on another chain, or to another address
    elsewhere = [await _invoice_of(ctx, space_ids=[SPACE_B]) for _ in range(2)]
    async with ctx.db.session() as s:
        await s.execute(
            update(Invoice).where(Invoice.id == elsewhere[0].id).values(network="eip155:1")
        )
        await s.execute(update(Invoice).where(Invoice.id == elsewhere[1].id).values(pay_to=THEIRS))
    mine = await _invoice_of(ctx, space_ids=[SPACE_B])
    unlock = await _invoice_of(ctx, kind="chat_unlock", space_ids=[SPACE_B], units=500_000)
    ask = await _invoice_of(ctx, space_ids=["1CCCCCCCCCCCC"], units=700_000)
    # 900_000 less 100_000 of account credit: 800_000 due
    part = await _invoice_of(ctx, space_ids=["1DDDDDDDDDDDD"], units=900_000, credit=100_000)
    assert stranger.id < mine.id
    async with ctx.db.session() as s:  # the same hash and log index on another chain
        s.add(
            PaymentReceipt(
                invoice_id=None,
                method="transfer",
                network="eip155:1",
                token_address=TOKEN,
                payer_address=MINE,
                pay_to=PAY_TO.lower(),
                amount_units=1,
                transaction_hash=_h(6),
                log_index=6,
                status="confirmed",
            )
        )
    r.pay(1, 199_999)  # a unit short
    r.pay(2, 200_001)  # a unit over
    r.pay(3, 200_000, tx_from=THEIRS)  # a relayer's: x402 settlements are not plain transfers
    r.pay(4, 200_000, token="0x" + "ee" * 20)  # another token
    r.pay(5, 200_000, sender="0x" + "f6" * 20)  # nobody's
    paid = r.pay(6, 200_000)
    # one transaction, two transfers: the first at paid's log index (another transaction)
    both = [
        TransferLog(_h(8), 6, 50, TOKEN, MINE, PAY_TO.lower(), 500_000),
        TransferLog(_h(8), 9, 50, TOKEN, MINE, PAY_TO.lower(), 700_000),
    ]
    r.logs += both
    r.txs[_h(8)] = TxCheck("ok", both, 50, 1, MINE)
    r.pay(15, 800_000)
    with capture_logs() as logs:
        assert await watch_transfers(ctx, r) == 4
    assert [(e["event"], e.get("tx")) for e in logs] == [
        ("transfer to pay_to matches no open invoice", _h(n)) for n in (1, 2, 4, 5)
    ]
    checked = [("check", _h(n)) for n in (1, 2, 3, 4, 5, 6, 8, 8, 15)]
    assert [c for c in r.calls if c[0] == "check"] == checked
    async with ctx.db.session() as s:
        statuses = dict((await s.execute(select(Invoice.id, Invoice.status))).tuples().all())
        assert statuses == {
            stranger.id: "open",
            elsewhere[0].id: "open",
            elsewhere[1].id: "open",
            mine.id: "credited",
            unlock.id: "credited",
            ask.id: "credited",
            part.id: "credited",
        }
        rc = (
            await s.execute(select(PaymentReceipt).where(PaymentReceipt.invoice_id == mine.id))
        ).scalar_one()
        assert (rc.invoice_id, rc.transaction_hash, rc.log_index) == (
            mine.id,
            paid.transaction_hash,
            paid.log_index,
        )
        other_chain = select(PaymentReceipt.status).where(PaymentReceipt.network == "eip155:1")
        assert await s.scalar(other_chain) == "confirmed"  # another chain's: left alone
    # seen again (a rescan): the receipt says it was taken; no second look at the chain
    async with ctx.db.session() as s:
        await s.execute(update(PaymentCursor).values(last_block=0))
    r.calls.clear()
    assert await watch_transfers(ctx, r) == 0
    assert ("check", paid.transaction_hash) not in r.calls


async def test_the_watcher_stops_when_the_node_goes_away(
    ctx: Context, scripted: ScriptedReader
) -> None:
    r = scripted
    warning = {"event": "payment watcher: RPC unavailable; will retry", "log_level": "warning"}
    r.down.add("head")
    with capture_logs() as logs:
        assert await watch_transfers(ctx, r) == 0
    assert logs == [warning]
    r.down = {"logs"}
    r.head = 6_000
    with capture_logs() as logs:
        assert await watch_transfers(ctx, r) == 0
    assert logs == [warning] and r.calls[-1] == ("logs", PAY_TO, 1_001, 3_000)
    assert await _cursor_rows(ctx, (PaymentCursor.last_block,)) == [(1_000,)]
    # the first transfer is credited; the node goes away while the second is checked
    await _invoice_of(ctx)
    await _invoice_of(ctx, space_ids=[SPACE_B])
    r.down.clear()
    r.pay(1, 200_000, block=1_500)
    r.pay(2, 200_000, block=1_600)
    checks = 0
    real_check = r.check_transaction

    async def flaky(tx_hash: str) -> TxCheck:
        nonlocal checks
        checks += 1
        if checks == 2:
            raise ChainUnavailable("gone")
        return await real_check(tx_hash)

    r.check_transaction = flaky  # type: ignore[method-assign]
    with capture_logs() as logs:
        assert await watch_transfers(ctx, r) == 1
    assert logs == [warning]
    assert await _cursor_rows(ctx, (PaymentCursor.last_block,)) == [(1_000,)]  # read again later
    assert await watch_transfers(ctx, r) == 1  # and then the second is credited
    assert await _cursor_rows(ctx, (PaymentCursor.last_block,)) == [(6_000,)]


async def test_no_pay_to_no_watching(ctx: Context, scripted: ScriptedReader) -> None:
    ctx.settings.payments.pay_to = ""
    assert await watch_transfers(ctx, scripted) == 0
    assert scripted.calls == []


async def _cursor_rows(ctx: Context, cols: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    async with ctx.db.session() as s:
        return [tuple(row) for row in await s.execute(select(*cols))]


async def test_the_watcher_finds_a_payers_invoice_among_many_of_the_same_price(
    ctx: Context, scripted: ScriptedReader
) -> None:
    """Fifty-one open quotes of the standard price from other members, older than the
    payer's: the transfer is still matched to the payer's own invoice. Each way an invoice
    is the sender's counts: its buyer, its account's linked wallet, its x402 payer."""
    r = scripted
    r.head = 100
    async with ctx.db.session() as s:
        others = [int((await get_or_create_user(s, "0x" + f"{i:040x}")).id) for i in range(1, 52)]
        rows = [
            {
                "public_id": f"others-invoice-{i:08d}",
                "kind": "transcription",
                "space_ids": json.dumps([SPACE_A]),
                "amount_units": 200_000,
                "credit_units": 0,
                "network": "eip155:8453",
                "token_address": TOKEN,
                "pay_to": PAY_TO.lower(),
                "status": "open",
                "user_id": uid,
                "created_at": NOW,
                "expires_at": NOW + timedelta(minutes=30),
            }
            for i, uid in enumerate(others)
        ]
        await s.execute(sa_insert(Invoice), rows)
        acc = await get_or_create_account(s, ALICE)
        account_id = acc.id
    by_user = await _invoice_of(ctx, space_ids=[SPACE_B])
    by_account = await _invoice_of(ctx, wallet=None, account_id=account_id, units=300_000)
    by_payer = await _invoice_of(ctx, wallet=None, payer_address=MINE.upper(), units=400_000)
    async with ctx.db.session() as s:  # the account is linked after its quote was made
        await s.execute(
            update(Account)
            .where(Account.id == account_id)
            .values(user_id=(await get_or_create_user(s, MINE)).id)
        )
    for n, units in ((1, 200_000), (2, 300_000), (3, 400_000)):
        r.pay(n, units)
    assert await watch_transfers(ctx, r) == 3
    async with ctx.db.session() as s:
        credited = set(
            (await s.execute(select(Invoice.id).where(Invoice.status == "credited"))).scalars()
        )
    assert credited == {by_user.id, by_account.id, by_payer.id}
