"""What both platforms do alike with a buyer's match keys: Unicode normalisation, E.164 phone
numbers and SHA-256. Each platform's own rules are in its folder (`<platform>/match_keys.py`).

Used only by the sender and the redrive: `phonenumbers` stays off the webhook's cold start.
"""

import hashlib
import re
import unicodedata

import phonenumbers

_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def is_sha256_hex(value: str) -> bool:
    return bool(_SHA256_HEX.match(value))


def hashed(value: str | None) -> str | None:
    """SHA-256 of an already normalised value; an existing SHA-256 digest passes through
    (lower-cased). Empty values are never hashed: sha256("") would match nobody."""
    if not value:
        return None
    if is_sha256_hex(value):
        return value.lower()
    return sha256_hex(value)


def trimmed(raw: object) -> str | None:
    """The trimmed text, or None for anything that is not a non-blank string."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    return raw.strip()


def hashed_email(raw: object) -> str | None:
    """Trimmed, lower-cased, SHA-256 (both platforms)."""
    email = trimmed(raw)
    return hashed(email.lower() if email else None)


def hashed_external_id(raw: object) -> str | None:
    """Trimmed, case kept, SHA-256: the same digest for both pixels and `ttq.identify`."""
    return hashed(trimmed(raw))


def e164_phone(raw: object, region: str | None = None) -> str | None:
    """E.164 with the '+', or None when the number is not valid for `region` (ISO alpha-2; only
    used for a number without a country code; without one such a number is dropped)."""
    text = trimmed(raw)
    if text is None:
        return None
    try:
        number = phonenumbers.parse(text, (region or "").upper() or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def lower_nfc(raw: str) -> str:
    # NFC again after lower-casing: lower() can decompose ("İ" becomes "i" + combining dot).
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", raw).lower())


def keep(raw: str, *categories: str) -> str | None:
    """Lower-cased NFC text with only the characters of the Unicode major categories given
    ("L" letters, "M" marks, "N" digits)."""
    return "".join(ch for ch in lower_nfc(raw) if unicodedata.category(ch)[0] in categories) or None
