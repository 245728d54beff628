"""Stripe's own record of what was paid: its Events API (`GET /v1/events`), read page by page
for a replay. Stripe keeps events for 30 days."""

import json
from collections.abc import Iterator
from typing import Any

import stripe

from checkout_conversions.stripe_side import events, line_items

# What a replay reads: the payments the webhook provisions or reports.
CHECKOUT_TYPES = (events.COMPLETED, events.ASYNC_SUCCEEDED)
RENEWAL_TYPES = (events.INVOICE_PAID,)
RETENTION_DAYS = 30
PAGE_SIZE = 100  # Stripe's largest page


class EventsUnreadable(Exception):
    """Stripe refused to list events (the key, its permissions) or could not be reached."""


def new_client(api_key: str, api_base: str, timeout_seconds: float) -> stripe.StripeClient:
    return line_items.new_client(api_key, api_base, timeout_seconds)


def list_events(
    client: stripe.StripeClient, types: tuple[str, ...], since: int, until: int
) -> Iterator[dict[str, Any]]:
    """Every event of these types created in [since, until), newest first, as Stripe sent them to
    the webhook (plain JSON values); EventsUnreadable when Stripe refuses or cannot be reached."""
    params: stripe.params.EventListParams = {
        "types": list(types),
        "created": {"gte": since, "lt": until},
        "limit": PAGE_SIZE,
    }
    try:
        for event in client.v1.events.list(params=params).auto_paging_iter():
            decoded: dict[str, Any] = json.loads(str(event))
            yield decoded
    except stripe.StripeError as error:
        raise EventsUnreadable(_described(error)) from None


def _described(error: stripe.StripeError) -> str:
    """Stripe's own message (it names the permission a restricted key lacks), never the key."""
    status = f"HTTP {error.http_status}: " if error.http_status else ""
    return f"{type(error).__name__}: {status}{error.user_message or 'no answer'}"
