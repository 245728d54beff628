"""One Stripe webhook, top to bottom: verify, decide, provision, report to TikTok, answer."""

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from checkout_conversions import conversion, delivery, tiktok
from checkout_conversions.config import (
    ConfigurationError,
    Settings,
    load_settings,
    require_tables,
    tiktok_access_token,
    webhook_secrets,
)
from checkout_conversions.http_api import BadHttpRequest, HttpResponse, parse_request
from checkout_conversions.observability import count, logger, report_ignored_settings
from checkout_conversions.store import ConcurrentUpdate, Store, StoreError
from checkout_conversions.stripe_events import InvalidSignature, MalformedEvent, decide, verify_event

# Time kept back from the Lambda's remaining time for recording the outcome and answering.
RESPONSE_MARGIN_SECONDS = 1.5
MIN_SEND_BUDGET_SECONDS = 0.5


def handle_webhook(
    event: Any,
    remaining_millis: Callable[[], int],
    dynamodb: Any,
    http_client: httpx.Client,
) -> HttpResponse:
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
    return fulfil(stripe_event, decision.session, settings, store, http_client, remaining_millis)


def fulfil(
    stripe_event: dict[str, Any],
    session: dict[str, Any],
    settings: Settings,
    store: Store,
    http_client: httpx.Client,
    remaining_millis: Callable[[], int],
) -> HttpResponse:
    session_id = session["id"]
    now = datetime.now(UTC)
    epoch = int(now.timestamp())
    livemode = stripe_event.get("livemode") is True

    access_token, skip = _tiktok_access(settings, livemode, stripe_event["created"], epoch)
    budget = _send_budget(settings, remaining_millis)
    send_now = skip is None and bool(access_token) and budget >= MIN_SEND_BUDGET_SECONDS
    claim_token = delivery.new_claim_token() if send_now else None
    tiktok_event = None
    if skip is None:
        purchase = conversion.purchase(session, stripe_event, settings.default_phone_country)
        tiktok_event = tiktok.build_event(purchase, settings.tiktok_event_name)

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
        **delivery.initial_fields(tiktok_event, skip, epoch, settings, claim_token, budget),
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
        return _answer(session_id, duplicate=False, tiktok_state={"status": "skipped", "reason": skip})
    # Provisioning may have been slow (DynamoDB retries): the send gets only what is left now.
    budget = min(budget, _send_budget(settings, remaining_millis))
    if not send_now or budget < MIN_SEND_BUDGET_SECONDS:
        logger.warning("TikTok delivery left to the redrive", extra={"budget_seconds": round(budget, 3)})
        if claim_token:  # claimed for a send that is not happening: hand it to the redrive now
            delivery.release(store, session_id, claim_token)
        return _answer(session_id, duplicate=False, tiktok_state={"status": "pending"})

    started = time.monotonic()
    outcome = delivery.send_claimed(
        store,
        http_client,
        settings,
        access_token,
        session_id,
        claim_token,
        marker["tiktok_event"],
        attempts=1,
        budget_seconds=budget,
    )
    logger.info("TikTok call finished", extra={"seconds": round(time.monotonic() - started, 3)})
    return _answer(session_id, duplicate=False, tiktok_state=_outcome_state(outcome))


def _send_budget(settings: Settings, remaining_millis: Callable[[], int]) -> float:
    return min(settings.tiktok_timeout_seconds, remaining_millis() / 1000 - RESPONSE_MARGIN_SECONDS)


def _tiktok_access(settings: Settings, livemode: bool, event_time: int, now: int) -> tuple[str, str | None]:
    """The token and the reason not to send, if any. A token that cannot be read leaves the
    delivery pending for the redrive instead of failing provisioning."""
    try:
        token = tiktok_access_token(settings)
    except ConfigurationError as error:
        logger.error(
            "Cannot read the TikTok token; delivery left to the redrive", extra={"problem": str(error)}
        )
        count("ConfigurationErrors")
        return "", None
    return token, delivery.skip_reason(settings, token, livemode) or delivery.too_old(
        settings, event_time, now
    )


def _outcome_state(outcome: tiktok.Outcome) -> dict[str, Any]:
    state: dict[str, Any] = {"status": outcome.status}
    if not outcome.sent:
        # TikTok's message can quote the values it rejected: it stays in DynamoDB, not in the
        # answer that Stripe's dashboard keeps.
        state.update(retryable=outcome.retryable, code=outcome.code)
    return {key: value for key, value in state.items() if value is not None}


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
