"""TikTok Events API 2.0: the purchase event and the request body that carries it.

Built at send time from the stored platform-neutral purchase (purchase.py), the line items read
from Stripe when a key is configured, and the match-key rules of match_keys.py. No I/O here.
"""

from typing import Any

from checkout_conversions import match_keys
from checkout_conversions.currency import to_decimal_amount
from checkout_conversions.purchase import Content, Purchase

# The currencies TikTok accepts for `value` (TikTok's list in its Business API SDK's
# PixelProperties documentation; see ../shared/reference/tiktok-events-api.md). Stripe supports
# many more: an event in another currency goes without value and currency, rather than be
# rejected whole.
TIKTOK_CURRENCIES = frozenset(
    """AED ARS AUD BDT BHD BIF BOB BRL CAD CHF CLP CNY COP CRC CZK DKK DZD EGP EUR GBP GTQ HKD HNL
    HUF IDR ILS INR ISK JPY KES KHR KRW KWD KZT MAD MOP MXN MYR NGN NIO NOK NZD OMR PEN PHP PKR PLN
    PYG QAR RON RUB SAR SEK SGD THB TRY TWD UAH USD VES VND ZAR""".split()
)
# The `user` keys, in the order they are reported (match-key coverage: names only, never values).
USER_KEYS = (
    "email", "phone", "external_id", "first_name", "last_name", "zip_code", "city", "state",
    "country", "ttclid", "ttp", "ip", "user_agent", "locale",
)  # fmt: skip


def supported_currency(currency: str | None) -> bool:
    return bool(currency) and currency.upper() in TIKTOK_CURRENCIES


def build_user(purchase: Purchase, default_phone_country: str = "") -> dict[str, str]:
    """The hashed and normalised match keys; missing ones are left out, never sent empty."""
    buyer = purchase.buyer
    user = {
        "email": match_keys.hashed_email(buyer.email),
        "phone": match_keys.hashed_phone(buyer.phone, buyer.country or default_phone_country or None),
        "external_id": match_keys.hashed_external_id(buyer.external_id),
        "first_name": match_keys.hashed_name(buyer.first_name),
        "last_name": match_keys.hashed_name(buyer.last_name),
        "zip_code": match_keys.hashed_zip_code(buyer.zip_code, buyer.country),
        "city": match_keys.location(buyer.city),
        "state": match_keys.location(buyer.state),
        "country": match_keys.location(buyer.country),
        "ttclid": buyer.ttclid,
        "ttp": buyer.ttp,
        "ip": buyer.ip,
        "user_agent": buyer.user_agent,
        "locale": buyer.locale,
    }
    return _present(user)


def build_event(
    purchase: Purchase,
    event_name: str,
    default_phone_country: str = "",
    contents: list[Content] | None = None,
    limited_data_use: bool = False,
) -> dict[str, Any]:
    """One element of the request's `data[]`; missing keys are left out, never sent empty.

    `limited_data_use` is the setting: on, every event carries the flag; off, a purchase whose
    metadata asks for it does (a session cannot switch the operator's choice off)."""
    priced = supported_currency(purchase.currency)
    properties: dict[str, Any] = {"order_id": purchase.order_id, "content_type": "product"}
    if purchase.value is not None and priced:
        properties["value"] = purchase.value
        properties["currency"] = purchase.currency.upper()
    if contents:
        properties["contents"] = [_content(item, priced) for item in contents]
        properties["num_items"] = sum(item.quantity for item in contents)
    event: dict[str, Any] = {
        "event": event_name,
        "event_time": int(purchase.event_time),
        "event_id": str(purchase.event_id),
        "user": build_user(purchase, default_phone_country),
        "properties": properties,
    }
    page = _present({"url": purchase.page_url, "referrer": purchase.page_referrer})
    if page:
        event["page"] = page
    if limited_data_use or purchase.limited_data_use:
        event["limited_data_use"] = True
    return event


def _content(item: Content, priced: bool) -> dict[str, Any]:
    content: dict[str, Any] = {
        "content_id": item.content_id,
        "content_type": "product",
        "content_name": item.content_name,
        "quantity": item.quantity,
    }
    if priced and item.unit_amount is not None and supported_currency(item.currency):
        content["price"] = to_decimal_amount(item.unit_amount, item.currency)
    return _present(content)


def match_key_names(event: dict[str, Any]) -> list[str]:
    """Which match keys an event carries (names, never values), for the coverage report."""
    return [key for key in USER_KEYS if key in event.get("user", {})]


def build_request(events: list[dict[str, Any]], pixel_id: str, test_event_code: str = "") -> dict:
    body: dict[str, Any] = {"event_source": "web", "event_source_id": pixel_id, "data": events}
    if test_event_code:
        body["test_event_code"] = test_event_code
    return body


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value not in (None, "")}
