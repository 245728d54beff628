"""The TikTok delivery of one provisioned session: its recorded state and one claimed attempt.

States (`delivery_status` on the session item):
  pending  - to be sent; in the redrive index from the moment the session is provisioned
  sent     - TikTok accepted it; never sent again
  failed   - `delivery_retryable` says whether the redrive tries again
  skipped  - not to be sent (TikTok switched off, or a test-mode event with no test event code)
  expired  - given up after DELIVERY_MAX_AGE_DAYS

Whoever sends holds a claim (`claim_token`, `claim_expires_at`), taken by a conditional write, so
the webhook and the redrive never send the same session at the same time.
"""

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from checkout_conversions import tiktok
from checkout_conversions.config import Settings
from checkout_conversions.observability import count, logger
from checkout_conversions.store import REDRIVE_QUEUE, Store, StoreError

PENDING, SENT, FAILED, SKIPPED, EXPIRED = "pending", "sent", "failed", "skipped", "expired"
CLAIM_MARGIN_SECONDS = 30
_CLAIM_FIELDS = ("claim_token", "claim_expires_at")
_QUEUE_FIELDS = ("redrive_queue", "next_attempt_at")
_UNCLAIMED = "(attribute_not_exists(claim_expires_at) OR claim_expires_at < :now)"


def skip_reason(settings: Settings, access_token: str, livemode: bool) -> str | None:
    if not access_token:
        return "TikTok is switched off: TIKTOK_ACCESS_TOKEN is empty"
    if not settings.tiktok_pixel_id:
        return "TikTok is switched off: TIKTOK_PIXEL_ID is not set"
    if not livemode and not settings.tiktok_test_event_code:
        return "test-mode event and no TIKTOK_TEST_EVENT_CODE"
    return None


def too_old(settings: Settings, event_time: int, now: int) -> str | None:
    """A payment older than the maximum age is not reported (TikTok's attribution has moved on)."""
    if now - event_time > settings.delivery_max_age_days * 86400:
        return f"payment older than {settings.delivery_max_age_days} days"
    return None


def new_claim_token() -> str:
    return uuid.uuid4().hex


def initial_fields(
    tiktok_event: dict[str, Any] | None,
    skip: str | None,
    now: int,
    settings: Settings,
    claim_token: str | None,
    claim_seconds: float,
) -> dict[str, Any]:
    """The delivery part of a newly provisioned session's item."""
    if skip is not None:
        return {"delivery_status": SKIPPED, "delivery_reason": skip, "delivery_attempts": 0}
    fields: dict[str, Any] = {
        "delivery_status": PENDING,
        "delivery_attempts": 0,
        "tiktok_event": tiktok.encode(tiktok_event).decode("utf-8"),
        "redrive_queue": REDRIVE_QUEUE,
        "next_attempt_at": now + settings.redrive_grace_seconds,
    }
    if claim_token:
        fields.update(
            claim_token=claim_token,
            claim_expires_at=int(now + claim_seconds + CLAIM_MARGIN_SECONDS),
            delivery_attempts=1,
        )
    return fields


def send_claimed(
    store: Store,
    http_client: httpx.Client,
    settings: Settings,
    access_token: str,
    session_id: str,
    claim_token: str,
    stored_event: str,
    attempts: int,
    budget_seconds: float,
) -> tiktok.Outcome:
    """Send a delivery this caller has claimed, and record what came of it."""
    body = tiktok.build_request(
        [json.loads(stored_event)], settings.tiktok_pixel_id, settings.tiktok_test_event_code
    )
    outcome = tiktok.send(
        http_client, settings.tiktok_api_url, access_token, tiktok.encode(body), budget_seconds
    )
    record_outcome(store, session_id, claim_token, outcome, attempts, settings)
    return outcome


def record_outcome(
    store: Store,
    session_id: str,
    claim_token: str,
    outcome: tiktok.Outcome,
    attempts: int,
    settings: Settings,
) -> None:
    now = _now()
    details = {
        "delivery_code": outcome.code,
        "delivery_message": outcome.message or None,
        "delivery_request_id": outcome.request_id,
        "delivery_http_status": outcome.http_status,
        "delivery_updated_at": _iso(now),
    }
    remove = list(_CLAIM_FIELDS)
    if outcome.sent:
        set_values = {"delivery_status": SENT, "delivery_sent_at": _iso(now), **details}
        # TikTok has the event now: the stored copy (raw IP, User-Agent, click id) goes.
        remove += [*_QUEUE_FIELDS, "delivery_retryable", "tiktok_event"]
        count("TikTokSent")
    else:
        set_values = {"delivery_status": FAILED, "delivery_retryable": outcome.retryable, **details}
        if outcome.retryable:
            set_values["next_attempt_at"] = now + backoff_seconds(attempts, settings)
        else:
            remove += list(_QUEUE_FIELDS)
            count("TikTokPermanentFailures")
        count("TikTokFailed")
    remove += [key for key, value in set_values.items() if value is None]
    set_values = {key: value for key, value in set_values.items() if value is not None}
    try:
        recorded = store.update_session(
            session_id,
            set_values,
            remove=tuple(remove),
            condition="claim_token = :claim_token",
            condition_values={"claim_token": claim_token},
        )
    except StoreError as error:
        # The send itself is done; the claim expires and the redrive tries again. TikTok
        # deduplicates a repeat on the same event_id.
        logger.error("Could not record the TikTok outcome", extra={"store_error": str(error)})
        count("DeliveryRecordFailures")
        recorded = {}
    log = logger.info if outcome.sent else logger.warning
    log(
        "TikTok delivery %s",
        outcome.status,
        extra={
            "tiktok_code": outcome.code,
            "tiktok_request_id": outcome.request_id,
            "http_status": outcome.http_status,
            # Ours ("timed out after 3s", "HTTP 503, not TikTok JSON"); TikTok's own message,
            # which can quote rejected values, is only recorded in DynamoDB.
            "reason": outcome.message if outcome.code is None else None,
            "retryable": outcome.retryable,
            "attempts": attempts,
        },
    )
    if recorded is None:
        logger.warning("delivery claim was lost before the outcome was recorded")


