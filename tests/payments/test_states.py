"""The payments state machine (core/payments/states.py): every allowed move works and says
so, a row not in the move's source status stays and the move says False, and a move the
tables do not allow raises before any SQL runs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from core.context import Context
from core.db import Invoice, PaymentReceipt, utcnow
from core.payments import states
from core.payments.invoices import insert_invoice
from core.payments.states import (
    INVOICE_DISCARDABLE,
    INVOICE_MOVES,
    RECEIPT_DROPPABLE,
    RECEIPT_MOVES,
    IllegalMove,
)
from core.statuses import InvoiceStatus, ReceiptStatus

INVOICE_PAIRS = [(src, to) for src, tos in INVOICE_MOVES.items() for to in sorted(tos)]
RECEIPT_PAIRS = [(src, to) for src, tos in RECEIPT_MOVES.items() for to in sorted(tos)]


def test_the_tables_name_every_status_and_these_moves() -> None:
    assert set(INVOICE_MOVES) == set(InvoiceStatus)
    assert set(RECEIPT_MOVES) == set(ReceiptStatus)
    assert sorted(INVOICE_PAIRS) == sorted(
        [
            ("open", "paid"),
            ("open", "credited"),
            ("open", "expired"),
            ("paid", "open"),
            ("paid", "credited"),
        ]
    )
    assert sorted(RECEIPT_PAIRS) == sorted(
        [
            ("settling", "settled"),
            ("settled", "confirmed"),
            ("settled", "reverted"),
            ("settled", "mismatch"),
            ("confirmed", "credited"),
        ]
    )
    assert set(INVOICE_DISCARDABLE) == {"open"}
    assert set(RECEIPT_DROPPABLE) == {"settling"}


def test_statuses_are_the_stored_strings() -> None:
    assert [s.value for s in InvoiceStatus] == ["open", "paid", "credited", "expired"]
    assert [s.value for s in ReceiptStatus] == [
        "settling",
        "settled",
        "confirmed",
        "credited",
        "reverted",
        "mismatch",
    ]
    assert InvoiceStatus.OPEN == "open" and f"{ReceiptStatus.SETTLED}" == "settled"


@pytest.mark.parametrize(
    ("src", "to"),
    [
        (InvoiceStatus.CREDITED, InvoiceStatus.OPEN),
        (InvoiceStatus.EXPIRED, InvoiceStatus.OPEN),
        (InvoiceStatus.OPEN, InvoiceStatus.OPEN),
        (InvoiceStatus.PAID, InvoiceStatus.EXPIRED),
    ],
)
def test_an_invoice_move_not_in_the_table_is_refused(src: InvoiceStatus, to: InvoiceStatus) -> None:
    with pytest.raises(IllegalMove):
        states.check_move(INVOICE_MOVES, (src,), to)


@pytest.mark.parametrize(
    ("src", "to"),
    [
        (ReceiptStatus.SETTLING, ReceiptStatus.CREDITED),
        (ReceiptStatus.SETTLING, ReceiptStatus.CONFIRMED),
        (ReceiptStatus.CREDITED, ReceiptStatus.CONFIRMED),
        (ReceiptStatus.REVERTED, ReceiptStatus.SETTLED),
    ],
)
def test_a_receipt_move_not_in_the_table_is_refused(src: ReceiptStatus, to: ReceiptStatus) -> None:
    with pytest.raises(IllegalMove):
        states.check_move(RECEIPT_MOVES, (src,), to)


def test_a_move_without_a_source_is_refused() -> None:
    with pytest.raises(IllegalMove):
        states.check_move(INVOICE_MOVES, (), InvoiceStatus.PAID)
    with pytest.raises(IllegalMove):
        states.check_removal(RECEIPT_DROPPABLE, ())


async def _invoice(ctx: Context, status: str) -> int:
    async with ctx.db.session() as s:
        inv = await insert_invoice(
            s,
            ctx,
            kind="transcription",
            account_id=None,
            user_id=None,
            space_ids=["1AAAAAAAAAAAA"],
            amount_units=1_000_000,
        )
        await s.execute(update(Invoice).where(Invoice.id == inv.id).values(status=status))
        return int(inv.id)


async def _receipt(ctx: Context, status: str, n: int = 0) -> int:
    async with ctx.db.session() as s:
        r = PaymentReceipt(
            method="x402",
            network="eip155:84532",
            token_address="0x" + "a" * 40,
            payer_address="0x" + "b" * 40,
            pay_to="0x" + "c" * 40,
            amount_units=1_000_000,
            authorization_nonce=f"0x{n:064x}",
            status=status,
            created_at=utcnow(),
        )
        s.add(r)
        await s.flush()
        return int(r.id)


async def _status(ctx: Context, model: type[Invoice] | type[PaymentReceipt], pk: int) -> str | None:
    async with ctx.db.read() as s:
        return await s.scalar(select(model.status).where(model.id == pk))


async def test_every_invoice_move_works_and_says_so(ctx: Context) -> None:
    for src, to in INVOICE_PAIRS:
        pk = await _invoice(ctx, src)
        async with ctx.db.session() as s:
            assert await states.move_invoice(s, pk, src, to) is True, (src, to)
            # the same move again finds the row gone from its source
            assert await states.move_invoice(s, pk, src, to) is False, (src, to)
        assert await _status(ctx, Invoice, pk) == to


async def test_every_receipt_move_works_and_says_so(ctx: Context) -> None:
    for n, (src, to) in enumerate(RECEIPT_PAIRS):
        pk = await _receipt(ctx, src, n)
        async with ctx.db.session() as s:
            assert await states.move_receipt(s, pk, src, to) is True, (src, to)
            assert await states.move_receipt(s, pk, src, to) is False, (src, to)
        assert await _status(ctx, PaymentReceipt, pk) == to


async def test_a_row_in_another_status_stays(ctx: Context) -> None:
    for src, to in INVOICE_PAIRS:
        for actual in InvoiceStatus:
            if actual == src:
                continue
            pk = await _invoice(ctx, actual)
            async with ctx.db.session() as s:
                assert await states.move_invoice(s, pk, src, to) is False, (actual, src, to)
            assert await _status(ctx, Invoice, pk) == actual
    n = 0
    for src, to in RECEIPT_PAIRS:
        for actual in ReceiptStatus:
            if actual == src:
                continue
            n += 1
            pk = await _receipt(ctx, actual, n)
            async with ctx.db.session() as s:
                assert await states.move_receipt(s, pk, src, to) is False, (actual, src, to)
            assert await _status(ctx, PaymentReceipt, pk) == actual


async def test_several_sources_and_the_extra_values(ctx: Context) -> None:
    now = utcnow().replace(microsecond=0)
    sources = (InvoiceStatus.OPEN, InvoiceStatus.PAID)
    for src in sources:
        pk = await _invoice(ctx, src)
        async with ctx.db.session() as s:
            assert await states.move_invoice(
                s, pk, sources, InvoiceStatus.CREDITED, credited_at=now, transaction_hash="0xab"
            )
        async with ctx.db.read() as s:
            inv = await s.get(Invoice, pk)
            assert inv is not None
            assert (inv.status, inv.credited_at, inv.transaction_hash) == ("credited", now, "0xab")
    rid = await _receipt(ctx, ReceiptStatus.SETTLED)
    async with ctx.db.session() as s:
        assert await states.move_receipt(
            s, rid, ReceiptStatus.SETTLED, ReceiptStatus.CONFIRMED, log_index=3, block_number=9
        )
        r = await s.get(PaymentReceipt, rid)
        assert r is not None and (r.status, r.log_index, r.block_number) == ("confirmed", 3, 9)


async def test_the_extra_condition_decides_too(ctx: Context) -> None:
    """The claim's ``expires_at > now``: an open invoice past its expiry is not claimed."""
    pk = await _invoice(ctx, InvoiceStatus.OPEN)
    later = utcnow() + timedelta(days=2)
    async with ctx.db.session() as s:
        claimed = await states.move_invoice(
            s, pk, InvoiceStatus.OPEN, InvoiceStatus.PAID, where=(Invoice.expires_at > later,)
        )
    assert claimed is False and await _status(ctx, Invoice, pk) == "open"


