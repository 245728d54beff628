"""The buyer's match keys, normalised (and hashed) the way TikTok's Events API 2.0 expects them.

Rules (checked against TikTok-maintained sources: its server-side template and the Segment
destination it maintains; see ../shared/reference/tiktok-events-api.md in the workspace):
- email: trimmed, lower-cased, SHA-256;
- phone: E.164 with the leading `+` (`phonenumbers`, with the region of the billing address, else
  DEFAULT_PHONE_COUNTRY, for numbers without a country code; invalid numbers are dropped), SHA-256;
- external_id: trimmed, SHA-256 (case kept: it must equal what `ttq.identify` sends);
- first_name, last_name, zip_code: trimmed, lower-cased, whitespace removed, SHA-256; a US ZIP+4
  keeps its first five digits;
- city, state, country: lower-cased, letters and digits only, not hashed.
Text is put in Unicode NFC first, so that the same name typed two ways hashes the same.
A value that already is a SHA-256 hex digest passes through (lower-cased). Empty values are never
hashed: sha256("") is a real, useless hash that would match nobody.

Used only by the sender and the redrive: `phonenumbers` stays off the webhook's cold start.
"""

import hashlib
import re
import unicodedata

import phonenumbers

_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
_US_ZIP = re.compile(r"^(\d{5})(?:-?\d{4})?$")


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def is_sha256_hex(value: str) -> bool:
    return bool(_SHA256_HEX.match(value))


def hashed(value: str | None) -> str | None:
    """SHA-256 of an already normalised value; an existing SHA-256 digest passes through."""
    if not value:
        return None
    if is_sha256_hex(value):
        return value.lower()
    return sha256_hex(value)


def hashed_email(email: str | None) -> str | None:
    return hashed(email.strip().lower() if email else None)


def e164_phone(raw: object, region: str | None = None) -> str | None:
    """E.164 with the '+', or None when the number is not valid for `region` (ISO alpha-2; only
    used for a number without a country code; without one such a number is dropped)."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        number = phonenumbers.parse(raw.strip(), (region or "").upper() or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def hashed_phone(raw: object, region: str | None = None) -> str | None:
    if isinstance(raw, str) and is_sha256_hex(raw.strip()):
        return raw.strip().lower()
    return hashed(e164_phone(raw, region))


def hashed_external_id(raw: str | None) -> str | None:
    return hashed(raw.strip() if raw else None)


def hashed_name(raw: str | None) -> str | None:
    return hashed(_compact(raw))


def hashed_zip_code(raw: str | None, country: str | None = None) -> str | None:
    zip_code = _compact(raw)
    if zip_code and (country or "").upper() == "US" and (match := _US_ZIP.match(zip_code)):
        zip_code = match.group(1)
    return hashed(zip_code)


def location(raw: str | None) -> str | None:
    """City, state or country: lower-cased, letters and digits only ("New York" -> "newyork")."""
    if not raw:
        return None
    text = unicodedata.normalize("NFC", raw).lower()
    return "".join(character for character in text if character.isalnum()) or None


def _compact(raw: str | None) -> str | None:
    if not raw:
        return None
    if is_sha256_hex(raw.strip()):
        return raw.strip()
    # NFC: "São" typed as S, a, combining tilde, o hashes as the same name as the composed one.
    return "".join(unicodedata.normalize("NFC", raw).lower().split()) or None
