"""values.py: Stripe minor units to decimal values, with Stripe's own exponent table
(stripe-webhooks.md, Amounts), and the JSON encoding of a platform's request body."""

from decimal import Decimal

import pytest

from checkout_conversions.values import encode_json as encode
from checkout_conversions.values import minor_unit_exponent, to_decimal_amount


@pytest.mark.parametrize(
    ("minor_units", "currency", "expected"),
    [
        # Zero-decimal: divide by 1
        (1500, "JPY", "1500"),
        (1, "JPY", "1"),
        (50000, "KRW", "50000"),
        (250000, "VND", "250000"),
        (10000, "XOF", "10000"),
        (990, "CLP", "990"),
        (3000, "BIF", "3000"),
        (7000, "XPF", "7000"),
        # Two-decimal: divide by 100
        (1999, "USD", "19.99"),
        (5, "EUR", "0.05"),
        (1990, "USD", "19.9"),
        (100000, "USD", "1000"),
        (123456, "HUF", "1234.56"),
        (1000, "HUF", "10"),
        (3050, "TWD", "30.5"),
        # ISK and UGX are zero-decimal in ISO 4217 but Stripe uses two decimals for them
        (1000, "ISK", "10"),
        (1234, "ISK", "12.34"),
        (50000, "UGX", "500"),
        # Three-decimal: divide by 1000
        (12340, "KWD", "12.34"),
        (12345, "BHD", "12.345"),
        (5000, "JOD", "5"),
        (1230, "OMR", "1.23"),
        (10, "TND", "0.01"),
        # Lowercase input, as Stripe sends it
        (1500, "jpy", "1500"),
        (1999, "usd", "19.99"),
        (12340, "kwd", "12.34"),
        (1000, "isk", "10"),
        # Zero amounts (100% discount)
        (0, "USD", "0"),
        (0, "JPY", "0"),
        (0, "KWD", "0"),
        # Large amounts stay exact and are not written in exponent notation
        (99999999, "USD", "999999.99"),
        (10**12, "JPY", "1000000000000"),
        (10**12, "USD", "10000000000"),
    ],
)
def test_to_decimal_amount(minor_units, currency, expected):
    result = to_decimal_amount(minor_units, currency)
    assert type(result) is Decimal
    assert result == Decimal(expected)
    assert str(result) == expected


@pytest.mark.parametrize(
    ("currency", "exponent"),
    [
        ("JPY", 0),
        ("jpy", 0),
        ("KRW", 0),
        ("VND", 0),
        ("XOF", 0),
        ("XAF", 0),
        ("USD", 2),
        ("EUR", 2),
        ("HUF", 2),
        ("TWD", 2),
        ("ISK", 2),
        ("UGX", 2),
        ("GBP", 2),
        ("KWD", 3),
        ("BHD", 3),
        ("JOD", 3),
        ("OMR", 3),
        ("TND", 3),
        ("tnd", 3),
    ],
)
def test_minor_unit_exponent(currency, exponent):
    assert minor_unit_exponent(currency) == exponent


@pytest.mark.parametrize(
    "code",
    "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF VND VUV XAF XOF XPF".split(),
)
def test_every_zero_decimal_currency_of_stripes_table(code):
    assert to_decimal_amount(1500, code) == Decimal(1500)


@pytest.mark.parametrize("code", "BHD JOD KWD OMR TND".split())
def test_every_three_decimal_currency_of_stripes_table(code):
    assert to_decimal_amount(1500, code) == Decimal("1.5")


def test_never_a_float():
    # 0.1 + 0.2 style errors must not creep in before the final JSON number.
    values = [to_decimal_amount(n, "USD") for n in (10, 20)]
    assert all(not isinstance(v, float) for v in values)
    assert values[0] + values[1] == Decimal("0.3")


def test_encode_rejects_unknown_types():
    with pytest.raises(TypeError):
        encode({"value": object()})
