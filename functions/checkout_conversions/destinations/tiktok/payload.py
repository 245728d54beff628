"""TikTok Events API 2.0: the purchase event and the request body that carries it. No I/O."""

from typing import Any

from checkout_conversions.destinations.tiktok.match_keys import USER_KEYS, build_user
from checkout_conversions.purchase import Content, Purchase
from checkout_conversions.values import to_decimal_amount

# The currencies TikTok accepts for `value` (TikTok's list in its Business API SDK's
# PixelProperties documentation, tiktok/tiktok-business-api-sdk). Stripe supports
# many more: an event in another currency goes without value and currency, rather than be
# rejected whole.
TIKTOK_CURRENCIES = frozenset(
    """AED ARS AUD BDT BHD BIF BOB BRL CAD CHF CLP CNY COP CRC CZK DKK DZD EGP EUR GBP GTQ HKD HNL
    HUF IDR ILS INR ISK JPY KES KHR KRW KWD KZT MAD MOP MXN MYR NGN NIO NOK NZD OMR PEN PHP PKR PLN
    PYG QAR RON RUB SAR SEK SGD THB TRY TWD UAH USD VES VND ZAR""".split()
)


def supported_currency(currency: str | None) -> bool:
    return bool(currency) and str(currency).upper() in TIKTOK_CURRENCIES


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
    event: dict[str, Any] = {
        "event": event_name,
        "event_time": int(purchase.event_time),
        "event_id": str(purchase.event_id),
        "user": build_user(purchase.buyer, default_phone_country),
        "properties": _properties(purchase, contents),
    }
    page = _present({"url": purchase.page_url, "referrer": purchase.page_referrer})
    if page:
        event["page"] = page
    if limited_data_use or purchase.limited_data_use:
        event["limited_data_use"] = True
    return event


def _properties(purchase: Purchase, contents: list[Content] | None) -> dict[str, Any]:
    priced = supported_currency(purchase.currency)
    properties: dict[str, Any] = {"order_id": purchase.order_id, "content_type": "product"}
    if purchase.value is not None and priced and purchase.currency:
        properties["value"] = purchase.value
        properties["currency"] = purchase.currency.upper()
    if contents:
        properties["contents"] = [_content(item, priced) for item in contents]
        properties["num_items"] = sum(item.quantity for item in contents)
    return properties


def _content(item: Content, priced: bool) -> dict[str, Any]:
    content: dict[str, Any] = {
        "content_id": item.content_id,
        "content_type": "product",
        "content_name": item.content_name,
        "quantity": item.quantity,
    }
    if priced and item.unit_amount is not None and item.currency and supported_currency(item.currency):
        content["price"] = to_decimal_amount(item.unit_amount, item.currency)
    return _present(content)


def match_key_names(event: dict[str, Any]) -> list[str]:
    """Which match keys an event carries (names, never values), for the coverage report."""
    return [key for key in USER_KEYS if key in event.get("user", {})]


def build_request(events: list[dict[str, Any]], pixel_id: str, test_event_code: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {"event_source": "web", "event_source_id": pixel_id, "data": events}
    if test_event_code:
        body["test_event_code"] = test_event_code
    return body


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value not in (None, "")}
