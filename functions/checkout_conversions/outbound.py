"""The request of one claimed delivery, built at send time by the sender and the redrive: the
stored purchase, what was bought (Stripe's API, when a key is configured), and the destination's
own event (its module's `prepare`).

A Stripe API that is down (timeout, 5xx) makes the attempt a retryable failure: the redrive tries
again later, with the line items; after CONTENTS_ATTEMPTS attempts the conversion goes without
them, rather than be lost at the maximum age for want of an enrichment. A Stripe API that
refuses (4xx: a bad key, a key without permission) never stops a conversion: it is sent without
its contents, said once in the log and counted every time (StripeLineItemsRefused).
"""

import functools
from collections.abc import Callable
from typing import Any

from checkout_conversions import line_items
from checkout_conversions.config import Settings, stripe_api_key
from checkout_conversions.delivery import Outcome, Prepared
from checkout_conversions.destinations import RENEWAL, Destination
from checkout_conversions.observability import count, logger
from checkout_conversions.purchase import Content, Purchase

LineItems = Callable[[str], list[Content]]
# With the redrive's backoff (1, 2, 4, 8 minutes by default) about a quarter of an hour of Stripe
# outage before a conversion is sent without its contents.
CONTENTS_ATTEMPTS = 5
_refusal_reported = False


def line_items_reader(settings: Settings) -> LineItems | None:
    """What reads a session's line items, or None when no Stripe API key is configured. A key
    that is configured but cannot be read raises ConfigurationError: the delivery waits for it."""
    api_key = stripe_api_key(settings)
    if not api_key:
        return None
    timeout = settings.stripe_api_timeout_seconds
    client = _stripe_client(api_key, settings.stripe_api_base, timeout)
    source = line_items.ContentIdSource.parse(settings.content_id_source)
    return lambda session_id: line_items.read_line_items(client, session_id, source, timeout)


def worst_case_seconds(destination: Destination, settings: Settings, reads_line_items: bool) -> float:
    """How long building and sending one request can take at most: the line items read (when a
    Stripe key is configured) and the POST (four timeouts: connect, send, wait, read)."""
    stripe_read = line_items.READ_TIMEOUTS * settings.stripe_api_timeout_seconds if reads_line_items else 0
    return stripe_read + 4 * destination.timeout_seconds(settings)


@functools.lru_cache(maxsize=4)
def _stripe_client(api_key: str, api_base: str, timeout_seconds: float) -> Any:
    return line_items.new_client(api_key, api_base, timeout_seconds)


def prepare(
    destination: Destination, item: dict[str, Any], settings: Settings, read_line_items: LineItems | None
) -> Prepared | Outcome:
    """The request body for a claimed delivery's item, or the failed Outcome when it cannot be
    built now (Stripe's API unavailable)."""
    module = destination.module()
    if "purchase" not in item:  # stored before the outbox kept the purchase: sent as it was built
        return module.prepare_stored(item["tiktok_event"], settings)
    purchase = Purchase.from_json(item["purchase"])
    renewal = item.get("delivery_kind") == RENEWAL
    contents = None
    if read_line_items is not None and not renewal:  # a renewal's invoice has no checkout session
        try:
            contents = read_line_items(purchase.order_id)
        except line_items.StripeApiUnavailable as error:
            count("StripeLineItemsUnavailable")
            if int(item.get("delivery_attempts") or 1) < CONTENTS_ATTEMPTS:
                return Outcome.failure(f"Stripe API unavailable: {error}")
            count("StripeLineItemsGivenUp")
            logger.warning(
                "Stripe's API still unavailable: sending without contents",
                extra={"attempts": item.get("delivery_attempts"), "reason": str(error)},
            )
        except line_items.StripeApiRefused as error:
            _report_refusal(str(error))
    return module.prepare(purchase, contents, settings, renewal)


def _report_refusal(reason: str) -> None:
    global _refusal_reported
    count("StripeLineItemsRefused")
    if not _refusal_reported:
        _refusal_reported = True
        logger.warning(
            "Stripe's API refused to list line items: conversions go without contents until "
            "STRIPE_API_KEY is fixed (a restricted key with read access to Checkout Sessions)",
            extra={"reason": reason},
        )
