"""One refusal vocabulary: ``core.refusals.RefusalCode`` lists every code the product emits,
and ``core.results.Refused`` is the one refusal type, payments' included."""

from __future__ import annotations

import ast
from pathlib import Path

from core import wallet_link
from core.payments import idempotency, outcomes, siwx, stars
from core.refusals import RefusalCode
from core.results import Refused

ROOT = Path(__file__).resolve().parent.parent

_MAKERS = {"Refused", "_refuse", "Conflict", "refusal"}


def _literal_codes() -> dict[str, str]:
    """Every code spelled as a literal where a refusal is made in core, adapters and bot."""
    found: dict[str, str] = {}
    for root in ("core", "adapters", "bot"):
        for path in sorted((ROOT / root).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                f = node.func
                name = f.id if isinstance(f, ast.Name) else getattr(f, "attr", None)
                if name not in _MAKERS or not node.args:
                    continue
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found[arg.value] = f"{path.relative_to(ROOT)}:{node.lineno}"
    return found


def test_every_literal_refusal_code_is_in_the_vocabulary() -> None:
    codes = _literal_codes()
    assert len(codes) > 40  # the scan found the refusals
    unknown = {c: where for c, where in codes.items() if c not in set(RefusalCode)}
    assert not unknown, unknown


def test_every_message_table_speaks_the_vocabulary() -> None:
    pending = {"confirm_unavailable", "settlement_unknown"}  # PaymentPending, not refusals
    tables = {
        "outcomes": set(outcomes.MESSAGES) - pending,
        "idempotency": set(idempotency.MESSAGES),
        "siwx": set(siwx.MESSAGES),
        "stars": set(stars.MESSAGES),
        "wallet_link": set(wallet_link.MESSAGES),
    }
    for name, codes in tables.items():
        assert codes <= set(RefusalCode), (name, codes - set(RefusalCode))


def test_refused_is_one_class() -> None:
    assert not hasattr(outcomes, "PaymentRefused")  # the old second name is gone
    r = Refused("already_paid", "paid")
    assert (r.retry_later, r.invoice_id) == (False, None)
    assert r == Refused(RefusalCode.ALREADY_PAID, "paid")
