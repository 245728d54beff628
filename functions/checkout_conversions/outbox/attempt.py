"""One delivery's part of an attempt: its claim, its event (or why it goes without one), and the
record of what came of it. Shared by the stream sender and the redrive (the POST: outbox/batch.py)."""

# Whoever sends holds a claim (`claim_token`, `claim_expires_at`) taken by a conditional write, so
# the sender and the redrive never send the same delivery at the same time, and a stream record
# seen twice finds the delivery claimed or finished. A claim outlives the invocation that holds it,
# so a crashed holder's claim expires and the redrive takes the delivery over.
#
# A platform refusing the token (Verdict.UNAUTHORIZED: expired, revoked, no rights on the pixel)
# makes the token be read again from its store at once, past the cache: a token rotated a moment
# ago is POSTed with in the same attempt (batch.py). Refused again, the deliveries are recorded
# `paused` (kept in the redrive queue, due at the next run) and so is every other delivery of that
# destination in the same stream batch, without a request; the redrive's run ends there.

import uuid
from collections.abc import Callable

from checkout_conversions.destinations.base import Answer, DestinationSettings, Prepared
from checkout_conversions.observability import count, logger, seconds
from checkout_conversions.outbox import policy
from checkout_conversions.outbox.model import (
    AttemptResult,
    Delivery,
    DeliveryStatus,
    Ledger,
    Outcome,
    SkipReason,
    StoreError,
)
from checkout_conversions.outbox.sending import Sending, prepare
from checkout_conversions.settings import Settings

CLAIM_MARGIN_SECONDS = 30


def claim_new(ledger: Ledger, key: str, now: int, hold_seconds: float) -> Delivery | None:
    """The stream sender's claim: a pending delivery nobody holds; None if there is none."""
    return ledger.claim_new(key, uuid.uuid4().hex, now, _hold_until(now, hold_seconds))


def claim_due(ledger: Ledger, queue: str, key: str, now: int, hold_seconds: float) -> Delivery | None:
    """The redrive's claim: a delivery whose (re)try is due and nobody holds; None otherwise."""
    return ledger.claim_due(key, queue, uuid.uuid4().hex, now, _hold_until(now, hold_seconds))


def _hold_until(now: int, hold_seconds: float) -> int:
    return int(now + hold_seconds + CLAIM_MARGIN_SECONDS)


# ---------------------------------------------------------------------- one attempt


def settle_or_prepare(
    ledger: Ledger, claimed: Delivery, sending: Sending, clock: Callable[[], float]
) -> Prepared | AttemptResult:
    """A delivery this caller has just claimed: its event, ready to go into a request, or how it
    ended without one: settled as skipped when the policy says it must not be sent now, paused
    when the destination's token was refused earlier in this batch or run, failed when its event
    cannot be built now (Stripe's API unavailable). StoreError when the ledger fails."""
    destination = sending.destination
    skip = policy.skip_reason(
        destination,
        claimed.facts,
        sending.settings.require_ad_consent,
        int(clock()),
        sending.access_token,
        sending.test_event_code,
    )
    if skip is None and not claimed.has_payload:
        skip = SkipReason.NOTHING_STORED
    if skip is not None:
        reason = skip.describe(destination)
        ledger.settle(claimed.key, DeliveryStatus.SKIPPED, reason, int(clock()), claimed.claim_token, None)
        count(f"{destination.label}Skipped")
        logger.info(
            f"{destination.label} delivery skipped", extra={"reason": reason, "event_id": claimed.event_id}
        )
        return AttemptResult.SKIPPED
    prepared = prepare(claimed, sending) if sending.refused is None else sending.refused
    if isinstance(prepared, Answer):
        outcome = Outcome(prepared)
        record(ledger, destination, claimed, outcome, sending.settings, int(clock()))
        return result_of(outcome.answer)
    return prepared


def result_of(answer: Answer) -> AttemptResult:
    if answer.accepted:
        return AttemptResult.SENT
    if answer.unauthorized:
        return AttemptResult.PAUSED
    return AttemptResult.FAILED_RETRYABLE if answer.retryable else AttemptResult.FAILED_PERMANENT


