"""A subscription's life after its Checkout: the customer's subscription record, and renewals.

Each customer with a subscription has one subscription record in the Customers table (key
`customer_id` = the Stripe customer id, `checkout_session_id` = `subscription#<id>`):
- `invoice.paid` for any invoice that pays the subscription records `paid_through` (the end of
  the period the invoice's lines pay for) and the last paid invoice;
- `customer.subscription.updated` / `deleted` record its status and when it changed;
- the Checkout that started it (webhook.py, in the provisioning transaction) records its
  checkout session and the buyer's external id, so a subscription event for a customer who never
  went through Checkout is told apart ("customer": "unknown") without inventing a session.

Stripe delivers events out of order and at least once: each write is conditional on the event's
`created` (and, for equal times, its id), payments and statuses apart, so an older event never
overwrites a newer state and a redelivery changes nothing. One UpdateItem per event.

A renewal (`billing_reason` subscription_cycle, never the subscription_create invoice of the
first payment, which the checkout already reported) starts its own TikTok delivery when
RENEWAL_EVENT_NAME is set: a pending item in the Sessions table keyed `<invoice id>#tiktok`, so
the stream's sender delivers it like a purchase, exactly once. One PutItem more (and, for a
redelivered invoice, one GetItem: its renewal may be under the bare invoice id, as recorded before
deliveries were keyed by destination). Renewals are reported to TikTok only: Meta gets purchases.
"""

from datetime import UTC, datetime
from typing import Any

from checkout_conversions import conversion, delivery, destinations
from checkout_conversions.config import Settings
from checkout_conversions.http_api import HttpResponse
from checkout_conversions.observability import count, logger
from checkout_conversions.store import Store, StoreError, SubscriptionWrite
from checkout_conversions.stripe_events import subscription_of

RENEWAL = "subscription_cycle"


def record_payment(
    stripe_event: dict[str, Any], invoice: dict[str, Any], settings: Settings, store: Store
) -> HttpResponse:
    subscription_id = subscription_of(invoice) or ""
    billing_reason = invoice.get("billing_reason") if isinstance(invoice.get("billing_reason"), str) else None
    fields = {
        "subscription_id": subscription_id,
        "paid_through": paid_through(invoice),
        "last_paid_invoice": invoice["id"],
        "last_paid_at": _iso(paid_at(invoice, stripe_event)),
    }
    renewal = billing_reason == RENEWAL
    try:
        written = store.record_subscription_payment(
            invoice["customer"], subscription_id, fields, stripe_event["created"], stripe_event["id"]
        )
        renewal_state = _start_renewal(stripe_event, invoice, written, settings, store) if renewal else None
    except StoreError as error:
        logger.exception("Recording the payment failed: Stripe will retry", extra={"store_error": str(error)})
        count("SubscriptionWriteFailures")
        return HttpResponse(500, {"error": "recording failed, retry later", "invoice_id": invoice["id"]})

    count("SubscriptionPaymentsRecorded" if written.applied else "SubscriptionEventsUnchanged")
    logger.info(
        "Subscription payment recorded" if written.applied else "Subscription payment already recorded",
        extra={"billing_reason": billing_reason, "known_customer": written.known_customer},
    )
    body: dict[str, Any] = {
        "status": "recorded" if written.applied else "unchanged",
        "event_type": stripe_event["type"],
        "invoice_id": invoice["id"],
        "subscription_id": subscription_id,
        "billing_reason": billing_reason,
        "customer": "provisioned" if written.known_customer else "unknown",
    }
    if renewal_state is not None:
        body["renewal"] = renewal_state
    return HttpResponse(200, body)


