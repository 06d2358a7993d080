from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.config import PriceSettings
from core.money import (
    MoneyError,
    canonical,
    canonical_units,
    chat_price,
    display,
    from_units,
    parse_usdc,
    to_units,
)

units = st.integers(min_value=0, max_value=10**15)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.2", "0.2"),
        ("0.20", "0.2"),
        ("0.5", "0.5"),
        ("1", "1.0"),
        ("1.00", "1.0"),
        ("1.1", "1.1"),
        ("0.000001", "0.000001"),
        ("10", "10.0"),
        (Decimal("2.50"), "2.5"),
    ],
)
def test_canonical_matches_seed(value: str, expected: str) -> None:
    assert canonical(value) == expected


@pytest.mark.parametrize(
    "bad", [0.2, float("nan"), "NaN", "-0.1", "0.0000001", "abc", "", "Infinity", "1e400", True]
)
def test_rejects(bad: object) -> None:
    with pytest.raises(MoneyError):
        parse_usdc(bad)  # type: ignore[arg-type]


@given(units)
def test_units_round_trip(n: int) -> None:
    assert to_units(from_units(n)) == n
    assert to_units(canonical_units(n)) == n


@given(units)
def test_canonical_is_stable(n: int) -> None:
    s = canonical_units(n)
    assert canonical(s) == s
    assert "." in s and not s.endswith("0") or s.endswith(".0")


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_floats_always_refused(f: float) -> None:
    with pytest.raises(MoneyError):
        parse_usdc(f)  # type: ignore[arg-type]


@given(st.decimals(allow_nan=False, allow_infinity=False, places=7, min_value=0, max_value=10))
def test_more_than_six_decimals_refused(d: Decimal) -> None:
    if d != d.quantize(Decimal("0.000001")):
        with pytest.raises(MoneyError):
            parse_usdc(d)
    else:
        assert to_units(d) == int(d * 10**6)


@pytest.mark.parametrize(("n", "expected"), [(1, "1.0"), (2, "1.1"), (3, "1.2"), (10, "1.9")])
def test_chat_price(n: int, expected: str) -> None:
    assert canonical(chat_price(n, PriceSettings())) == expected


@pytest.mark.parametrize("n", [0, -1, True])
def test_chat_price_needs_a_space(n: int) -> None:
    with pytest.raises(MoneyError):
        chat_price(n, PriceSettings())


def test_display() -> None:
    assert display(Decimal("0.2")) == "0.20 USDC"
    assert display(1_100_000) == "1.10 USDC"
    assert display(Decimal("0.000001")) == "0.000001 USDC"