def record(
    ledger: Ledger,
    destination: DestinationSettings,
    claimed: Delivery,
    outcome: Outcome,
    settings: Settings,
    now: int,
) -> None:
    """Write the outcome under the claim; StoreError if the store refuses (the send happened: the
    claim then expires and the redrive sends the same event_id again, which the platform
    deduplicates). A refused token pauses the delivery: due again at once, at the next run."""
    _count(destination.label, outcome)
    _log(destination, claimed, outcome.answer)
    try:
        held = _write(ledger, destination, claimed, outcome, settings, now)
    except StoreError as error:
        logger.error(f"Could not record the {destination.label} outcome", extra={"store_error": str(error)})
        count("DeliveryRecordFailures")
        raise
    if not held:
        logger.warning("The delivery claim was lost before the outcome was recorded")
    if outcome.answer.accepted:
        # The product's promise measured: from the payment (Stripe's event) to the platform's "yes".
        seconds(f"{destination.label}DeliveryLag", max(now - claimed.facts.event_time, 0))


def _write(
    ledger: Ledger,
    destination: DestinationSettings,
    claimed: Delivery,
    outcome: Outcome,
    settings: Settings,
    now: int,
) -> bool:
    answer, token = outcome.answer, claimed.claim_token or ""
    if answer.accepted:
        return ledger.record_sent(claimed.key, token, outcome, now)
    if answer.unauthorized:
        reason = SkipReason.ACCESS_REFUSED.describe(destination)
        return ledger.record_paused(claimed.key, token, outcome, reason, now, now)
    retry_at = now + settings.redrive.backoff_seconds(claimed.attempts) if answer.retryable else None
    return ledger.record_failure(claimed.key, token, outcome, now, retry_at)


def _log(destination: DestinationSettings, claimed: Delivery, answer: Answer) -> None:
    status = _status(answer)
    extra = {
        "event_id": claimed.event_id,
        "destination": destination.name,
        "platform_code": answer.code,
        "platform_request_id": answer.request_id,
        "http_status": answer.http_status,
        # Ours ("timed out", "HTTP 503, not TikTok JSON"); the platform's own message, which can
        # quote rejected values, is only recorded in DynamoDB.
        "reason": answer.message if answer.code is None else None,
        "retryable": answer.retryable,
        "attempts": claimed.attempts,
    }
    if status is DeliveryStatus.PAUSED:
        extra["reason"] = SkipReason.ACCESS_REFUSED.describe(destination)
    log = logger.info if answer.accepted else logger.warning
    log(f"{destination.label} delivery %s", status.value, extra=extra)


def _status(answer: Answer) -> DeliveryStatus:
    if answer.accepted:
        return DeliveryStatus.SENT
    return DeliveryStatus.PAUSED if answer.unauthorized else DeliveryStatus.FAILED


def _count(label: str, outcome: Outcome) -> None:
    answer = outcome.answer
    if answer.accepted:
        count(f"{label}Sent")
        for name in outcome.match_keys:
            count(f"{label}MatchKey{name.title().replace('_', '')}")
    elif answer.unauthorized:
        count(f"{label}Paused")
    else:
        count(f"{label}Failed")
        if not answer.retryable:
            count(f"{label}PermanentFailures")


# ---------------------------------------------------------------------- the redrive's other ends


def expire(ledger: Ledger, destination: DestinationSettings, key: str, now: int) -> bool:
    """Give up an unclaimed delivery that is past the maximum age."""
    reason = SkipReason.NOT_SENT_IN_TIME.describe(destination)
    return ledger.settle(key, DeliveryStatus.EXPIRED, reason, now, None, destination.name)


def requeue(ledger: Ledger, destination: DestinationSettings, key: str, now: int) -> Delivery:
    """Put a delivery back in the redrive queue for its next run (an operator's replay).

    Refused for a delivery already sent (the platform has it) or one that has no stored event
    (skipped or expired: the event was never stored, or was deleted)."""
    requeued = ledger.requeue(key, destination.name, now)
    if requeued is not None:
        return requeued
    existing = ledger.get(key)
    if existing is None:
        raise LookupError(f"no {destination.label} delivery {key}")
    if existing.status is DeliveryStatus.SENT:
        raise ValueError(f"{key} is sent: {destination.label} already has it, and it is never sent twice")
    if existing.status is DeliveryStatus.EXPIRED:
        raise ValueError(f"{key} expired unsent and its stored event was deleted")
    raise ValueError(f"{key} is {existing.status} with no stored event: it was never to be sent")
