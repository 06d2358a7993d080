"""Every status change of an invoice or a payment receipt: the allowed moves as data, and the
guarded UPDATE (or DELETE) that makes one.

Each move is ``UPDATE … WHERE id = :id AND status IN (:sources)`` (plus the caller's extra
conditions) and reports whether the row moved: on PostgreSQL and SQLite alike the row count
decides every race (two submissions claiming one invoice, a settlement against a release,
two crediting processes). A move the tables below do not allow is a programming error and
raises before any SQL runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, delete, update
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import Invoice, PaymentReceipt
from core.statuses import InvoiceStatus, ReceiptStatus

# source → the statuses it may move to. An invoice: claimed by an x402 submission (open →
# paid) and released if nothing was settled (paid → open); credited from open (a transfer,
# Stars, account credit) or from paid (a settled x402 payment); expired when still open.
# A receipt: its transaction hash known, then what the chain says, then credited.
INVOICE_MOVES: dict[InvoiceStatus, frozenset[InvoiceStatus]] = {
    InvoiceStatus.OPEN: frozenset(
        {InvoiceStatus.PAID, InvoiceStatus.CREDITED, InvoiceStatus.EXPIRED}
    ),
    InvoiceStatus.PAID: frozenset({InvoiceStatus.OPEN, InvoiceStatus.CREDITED}),
    InvoiceStatus.CREDITED: frozenset(),
    InvoiceStatus.EXPIRED: frozenset(),
}
RECEIPT_MOVES: dict[ReceiptStatus, frozenset[ReceiptStatus]] = {
    ReceiptStatus.SETTLING: frozenset({ReceiptStatus.SETTLED}),
    ReceiptStatus.SETTLED: frozenset(
        {ReceiptStatus.CONFIRMED, ReceiptStatus.REVERTED, ReceiptStatus.MISMATCH}
    ),
    ReceiptStatus.CONFIRMED: frozenset({ReceiptStatus.CREDITED}),
    ReceiptStatus.CREDITED: frozenset(),
    ReceiptStatus.REVERTED: frozenset(),
    ReceiptStatus.MISMATCH: frozenset(),
}
# rows that may be deleted, and from which status: an x402 invoice nobody else knows of,
# a claim whose money never left the payer
INVOICE_DISCARDABLE: frozenset[InvoiceStatus] = frozenset({InvoiceStatus.OPEN})
RECEIPT_DROPPABLE: frozenset[ReceiptStatus] = frozenset({ReceiptStatus.SETTLING})


class IllegalMove(Exception):
    """A status change the tables do not allow: a bug in the caller, never a race."""


S = TypeVar("S", InvoiceStatus, ReceiptStatus)


def _sources(given: S | Iterable[S]) -> tuple[S, ...]:
    if isinstance(given, str):  # one status (a StrEnum is a str)
        return (given,)
    return tuple(given)


def check_move(moves: Mapping[S, frozenset[S]], sources: Sequence[S], to: S) -> None:
    if not sources:
        raise IllegalMove(f"a move to {to!s} names no source status")
    for source in sources:
        if to not in moves.get(source, frozenset()):
            raise IllegalMove(f"{source!s} → {to!s} is not an allowed move")


def check_removal(removable: frozenset[S], sources: Sequence[S]) -> None:
    if not sources or not set(sources) <= removable:
        raise IllegalMove(f"a row in {', '.join(map(str, sources))} may not be deleted")


def _moved(result: Result[Any]) -> bool:
    return bool(getattr(result, "rowcount", 0))  # pragma: no mutate (a DML result has rowcount)


async def move_invoice(
    session: AsyncSession,
    invoice_pk: int,
    sources: InvoiceStatus | Iterable[InvoiceStatus],
    to: InvoiceStatus,
    *,
    where: Sequence[ColumnElement[bool]] = (),
    **values: Any,
) -> bool:
    """``sources → to`` for one invoice, setting ``values`` too; True if this call moved it."""
    src = _sources(sources)
    check_move(INVOICE_MOVES, src, to)
    res = await session.execute(
        update(Invoice)
        .where(Invoice.id == invoice_pk, Invoice.status.in_(src), *where)
        .values(status=to, **values)
    )
    return _moved(res)


async def move_receipt(
    session: AsyncSession,
    receipt_id: int,
    sources: ReceiptStatus | Iterable[ReceiptStatus],
    to: ReceiptStatus,
    **values: Any,
) -> bool:
    """``sources → to`` for one receipt, setting ``values`` too; True if this call moved it."""
    src = _sources(sources)
    check_move(RECEIPT_MOVES, src, to)
    res = await session.execute(
        update(PaymentReceipt)
        .where(PaymentReceipt.id == receipt_id, PaymentReceipt.status.in_(src))
        .values(status=to, **values)
    )
    return _moved(res)


async def discard_invoice(
    session: AsyncSession,
    public_id: str,
    sources: InvoiceStatus | Iterable[InvoiceStatus],
    *,
    where: Sequence[ColumnElement[bool]] = (),
) -> bool:
    """Delete the invoice ``public_id`` if it is still in ``sources`` (and ``where`` holds)."""
    src = _sources(sources)
    check_removal(INVOICE_DISCARDABLE, src)
    res = await session.execute(
        delete(Invoice).where(Invoice.public_id == public_id, Invoice.status.in_(src), *where)
    )
    return _moved(res)


async def drop_receipt(
    session: AsyncSession,
    receipt_id: int,
    sources: ReceiptStatus | Iterable[ReceiptStatus],
) -> bool:
    """Delete one receipt if it is still in ``sources``; True if this call deleted it."""
    src = _sources(sources)
    check_removal(RECEIPT_DROPPABLE, src)
    res = await session.execute(
        delete(PaymentReceipt).where(
            PaymentReceipt.id == receipt_id, PaymentReceipt.status.in_(src)
        )
    )
    return _moved(res)
