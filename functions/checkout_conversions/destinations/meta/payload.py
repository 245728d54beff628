"""Meta Conversions API: the purchase event and the request body that carries it. No I/O here,
and no access token: the client adds it to the body when sending, so nothing built here holds it."""

from typing import Any

from checkout_conversions.destinations.meta.match_keys import USER_DATA_KEYS, build_user_data
from checkout_conversions.purchase import Content, Purchase
from checkout_conversions.values import to_decimal_amount

ACTION_SOURCE = "website"


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
    event["user_data"] = build_user_data(purchase.buyer, default_phone_country)
    custom_data = _custom_data(purchase, contents or [])
    if custom_data:
        event["custom_data"] = custom_data
    return event


def build_request(events: list[dict[str, Any]], test_event_code: str = "") -> dict[str, Any]:
    """The body to POST, without the access token (the client adds it)."""
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


def _custom_data(purchase: Purchase, contents: list[Content]) -> dict[str, Any]:
    custom: dict[str, Any] = {}
    value = purchase.value
    currency = purchase.currency.upper() if value is not None and purchase.currency else None
    if value is not None:
        custom["value"] = value
        custom["currency"] = currency
    if purchase.order_id:
        custom["order_id"] = purchase.order_id
    custom.update(_contents(contents, currency))
    return custom


def _contents(contents: list[Content], currency: str | None) -> dict[str, Any]:
    identified = [item for item in contents if item.content_id]
    fields: dict[str, Any] = {}
    if identified:
        fields["contents"] = [_content(item, currency) for item in identified]
        fields["content_ids"] = [item.content_id for item in identified]
        fields["content_type"] = "product"
    if contents:
        # Every item bought counts, with an id or not: num_items is the size of the purchase.
        fields["num_items"] = sum(item.quantity for item in contents)
    return fields


def _content(item: Content, currency: str | None) -> dict[str, Any]:
    """Meta reads item_price in custom_data.currency: a price in no currency, or in another
    one, would be misread, so it goes only when the item's currency is the event's."""
    content: dict[str, Any] = {"id": item.content_id, "quantity": item.quantity}
    if item.unit_amount is not None and currency and item.currency and item.currency.upper() == currency:
        content["item_price"] = to_decimal_amount(item.unit_amount, item.currency)
    return content
