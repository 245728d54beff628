"""One Stripe webhook, top to bottom: verify, decide, provision, answer.

Provisioning writes the customer record and the session's TikTok delivery (pending, with the
platform-neutral purchase to send) in one transaction; the Sessions table's stream hands the
delivery to the sender.
The buyer, held by Checkout until this answer, never waits for TikTok: no HTTP request here, and
no TikTok secret read.
"""

import uuid
from datetime import UTC, datetime
from typing import Any

from checkout_conversions import conversion, delivery, subscriptions
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
        return HttpResponse(400, {"error": str(error)})

    logger.set_correlation_id(stripe_event["id"])
    try:
        decision = decide(stripe_event)
    except MalformedEvent as error:
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
    """Provision the session and start its TikTok delivery, in one transaction."""
    session_id = session["id"]
    now = datetime.now(UTC)
    epoch = int(now.timestamp())
    livemode = stripe_event.get("livemode") is True

    skip = delivery.skip_reason_at_provisioning(
        settings, livemode, stripe_event["created"], epoch, conversion.ad_consent(session)
    )
    purchase = conversion.purchase(session, stripe_event)

    customer = conversion.customer_record(session, stripe_event, now)
    marker = {
        "session_id": session_id,
        "customer_id": customer["customer_id"],
        "stripe_event_id": stripe_event["id"],
        "event_type": stripe_event["type"],
        "event_time": stripe_event["created"],
        "livemode": livemode,
        "provisioned_at": customer["provisioned_at"],
        "expires_at": epoch + settings.record_retention_days * 86400,
        "provisioning_id": uuid.uuid4().hex,  # tells this request's own write from a duplicate's
        **delivery.initial_fields(None if skip else purchase.to_json(), skip, epoch, settings),
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
        result = store.provision(customer, marker, subscription)
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
        return _answer(session_id, duplicate=True, tiktok_state=_recorded_state(existing))

    count("Provisioned")
    logger.info("Provisioned", extra={"mode": customer.get("mode"), "livemode": livemode})
    if skip is not None:
        count("TikTokSkipped")
        logger.info("TikTok delivery skipped", extra={"reason": skip})
    return _answer(session_id, duplicate=False, tiktok_state=_recorded_state(marker))


def _recorded_state(item: dict[str, Any]) -> dict[str, Any]:
    state = {"status": item.get("delivery_status", "unknown"), "reason": item.get("delivery_reason")}
    return {key: value for key, value in state.items() if value is not None}


def _answer(session_id: str, duplicate: bool, tiktok_state: dict[str, Any]) -> HttpResponse:
    return HttpResponse(
        200,
        {
            "status": "duplicate" if duplicate else "provisioned",
            "session_id": session_id,
            "duplicate": duplicate,
            "tiktok": tiktok_state,
        },
    )
