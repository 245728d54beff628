"""The TikTok delivery of one provisioned session: its states, and one claimed attempt.

Shared by the webhook (a new session's delivery starts `pending`, in the same transaction as the
customer record), the stream sender (sends each new pending delivery a moment later) and the
redrive (retries failures with backoff, and finishes what the stream did not).

States (`delivery_status` on the session item):
  pending  - to be sent; in the redrive index from the moment the session is provisioned
  sent     - TikTok accepted it; never sent again
  failed   - `delivery_retryable` says whether the redrive tries again
  skipped  - not to be sent (TikTok switched off, a test-mode event with no test event code, a
             payment older than the maximum age, the buyer's ad consent denied or not given)
  expired  - given up after DELIVERY_MAX_AGE_DAYS

Whoever sends holds a claim (`claim_token`, `claim_expires_at`) taken by a conditional write, so
the sender and the redrive never send the same delivery at the same time, and a stream record
seen twice finds the delivery claimed or finished. A claim outlives the invocation that holds
it, so a crashed holder's claim expires and the redrive takes the delivery over.

No HTTP here: the caller passes the functions that build the request (tiktok_request.prepare)
and POST it (tiktok_api.post), so that the webhook, which only starts deliveries, never imports
an HTTP client or the match-key rules.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from checkout_conversions.config import Settings
from checkout_conversions.observability import count, logger
from checkout_conversions.store import REDRIVE_QUEUE, Store, StoreError

CLAIM_MARGIN_SECONDS = 30
RENEWAL = "renewal"  # `delivery_kind` of a subscription renewal's delivery; a purchase has none


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


# POSTs one encoded request body to TikTok; never raises.
Post = Callable[[bytes], Outcome]


class Prepared(Protocol):
    body: bytes
    match_keys: tuple[str, ...]


# Builds the request of a claimed delivery's item, or answers the failed Outcome.
Prepare = Callable[[dict[str, Any]], "Prepared | Outcome"]


# ---------------------------------------------------------------------- deciding


def skip_reason_at_provisioning(
    settings: Settings, livemode: bool, event_time: int, now: int, ad_consent: str | None
) -> str | None:
    """Why a new session's delivery will never be sent, as far as the settings and the buyer's
    choice tell without reading the TikTok token (the webhook has no access to it)."""
    if ad_consent == "denied":
        return "the buyer denied ad measurement (ad_consent=denied)"
    if settings.require_ad_consent and ad_consent != "granted":
        return "no ad consent given (REQUIRE_AD_CONSENT is true, ad_consent is not granted)"
    return _settings_skip_reason(settings, livemode) or too_old(settings, event_time, now)


def skip_reason_for_renewal(settings: Settings, livemode: bool, event_time: int, now: int) -> str | None:
    """Why a renewal will not be reported, as far as the settings tell."""
    if not settings.renewal_event_name:
        return "renewals are not reported: RENEWAL_EVENT_NAME is empty"
    return _settings_skip_reason(settings, livemode) or too_old(settings, event_time, now)


def skip_reason_at_send_time(
    settings: Settings, access_token: str, livemode: bool, kind: str | None = None
) -> str | None:
    """Why a delivery is not sent now: TikTok switched off, renewals switched off, or a test-mode
    event and no test code."""
    if not access_token:
        return "TikTok is switched off: TIKTOK_ACCESS_TOKEN is empty"
    if kind == RENEWAL and not settings.renewal_event_name:
        return "renewals are not reported: RENEWAL_EVENT_NAME is empty"
    return _settings_skip_reason(settings, livemode)


def _settings_skip_reason(settings: Settings, livemode: bool) -> str | None:
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


def initial_fields(purchase_json: str | None, skip: str | None, now: int, settings: Settings) -> dict:
    """The delivery part of a newly provisioned session's item: pending, with the purchase to
    send and a place in the redrive index after the grace period, or skipped with the reason (and
    then nothing of the buyer's is stored for it)."""
    if skip is not None or purchase_json is None:
        return {
            "delivery_status": DeliveryStatus.SKIPPED.value,
            "delivery_reason": skip,
            "delivery_attempts": 0,
        }
    return {
        "delivery_status": DeliveryStatus.PENDING.value,
        "delivery_attempts": 0,
        "purchase": purchase_json,
        "redrive_queue": REDRIVE_QUEUE,
        "next_attempt_at": now + settings.redrive_grace_seconds,
    }


# ---------------------------------------------------------------------- claiming


def claim_new(store: Store, session_id: str, now: int, hold_seconds: float) -> dict[str, Any] | None:
    """The stream sender's claim: a pending delivery nobody holds; None if there is none."""
    return store.claim_new_delivery(session_id, _claim_token(), now, _hold_until(now, hold_seconds))


def claim_due(store: Store, session_id: str, now: int, hold_seconds: float) -> dict[str, Any] | None:
    """The redrive's claim: a delivery whose (re)try is due and nobody holds; None otherwise."""
    return store.claim_due_delivery(session_id, _claim_token(), now, _hold_until(now, hold_seconds))


def _claim_token() -> str:
    return uuid.uuid4().hex


def _hold_until(now: int, hold_seconds: float) -> int:
    return int(now + hold_seconds + CLAIM_MARGIN_SECONDS)


# ---------------------------------------------------------------------- one attempt


def deliver_claimed(
    store: Store,
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
    session_id = claimed["session_id"]
    skip = skip_reason_at_send_time(
        settings, access_token, livemode=claimed.get("livemode") is True, kind=claimed.get("delivery_kind")
    )
    if skip or not has_stored_purchase(claimed):
        reason = skip or "no stored purchase"
        now = int(clock())
        store.settle_delivery(
            session_id, DeliveryStatus.SKIPPED, reason, _iso(now), now, claimed["claim_token"]
        )
        count("TikTokSkipped")
        logger.info("TikTok delivery skipped", extra={"reason": reason})
        return "skipped"

    prepared = prepare(claimed)
    if isinstance(prepared, Outcome):
        outcome, match_keys = prepared, ()
    else:
        outcome, match_keys = post(prepared.body), prepared.match_keys
    attempts = int(claimed.get("delivery_attempts") or 1)
    record(store, session_id, claimed["claim_token"], outcome, attempts, settings, int(clock()), match_keys)
    if outcome.sent:
        return "sent"
    return "failed_retryable" if outcome.retryable else "failed_permanent"


def record(
    store: Store,
    session_id: str,
    claim_token: str,
    outcome: Outcome,
    attempts: int,
    settings: Settings,
    now: int,
    match_keys: tuple[str, ...] = (),
) -> None:
    """Write the outcome under the claim; StoreError if DynamoDB refuses (the send happened: the
    claim then expires and the redrive sends the same event_id again, which TikTok deduplicates)."""
    details = {
        "delivery_code": outcome.code,
        "delivery_message": outcome.message,
        "delivery_request_id": outcome.request_id,
        "delivery_http_status": outcome.http_status,
    }
    if outcome.sent:
        count("TikTokSent")
        for key in match_keys:
            count(f"TikTokMatchKey{key.title().replace('_', '')}")
    else:
        count("TikTokFailed")
        if not outcome.retryable:
            count("TikTokPermanentFailures")
    log = logger.info if outcome.sent else logger.warning
    log(
        "TikTok delivery %s",
        outcome.status.value,
        extra={
            "tiktok_code": outcome.code,
            "tiktok_request_id": outcome.request_id,
            "http_status": outcome.http_status,
            # Ours ("timed out", "HTTP 503, not TikTok JSON"); TikTok's own message, which can
            # quote rejected values, is only recorded in DynamoDB.
            "reason": outcome.message if outcome.code is None else None,
            "retryable": outcome.retryable,
            "attempts": attempts,
        },
    )
    try:
        if outcome.sent:
            held = store.record_sent(session_id, claim_token, details, _iso(now), match_keys)
        else:
            retry_at = now + backoff_seconds(attempts, settings) if outcome.retryable else None
            held = store.record_failure(session_id, claim_token, details, _iso(now), retry_at)
    except StoreError as error:
        logger.error("Could not record the TikTok outcome", extra={"store_error": str(error)})
        count("DeliveryRecordFailures")
        raise
    if not held:
        logger.warning("The delivery claim was lost before the outcome was recorded")


# ---------------------------------------------------------------------- the redrive's other ends


def expire(store: Store, session_id: str, now: int, settings: Settings) -> bool:
    """Give up an unclaimed delivery that is past the maximum age."""
    reason = f"not sent within {settings.delivery_max_age_days} days"
    return store.settle_delivery(session_id, DeliveryStatus.EXPIRED, reason, _iso(now), now)


def requeue(store: Store, session_id: str, now: int) -> dict[str, Any]:
    """Put a delivery back in the redrive queue for its next run (an operator's replay).

    Refused for a delivery already sent (TikTok has it) or one that has no stored event (skipped
    or expired: the event was never stored, or was deleted)."""
    item = store.requeue_delivery(session_id, _iso(now), now)
    if item is not None:
        return item
    existing = store.get_session(session_id)
    if existing is None:
        raise LookupError(f"no session {session_id}")
    status = existing.get("delivery_status")
    if status == DeliveryStatus.SENT:
        raise ValueError(f"{session_id} is sent: TikTok already has it, and it is never sent twice")
    if status == DeliveryStatus.EXPIRED:
        raise ValueError(f"{session_id} expired unsent and its stored event was deleted")
    raise ValueError(f"{session_id} is {status} with no stored event: it was never to be sent")


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
