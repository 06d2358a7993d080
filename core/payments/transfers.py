"""Direct USDC transfers, the fallback for wallets without typed-data signing.

A transfer counts only if it is a ``Transfer`` log of the configured token on the configured
chain, to pay-to, for exactly the amount due, from a wallet linked to the claiming account,
with the configured confirmations. The receipt's UNIQUE (network, tx hash, log index) makes
crediting one transfer twice impossible, whether the watcher or a submitted hash sees it.
"""

from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.context import Context
from core.db import Account, Invoice, PaymentCursor, PaymentReceipt, User, utcnow
from core.db.upsert import insert_ignore
from core.logging import get_logger
from core.payments.credit import credit_invoice
from core.payments.invoices import due_units, get_invoice
from core.payments.onchain import (
    ChainReader,
    ChainUnavailable,
    TransferLog,
    normalize_tx_hash,
    reader_for_settings,
)
from core.payments.outcomes import Paid, PaymentOutcome, PaymentPending
from core.results import Refused
from core.statuses import InvoiceStatus, ReceiptStatus

log = get_logger("spacescribe.payments.transfers")
SCAN_CHUNK = 2_000  # blocks per get_logs call
FIRST_SCAN_DEPTH = 5_000  # how far back the very first scan looks


async def linked_wallets(session: AsyncSession, inv: Invoice) -> set[str]:
    """Wallets allowed to pay this invoice by plain transfer."""
    wallets: set[str] = set()
    user_ids = {inv.user_id} if inv.user_id is not None else set()
    if inv.account_id is not None:
        acc = await session.get(Account, inv.account_id)
        if acc is not None and acc.user_id is not None:
            user_ids.add(acc.user_id)
    for uid in user_ids:
        w = await session.scalar(select(User.wallet_address).where(User.id == uid))
        if w:
            wallets.add(w.lower())
    if inv.payer_address:
        wallets.add(inv.payer_address.lower())
    return wallets


async def _credit_transfer(ctx: Context, inv: Invoice, t: TransferLog) -> PaymentOutcome:
    async with ctx.db.session() as s:
        added = await insert_ignore(
            s,
            PaymentReceipt,
            {
                "invoice_id": inv.id,
                "method": "transfer",
                "network": inv.network,
                "token_address": t.token,
                "payer_address": t.sender,
                "pay_to": t.recipient,
                "amount_units": t.value,
                "transaction_hash": t.transaction_hash,
                "log_index": t.log_index,
                "block_number": t.block_number,
                "status": ReceiptStatus.CONFIRMED,
                "created_at": utcnow(),
            },
            # ON CONFLICT needs no target: the other unique key has the nonce, NULL here
            index_elements=["network", "transaction_hash", "log_index"],  # pragma: no mutate
        )
        if not added:
            return Refused("tx_already_used", "This transfer was already credited.")
        rid = (
            await s.execute(
                select(PaymentReceipt.id).where(
                    PaymentReceipt.network == inv.network,
                    PaymentReceipt.transaction_hash == t.transaction_hash,
                    PaymentReceipt.log_index == t.log_index,
                )
            )
        ).scalar_one()  # just added
        res = await credit_invoice(
            s,
            ctx,
            inv,
            payer=t.sender,
            transaction_hash=t.transaction_hash,
            receipt_id=int(rid),
        )
    return Paid(
        inv.public_id, inv.kind, t.transaction_hash, t.sender, res.granted, res.to_credit_units
    )


async def submit_transaction_hash(
    ctx: Context, public_id: str, tx_hash: str, reader: ChainReader | None = None
) -> PaymentOutcome:
    """A member says "I paid invoice X with transaction Y": check it on chain and credit."""
    try:
        h = normalize_tx_hash(tx_hash)
    except ValueError as exc:
        return Refused("invalid_tx_hash", str(exc).capitalize() + ".")
    async with ctx.db.session() as s:
        inv = await get_invoice(s, public_id)
        wallets = await linked_wallets(s, inv) if inv is not None else set()
    if inv is None:
        return Refused("unknown_invoice", "No such invoice.")
    if inv.status == InvoiceStatus.CREDITED:
        return Refused("already_paid", "This invoice is already paid.", invoice_id=public_id)
    if inv.status != InvoiceStatus.OPEN or inv.network != ctx.settings.payments.network:
        return Refused("invoice_expired", "This invoice has expired; ask for a new one.")
    reader = reader or reader_for_settings(ctx.settings.payments)
    try:
        check = await reader.check_transaction(h)
    except ChainUnavailable:
        return Refused(
            "rpc_unavailable",
            "The blockchain node is unreachable; try again later.",
            retry_later=True,
            invoice_id=public_id,
        )
    if check.status == "not_found":
        return Refused("tx_not_found", "No such transaction on this chain.")
    if check.status == "reverted":
        return Refused("tx_reverted", "That transaction failed (reverted) on chain.")
    if check.status in ("pending", "unconfirmed"):
        return PaymentPending(
            public_id,
            h,
            "unconfirmed",
            f"Waiting for {ctx.settings.payments.confirmations} confirmations; it will be "
            "credited when they arrive.",
        )
    to_us = [t for t in check.transfers if t.recipient == inv.pay_to.lower()]
    if not to_us:
        return Refused(
            "no_matching_transfer",
            "This transaction carries no USDC transfer to the payment address.",
        )
    # a plain transfer is sent by the payer; x402 settlements (sent by a relayer) are
    # credited by the x402 path only
    mine = [t for t in to_us if t.sender in wallets and t.sender == check.tx_from]
    if not mine:
        return Refused(
            "not_your_transfer",
            "This transfer was not sent from a wallet linked to your account. "
            "Link your wallet with /wallet first.",
        )
    exact = [t for t in mine if t.value == due_units(inv)]
    if not exact:
        return Refused("wrong_amount", "The amount transferred does not match the price.")
    return await _credit_transfer(ctx, inv, exact[0])


