"""One Stripe webhook, top to bottom: verify, decide, provision, answer.

Provisioning writes the customer record, the session marker and one delivery per configured
destination (pending, with the platform-neutral purchase to send) in one transaction; the
Sessions table's stream hands each delivery to the sender.
The buyer, held by Checkout until this answer, never waits for an ad platform: no HTTP request
here, and no platform's secret read.
"""

import uuid
from datetime import UTC, datetime
from typing import Any

from checkout_conversions import conversion, delivery, destinations, subscriptions
from checkout_conversions.config import (
    ConfigurationError,
    Settings,
    load_settings,
    require_tables,
    webhook_secrets,
)
from checkout_conversions.http_api import BadHttpRequest, HttpResponse, parse_request
from checkout_conversions.observability import count, logger, report_ignored_settings
from checkout_conversions.store import ConcurrentUpdate, Store, StoreError
from checkout_conversions.stripe_events import (
    InvalidSignature,
    MalformedEvent,
    decide,
    is_stripe_id,
    verify_event,
)


def handle_webhook(event: Any, dynamodb: Any) -> HttpResponse:
    try:
        request = parse_request(event)
    except BadHttpRequest as bad:
        # Not a webhook at all (another method, an oversized body): visible, never a signature
        # failure, so that a flood of them neither hides nor fakes a wrong signing secret.
        count("RejectedRequests")
        logger.warning("Rejected a request", extra={"status": bad.response.status, "reason": str(bad)})
        return bad.response

    try:
        settings = load_settings()
        report_ignored_settings(settings.problems)
        require_tables(settings)
        secrets = webhook_secrets(settings)
    except ConfigurationError as error:
        logger.error("Refusing the event: the function is misconfigured", extra={"problem": str(error)})
        count("ConfigurationErrors")
        return HttpResponse(500, {"error": "webhook endpoint is not configured"})

    try:
        stripe_event = verify_event(request.body, request.header("stripe-signature"), secrets)
    except InvalidSignature as error:
        count("SignatureFailures")
        logger.warning("Rejected a webhook", extra={"reason": str(error)})
        return HttpResponse(400, {"error": str(error)})
    except MalformedEvent as error:
        count("RejectedRequests")
        logger.warning("Signed event is malformed", extra={"reason": str(error)})
        return HttpResponse(400, {"error": str(error)})

    logger.set_correlation_id(stripe_event["id"])
    try:
        decision = decide(stripe_event)
    except MalformedEvent as error:
        count("RejectedRequests")
        logger.warning("Signed event is malformed", extra={"reason": str(error)})
        return HttpResponse(400, {"error": str(error)})
    if decision.session is not None:
        logger.append_keys(checkout_session_id=decision.session["id"])
    store = Store(dynamodb, settings.sessions_table, settings.customers_table)
    if decision.invoice is not None:
        logger.append_keys(invoice_id=decision.invoice["id"])
        return subscriptions.record_payment(stripe_event, decision.invoice, settings, store)
    if decision.subscription is not None:
        logger.append_keys(subscription_id=decision.subscription["id"])
        return subscriptions.record_status(stripe_event, decision.subscription, store)
    if not decision.provision:
        logger.info("Ignored", extra={"event_type": stripe_event["type"], "reason": decision.reason})
        return HttpResponse(
            200, {"status": "ignored", "event_type": stripe_event["type"], "reason": decision.reason}
        )

    return fulfil(stripe_event, decision.session, settings, store)


def fulfil(
    stripe_event: dict[str, Any], session: dict[str, Any], settings: Settings, store: Store
) -> HttpResponse:
    """Provision the session and start its deliveries, in one transaction."""
    session_id = session["id"]
    now = datetime.now(UTC)
    epoch = int(now.timestamp())
    livemode = stripe_event.get("livemode") is True
    consent = conversion.ad_consent(session)
    purchase = conversion.purchase(session, stripe_event)
    purchase_json = purchase.to_json()

    customer = conversion.customer_record(session, stripe_event, now)
    recorded = {
        "stripe_event_id": stripe_event["id"],
        "event_type": stripe_event["type"],
        "event_time": stripe_event["created"],
        "livemode": livemode,
        "provisioned_at": customer["provisioned_at"],
        "expires_at": epoch + settings.record_retention_days * 86400,
    }
    deliveries = []
    for destination in destinations.enabled(settings):
        skip = destinations.skip_reason_at_provisioning(
            destination, settings, livemode, stripe_event["created"], epoch, consent
        )
        deliveries.append(
            delivery.new_item(destination, session_id, recorded, purchase_json, skip, epoch, settings)
        )
    marker = {
        **recorded,
        "session_id": session_id,
        "customer_id": customer["customer_id"],
        "provisioning_id": uuid.uuid4().hex,  # tells this request's own write from a duplicate's
        "destinations": [item["destination"] for item in deliveries] or None,
    }
    subscription = None
    if (
        session.get("mode") == "subscription"
        and is_stripe_id(customer.get("subscription_id"), "sub_")
        and is_stripe_id(customer.get("stripe_customer_id"), "cus_")
    ):
        # The subscription's record learns which checkout started it, and the buyer's external
        # id, which its renewals report so that the ad platform joins them to this purchase.
        subscription = {
            "subscription_id": customer["subscription_id"],
            "external_id": purchase.buyer.external_id or customer["stripe_customer_id"],
        }

    try:
        result = store.provision(customer, marker, deliveries, subscription)
    except ConcurrentUpdate:
        logger.info("Another delivery of this session is being provisioned right now")
        return HttpResponse(
            409, {"error": "session is being processed, retry later", "session_id": session_id}
        )
    except StoreError as error:
        logger.exception("Provisioning failed: Stripe will retry", extra={"store_error": str(error)})
        count("ProvisioningFailures")
        return HttpResponse(500, {"error": "provisioning failed, retry later", "session_id": session_id})

    if not result.created:
        count("Duplicates")
        existing = result.existing or {}
        logger.info(
            "Duplicate: session already provisioned", extra={"by_event": existing.get("stripe_event_id")}
        )
        return HttpResponse(200, {"status": "duplicate", "session_id": session_id, "duplicate": True})

    count("Provisioned")
    logger.info("Provisioned", extra={"mode": customer.get("mode"), "livemode": livemode})
    started: dict[str, Any] = {}
    for item in deliveries:
        destination = destinations.by_name(item["destination"])
        started[destination.name] = _state(item)
        if item["delivery_status"] == delivery.DeliveryStatus.SKIPPED:
            count(f"{destination.label}Skipped")
            logger.info(f"{destination.label} delivery skipped", extra={"reason": item["delivery_reason"]})
    return HttpResponse(
        200, {"status": "provisioned", "session_id": session_id, "duplicate": False, "deliveries": started}
    )


def _state(item: dict[str, Any]) -> dict[str, Any]:
    state = {"status": item["delivery_status"], "reason": item.get("delivery_reason")}
    return {key: value for key, value in state.items() if value is not None}
