"""Stripe amounts in minor units to decimal values, with Stripe's own currency exponents.

Stripe's table differs from ISO 4217: ISK and UGX are zero-decimal in ISO but Stripe represents
them with two decimals, so a generic ISO library would be wrong by 100x for them.
"""

import json
from decimal import Decimal
from typing import Any

ZERO_DECIMAL = frozenset("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF VND VUV XAF XOF XPF".split())
THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())


def minor_unit_exponent(currency: str) -> int:
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def to_decimal_amount(minor_units: int, currency: str) -> Decimal:
    """1999 USD -> 19.99, 1500 JPY -> 1500, 12340 KWD -> 12.34 (trailing zeros dropped)."""
    exponent = minor_unit_exponent(currency)
    amount = Decimal(minor_units).scaleb(-exponent)
    return amount.quantize(Decimal(1)) if amount == amount.to_integral() else amount.normalize()


def encode_json(body: dict[str, Any]) -> bytes:
    """A platform's request body: compact JSON with Decimal amounts as JSON numbers (19.99, not
    "19.99" and not 19.990000000000002)."""
    return json.dumps(body, separators=(",", ":"), default=_decimal_as_number).encode("utf-8")


def _decimal_as_number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