async def _cursor(session: AsyncSession, ctx: Context, head: int) -> PaymentCursor:
    p = ctx.settings.payments
    key = {
        "network": p.network,
        "token_address": p.token_address.lower(),
        "pay_to": p.pay_to.lower(),
    }
    await insert_ignore(
        session,
        PaymentCursor,
        {**key, "last_block": max(head - FIRST_SCAN_DEPTH, -1), "updated_at": utcnow()},
        index_elements=["network", "token_address", "pay_to"],  # pragma: no mutate (sole key)
    )
    return (
        await session.execute(
            select(PaymentCursor).where(*(getattr(PaymentCursor, k) == v for k, v in key.items()))
        )
    ).scalar_one()


async def _open_invoice_for(ctx: Context, t: TransferLog) -> Invoice | None:
    """The sender's oldest open invoice this transfer pays exactly. Only the sender's
    invoices (:func:`linked_wallets`: its buyer, its account's wallet, its x402 payer) are
    read, so other members' open quotes of the same price never crowd it out."""
    p = ctx.settings.payments
    senders = select(User.id).where(User.wallet_address == t.sender)
    async with ctx.db.session() as s:
        return (
            (
                await s.execute(
                    select(Invoice)
                    .outerjoin(Account, Account.id == Invoice.account_id)
                    .where(
                        Invoice.status == InvoiceStatus.OPEN,
                        Invoice.network == p.network,
                        Invoice.token_address == t.token,
                        Invoice.pay_to == t.recipient,
                        Invoice.amount_units - Invoice.credit_units == t.value,
                        or_(
                            Invoice.user_id.in_(senders),
                            Account.user_id.in_(senders),
                            func.lower(Invoice.payer_address) == t.sender,
                        ),
                    )
                    .order_by(Invoice.id)
                )
            )
            .scalars()
            .first()
        )


async def watch_transfers(ctx: Context, reader: ChainReader | None = None) -> int:
    """Scheduler job: read confirmed Transfer logs to pay-to and credit matching invoices."""
    p = ctx.settings.payments
    if not p.pay_to:
        return 0
    reader = reader or reader_for_settings(p)
    try:
        head = await reader.block_number()
    except ChainUnavailable:
        log.warning("payment watcher: RPC unavailable; will retry")
        return 0
    safe = head - p.confirmations + 1
    async with ctx.db.session() as s:
        start = int((await _cursor(s, ctx, head)).last_block) + 1
    credited = 0
    while start <= safe:
        end = min(safe, start + SCAN_CHUNK - 1)
        try:
            logs = await reader.transfers_to(p.pay_to, start, end)
        except ChainUnavailable:
            log.warning("payment watcher: RPC unavailable; will retry")
            break
        for t in logs:
            async with ctx.db.session() as s:
                seen = await s.scalar(
                    select(PaymentReceipt.id).where(
                        PaymentReceipt.network == p.network,
                        PaymentReceipt.transaction_hash == t.transaction_hash,
                        PaymentReceipt.log_index == t.log_index,
                    )
                )
            if seen is not None:
                continue  # an x402 settlement or a submitted hash already took it
            try:
                check = await reader.check_transaction(t.transaction_hash)
            except ChainUnavailable:
                log.warning("payment watcher: RPC unavailable; will retry")
                return credited
            if check.tx_from != t.sender:
                continue  # not a plain transfer by the payer (e.g. an x402 settlement)
            inv = await _open_invoice_for(ctx, t)
            if inv is None:
                log.info("transfer to pay_to matches no open invoice", tx=t.transaction_hash)
                continue
            credited += isinstance(await _credit_transfer(ctx, inv, t), Paid)
        async with ctx.db.session() as s:
            cur = await _cursor(s, ctx, head)
            cur.last_block = max(int(cur.last_block), end)
            cur.updated_at = utcnow()
        start = end + 1
    return credited
