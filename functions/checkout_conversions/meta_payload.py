"""Meta Conversions API: the purchase event and the request body that carries it.

Built at send time from the stored platform-neutral purchase (purchase.py) and the line items
read from Stripe, like tiktok_payload.py for TikTok. No I/O here, and no access token: meta_api.py
adds it to the body when sending, so nothing built here ever holds it.

Match keys, normalised as Meta's Customer Information Parameters ask, then SHA-256:
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
from typing import Any

from checkout_conversions import match_keys
from checkout_conversions.currency import to_decimal_amount
from checkout_conversions.purchase import Buyer, Content, Purchase

# The `user_data` keys, in the order they are reported (match-key coverage: names only).
USER_DATA_KEYS = (
    "em", "ph", "fn", "ln", "ct", "st", "zp", "country", "external_id",
    "client_ip_address", "client_user_agent", "fbc", "fbp",
)  # fmt: skip
ACTION_SOURCE = "website"

_COUNTRY = re.compile(r"^[a-z]{2}$")
_US_ZIP5 = re.compile(r"^([0-9]{5})")


def build_user_data(purchase: Purchase, default_phone_country: str = "") -> dict[str, str]:
    """The normalised and hashed match keys, then the raw ones; missing ones are left out."""
    buyer = purchase.buyer
    user_data = {
        "em": match_keys.hashed_email(_text(buyer.email)),
        "ph": _hashed_phone(buyer.phone, buyer.country or default_phone_country or None),
        "fn": _hashed(buyer.first_name, _name),
        "ln": _hashed(buyer.last_name, _name),
        "ct": _hashed(buyer.city, _city),
        "st": _hashed(buyer.state, _state),
        "zp": _hashed(buyer.zip_code, lambda raw: _zip_code(raw, buyer.country)),
        "country": _hashed(buyer.country, _country),
        "external_id": match_keys.hashed_external_id(_text(buyer.external_id)),
        **_raw_keys(buyer),
    }
    return _present(user_data)


def build_event(
    purchase: Purchase,
    event_name: str,
    default_phone_country: str = "",
    contents: list[Content] | None = None,
) -> dict[str, Any]:
    """One element of the request's `data[]`; missing keys are left out, never sent empty.

    `user_data` is always there, even empty: Meta requires the object on every event, and an
    event without any key is better refused by Meta (and recorded) than silently reshaped."""
    event: dict[str, Any] = {
        "event_name": event_name,
        "event_time": int(purchase.event_time),
        "event_id": str(purchase.event_id),
        "action_source": ACTION_SOURCE,
    }
    if purchase.page_url:
        event["event_source_url"] = purchase.page_url
    event["user_data"] = build_user_data(purchase, default_phone_country)
    custom_data = _custom_data(purchase, contents or [])
    if custom_data:
        event["custom_data"] = custom_data
    return event


def build_request(events: list[dict[str, Any]], test_event_code: str = "") -> dict[str, Any]:
    """The body to POST, without the access token (meta_api.post adds it)."""
    body: dict[str, Any] = {"data": events}
    if test_event_code:
        body["test_event_code"] = test_event_code
    return body


def match_key_names(event: dict[str, Any]) -> list[str]:
    """Which match keys an event carries (names, never values), for the coverage report."""
    user_data = event.get("user_data") or {}
    return [key for key in USER_DATA_KEYS if key in user_data]


def missing_user_agent(event: dict[str, Any]) -> bool:
    """Meta requires client_user_agent on website events: without it the event is accepted but
    matches poorly, so the caller logs why."""
    return "client_user_agent" not in (event.get("user_data") or {})


# ---------------------------------------------------------------------- custom_data


def _custom_data(purchase: Purchase, contents: list[Content]) -> dict[str, Any]:
    custom: dict[str, Any] = {}
    value = purchase.value
    currency = purchase.currency.upper() if value is not None else None
    if value is not None:
        custom["value"] = value
        custom["currency"] = currency
    if purchase.order_id:
        custom["order_id"] = purchase.order_id
    identified = [item for item in contents if item.content_id]
    if identified:
        custom["contents"] = [_content(item, currency) for item in identified]
        custom["content_ids"] = [item.content_id for item in identified]
        custom["content_type"] = "product"
    if contents:
        # Every item bought counts, with an id or not: num_items is the size of the purchase.
        custom["num_items"] = sum(item.quantity for item in contents)
    return custom


def _content(item: Content, currency: str | None) -> dict[str, Any]:
    """Meta reads item_price in custom_data.currency: a price in no currency, or in another
    one, would be misread, so it goes only when the item's currency is the event's."""
    content: dict[str, Any] = {"id": item.content_id, "quantity": item.quantity}
    if item.unit_amount is not None and currency and (item.currency or "").upper() == currency:
        content["item_price"] = to_decimal_amount(item.unit_amount, item.currency)
    return content


# ---------------------------------------------------------------------- user_data


def _hashed(raw: object, normalise: Callable[[str], str | None]) -> str | None:
    """Normalise, then SHA-256. An existing digest passes through before normalisation, which
    could otherwise mangle it (a country rule would drop it)."""
    text = _text(raw)
    if text is None:
        return None
    if match_keys.is_sha256_hex(text):
        return text.lower()
    return match_keys.hashed(normalise(text))


def _hashed_phone(raw: object, region: str | None) -> str | None:
    text = _text(raw)
    if text is None:
        return None
    if match_keys.is_sha256_hex(text):
        return text.lower()
    e164 = match_keys.e164_phone(text, region)
    return match_keys.hashed(e164.lstrip("+")) if e164 else None


def _name(raw: str) -> str | None:
    """ "Mary-Ann" -> "maryann", "O'Neil" -> "oneil", "José" -> "josé": letters (of any script,
    with their combining marks) and digits stay; punctuation, symbols, spaces and controls go."""
    return _keep(raw, "L", "M", "N")


def _city(raw: str) -> str | None:
    """ "Menlo Park" -> "menlopark": letters only."""
    return _keep(raw, "L", "M")


def _state(raw: str) -> str | None:
    """ "CA" -> "ca": letters and digits (some regions' codes have digits)."""
    return _keep(raw, "L", "M", "N")


def _zip_code(raw: str, country: str | None) -> str | None:
    """ "M1 1AE" -> "m11ae"; in the US "94035-1234" -> "94035" (Meta: the first five digits)."""
    text = _lower_nfc(raw)
    compact = "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch) != "Pd")
    if (country or "").strip().upper() == "US" and (match := _US_ZIP5.match(compact)):
        return match.group(1)
    return compact or None


def _country(raw: str) -> str | None:
    code = "".join(ch for ch in raw.lower() if "a" <= ch <= "z")
    return code if _COUNTRY.match(code) else None


def _raw_keys(buyer: Buyer) -> dict[str, str | None]:
    """Sent as they are; a blank value is left out."""
    raw = {
        "client_ip_address": buyer.ip,
        "client_user_agent": buyer.user_agent,
        "fbc": buyer.fbc,
        "fbp": buyer.fbp,
    }
    return {key: value if _text(value) else None for key, value in raw.items()}


def _keep(raw: str, *categories: str) -> str | None:
    text = _lower_nfc(raw)
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in categories) or None


def _lower_nfc(raw: str) -> str:
    # NFC again after lower-casing: lower() can decompose ("İ" becomes "i" + combining dot).
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", raw).lower())


def _text(raw: object) -> str | None:
    """The trimmed text, or None for anything that is not a non-blank string."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    return raw.strip()


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value not in (None, "")}