async def test_an_illegal_move_raises_and_leaves_the_row(ctx: Context) -> None:
    pk = await _invoice(ctx, InvoiceStatus.CREDITED)
    with pytest.raises(IllegalMove):
        async with ctx.db.session() as s:
            await states.move_invoice(s, pk, InvoiceStatus.CREDITED, InvoiceStatus.OPEN)
    with pytest.raises(IllegalMove):  # one bad source among good ones is enough
        async with ctx.db.session() as s:
            await states.move_invoice(
                s, pk, (InvoiceStatus.PAID, InvoiceStatus.CREDITED), InvoiceStatus.OPEN
            )
    assert await _status(ctx, Invoice, pk) == "credited"
    rid = await _receipt(ctx, ReceiptStatus.SETTLING)
    with pytest.raises(IllegalMove):
        async with ctx.db.session() as s:
            await states.move_receipt(s, rid, ReceiptStatus.SETTLING, ReceiptStatus.CREDITED)
    assert await _status(ctx, PaymentReceipt, rid) == "settling"


async def test_deleting_rows(ctx: Context) -> None:
    """Only an open invoice is discarded and only a settling receipt dropped; asking to delete
    from any other status raises."""
    open_pk, paid_pk = await _invoice(ctx, "open"), await _invoice(ctx, "paid")
    async with ctx.db.read() as s:
        open_id = await s.scalar(select(Invoice.public_id).where(Invoice.id == open_pk))
        paid_id = await s.scalar(select(Invoice.public_id).where(Invoice.id == paid_pk))
    assert open_id and paid_id
    async with ctx.db.session() as s:
        # the caller's condition holds the row back
        assert not await states.discard_invoice(
            s, open_id, InvoiceStatus.OPEN, where=(Invoice.credit_units > 0,)
        )
        assert await states.discard_invoice(s, open_id, InvoiceStatus.OPEN)
        assert not await states.discard_invoice(s, paid_id, InvoiceStatus.OPEN)
    assert await _status(ctx, Invoice, open_pk) is None
    assert await _status(ctx, Invoice, paid_pk) == "paid"
    with pytest.raises(IllegalMove):
        async with ctx.db.session() as s:
            await states.discard_invoice(s, paid_id, InvoiceStatus.PAID)

    settling, settled = await _receipt(ctx, "settling", 1), await _receipt(ctx, "settled", 2)
    async with ctx.db.session() as s:
        assert await states.drop_receipt(s, settling, ReceiptStatus.SETTLING)
        assert not await states.drop_receipt(s, settling, ReceiptStatus.SETTLING)
        assert not await states.drop_receipt(s, settled, ReceiptStatus.SETTLING)
    assert await _status(ctx, PaymentReceipt, settling) is None
    assert await _status(ctx, PaymentReceipt, settled) == "settled"
    with pytest.raises(IllegalMove):
        async with ctx.db.session() as s:
            await states.drop_receipt(s, settled, ReceiptStatus.SETTLED)


def test_an_unknown_source_status_is_refused() -> None:
    with pytest.raises(IllegalMove):
        states.check_move(INVOICE_MOVES, ("refunded",), InvoiceStatus.OPEN)  # type: ignore[arg-type]
    # a stored string names the same status as its enum member
    states.check_move(RECEIPT_MOVES, ("settling",), ReceiptStatus.SETTLED)  # type: ignore[arg-type]
