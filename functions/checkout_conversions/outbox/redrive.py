"""The scheduled redrive: finish every delivery the stream sender did not, one destination per run."""

# Each destination has its own schedule (template.yaml: the event names the destination), so one
# destination timing out never uses up another's run. It reads the destination's partition of the
# sparse RedriveIndex (only deliveries that still need work are in it, ordered by when they are
# due), never scans the table: retries of failed deliveries with backoff, pending deliveries the
# stream did not finish within the grace period, and expiry after the maximum age. It claims each
# delivery before sending, as the stream sender does, and sends a page of them in as few requests as
# the platform takes (outbox/batch.py). One clock (`clock`) for the whole run.

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

from checkout_conversions.aws import WORST_CASE_CALL_SECONDS
from checkout_conversions.destinations.base import DestinationSettings
from checkout_conversions.observability import count, logger, report_ignored_settings
from checkout_conversions.outbox import attempt, policy
from checkout_conversions.outbox.batch import deliver, in_parallel
from checkout_conversions.outbox.model import AttemptResult, Delivery, DueEntry, Ledger, SkipReason, event_of
from checkout_conversions.outbox.sending import Sending, open_sending
from checkout_conversions.secrets import ConfigurationError
from checkout_conversions.settings import Settings, load_settings

# Stop starting new sends when less than this (plus one whole send) is left of the Lambda's time.
STOP_MARGIN_SECONDS = 2 * WORST_CASE_CALL_SECONDS  # the claim and the record, each with retries
MAX_PAGES = 20


def redrive_due_deliveries(
    open_ledger: Callable[[Settings], Ledger], http_client: httpx.Client, context: Any, event: Any = None
) -> dict[str, Any]:
    """The scheduled invocation: the settings of the moment, then one run for the destination the
    schedule names (every configured destination in turn when the event names none, as a manual
    run). Returns each destination's tally."""
    settings = load_settings()
    report_ignored_settings(settings.problems)
    settings.tables.require()
    named = event.get("destination") if isinstance(event, dict) else None
    chosen = (settings.destination(named),) if named else settings.configured_destinations
    ledger = open_ledger(settings)
    return {
        destination.name: run_redrive(
            ledger, destination, http_client, settings, context.get_remaining_time_in_millis
        )
        for destination in chosen
    }


def run_redrive(
    ledger: Ledger,
    destination: DestinationSettings,
    http_client: httpx.Client,
    settings: Settings,
    remaining_millis: Callable[[], int],
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Work through one destination's due deliveries; returns how many ended in each way."""
    if not destination.configured:
        # Not part of this deployment (its schedule still runs): no secret to read, nothing to do.
        return {"disabled": SkipReason.NO_PIXEL.describe(destination)}
    logger.append_keys(destination=destination.name)
    try:
        sending = open_sending(destination, settings, http_client)
    except ConfigurationError as error:
        logger.error("Cannot read a secret; nothing sent this run", extra={"problem": str(error)})
        count("ConfigurationErrors")
        logger.remove_keys(["destination"])
        return {"disabled": "secret unreadable"}
    if not sending.access_token:
        reason = SkipReason.NO_TOKEN.describe(destination)
        logger.info("Redrive idle", extra={"reason": reason})
        logger.remove_keys(["destination"])
        return {"disabled": reason}
    tally = _work_through(ledger, sending, lambda: remaining_millis() / 1000, clock)
    logger.info("Redrive finished", extra=dict(tally))
    logger.remove_keys(["destination"])
    return dict(tally)


def _work_through(
    ledger: Ledger, sending: Sending, seconds_left: Callable[[], float], clock: Callable[[], float]
) -> Counter[str]:
    """One pass through the due deliveries, page by page, each page's claimed deliveries sent in
    as few requests as the platform takes. What this run handles leaves the due range (sent, or
    pushed into the future by its backoff), and a delivery that failed stays behind the page key,
    so a delivery that keeps failing cannot hold up the ones after it.

    The run's first request carries one delivery (those before it that need no request, expired
    or skipped, are taken one by one too): while a destination is paused (its token refused, read
    again) that probe is the run's only request, and its refusal ends the run; once a probe is
    accepted the run goes on through every waiting delivery."""
    tally: Counter[str] = Counter()
    destination = sending.destination
    enough = STOP_MARGIN_SECONDS + sending.worst_case_seconds
    after = None
    found = 0

    def stop() -> bool:
        return seconds_left() < enough or sending.refused is not None

    def work(part: list[DueEntry]) -> None:
        tally.update(result.value for result in _redrive_page(ledger, sending, part, clock, seconds_left))

    for _ in range(MAX_PAGES):
        due, after = ledger.due(destination.name, int(clock()), sending.settings.redrive.batch_size, after)
        found += len(due)
        # One delivery at a time until the run has made a request: its probe.
        while due and not sending.requests and not stop():
            probe, due = due[:1], due[1:]
            work(probe)
        if due and not stop():
            work(due)
        if after is None or stop():
            break
    count(f"{destination.label}RedriveBacklog", found)  # the due deliveries this run found
    if sending.refused is not None:
        logger.warning(
            f"{destination.label} refused its token: paused, the next run tries one delivery",
            extra={"platform_code": sending.refused.code},
        )
    return tally


def _redrive_page(
    ledger: Ledger,
    sending: Sending,
    due: list[DueEntry],
    clock: Callable[[], float],
    seconds_left: Callable[[], float],
) -> list[AttemptResult]:
    """Expire what is too old, claim the rest, send what was claimed; each entry's result."""
    hold_seconds = seconds_left()
    taken = in_parallel(lambda entry: _take(ledger, sending, entry, clock, hold_seconds), due)
    claimed = [delivery for delivery in taken if isinstance(delivery, Delivery)]
    results = [result for result in taken if isinstance(result, AttemptResult)]
    sent = deliver(ledger, claimed, sending, clock, seconds_left)
    for result in sent.values():
        if isinstance(result, Exception):  # logged where it happened; the delivery stays due
            count("RedriveItemErrors")
            result = AttemptResult.ERROR
        results.append(result)
    return results


def _take(
    ledger: Ledger, sending: Sending, entry: DueEntry, clock: Callable[[], float], hold_seconds: float
) -> Delivery | AttemptResult:
    """The due delivery, claimed for this run; or, when it is too old, expired."""
    destination = sending.destination
    now = int(clock())
    try:
        event_time = entry.event_time or now
        if policy.past_max_age(destination, event_time, now):
            if not attempt.expire(ledger, destination, entry.key, now):
                return AttemptResult.NOT_CLAIMED
            count("DeliveriesExpired")
            logger.warning(
                f"{destination.label} delivery given up: too old",
                extra={"age_days": round((now - event_time) / 86400, 1), "event_id": event_of(entry.key)},
            )
            return AttemptResult.EXPIRED
        # The claim outlives this invocation: if it is killed mid-send, nobody else sends meanwhile.
        claimed = attempt.claim_due(ledger, destination.name, entry.key, now, hold_seconds=hold_seconds)
        return AttemptResult.NOT_CLAIMED if claimed is None else claimed
    except Exception:  # noqa: BLE001 - one bad delivery must not hold up the others
        logger.exception(
            "Redrive of one delivery failed; it stays due", extra={"event_id": event_of(entry.key)}
        )
        count("RedriveItemErrors")
        return AttemptResult.ERROR
