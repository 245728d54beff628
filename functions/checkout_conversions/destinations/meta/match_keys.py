"""Meta's match-key rules: the `user_data` object of a Conversions API event, normalised as Meta's
Customer Information Parameters ask, then SHA-256:
- em: trimmed, lower-cased;
- ph: digits only, with the country code and no '+' (E.164 by `phonenumbers`, with the region of
  the billing address, else DEFAULT_PHONE_COUNTRY; invalid numbers are dropped);
- fn, ln: lower-cased, punctuation, symbols and whitespace removed (letters of any script kept);
- ct: lower-cased, letters only;
- st: lower-cased, letters and digits only;
- zp: lower-cased, whitespace and dashes removed; in the US only the first five digits;
- country: lower-cased ISO 3166 alpha-2 (anything else is left out: it would match nobody);
- external_id: trimmed, case kept (the same digest TikTok gets, so one id serves both pixels).
Text is put in Unicode NFC first, so that a name typed two ways hashes the same. A value that
already is a SHA-256 digest passes through lower-cased; an empty one is never hashed.
client_ip_address, client_user_agent, fbc and fbp are sent as they are: Meta wants them raw.
"""

import re
import unicodedata
from collections.abc import Callable

from checkout_conversions.destinations.match_keys import (
    e164_phone,
    hashed,
    hashed_email,
    hashed_external_id,
    is_sha256_hex,
    keep,
    lower_nfc,
    trimmed,
)
from checkout_conversions.purchase import Buyer

# The `user_data` keys, in the order they are reported (match-key coverage: names only).
USER_DATA_KEYS = (
    "em", "ph", "fn", "ln", "ct", "st", "zp", "country", "external_id",
    "client_ip_address", "client_user_agent", "fbc", "fbp",
)  # fmt: skip
_COUNTRY = re.compile(r"^[a-z]{2}$")
_US_ZIP5 = re.compile(r"^([0-9]{5})")


def build_user_data(buyer: Buyer, default_phone_country: str = "") -> dict[str, str]:
    """The normalised and hashed match keys, then the raw ones; missing ones are left out."""
    user_data = {
        "em": hashed_email(buyer.email),
        "ph": _hashed_phone(buyer.phone, buyer.country or default_phone_country or None),
        "fn": _hashed(buyer.first_name, _name),
        "ln": _hashed(buyer.last_name, _name),
        "ct": _hashed(buyer.city, _city),
        "st": _hashed(buyer.state, _state),
        "zp": _hashed(buyer.zip_code, lambda raw: _zip_code(raw, buyer.country)),
        "country": _hashed(buyer.country, _country),
        "external_id": hashed_external_id(buyer.external_id),
        # Sent as they are; a blank value is left out.
        "client_ip_address": buyer.ip if trimmed(buyer.ip) else None,
        "client_user_agent": buyer.user_agent if trimmed(buyer.user_agent) else None,
        "fbc": buyer.fbc if trimmed(buyer.fbc) else None,
        "fbp": buyer.fbp if trimmed(buyer.fbp) else None,
    }
    return {key: value for key, value in user_data.items() if value}


def _hashed(raw: object, normalise: Callable[[str], str | None]) -> str | None:
    """Normalise, then SHA-256. An existing digest passes through before normalisation, which
    could otherwise mangle it (a country rule would drop it)."""
    text = trimmed(raw)
    if text is None:
        return None
    if is_sha256_hex(text):
        return text.lower()
    return hashed(normalise(text))


def _hashed_phone(raw: object, region: str | None) -> str | None:
    text = trimmed(raw)
    if text is None:
        return None
    if is_sha256_hex(text):
        return text.lower()
    e164 = e164_phone(text, region)
    return hashed(e164.lstrip("+")) if e164 else None


def _name(raw: str) -> str | None:
    """ "Mary-Ann" -> "maryann", "O'Neil" -> "oneil", "José" -> "josé": letters (of any script,
    with their combining marks) and digits stay; punctuation, symbols, spaces and controls go."""
    return keep(raw, "L", "M", "N")


def _city(raw: str) -> str | None:
    """ "Menlo Park" -> "menlopark": letters only."""
    return keep(raw, "L", "M")


def _state(raw: str) -> str | None:
    """ "CA" -> "ca": letters and digits (some regions' codes have digits)."""
    return keep(raw, "L", "M", "N")


def _zip_code(raw: str, country: str | None) -> str | None:
    """ "M1 1AE" -> "m11ae"; in the US "94035-1234" -> "94035" (Meta: the first five digits)."""
    text = lower_nfc(raw)
    compact = "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch) != "Pd")
    if (country or "").strip().upper() == "US" and (match := _US_ZIP5.match(compact)):
        return match.group(1)
    return compact or None


def _country(raw: str) -> str | None:
    code = "".join(ch for ch in raw.lower() if "a" <= ch <= "z")
    return code if _COUNTRY.match(code) else None
