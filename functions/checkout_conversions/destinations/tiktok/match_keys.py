"""TikTok's match-key rules: the `user` object of an Events API 2.0 event.

Rules (checked against TikTok-maintained sources: its server-side template and the Segment
destination it maintains; see ../shared/reference/tiktok-events-api.md in the workspace):
- email: trimmed, lower-cased, SHA-256;
- phone: E.164 with the leading `+` (`phonenumbers`, with the region of the billing address, else
  DEFAULT_PHONE_COUNTRY, for numbers without a country code; invalid numbers are dropped), SHA-256;
- external_id: trimmed, SHA-256 (case kept: it must equal what `ttq.identify` sends);
- first_name, last_name, zip_code: trimmed, lower-cased, whitespace removed, SHA-256; a US ZIP+4
  keeps its first five digits;
- city, state, country: lower-cased, letters and digits only, not hashed;
- ttclid, ttp, ip, user_agent, locale: as they are.
Text is put in Unicode NFC first, so that the same name typed two ways hashes the same.
A value that already is a SHA-256 hex digest passes through (lower-cased).
"""

import re
import unicodedata

from checkout_conversions.destinations.match_keys import (
    e164_phone,
    hashed,
    hashed_email,
    hashed_external_id,
    is_sha256_hex,
)
from checkout_conversions.purchase import Buyer

# The `user` keys, in the order they are reported (match-key coverage: names only, never values).
USER_KEYS = (
    "email", "phone", "external_id", "first_name", "last_name", "zip_code", "city", "state",
    "country", "ttclid", "ttp", "ip", "user_agent", "locale",
)  # fmt: skip
_US_ZIP = re.compile(r"^(\d{5})(?:-?\d{4})?$")


def build_user(buyer: Buyer, default_phone_country: str = "") -> dict[str, str]:
    """The hashed and normalised match keys; missing ones are left out, never sent empty."""
    user = {
        "email": hashed_email(buyer.email),
        "phone": hashed_phone(buyer.phone, buyer.country or default_phone_country or None),
        "external_id": hashed_external_id(buyer.external_id),
        "first_name": hashed_name(buyer.first_name),
        "last_name": hashed_name(buyer.last_name),
        "zip_code": hashed_zip_code(buyer.zip_code, buyer.country),
        "city": location(buyer.city),
        "state": location(buyer.state),
        "country": location(buyer.country),
        "ttclid": buyer.ttclid,
        "ttp": buyer.ttp,
        "ip": buyer.ip,
        "user_agent": buyer.user_agent,
        "locale": buyer.locale,
    }
    return {key: value for key, value in user.items() if value}


def hashed_phone(raw: object, region: str | None = None) -> str | None:
    if isinstance(raw, str) and is_sha256_hex(raw.strip()):
        return raw.strip().lower()
    return hashed(e164_phone(raw, region))


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
