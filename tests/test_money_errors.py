"""The exact refusals of the money helpers (what a caller reads), found missing by `make mutants`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from core.config import load_settings
from core.money import MoneyError, canonical, chat_price, from_units


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
