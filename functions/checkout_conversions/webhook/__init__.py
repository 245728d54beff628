"""One Stripe webhook, top to bottom: parse the request, verify its signature, classify the event,
provision or record, answer. The only place that builds the webhook's HTTP answers."""

# The buyer, held by Checkout until this answer, never waits for an ad platform: no HTTP request
# here, no platform's secret read, and none of the send side imported.

import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from checkout_conversions import secrets
from checkout_conversions.observability import count, in_this_trace, logger, report_ignored_settings
from checkout_conversions.outbox.model import ConcurrentUpdate, DeliveryStatus, StoreError
from checkout_conversions.settings import Settings, load_settings
from checkout_conversions.store.deliveries import DynamoDeliveries
from checkout_conversions.store.provisioning import DynamoProvisioning
from checkout_conversions.store.subscriptions import DynamoSubscriptions
from checkout_conversions.stripe_side import invoices
from checkout_conversions.stripe_side.events import (
    CheckoutPaid,
    Ignored,
    InvoicePaid,
    StripeEvent,
    SubscriptionChanged,
    classify,
)
from checkout_conversions.stripe_side.request import BadHttpRequest, HttpRequest, HttpResponse, parse_request
from checkout_conversions.stripe_side.signature import (
    InvalidSignature,
    MalformedEvent,
    read_header,
    verify_event,
)
from checkout_conversions.webhook import subscriptions
from checkout_conversions.webhook.provisioning import Provisioned, provision_checkout

# What answering takes once the work is done: the Function URL's response and the metrics' flush.
ANSWER_MARGIN_SECONDS = 0.5


def handle_webhook(event: Any, dynamodb: Any, remaining_seconds: Callable[[], float]) -> HttpResponse:
    """The answer to one request, given before the Lambda's time is up: when the secret's store or
    DynamoDB (with their retries) would take longer, a 500 that Stripe retries. The work goes on
    meanwhile; what it wrote makes the retry a duplicate, provisioned once."""
    try:
        request = parse_request(event)
    except BadHttpRequest as bad:
        # Not a webhook at all (another method, an oversized body): visible, never a signature
        # failure, so that a flood of them neither hides nor fakes a wrong signing secret.
        count("RejectedRequests")
        logger.warning("Rejected a request", extra={"status": bad.status, "reason": str(bad)})
        return HttpResponse(bad.status, {"error": str(bad)}, bad.headers)
    try:
        # Before any secret is read: junk costs neither a secret read nor an SSM quota.
        read_header(request.header("stripe-signature"), time.time())
    except InvalidSignature as error:
        return _signature_refused(error)
    work = in_this_trace(lambda: _verified(request, dynamodb))
    answer = _within(remaining_seconds() - ANSWER_MARGIN_SECONDS, work)
    if answer is None:
        logger.error("Out of time: answering 500 so that Stripe retries the event")
        count("WebhookOutOfTime")
        return HttpResponse(500, {"error": "took too long, retry later"})
    return answer


def _within(seconds: float, work: Callable[[], HttpResponse]) -> HttpResponse | None:
    """`work`'s answer, or None when it is not ready within `seconds` (it goes on in its thread)."""
    answers: list[HttpResponse] = []
    worker = threading.Thread(target=lambda: answers.append(work()), daemon=True)
    worker.start()
    worker.join(max(seconds, 0))
    return answers[0] if answers else None


def _verified(request: HttpRequest, dynamodb: Any) -> HttpResponse:
    try:
        settings = load_settings()
        report_ignored_settings(settings.problems)
        settings.tables.require()
        signing_secrets = _signing_secrets(settings)
    except secrets.ConfigurationError as error:
        logger.error("Refusing the event: the function is misconfigured", extra={"problem": str(error)})
        count("ConfigurationErrors")
        return HttpResponse(500, {"error": "webhook endpoint is not configured"})
    try:
        stripe_event = classify(
            verify_event(request.body, request.header("stripe-signature"), signing_secrets)
        )
    except InvalidSignature as error:
        return _signature_refused(error)
    except MalformedEvent as error:
        count("RejectedRequests")
        logger.warning("Signed event is malformed", extra={"reason": str(error)})
        return HttpResponse(400, {"error": str(error)})
    return answer_event(stripe_event, settings, dynamodb)


def _signature_refused(error: InvalidSignature) -> HttpResponse:
    count("SignatureFailures")
    logger.warning("Rejected a webhook", extra={"reason": str(error)})
    return HttpResponse(400, {"error": str(error)})


def _signing_secrets(settings: Settings) -> list[str]:
    """The accepted Stripe signing secrets (comma-separated: rotation, test and live endpoints)."""
    raw = secrets.read(settings.webhook_secret, settings.secrets, os.environ)
    accepted = [part.strip() for part in raw.split(",") if part.strip()]
    if not accepted:
        raise secrets.ConfigurationError("STRIPE_WEBHOOK_SECRET is not set: refusing every event")
    return accepted


def answer_event(stripe_event: StripeEvent, settings: Settings, dynamodb: Any) -> HttpResponse:
    """What the webhook does with a verified event, and its answer (a replay of Stripe's record
    does the same with the events it reads)."""
    tables = settings.tables
    match stripe_event:
        case CheckoutPaid():
            logger.set_correlation_id(stripe_event.facts.id)
            logger.append_keys(checkout_session_id=stripe_event.session["id"])
            return _checkout(
                stripe_event, settings, DynamoProvisioning(dynamodb, tables.sessions, tables.customers)
            )
        case InvoicePaid():
            logger.set_correlation_id(stripe_event.facts.id)
            logger.append_keys(invoice_id=stripe_event.invoice["id"])
            ledger = DynamoDeliveries(dynamodb, tables.sessions)
            return _payment(stripe_event, settings, DynamoSubscriptions(dynamodb, tables.customers), ledger)
        case SubscriptionChanged():
            logger.set_correlation_id(stripe_event.facts.id)
            logger.append_keys(subscription_id=stripe_event.subscription["id"])
            return _status(stripe_event, DynamoSubscriptions(dynamodb, tables.customers))
        case Ignored():
            return _ignored(stripe_event)


