"""TikTok's match-key rules: the `user` object of an Events API 2.0 event."""

# Checked against TikTok-maintained sources: its server-side template `tiktok/gtm-template-eapi`
# with its field help, and the Segment destination TikTok maintains (docs/events.md quotes them). Every
# key is trimmed of every Unicode space and the BOM first, as the template's JavaScript `trim()`
# does (destinations/match_keys.py `trimmed`), and put in Unicode NFC; a value that already is a
# SHA-256 hex digest passes through lower-cased; an empty one is never hashed.
#
# - email: lower-cased, SHA-256 (template; shared with Meta: `hashed_email`);
# - phone: E.164 with the `+` (a leading `00` read as `+`; else with the billing country, else
#   DEFAULT_PHONE_COUNTRY; invalid numbers dropped), SHA-256; a mainland-China number (+86) without
#   its country code: `+86 138 0013 8000` -> `13800138000` (the template's phone help: "If the
#   country code is 86, then do not include country code (example: 13800000000)"; issue 18, items
#   1 and 2);
# - external_id: case kept, SHA-256: it must equal what `ttq.identify` sends (template);
# - first_name, last_name: lower-cased, no punctuation, symbols or spaces; letters with their
#   accents (NFC) and digits kept; SHA-256 (Segment's TikTok-maintained destination: "without any
#   punctuation"; issue 18, item 4; shared with Meta: `name`);
# - zip_code: lower-cased, no spaces or dashes; in the US the first five digits; SHA-256 (Segment:
#   "whitespace removed, lowercase"; issue 18, item 5; shared with Meta: `postcode`);
# - state: in a US address the two-letter code (`California` -> `ca`); elsewhere lower-cased,
#   letters and digits only; not hashed (Segment; issue 18, item 6; shared with Meta: `state_key`);
# - city, country: lower-cased, letters and digits only, not hashed (Segment);
# - ttclid, ttp, ip, user_agent, locale: as they are (template).

import unicodedata

from checkout_conversions.destinations.match_keys import (
    e164_phone,
    hashed,
    hashed_email,
    hashed_external_id,
    hashed_key,
    is_sha256_hex,
    name,
    postcode,
    state_key,
    trimmed,
)
from checkout_conversions.purchase import Buyer

# The `user` keys, in the order they are reported (match-key coverage: names only, never values).
USER_KEYS = (
    "email", "phone", "external_id", "first_name", "last_name", "zip_code", "city", "state",
    "country", "ttclid", "ttp", "ip", "user_agent", "locale",
)  # fmt: skip
_MAINLAND_CHINA = "+86"


def build_user(buyer: Buyer, default_phone_country: str = "") -> dict[str, str]:
    """The hashed and normalised match keys; missing ones are left out, never sent empty."""
    country = buyer.country
    user = {
        "email": hashed_email(buyer.email),  # template: trimmed, lower-cased
        "phone": hashed_phone(buyer.phone, trimmed(country) or trimmed(default_phone_country)),  # template
        "external_id": hashed_external_id(buyer.external_id),  # template: case kept
        "first_name": hashed_name(buyer.first_name),  # Segment: "without any punctuation"
        "last_name": hashed_name(buyer.last_name),
        "zip_code": hashed_zip_code(buyer.zip_code, country),  # Segment; issue 18, item 5
        "city": location(buyer.city),  # Segment: letters and digits, not hashed
        "state": state(buyer.state, country),  # Segment; issue 18, item 6
        "country": location(country),  # Segment: letters and digits, not hashed
        "ttclid": buyer.ttclid,  # the rest as they are (template)
        "ttp": buyer.ttp,
        "ip": buyer.ip,
        "user_agent": buyer.user_agent,
        "locale": buyer.locale,
    }
    return {key: value for key, value in user.items() if value}


def hashed_phone(raw: object, region: str | None = None) -> str | None:
    """E.164 with the `+`, except a mainland-China number, sent without its country code (the
    template's phone help: "If the country code is 86, then do not include country code (example:
    13800000000)"). Country codes are prefix-free, so `+86` is China's alone (+852 Hong Kong,
    +853 Macao and +886 Taiwan keep theirs)."""
    text = trimmed(raw)
    if text is not None and is_sha256_hex(text):
        return text.lower()
    e164 = e164_phone(text, region)
    if e164 and e164.startswith(_MAINLAND_CHINA):
        return hashed(e164.removeprefix(_MAINLAND_CHINA))
    return hashed(e164)


def hashed_name(raw: object) -> str | None:
    return hashed_key(raw, name)


def hashed_zip_code(raw: object, country: str | None = None) -> str | None:
    return hashed_key(raw, lambda text: postcode(text, country))


def state(raw: object, country: str | None = None) -> str | None:
    """Not hashed: "California" in the US -> "ca", "ON" -> "on", "N.S.W." -> "nsw"."""
    text = trimmed(raw)
    return state_key(text, country) if text else None


def location(raw: object) -> str | None:
    """City or country: lower-cased, letters and digits only ("New York" -> "newyork"), not hashed."""
    text = trimmed(raw)
    if text is None:
        return None
    return "".join(ch for ch in unicodedata.normalize("NFC", text).lower() if ch.isalnum()) or None
