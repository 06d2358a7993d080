"""Making an invoice for a purchase: who asks (their account, their chat), what it costs
after account credit, and — when credit covers all of it — the purchase granted at once."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts import get_or_create_account
from core.context import Context
from core.payments.credit import credit_invoice
from core.payments.invoices import due_units, insert_invoice, quote_for
from core.results import Caller, Granted, Quote


async def create_invoice(
    session: AsyncSession,
    ctx: Context,
    *,
    caller: Caller | None,
    user_id: int | None,
    kind: str,
    space_ids: list[str],
    amount_units: int,
    payload: dict[str, Any] | None = None,
    payer_address: str | None = None,
) -> Quote | Granted:
    """An open invoice for the caller (or an x402 payer), after account credit.

    When account credit covers the whole price, the purchase is credited at once in this
    same transaction and :class:`Granted` is returned instead of a quote.
    """
    account_id = None
    if caller is not None:
        acc = await get_or_create_account(session, caller)
        account_id = acc.id
        if user_id is None:
            user_id = acc.user_id
        if caller.back:
            payload = {**dict(caller.back), **(payload or {})}
    inv = await insert_invoice(
        session,
        ctx,
        kind=kind,
        account_id=account_id,
        user_id=user_id,
        space_ids=space_ids,
        amount_units=amount_units,
        payload=payload,
        payer_address=payer_address,
        origin_chat_id=caller.chat_id if caller is not None else None,
        partial_credit=not (
            caller is not None
            and caller.platform == "telegram"
            and not ctx.settings.telegram.usdc_enabled
        ),
    )
    if due_units(inv) == 0:
        res = await credit_invoice(
            session, ctx, inv, payer=None, transaction_hash=None, receipt_id=None
        )
        return Granted(kind=kind, space_ids=res.granted or space_ids, invoice_pk=inv.id)
    return quote_for(ctx, inv)
