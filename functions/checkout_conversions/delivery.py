"""One destination's delivery of one purchase: its states, and one claimed attempt.

Shared by the webhook (a new session's deliveries start `pending`, in the same transaction as the
customer record), the stream sender (sends each new pending delivery a moment later) and the
redrive (retries failures with backoff, and finishes what the stream did not). Each destination
has its own delivery item (destinations.py), so everything here acts on one destination's.

States (`delivery_status` on the delivery item):
  pending  - to be sent; in the redrive index from the moment the session is provisioned
  sent     - the platform accepted it; never sent again
  failed   - `delivery_retryable` says whether the redrive tries again
  skipped  - not to be sent (the destination switched off, a test-mode event with no test event
             code, a payment older than the maximum age, the buyer's ad consent denied or not given)
  expired  - given up after the maximum age

Whoever sends holds a claim (`claim_token`, `claim_expires_at`) taken by a conditional write, so
the sender and the redrive never send the same delivery at the same time, and a stream record
seen twice finds the delivery claimed or finished. A claim outlives the invocation that holds
it, so a crashed holder's claim expires and the redrive takes the delivery over.

No HTTP here: the caller passes the functions that build the request (the destination's
`prepare`) and POST it (its `post`), so that the webhook, which only starts deliveries, never
imports an HTTP client or the match-key rules.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from checkout_conversions.config import Settings
from checkout_conversions.destinations import Destination, skip_reason_at_send_time
from checkout_conversions.observability import count, logger
from checkout_conversions.store import Store, StoreError

CLAIM_MARGIN_SECONDS = 30


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Outcome:
    """What one attempt to send came to: SENT, or FAILED (retryable or not)."""

    status: DeliveryStatus
    retryable: bool = False
    code: int | None = None
    message: str = ""
    request_id: str | None = None
    http_status: int | None = None

    @property
    def sent(self) -> bool:
        return self.status == DeliveryStatus.SENT

    @classmethod
    def failure(cls, message: str, retryable: bool = True, **fields: Any) -> "Outcome":
        return cls(DeliveryStatus.FAILED, retryable=retryable, message=message, **fields)


# POSTs one encoded request body to the destination; never raises.
Post = Callable[[bytes], Outcome]


@dataclass(frozen=True)
class Prepared:
    """A destination's request, ready to POST."""

    body: bytes
    match_keys: tuple[str, ...]  # the user keys the event carries (names, never values)
    note: str | None = None  # why the event will match poorly, recorded with the outcome


# Builds the request of a claimed delivery's item, or answers the failed Outcome.
Prepare = Callable[[dict[str, Any]], "Prepared | Outcome"]


# ---------------------------------------------------------------------- starting


def new_item(
    destination: Destination,
    event_id: str,
    common: dict[str, Any],
    purchase_json: str | None,
    skip: str | None,
    now: int,
    settings: Settings,
) -> dict[str, Any]:
    """A new delivery item: pending, with the purchase to send and a place in the destination's
    partition of the redrive index after the grace period; or skipped with the reason (and then
    nothing of the buyer's is stored for it). `common`: what the webhook records of the event
    (its time, livemode, expiry ...)."""
    item = {
        **common,
        "session_id": destination.delivery_key(event_id),
        "event_id": event_id,
        "destination": destination.name,
        "delivery_attempts": 0,
    }
    if skip is not None or purchase_json is None:
        item.update(delivery_status=DeliveryStatus.SKIPPED.value, delivery_reason=skip)
        return item
    item.update(
        delivery_status=DeliveryStatus.PENDING.value,
        purchase=purchase_json,
        redrive_queue=destination.name,
        next_attempt_at=now + settings.redrive_grace_seconds,
    )
    return item


# ---------------------------------------------------------------------- claiming


def claim_new(store: Store, key: str, now: int, hold_seconds: float) -> dict[str, Any] | None:
    """The stream sender's claim: a pending delivery nobody holds; None if there is none."""
    return store.claim_new_delivery(key, _claim_token(), now, _hold_until(now, hold_seconds))


def claim_due(
    store: Store, destination: Destination, key: str, now: int, hold_seconds: float
) -> dict[str, Any] | None:
    """The redrive's claim: a delivery whose (re)try is due and nobody holds; None otherwise."""
    return store.claim_due_delivery(
        key, destination.name, _claim_token(), now, _hold_until(now, hold_seconds)
    )


def _claim_token() -> str:
    return uuid.uuid4().hex


def _hold_until(now: int, hold_seconds: float) -> int:
    return int(now + hold_seconds + CLAIM_MARGIN_SECONDS)


# ---------------------------------------------------------------------- one attempt