def _ignored(ignored: Ignored) -> HttpResponse:
    logger.set_correlation_id(ignored.event_id)
    if ignored.session_id:
        logger.append_keys(checkout_session_id=ignored.session_id)
    reason = ignored.describe()
    count("Ignored")
    logger.info("Ignored", extra={"event_type": ignored.event_type, "reason": reason})
    return HttpResponse(200, {"status": "ignored", "event_type": ignored.event_type, "reason": reason})


def _checkout(paid: CheckoutPaid, settings: Settings, store: DynamoProvisioning) -> HttpResponse:
    session_id = paid.session["id"]
    try:
        provisioned = provision_checkout(paid, settings, store, datetime.now(UTC))
    except ConcurrentUpdate:
        logger.info("Another delivery of this session is being provisioned right now")
        return HttpResponse(
            409, {"error": "session is being processed, retry later", "session_id": session_id}
        )
    except StoreError as error:
        logger.exception("Provisioning failed: Stripe will retry", extra={"store_error": str(error)})
        count("ProvisioningFailures")
        return HttpResponse(500, {"error": "provisioning failed, retry later", "session_id": session_id})
    if not provisioned.result.created:
        count("Duplicates")
        existing = provisioned.result.existing or {}
        logger.info(
            "Duplicate: session already provisioned", extra={"by_event": existing.get("stripe_event_id")}
        )
        return HttpResponse(200, {"status": "duplicate", "session_id": session_id, "duplicate": True})
    return _provisioned(provisioned, settings)


def _provisioned(provisioned: Provisioned, settings: Settings) -> HttpResponse:
    count("Provisioned")
    customer = provisioned.checkout.customer
    logger.info("Provisioned", extra={"mode": customer.get("mode"), "livemode": customer.get("livemode")})
    started: dict[str, Any] = {}
    for delivery in provisioned.deliveries:
        destination = settings.destination(delivery.destination)
        started[destination.name] = _state(delivery.status, delivery.reason)
        if delivery.status is DeliveryStatus.SKIPPED:
            count(f"{destination.label}Skipped")
            logger.info(f"{destination.label} delivery skipped", extra={"reason": delivery.reason})
    body = {"status": "provisioned", "session_id": provisioned.checkout.session_id, "duplicate": False}
    return HttpResponse(200, {**body, "deliveries": started})


def _payment(
    paid: InvoicePaid, settings: Settings, store: DynamoSubscriptions, ledger: DynamoDeliveries
) -> HttpResponse:
    invoice_id = paid.invoice["id"]
    try:
        recorded = subscriptions.record_payment(paid, settings, store, ledger)
    except StoreError as error:
        logger.exception("Recording the payment failed: Stripe will retry", extra={"store_error": str(error)})
        count("SubscriptionWriteFailures")
        return HttpResponse(500, {"error": "recording failed, retry later", "invoice_id": invoice_id})
    written = recorded.written
    billing_reason = invoices.billing_reason(paid.invoice)
    count("SubscriptionPaymentsRecorded" if written.applied else "SubscriptionEventsUnchanged")
    logger.info(
        "Subscription payment recorded" if written.applied else "Subscription payment already recorded",
        extra={"billing_reason": billing_reason, "known_customer": written.known_customer},
    )
    body: dict[str, Any] = {
        "status": "recorded" if written.applied else "unchanged",
        "event_type": paid.facts.type,
        "invoice_id": invoice_id,
        "subscription_id": paid.subscription_id,
        "billing_reason": billing_reason,
        "customer": "provisioned" if written.known_customer else "unknown",
    }
    if recorded.renewal is not None:
        body["renewal"] = _renewal(recorded.renewal)
    return HttpResponse(200, body)


def _renewal(renewal: subscriptions.RenewalState) -> dict[str, Any]:
    if renewal.duplicate:
        count("RenewalDuplicates")
        return {"status": renewal.status.value, "duplicate": True}
    if renewal.status is DeliveryStatus.PENDING:
        count("RenewalsStarted")
    return _state(renewal.status, renewal.reason)


def _status(changed: SubscriptionChanged, store: DynamoSubscriptions) -> HttpResponse:
    subscription_id = changed.subscription["id"]
    try:
        written = subscriptions.record_status(changed, store)
    except StoreError as error:
        logger.exception("Recording the status failed: Stripe will retry", extra={"store_error": str(error)})
        count("SubscriptionWriteFailures")
        return HttpResponse(
            500, {"error": "recording failed, retry later", "subscription_id": subscription_id}
        )
    count("SubscriptionStatusesRecorded" if written.applied else "SubscriptionEventsUnchanged")
    recorded_status = (written.item or {}).get("status", changed.status)
    logger.info(
        "Subscription status recorded"
        if written.applied
        else "Subscription status unchanged: a newer one is recorded",
        extra={
            "status": changed.status,
            "recorded_status": recorded_status,
            "known_customer": written.known_customer,
        },
    )
    return HttpResponse(
        200,
        {
            "status": "recorded" if written.applied else "unchanged",
            "event_type": changed.facts.type,
            "subscription_id": subscription_id,
            "subscription_status": recorded_status,
            "customer": "provisioned" if written.known_customer else "unknown",
        },
    )


def _state(status: DeliveryStatus, reason: str | None) -> dict[str, Any]:
    state: dict[str, Any] = {"status": status.value}
    if reason is not None:
        state["reason"] = reason
    return state
