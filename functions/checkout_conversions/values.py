"""The one home of small parsing helpers: text, epoch seconds, flags, money, JSON bodies and the
reading of settings from the environment."""

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

YEAR_3000 = 32503680000
ID_LIMIT = 255
_TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
_FALSE_WORDS = frozenset({"false", "0", "no", "off"})
# Stripe's table differs from ISO 4217: ISK and UGX are zero-decimal in ISO but Stripe represents
# them with two decimals, so a generic ISO library would be wrong by 100x for them.
ZERO_DECIMAL = frozenset("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF VND VUV XAF XOF XPF".split())
THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())


def text(value: object, limit: int | None = ID_LIMIT) -> str | None:
    """The trimmed string, or None when it is not a string, is blank, or is longer than `limit`
    (ids and keys are never truncated)."""
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    if not stripped or (limit is not None and len(stripped) > limit):
        return None
    return stripped


def truncated(value: object, limit: int) -> str | None:
    """Free text (a name, an address line) cut to `limit` characters, then trimmed."""
    return text(value[:limit] if isinstance(value, str) else value, limit)


def mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def whole_number(value: object, maximum: int) -> int | None:
    """A non-negative int (never a bool) up to `maximum`, else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= maximum:
        return value
    return None


def epoch(value: object) -> int | None:
    """A plausible Unix time in seconds (after 1970, before the year 3000), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < YEAR_3000:
        return value
    return None


def iso(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat()


def flag(raw: str | None) -> bool | None:
    """true/1/yes/on and false/0/no/off, in any case; None for anything else."""
    if raw is None:
        return None
    word = raw.strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    return None


def is_stripe_id(value: object, prefix: str) -> bool:
    return isinstance(value, str) and value.startswith(prefix) and len(prefix) < len(value) <= ID_LIMIT


def minor_unit_exponent(currency: str) -> int:
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def to_decimal_amount(minor_units: int, currency: str) -> Decimal:
    """1999 USD -> 19.99, 1500 JPY -> 1500, 12340 KWD -> 12.34 (trailing zeros dropped)."""
    amount = Decimal(minor_units).scaleb(-minor_unit_exponent(currency))
    return amount.quantize(Decimal(1)) if amount == amount.to_integral() else amount.normalize()


def encode_json(body: Mapping[str, Any]) -> bytes:
    """A platform's request body: compact JSON with Decimal amounts as JSON numbers (19.99, not
    "19.99" and not 19.990000000000002)."""
    return json.dumps(body, separators=(",", ":"), default=_decimal_as_number).encode("utf-8")


def _decimal_as_number(value: object) -> int | float:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class SettingsReader:
    """Reads settings from environment variables. A bad tuning value falls back to its default
    and is remembered in `problems`: a typo in a platform's or the redrive's setting must never
    stop provisioning."""

    def __init__(self, environ: Mapping[str, str]):
        self.environ = environ
        self.problems: list[str] = []

    def text(self, name: str, default: str = "") -> str:
        return self.environ.get(name, "").strip() or default

    def integer(self, name: str, default: int, minimum: int = 0, maximum: int = 86400) -> int:
        return int(self._number(name, default, int, minimum, maximum))

    def seconds(self, name: str, default: float, minimum: float, maximum: float) -> float:
        return self._number(name, default, float, minimum, maximum)

    def flag(self, name: str) -> bool:
        raw = self.text(name)
        value = flag(raw) if raw else False
        if value is None:
            self.problems.append(f"{name}={raw.lower()!r} is not true or false: using false")
            return False
        return value

    def _number(self, name: str, default: float, cast: type, minimum: float, maximum: float) -> float:
        raw = self.text(name)
        if not raw:
            return float(cast(default))
        try:
            value = float(cast(raw))
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not minimum <= value <= maximum:
            self.problems.append(
                f"{name}={raw!r} is not a number from {minimum} to {maximum}: using {default}"
            )
            return float(cast(default))
        return value
