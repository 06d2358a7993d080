"""Payments: invoices, x402 "exact" verify/settle, direct USDC transfers, crediting.

Entry points: :func:`pay_invoice` (pay page and HTTP API),
:func:`submit_transaction_hash` and :func:`watch_transfers` (direct transfers),
:func:`recover_payments` and :func:`expire_invoices` (scheduler jobs).
Invoices are made by the purchase service (``core.service.invoicing.create_invoice``).
"""

from core.payments.confirm import recover_payments
from core.payments.fulfil import FulfilRequest, FunctionFulfiller
from core.payments.invoices import expire_invoices, get_invoice
from core.payments.outcomes import Paid, PaymentOutcome, PaymentPending
from core.payments.pay import invoice_requirements, pay_invoice
from core.payments.transfers import submit_transaction_hash, watch_transfers

__all__ = [
    "FulfilRequest",
    "FunctionFulfiller",
    "Paid",
    "PaymentOutcome",
    "PaymentPending",
    "expire_invoices",
    "get_invoice",
    "invoice_requirements",
    "pay_invoice",
    "recover_payments",
    "submit_transaction_hash",
    "watch_transfers",
]
