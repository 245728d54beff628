"""What was bought: a checkout session's line items, read from Stripe's API by the sender.

Only when a Stripe API key is configured (STRIPE_API_KEY: a restricted key with read access to
Checkout Sessions). Knows nothing of TikTok: it returns the platform-neutral line items, each with
the content id the merchant's catalogue uses (CONTENT_ID_SOURCE: the price id, the product id,
or a product metadata key such as `sku`).
"""

import time
from dataclasses import dataclass
from typing import Any

import httpx
import stripe

from checkout_conversions.purchase import Content

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


@dataclass(frozen=True)
class ContentIdSource:
    """`price`, `product`, or `metadata:<key>` (a product metadata key, e.g. metadata:sku)."""

    kind: str
    metadata_key: str = ""

    @classmethod
    def parse(cls, setting: str) -> "ContentIdSource":
        kind, _, key = setting.strip().partition(":")
        if kind == "metadata" and key.strip():
            return cls("metadata", key.strip())
        if kind in ("price", "product") and not key:
            return cls(kind)
        raise ValueError(f"{setting!r} is not price, product or metadata:<key>")


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
    params: dict[str, Any] = {"limit": PAGE_SIZE, "expand": ["data.price.product"]}
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
    except (stripe.APIConnectionError, stripe.RateLimitError) as error:
        raise StripeApiUnavailable(type(error).__name__) from None
    except stripe.StripeError as error:
        status = error.http_status or 0
        if status >= 500 or status == 0:
            raise StripeApiUnavailable(f"{type(error).__name__} (HTTP {status or '-'})") from None
        raise StripeApiRefused(f"{type(error).__name__} (HTTP {status})") from None


def _content(item: dict[str, Any], source: ContentIdSource) -> Content:
    price = item.get("price") if isinstance(item.get("price"), dict) else {}
    product = price.get("product")
    product_id = product.get("id") if isinstance(product, dict) else product
    price_id = price.get("id")
    if source.kind == "product":
        content_id = product_id or price_id
    elif source.kind == "metadata":
        metadata = product.get("metadata") if isinstance(product, dict) else None
        content_id = (metadata or {}).get(source.metadata_key) or price_id
    else:
        content_id = price_id
    quantity = item.get("quantity") if isinstance(item.get("quantity"), int) and item["quantity"] > 0 else 1
    unit_amount = price.get("unit_amount")
    if unit_amount is None and isinstance(item.get("amount_subtotal"), int):
        unit_amount = item["amount_subtotal"] // quantity  # custom amounts, per-unit tiers
    name = product.get("name") if isinstance(product, dict) else None
    return Content(
        content_id=content_id,
        content_name=name or item.get("description"),
        quantity=int(quantity),
        unit_amount=unit_amount if isinstance(unit_amount, int) else None,
        currency=str(item.get("currency") or price.get("currency") or "").upper() or None,
    )
