"""What sending to one destination needs (its token, its platform, the line-items reader), read
once per stream batch or redrive run, and the request of one claimed delivery."""

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx
import stripe

from checkout_conversions import destinations, secrets
from checkout_conversions.aws import WORST_CASE_CALL_SECONDS
from checkout_conversions.destinations.base import Answer, DestinationSettings, Platform, Prepared
from checkout_conversions.observability import count, logger
from checkout_conversions.outbox.model import Delivery
from checkout_conversions.purchase import Content, PurchaseKind
from checkout_conversions.settings import Settings
from checkout_conversions.stripe_side import line_items

# With the redrive's backoff (1, 2, 4, 8 minutes by default) about a quarter of an hour of Stripe
# outage before a conversion is sent without its contents.
CONTENTS_ATTEMPTS = 5

LineItems = Callable[[str], list[Content]]


@dataclass
class Sending:
    """What sending to one destination needs, read once for a stream batch or a redrive run; its
    requests are made from one thread (the events are built a few at a time). Its token is
    replaced when the platform refuses it and the store holds another (`renew_token`); `refused`
    is set once the token read again is refused too: the destination is paused for the rest of
    the batch or run. `requests` counts the requests made."""

    destination: DestinationSettings
    platform: Platform
    access_token: str  # "": switched off
    read_line_items: LineItems | None  # None: no Stripe API key configured
    http: httpx.Client
    settings: Settings
    reread_token: Callable[[], str] | None = None  # the token read from its store now, uncached
    test_event_code: str = ""  # read with the token: "" none (test-mode purchases are skipped)
    refused: Answer | None = None  # the platform's refusal of the token read again
    requests: int = 0

    def renew_token(self) -> bool:
        """After the platform refused the token: read it again from its store, bypassing the
        cache. True when the store holds another (now this Sending's), to be tried at once."""
        if self.reread_token is None:
            return False
        try:
            fresh = self.reread_token()
        except secrets.ConfigurationError as problem:
            logger.error("Cannot read a secret again after a refusal", extra={"problem": str(problem)})
            count("ConfigurationErrors")
            return False
        changed = fresh != self.access_token
        self.access_token = fresh  # "": switched off meanwhile; the policy skips what comes next
        logger.info(
            f"{self.destination.label} refused its token: read it again",
            extra={"destination": self.destination.name, "token_changed": changed},
        )
        return changed and bool(fresh)

    @property
    def read_seconds(self) -> float:
        """How long building one delivery's event can take at most: its line items' read, when a
        Stripe key is configured (a few deliveries' are read at once)."""
        stripe_read = line_items.READ_TIMEOUTS * self.settings.stripe_api.timeout_seconds
        return stripe_read if self.read_line_items else 0

    @property
    def post_seconds(self) -> float:
        """How long one request can take at most: the POST (one deadline of the platform's
        timeout) and, when the platform refuses the token, its re-read and a second POST."""
        return 2 * self.destination.timeout_seconds + WORST_CASE_CALL_SECONDS

    @property
    def worst_case_seconds(self) -> float:
        """Building events and sending them in one request, at most."""
        return self.read_seconds + self.post_seconds


def open_sending(
    destination: DestinationSettings,
    settings: Settings,
    http: httpx.Client,
    environ: Mapping[str, str] = os.environ,
) -> Sending:
    """The destination's token, its test event code and the line-items reader, read now;
    ConfigurationError when a configured secret cannot be read (the delivery then waits for it)."""
    token = secrets.read_switch(destination.access_token, settings.secrets, environ)
    test_event_code = secrets.read_optional(destination.test_event_code, settings.secrets, environ)
    platform = destinations.platform(destination, test_event_code)

    def reread_token() -> str:
        return secrets.read_switch(destination.access_token, settings.secrets, environ, fresh=True)

    line_items_reader = _line_items_reader(settings, environ)
    return Sending(
        destination, platform, token, line_items_reader, http, settings, reread_token, test_event_code
    )


def _line_items_reader(settings: Settings, environ: Mapping[str, str]) -> LineItems | None:
    api = settings.stripe_api
    # Optional: with a store, an empty STRIPE_API_KEY_NAME means none.
    api_key = secrets.read_optional(api.key, settings.secrets, environ)
    if not api_key:
        return None
    client = _stripe_client(api_key, api.base, api.timeout_seconds)
    source, timeout = api.content_id_source, api.timeout_seconds
    return lambda session_id: line_items.read_line_items(client, session_id, source, timeout)


@functools.lru_cache(maxsize=4)
def _stripe_client(api_key: str, api_base: str, timeout_seconds: float) -> "stripe.StripeClient":
    return line_items.new_client(api_key, api_base, timeout_seconds)


# ---------------------------------------------------------------------- claiming


def prepare(claimed: Delivery, sending: Sending) -> Prepared | Answer:
    """The request of a claimed delivery, or the failed Answer when it cannot be built now
    (Stripe's API unavailable)."""
    if claimed.purchase_json is None:
        assert claimed.stored_event is not None  # has_payload
        return sending.platform.prepare_stored(claimed.stored_event)
    purchase = claimed.purchase()
    contents = None
    # A renewal's invoice has no checkout session to read line items from.
    if sending.read_line_items is not None and claimed.facts.kind is PurchaseKind.CHECKOUT:
        try:
            contents = sending.read_line_items(purchase.order_id)
        except line_items.StripeApiUnavailable as error:
            count("StripeLineItemsUnavailable")
            if claimed.attempts < CONTENTS_ATTEMPTS:
                return Answer.failure(f"Stripe API unavailable: {error}")
            count("StripeLineItemsGivenUp")
            logger.warning(
                "Stripe's API still unavailable: sending without contents",
                extra={"attempts": claimed.attempts, "reason": str(error)},
            )
        except line_items.StripeApiRefused as error:
            _report_refusal(str(error))
    return sending.platform.prepare(purchase, contents, claimed.facts.kind)


_refusal_reported = False


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
