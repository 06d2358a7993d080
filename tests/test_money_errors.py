"""The exact refusals of the money helpers (what a caller reads), found missing by `make mutants`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from core.config import load_settings
from core.money import MoneyError, canonical, chat_price, from_units, parse_usdc


@pytest.mark.parametrize("n", [0, -1, True, 1.0, "2"])
def test_chat_price_needs_a_whole_number_of_spaces(n: Any) -> None:
    with pytest.raises(MoneyError) as e:
        chat_price(n, load_settings().prices)
    assert str(e.value) == "a question needs at least one Space"


def test_chat_price_per_space() -> None:
    prices = load_settings().prices
    assert [chat_price(n, prices) for n in (1, 2, 10)] == [
        Decimal("1.0"),
        Decimal("1.1"),
        Decimal("1.9"),
    ]


@pytest.mark.parametrize("units", [True, 0.5, "1", Decimal(1), None])
def test_units_must_be_an_integer(units: Any) -> None:
    with pytest.raises(MoneyError) as e:
        from_units(units)
    assert str(e.value) == "units must be an integer"


def test_negative_units_are_refused() -> None:
    with pytest.raises(MoneyError) as e:
        from_units(-1)
    assert str(e.value) == "amount cannot be negative"
    assert from_units(0) == 0 and from_units(1) == Decimal("0.000001")
    assert canonical(from_units(1_100_000)) == "1.1"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0.2, "amounts must be decimal strings, never floats"),
        (True, "amounts must be decimal strings, never floats"),
        ("", "amount must be a decimal number such as 0.2"),
        ("   ", "amount must be a decimal number such as 0.2"),
        ("1." + "0" * 39, "amount must be a decimal number such as 0.2"),  # 41 characters
        ("abcdefghijklmnopqrstuvwxyz", "not a decimal amount: 'abcdefghijklmnopqrst'"),
        ([], "unsupported amount type list"),
        ("NaN", "amount must be a finite number"),
        ("-Infinity", "amount must be a finite number"),
        ("-0.1", "amount cannot be negative"),
        (-1, "amount cannot be negative"),
        ("1000000000.000001", "amount is too large"),
        ("0.0000001", "USDC has 6 decimals; the amount has more"),
    ],
)
def test_parse_usdc_refusals_are_exact(value: Any, message: str) -> None:
    with pytest.raises(MoneyError) as e:
        parse_usdc(value)
    assert str(e.value) == message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, Decimal(5)),
        (0, Decimal(0)),
        (" 0.5 ", Decimal("0.5")),
        ("1." + "0" * 38, Decimal(1)),  # 40 characters: the longest accepted
        ("1000000000", Decimal("1000000000")),
        (Decimal("0.000001"), Decimal("0.000001")),
    ],
)
def test_parse_usdc_accepts(value: Any, expected: Decimal) -> None:
    assert parse_usdc(value) == expected
