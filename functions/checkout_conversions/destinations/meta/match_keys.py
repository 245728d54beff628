"""Meta's match-key rules: the `user_data` object of a Conversions API event, normalised as Meta's
Customer Information Parameters ask (https://developers.facebook.com/docs/marketing-api/
conversions-api/parameters/customer-information-parameters), then SHA-256. Every key is trimmed of"""

# every Unicode space and the BOM first (destinations/match_keys.py `trimmed`), put in Unicode NFC,
# and an existing SHA-256 digest passes through lower-cased; an empty value is never hashed.
#
#
# - em: lower-cased (Meta `em`; shared with TikTok: `hashed_email`);
# - ph: digits with the country code, no `+`: E.164 (a leading `00` read as `+`; else with the
#   billing country, else DEFAULT_PHONE_COUNTRY; invalid numbers dropped); a mainland-China number
#   keeps its 86 (`+86 138 0013 8000` -> `8613800138000`) (Meta `ph`; issue 18, items 1 and 2);
# - fn, ln: lower-cased, no punctuation, symbols or spaces; letters with their accents (NFC) and
#   digits kept (Meta `fn`/`ln`; shared with TikTok: `name`);
# - ct: lower-cased, letters only (Meta `ct`);
# - st: in a US address the two-letter ANSI code (`California` -> `ca`); elsewhere lower-cased,
#   letters and digits only (Meta `st`; shared with TikTok: `state_key`);
# - zp: lower-cased, no spaces or dashes; in the US the first five digits (Meta `zp`; shared with
#   TikTok: `postcode`);
# - country: lower-cased ISO 3166-1 alpha-2; anything else is left out: it would match nobody
#   (Meta `country`);
# - external_id: case kept, the same digest TikTok gets, so one id serves both pixels (Meta
#   `external_id`; shared: `hashed_external_id`);
# - client_ip_address, client_user_agent, fbc, fbp: as they are (Meta: not hashed).

import re

from checkout_conversions.destinations.match_keys import (
    e164_phone,
    hashed,
    hashed_email,
    hashed_external_id,
    hashed_key,
    is_sha256_hex,
    keep,
    name,
    postcode,
    state_key,
    trimmed,
)
from checkout_conversions.purchase import Buyer

# The `user_data` keys, in the order they are reported (match-key coverage: names only).
USER_DATA_KEYS = (
    "em", "ph", "fn", "ln", "ct", "st", "zp", "country", "external_id",
    "client_ip_address", "client_user_agent", "fbc", "fbp",
)  # fmt: skip
_COUNTRY = re.compile(r"^[a-z]{2}$")


def build_user_data(buyer: Buyer, default_phone_country: str = "") -> dict[str, str]:
    """The normalised and hashed match keys, then the raw ones; missing ones are left out."""
    country = buyer.country
    user_data = {
        "em": hashed_email(buyer.email),  # Meta `em`: trimmed, lower-cased
        "ph": hashed_phone(buyer.phone, trimmed(country) or trimmed(default_phone_country)),  # Meta `ph`
        "fn": hashed_key(buyer.first_name, name),  # Meta `fn`: no punctuation, UTF-8 kept
        "ln": hashed_key(buyer.last_name, name),  # Meta `ln`: as `fn`
        "ct": hashed_key(buyer.city, city),  # Meta `ct`: letters only
        "st": hashed_key(buyer.state, lambda raw: state_key(raw, country)),  # Meta `st`: ANSI code in the US
        "zp": hashed_key(buyer.zip_code, lambda raw: postcode(raw, country)),  # Meta `zp`
        "country": hashed_key(country, country_code),  # Meta `country`: ISO 3166-1 alpha-2
        "external_id": hashed_external_id(buyer.external_id),  # Meta `external_id`
        # Meta: "do not hash" these; sent as they are, a blank value left out.
        "client_ip_address": buyer.ip if trimmed(buyer.ip) else None,
        "client_user_agent": buyer.user_agent if trimmed(buyer.user_agent) else None,
        "fbc": buyer.fbc if trimmed(buyer.fbc) else None,
        "fbp": buyer.fbp if trimmed(buyer.fbp) else None,
    }
    return {key: value for key, value in user_data.items() if value}


def hashed_phone(raw: object, region: str | None = None) -> str | None:
    """Meta `ph`: digits only, with the country code and no `+` (Meta's example: "+1 (616) 954-78 88"
    -> "16169547888"; a mainland-China number keeps its 86: TikTok's exception is TikTok's)."""
    text = trimmed(raw)
    if text is not None and is_sha256_hex(text):
        return text.lower()
    e164 = e164_phone(text, region)
    return hashed(e164.removeprefix("+")) if e164 else None


def city(raw: str) -> str | None:
    """Meta `ct`: "Menlo Park" -> "menlopark", lower-cased, letters only: no punctuation, special
    characters, spaces or digits."""
    return keep(raw, "L", "M")


def country_code(raw: str) -> str | None:
    """Meta `country`: "US" -> "us", the lower-case ISO 3166-1 alpha-2 code; anything else is left
    out."""
    code = "".join(ch for ch in raw.lower() if "a" <= ch <= "z")
    return code if _COUNTRY.match(code) else None
