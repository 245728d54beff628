"""What was bought: a checkout session's line items, read from Stripe's API at send time, each
with the content id the merchant's catalogue uses (CONTENT_ID_SOURCE). Only when a restricted key
with read access to Checkout Sessions is configured (STRIPE_API_KEY)."""

import time
from typing import Any

import httpx
import stripe
from stripe.params.checkout import SessionLineItemListParams

from checkout_conversions.purchase import Content, ContentIdKind, ContentIdSource
from checkout_conversions.values import mapping

PAGE_SIZE = 100  # Stripe's maximum; a session can have more, so every page is read
# A page is requested only this many timeouts after the first: with one page's own worst case
# (connect, send, answer: a timeout each) a whole read ends within READ_TIMEOUTS + 3 timeouts.
NEXT_PAGE_WITHIN_TIMEOUTS = 2
READ_TIMEOUTS = NEXT_PAGE_WITHIN_TIMEOUTS + 3
MAX_ITEMS = 1000  # TikTok's limit per event is far below any real basket; a hostile one stops here


class StripeApiUnavailable(Exception):
    """Timeout, connection error, HTTP 5xx or 429: try the delivery again later."""


class StripeApiRefused(Exception):
    """HTTP 4xx (bad key, no permission, unknown session): retrying cannot help."""


def new_client(api_key: str, api_base: str, timeout_seconds: float) -> stripe.StripeClient:
    """A Stripe client with bounded timeouts and no retries of its own: a delivery whose line
    items could not be read is retried by the redrive, with backoff."""
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base},
        max_network_retries=0,
        http_client=stripe.HTTPXClient(timeout=httpx.Timeout(timeout_seconds), allow_sync_methods=True),
    )


def read_line_items(
    client: stripe.StripeClient, session_id: str, source: ContentIdSource, timeout_seconds: float
) -> list[Content]:
    """Every line item of the session (all pages), price and product expanded."""
    params: SessionLineItemListParams = {"limit": PAGE_SIZE, "expand": ["data.price.product"]}
    last_page_by = time.monotonic() + NEXT_PAGE_WITHIN_TIMEOUTS * timeout_seconds
    items: list[Content] = []
    try:
        while True:
            page = client.v1.checkout.sessions.line_items.list(session_id, params)
            items += [_content(item.to_dict(), source) for item in page.data]
            if not page.has_more or not page.data or len(items) >= MAX_ITEMS:
                return items[:MAX_ITEMS]
            if time.monotonic() > last_page_by:
                raise StripeApiUnavailable(f"{len(items)} line items read, the rest not in time")
            params["starting_after"] = page.data[-1].id
    except stripe.StripeError as error:
        raise _failure(error) from None


def _failure(error: stripe.StripeError) -> StripeApiUnavailable | StripeApiRefused:
    if isinstance(error, stripe.APIConnectionError | stripe.RateLimitError):
        return StripeApiUnavailable(type(error).__name__)
    status = error.http_status or 0
    if status >= 500 or status == 0:
        return StripeApiUnavailable(f"{type(error).__name__} (HTTP {status or '-'})")
    return StripeApiRefused(f"{type(error).__name__} (HTTP {status})")


def _content(item: dict[str, Any], source: ContentIdSource) -> Content:
    price = mapping(item.get("price"))
    product = price.get("product")
    quantity = item["quantity"] if isinstance(item.get("quantity"), int) and item["quantity"] > 0 else 1
    return Content(
        content_id=_content_id(price, product, source),
        content_name=mapping(product).get("name") or item.get("description"),
        quantity=int(quantity),
        unit_amount=_unit_amount(price, item, quantity),
        currency=str(item.get("currency") or price.get("currency") or "").upper() or None,
    )


def _unit_amount(price: dict[str, Any], item: dict[str, Any], quantity: int) -> int | None:
    unit_amount = price.get("unit_amount")
    if unit_amount is None and isinstance(item.get("amount_subtotal"), int):
        unit_amount = item["amount_subtotal"] // quantity  # custom amounts, per-unit tiers
    return unit_amount if isinstance(unit_amount, int) else None


def _content_id(price: dict[str, Any], product: object, source: ContentIdSource) -> str | None:
    price_id = price.get("id")
    chosen: object = price_id
    if source.kind == ContentIdKind.PRODUCT:
        chosen = (product.get("id") if isinstance(product, dict) else product) or price_id
    elif source.kind == ContentIdKind.METADATA:
        chosen = mapping(mapping(product).get("metadata")).get(source.metadata_key) or price_id
    return chosen if isinstance(chosen, str) else None