def record_status(stripe_event: dict[str, Any], subscription: dict[str, Any], store: Store) -> HttpResponse:
    status = subscription["status"]
    fields = {
        "subscription_id": subscription["id"],
        "status": status,
        "status_changed_at": _iso(stripe_event["created"]),
    }
    try:
        written = store.record_subscription_status(
            subscription["customer"], subscription["id"], fields, stripe_event["created"], stripe_event["id"]
        )
    except StoreError as error:
        logger.exception("Recording the status failed: Stripe will retry", extra={"store_error": str(error)})
        count("SubscriptionWriteFailures")
        return HttpResponse(
            500, {"error": "recording failed, retry later", "subscription_id": subscription["id"]}
        )
    count("SubscriptionStatusesRecorded" if written.applied else "SubscriptionEventsUnchanged")
    recorded_status = (written.item or {}).get("status", status)
    logger.info(
        "Subscription status recorded"
        if written.applied
        else "Subscription status unchanged: a newer one is recorded",
        extra={
            "status": status,
            "recorded_status": recorded_status,
            "known_customer": written.known_customer,
        },
    )
    return HttpResponse(
        200,
        {
            "status": "recorded" if written.applied else "unchanged",
            "event_type": stripe_event["type"],
            "subscription_id": subscription["id"],
            "subscription_status": recorded_status,
            "customer": "provisioned" if written.known_customer else "unknown",
        },
    )


def _start_renewal(
    stripe_event: dict[str, Any],
    invoice: dict[str, Any],
    written: SubscriptionWrite,
    settings: Settings,
    store: Store,
) -> dict[str, Any]:
    """The renewal's own TikTok delivery, once per invoice; its state for the answer."""
    livemode = stripe_event.get("livemode") is True
    event_time = paid_at(invoice, stripe_event)
    now = int(datetime.now(UTC).timestamp())
    tiktok = destinations.TIKTOK
    skip = destinations.skip_reason_for_renewal(tiktok, settings, livemode, event_time, now)
    if skip is not None:
        return {"status": "skipped", "reason": skip}
    external_id = (written.item or {}).get("external_id")
    purchase = conversion.renewal_purchase(invoice, event_time, external_id)
    recorded = {
        "delivery_kind": destinations.RENEWAL,
        "customer_id": invoice["customer"],
        "stripe_event_id": stripe_event["id"],
        "event_type": stripe_event["type"],
        "event_time": event_time,
        "livemode": livemode,
        "provisioned_at": _iso(now),
        "expires_at": now + settings.record_retention_days * 86400,
    }
    item = delivery.new_item(tiktok, invoice["id"], recorded, purchase.to_json(), None, now, settings)
    if not written.applied:
        # A redelivery: its renewal may have been started before deliveries were keyed by
        # destination, under the bare invoice id (items expire after RECORD_RETENTION_DAYS).
        legacy = store.get_session(invoice["id"])
        if legacy is not None and "delivery_status" in legacy:
            count("RenewalDuplicates")
            return {"status": legacy["delivery_status"], "duplicate": True}
    existing = store.start_delivery(item)
    if existing is not None:
        count("RenewalDuplicates")
        return {"status": existing.get("delivery_status", "unknown"), "duplicate": True}
    count("RenewalsStarted")
    return {"status": "pending"}


def paid_through(invoice: dict[str, Any]) -> int | None:
    """The latest end of the periods the invoice's lines pay for (epoch seconds), if any."""
    lines = invoice.get("lines")
    data = lines.get("data") if isinstance(lines, dict) else None
    ends = [
        line["period"]["end"]
        for line in (data if isinstance(data, list) else [])
        if isinstance(line, dict)
        and isinstance(line.get("period"), dict)
        and _epoch(line["period"].get("end")) is not None
    ]
    return max(ends) if ends else None


def paid_at(invoice: dict[str, Any], stripe_event: dict[str, Any]) -> int:
    transitions = invoice.get("status_transitions")
    value = transitions.get("paid_at") if isinstance(transitions, dict) else None
    return _epoch(value) or stripe_event["created"]


def _epoch(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 32503680000:
        return value
    return None


def _iso(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat()