def deliver_claimed(
    store: Store,
    destination: Destination,
    claimed: dict[str, Any],
    access_token: str,
    prepare: Prepare,
    post: Post,
    settings: Settings,
    clock: Callable[[], float],
) -> str:
    """Send a delivery this caller has just claimed and record what came of it, or settle it as
    skipped when it must not be sent. Returns how it ended: sent, failed_retryable,
    failed_permanent or skipped. DynamoDB errors raise StoreError."""
    key = claimed["session_id"]
    skip = skip_reason_at_send_time(
        destination,
        settings,
        access_token,
        livemode=claimed.get("livemode") is True,
        kind=claimed.get("delivery_kind"),
    )
    if skip or not has_stored_purchase(claimed):
        reason = skip or "no stored purchase"
        now = int(clock())
        store.settle_delivery(key, DeliveryStatus.SKIPPED, reason, _iso(now), now, claimed["claim_token"])
        count(f"{destination.label}Skipped")
        logger.info(f"{destination.label} delivery skipped", extra={"reason": reason})
        return "skipped"

    prepared = prepare(claimed)
    if isinstance(prepared, Outcome):
        outcome, prepared = prepared, Prepared(b"", ())
    else:
        outcome = post(prepared.body)
    attempts = int(claimed.get("delivery_attempts") or 1)
    record(
        store, destination, key, claimed["claim_token"], outcome, attempts, settings, int(clock()), prepared
    )
    if outcome.sent:
        return "sent"
    return "failed_retryable" if outcome.retryable else "failed_permanent"


def record(
    store: Store,
    destination: Destination,
    key: str,
    claim_token: str,
    outcome: Outcome,
    attempts: int,
    settings: Settings,
    now: int,
    prepared: Prepared | None = None,
) -> None:
    """Write the outcome under the claim; StoreError if DynamoDB refuses (the send happened: the
    claim then expires and the redrive sends the same event_id again, which the platform
    deduplicates)."""
    match_keys = prepared.match_keys if prepared else ()
    details = {
        "delivery_note": prepared.note if prepared else None,
        "delivery_code": outcome.code,
        "delivery_message": outcome.message,
        "delivery_request_id": outcome.request_id,
        "delivery_http_status": outcome.http_status,
    }
    label = destination.label
    if outcome.sent:
        count(f"{label}Sent")
        for name in match_keys:
            count(f"{label}MatchKey{name.title().replace('_', '')}")
    else:
        count(f"{label}Failed")
        if not outcome.retryable:
            count(f"{label}PermanentFailures")
    log = logger.info if outcome.sent else logger.warning
    log(
        f"{label} delivery %s",
        outcome.status.value,
        extra={
            "destination": destination.name,
            "platform_code": outcome.code,
            "platform_request_id": outcome.request_id,
            "http_status": outcome.http_status,
            # Ours ("timed out", "HTTP 503, not TikTok JSON"); the platform's own message, which
            # can quote rejected values, is only recorded in DynamoDB.
            "reason": outcome.message if outcome.code is None else None,
            "retryable": outcome.retryable,
            "attempts": attempts,
        },
    )
    try:
        if outcome.sent:
            held = store.record_sent(key, claim_token, details, _iso(now), match_keys)
        else:
            retry_at = now + backoff_seconds(attempts, settings) if outcome.retryable else None
            held = store.record_failure(key, claim_token, details, _iso(now), retry_at)
    except StoreError as error:
        logger.error(f"Could not record the {label} outcome", extra={"store_error": str(error)})
        count("DeliveryRecordFailures")
        raise
    if not held:
        logger.warning("The delivery claim was lost before the outcome was recorded")


# ---------------------------------------------------------------------- the redrive's other ends


def expire(store: Store, destination: Destination, key: str, now: int, settings: Settings) -> bool:
    """Give up an unclaimed delivery that is past the maximum age."""
    reason = f"not sent within {destination.max_age_seconds(settings) // 86400} days"
    return store.settle_delivery(key, DeliveryStatus.EXPIRED, reason, _iso(now), now, queue=destination.name)


def requeue(store: Store, destination: Destination, key: str, now: int) -> dict[str, Any]:
    """Put a delivery back in the redrive queue for its next run (an operator's replay).

    Refused for a delivery already sent (the platform has it) or one that has no stored event
    (skipped or expired: the event was never stored, or was deleted)."""
    item = store.requeue_delivery(key, destination.name, _iso(now), now)
    if item is not None:
        return item
    existing = store.get_session(key)
    if existing is None or "delivery_status" not in existing:  # nothing, or a session's marker
        raise LookupError(f"no {destination.label} delivery {key}")
    status = existing.get("delivery_status")
    if status == DeliveryStatus.SENT:
        raise ValueError(f"{key} is sent: {destination.label} already has it, and it is never sent twice")
    if status == DeliveryStatus.EXPIRED:
        raise ValueError(f"{key} expired unsent and its stored event was deleted")
    raise ValueError(f"{key} is {status} with no stored event: it was never to be sent")


def has_stored_purchase(item: dict[str, Any]) -> bool:
    """A purchase to send is on the item (`tiktok_event`: one stored before the outbox kept the
    platform-neutral purchase; still sent as it was built)."""
    return "purchase" in item or "tiktok_event" in item


def backoff_seconds(attempts: int, settings: Settings) -> int:
    """Exponential: base, 2x base, 4x base ... capped at the configured maximum."""
    base = settings.redrive_backoff_base_seconds
    return min(base * 2 ** max(attempts - 1, 0), settings.redrive_backoff_cap_seconds)


def _iso(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat()
