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

from checkout_conversions import conversion, delivery
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
from checkout_conversions.stripe_events import InvalidSignature, MalformedEvent, decide, verify_event


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
    if not decision.provision:
        logger.info("Ignored", extra={"event_type": stripe_event["type"], "reason": decision.reason})
        return HttpResponse(
            200, {"status": "ignored", "event_type": stripe_event["type"], "reason": decision.reason}
        )

    store = Store(dynamodb, settings.sessions_table, settings.customers_table)
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
    purchase = None if skip else conversion.purchase(session, stripe_event).to_json()

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
        **delivery.initial_fields(purchase, skip, epoch, settings),
    }

    try:
        result = store.provision(customer, marker)
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
