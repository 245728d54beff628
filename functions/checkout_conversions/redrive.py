"""The scheduled redrive: finish every delivery the stream sender did not, one destination per run.

Each destination has its own schedule (template.yaml: the event names the destination), so one
destination timing out never uses up another's run. It reads the destination's partition of the
sparse RedriveIndex (only deliveries that still need work are in it, ordered by when they are
due), never scans the table: retries of failed deliveries with backoff, pending deliveries the
stream did not finish within the grace period, and expiry after the maximum age. It claims each
delivery before sending, as the stream sender does, so the two never send the same delivery at
the same time. One clock (`clock`) for the whole run.
"""

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

from checkout_conversions import delivery, destinations, outbound
from checkout_conversions.config import (
    ConfigurationError,
    Settings,
    access_token,
    load_settings,
    require_tables,
)
from checkout_conversions.destinations import Destination
from checkout_conversions.observability import count, logger, report_ignored_settings
from checkout_conversions.store import Store

# Stop starting new sends when less than this (plus one whole send) is left of the Lambda's time.
STOP_MARGIN_SECONDS = 10
MAX_PAGES = 20


def redrive_due_deliveries(
    dynamodb: Any, http_client: httpx.Client, context: Any, event: Any = None
) -> dict[str, Any]:
    """The scheduled invocation: the settings of the moment, then one run for the destination the
    schedule names (every configured destination in turn when the event names none, as a manual
    run). Returns each destination's tally."""
    settings = load_settings()
    report_ignored_settings(settings.problems)
    require_tables(settings)
    store = Store(dynamodb, settings.sessions_table, settings.customers_table)
    named = event.get("destination") if isinstance(event, dict) else None
    chosen = (destinations.by_name(named),) if named else destinations.enabled(settings)
    return {
        destination.name: run_redrive(
            store, destination, http_client, settings, context.get_remaining_time_in_millis
        )
        for destination in chosen
    }


def run_redrive(
    store: Store,
    destination: Destination,
    http_client: httpx.Client,
    settings: Settings,
    remaining_millis: Callable[[], int],
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Work through one destination's due deliveries; returns how many ended in each way."""
    tally: Counter[str] = Counter()
    if not destination.enabled(settings):
        # Not part of this deployment (its schedule still runs): no secret to read, nothing to do.
        return {"disabled": destinations.settings_skip_reason(destination, settings, livemode=True)}
    logger.append_keys(destination=destination.name)
    try:
        token = access_token(settings, destination.name)
        read_line_items = outbound.line_items_reader(settings)
    except ConfigurationError as error:
        logger.error("Cannot read a secret; nothing sent this run", extra={"problem": str(error)})
        count("ConfigurationErrors")
        return {"disabled": "secret unreadable"}
    disabled = destinations.skip_reason_at_send_time(destination, settings, token, livemode=True)
    if disabled:
        logger.info("Redrive idle", extra={"reason": disabled})
        return {"disabled": disabled}

    def prepare(item: dict[str, Any]) -> delivery.Prepared | delivery.Outcome:
        return outbound.prepare(destination, item, settings, read_line_items)

    def post(body: bytes) -> delivery.Outcome:
        return destination.module().post(http_client, settings, token, body)

    one_send = outbound.worst_case_seconds(destination, settings, read_line_items is not None)

    def seconds_left() -> float:
        return remaining_millis() / 1000

    # One pass through the due deliveries, page by page. What this run handles leaves the due
    # range (sent, or pushed into the future by its backoff), and a delivery that failed stays
    # behind the page key, so a delivery that keeps failing cannot hold up the ones after it.
    after = None
    for _ in range(MAX_PAGES):
        due, after = store.due_deliveries(destination.name, int(clock()), settings.redrive_batch_size, after)
        for entry in due:
            if seconds_left() < STOP_MARGIN_SECONDS + one_send:
                break
            logger.append_keys(event_id=entry["session_id"].rpartition("#")[0] or entry["session_id"])
            try:
                outcome = _redrive_one(
                    store, destination, settings, token, prepare, post, entry, clock, seconds_left()
                )
            except Exception:  # noqa: BLE001 - one bad delivery must not hold up the others
                logger.exception("Redrive of one delivery failed; it stays due")
                count("RedriveItemErrors")
                outcome = "error"
            tally[outcome] += 1
        if after is None or seconds_left() < STOP_MARGIN_SECONDS + one_send:
            break
    logger.info("Redrive finished", extra=dict(tally))
    logger.remove_keys(["event_id", "destination"])
    return dict(tally)


def _redrive_one(
    store: Store,
    destination: Destination,
    settings: Settings,
    token: str,
    prepare: delivery.Prepare,
    post: delivery.Post,
    entry: dict[str, Any],
    clock: Callable[[], float],
    seconds_left: float,
) -> str:
    key = entry["session_id"]
    now = int(clock())
    event_time = int(entry.get("event_time") or now)
    if destinations.too_old(destination, settings, event_time, now):
        if not delivery.expire(store, destination, key, now, settings):
            return "not_claimed"
        count("DeliveriesExpired")
        logger.warning(
            f"{destination.label} delivery given up: too old",
            extra={"age_days": round((now - event_time) / 86400, 1)},
        )
        return "expired"

    # The claim outlives this invocation: if it is killed mid-send, nobody else sends meanwhile.
    claimed = delivery.claim_due(store, destination, key, now, hold_seconds=seconds_left)
    if claimed is None:
        return "not_claimed"
    return delivery.deliver_claimed(store, destination, claimed, token, prepare, post, settings, clock)
