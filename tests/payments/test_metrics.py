"""Refused payments are counted by reason in /metrics."""

from core import metrics
from core.context import Context
from core.payments import pay_invoice


async def test_refusals_are_counted_by_reason(ctx: Context) -> None:
    def count() -> float:
        v = metrics.REGISTRY.get_sample_value(
            "spacescribe_payments_total", {"outcome": "rejected", "reason": "invalid_payload"}
        )
        return v or 0.0

    before = count()
    out = await pay_invoice(ctx, "nope", {"not": "a payment"})
    assert getattr(out, "code", None) == "invalid_payload"
    assert count() == before + 1
