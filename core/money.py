"""USDC amounts: exact Decimals and 6-decimal integer units. Never floats.

The seed stores ``amount_usdc`` as TEXT holding a canonical decimal string: "0.2", "0.5",
"1.0", "1.1". :func:`canonical` produces exactly that form (at least one decimal place,
no trailing zeros beyond it).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from core.errors import InvalidInput

if TYPE_CHECKING:
    from core.config import PriceSettings

DECIMALS = 6
UNIT = Decimal(10) ** DECIMALS
STEP = Decimal(1).scaleb(-DECIMALS)  # 0.000001, the smallest amount (quantize reads its exponent)
MAX_USDC = Decimal("1000000000")  # far above any price; bounds parsing of hostile input


class MoneyError(InvalidInput):
    code = "invalid_amount"


def parse_usdc(value: str | int | Decimal) -> Decimal:
    """Parse a USDC amount. Floats, NaN, negatives and more than 6 decimals are refused."""
    if isinstance(value, (bool, float)):
        raise MoneyError("amounts must be decimal strings, never floats")
    if isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, Decimal):
        d = value
    elif isinstance(value, str):
        s = value.strip()
        if not s or len(s) > 40:
            raise MoneyError("amount must be a decimal number such as 0.2")
        try:
            d = Decimal(s)
        except InvalidOperation:
            raise MoneyError(f"not a decimal amount: {s[:20]!r}") from None
    else:
        raise MoneyError(f"unsupported amount type {type(value).__name__}")
    if not d.is_finite():
        raise MoneyError("amount must be a finite number")
    if d < 0:
        raise MoneyError("amount cannot be negative")
    if d > MAX_USDC:
        raise MoneyError("amount is too large")
    if d != d.quantize(STEP):
        raise MoneyError("USDC has 6 decimals; the amount has more")
    return d


def to_units(amount: str | int | Decimal) -> int:
    """Decimal USDC → integer base units (1 USDC = 1_000_000)."""
    return int(parse_usdc(amount) * UNIT)


def from_units(units: int) -> Decimal:
    if isinstance(units, bool) or not isinstance(units, int):
        raise MoneyError("units must be an integer")
    if units < 0:
        raise MoneyError("amount cannot be negative")
    return Decimal(units) / UNIT


def canonical(amount: str | int | Decimal) -> str:
    """The seed's canonical string: "0.2", "1.0", "1.1", "0.000001"."""
    d = parse_usdc(amount)
    # "F" would differ from "f" only for NaN and Infinity, which parse_usdc refuses
    s = format(d.normalize(), "f")  # pragma: no mutate
    if "." not in s:
        s += ".0"
    return s


def canonical_units(units: int) -> str:
    return canonical(from_units(units))


def chat_price(num_spaces: int, prices: PriceSettings) -> Decimal:
    """0.9 + 0.1 × n (n = number of Spaces asked about; 1 Space → 1.0)."""
    if isinstance(num_spaces, bool) or not isinstance(num_spaces, int) or num_spaces < 1:
        raise MoneyError("a question needs at least one Space")
    return prices.chat_base + prices.chat_per_space * num_spaces


def display(amount: Decimal | int) -> str:
    """Human form for messages: '0.20 USDC' (two decimals at least)."""
    d = from_units(amount) if isinstance(amount, int) else parse_usdc(amount)
    q = d.quantize(Decimal("0.01")) if d == d.quantize(Decimal("0.01")) else d.normalize()
    return f"{q:f} USDC"
