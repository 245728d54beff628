"""TikTok Events API 2.0: the purchase event and the request body that carries it.

Pure data, no I/O: knows nothing of Stripe, of DynamoDB or of HTTP (tiktok_api.py sends it).
"""

import json
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class User:
    """Match keys: email, phone and external_id already SHA-256 hashed; the rest raw."""

    email: str | None = None
    phone: str | None = None
    external_id: str | None = None
    ttclid: str | None = None
    ttp: str | None = None
    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class Purchase:
    event_id: str
    event_time: int
    order_id: str
    value: Decimal | None
    currency: str | None
    user: User
    page_url: str | None = None
    page_referrer: str | None = None


def build_event(purchase: Purchase, event_name: str) -> dict[str, Any]:
    """One element of the request's `data[]`; missing keys are left out, never sent empty."""
    properties: dict[str, Any] = {"order_id": purchase.order_id, "content_type": "product"}
    if purchase.value is not None and purchase.currency:
        properties["value"] = purchase.value
        properties["currency"] = purchase.currency.upper()
    event: dict[str, Any] = {
        "event": event_name,
        "event_time": int(purchase.event_time),
        "event_id": str(purchase.event_id),
        "user": _present(asdict(purchase.user)),
        "properties": properties,
    }
    page = _present({"url": purchase.page_url, "referrer": purchase.page_referrer})
    if page:
        event["page"] = page
    return event


def build_request(events: list[dict[str, Any]], pixel_id: str, test_event_code: str = "") -> dict:
    body: dict[str, Any] = {"event_source": "web", "event_source_id": pixel_id, "data": events}
    if test_event_code:
        body["test_event_code"] = test_event_code
    return body


def encode(body: dict[str, Any]) -> bytes:
    """JSON with Decimal values as JSON numbers (19.99, not "19.99" and not 19.990000000000002)."""
    return json.dumps(body, separators=(",", ":"), default=_decimal_as_number).encode("utf-8")


def _decimal_as_number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value not in (None, "")}