def release(store: Store, session_id: str, claim_token: str) -> None:
    """Give back a claim without an attempt (best effort: an unreleased claim simply expires)."""
    try:
        store.update_session(
            session_id,
            {"delivery_attempts": 0},
            remove=_CLAIM_FIELDS,
            condition="claim_token = :claim_token",
            condition_values={"claim_token": claim_token},
        )
    except StoreError as error:
        logger.warning("Could not release the delivery claim", extra={"store_error": str(error)})


def claim(store: Store, session_id: str, now: int, claim_seconds: float) -> dict[str, Any] | None:
    """Take a due, unclaimed delivery for one attempt; None if it is not due or someone holds it.

    The condition is checked on the table itself (not the eventually consistent index), so a
    delivery that was sent a moment ago, or that another sender holds, is never taken.
    """
    token = new_claim_token()
    item = store.update_session(
        session_id,
        {"claim_token": token, "claim_expires_at": int(now + claim_seconds + CLAIM_MARGIN_SECONDS)},
        condition=f"redrive_queue = :queue AND next_attempt_at <= :now AND {_UNCLAIMED}",
        condition_values={"queue": REDRIVE_QUEUE, "now": now},
        increment="delivery_attempts",
        return_new=True,
    )
    return item


def settle(
    store: Store, session_id: str, status: str, reason: str, now: int, claim_token: str | None = None
) -> bool:
    """Take a delivery out of the redrive queue for good, as skipped or expired, if it is
    unclaimed or held by `claim_token`. Its stored event (raw IP, User-Agent, click id) goes."""
    if claim_token:
        condition, values = "claim_token = :claim_token", {"claim_token": claim_token}
    else:
        condition, values = f"redrive_queue = :queue AND {_UNCLAIMED}", {"queue": REDRIVE_QUEUE, "now": now}
    updated = store.update_session(
        session_id,
        {"delivery_status": status, "delivery_reason": reason, "delivery_updated_at": _iso(now)},
        remove=(*_QUEUE_FIELDS, *_CLAIM_FIELDS, "tiktok_event"),
        condition=condition,
        condition_values=values,
    )
    return updated is not None


def requeue(store: Store, session_id: str, now: int) -> dict[str, Any]:
    """Put a delivery back in the redrive queue for its next run (an operator's replay).

    Refused for a delivery already sent (TikTok has it) or one that never had an event stored
    (skipped because TikTok was switched off).
    """
    item = store.update_session(
        session_id,
        {
            "delivery_status": PENDING,
            "delivery_attempts": 0,  # the backoff starts again from its base
            "redrive_queue": REDRIVE_QUEUE,
            "next_attempt_at": now,
            "delivery_updated_at": _iso(now),
        },
        remove=("delivery_retryable", "delivery_reason"),
        condition="attribute_exists(tiktok_event) AND delivery_status <> :sent",
        condition_values={"sent": SENT},
        return_new=True,
    )
    if item is None:
        existing = store.get_session(session_id)
        if existing is None:
            raise LookupError(f"no session {session_id}")
        status = existing.get("delivery_status")
        if status == SENT:
            raise ValueError(f"{session_id} is sent: TikTok already has it, and it is never sent twice")
        if status == EXPIRED:
            raise ValueError(f"{session_id} expired unsent and its stored event was deleted")
        raise ValueError(
            f"{session_id} is {status} with no stored event: TikTok was off when it was provisioned"
        )
    return item


def backoff_seconds(attempts: int, settings: Settings) -> int:
    """Exponential: base, 2x base, 4x base ... capped at the configured maximum."""
    base = settings.redrive_backoff_base_seconds
    return min(base * 2 ** max(attempts - 1, 0), settings.redrive_backoff_cap_seconds)


def _now() -> int:
    return int(datetime.now(UTC).timestamp())


def _iso(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat()
