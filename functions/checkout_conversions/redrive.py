"""The scheduled redrive: finish every TikTok delivery the webhook could not.

It reads the sparse RedriveIndex (only deliveries that still need work are in it, ordered by
when they are due), never scans the table, and claims each delivery before sending, exactly as
the webhook does, so the two never send the same session at the same time.
"""

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

from checkout_conversions import delivery
from checkout_conversions.config import ConfigurationError, Settings, tiktok_access_token
from checkout_conversions.observability import count, logger
from checkout_conversions.store import Store

# Stop starting new sends when less than this is left of the Lambda's time.
STOP_MARGIN_SECONDS = 10
MAX_PAGES = 20


def run_redrive(
    store: Store,
    http_client: httpx.Client,
    settings: Settings,
    remaining_millis: Callable[[], int],
    now: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Work through the due deliveries; returns how many ended in each way."""
    tally: Counter[str] = Counter()
    try:
        token = tiktok_access_token(settings)
    except ConfigurationError as error:
        logger.error("Cannot read the TikTok token; nothing sent this run", extra={"problem": str(error)})
        count("ConfigurationErrors")
        return {"disabled": "token unreadable"}
    disabled = delivery.skip_reason(settings, token, livemode=True)
    if disabled:
        logger.info("Redrive idle", extra={"reason": disabled})
        return {"disabled": disabled}

    def time_left() -> bool:
        return remaining_millis() / 1000 > STOP_MARGIN_SECONDS + settings.tiktok_timeout_seconds

    # One pass through the due deliveries, page by page. What this run handles leaves the due
    # range (sent, or pushed into the future by its backoff), and a delivery that failed stays
    # behind the page key, so a delivery that keeps failing cannot hold up the ones after it.
    after = None
    for _ in range(MAX_PAGES):
        due, after = store.due_deliveries(int(now()), settings.redrive_batch_size, after)
        for entry in due:
            if not time_left():
                break
            try:
                outcome = _redrive_one(store, http_client, settings, token, entry, int(now()))
            except Exception:  # noqa: BLE001 - one bad delivery must not hold up the others
                logger.exception("Redrive of one delivery failed; it stays due")
                count("RedriveItemErrors")
                outcome = "error"
            tally[outcome] += 1
        if after is None or not time_left():
            break
    logger.remove_keys(["checkout_session_id"])
    logger.info("Redrive finished", extra=dict(tally))
    return dict(tally)


def _redrive_one(
    store: Store,
    http_client: httpx.Client,
    settings: Settings,
    token: str,
    entry: dict[str, Any],
    now: int,
) -> str:
    session_id = entry["session_id"]
    logger.append_keys(checkout_session_id=session_id)
    event_time = int(entry.get("event_time") or now)
    if delivery.too_old(settings, event_time, now):
        reason = f"not sent within {settings.delivery_max_age_days} days"
        if delivery.settle(store, session_id, delivery.EXPIRED, reason, now):
            count("DeliveriesExpired")
            logger.warning(
                "TikTok delivery given up: too old", extra={"age_days": round((now - event_time) / 86400, 1)}
            )
            return "expired"
        return "not_claimed"

    claimed = delivery.claim(store, session_id, now, settings.tiktok_timeout_seconds)
    if claimed is None:
        return "not_claimed"
    skip = delivery.skip_reason(settings, token, livemode=claimed.get("livemode") is True)
    if skip or "tiktok_event" not in claimed:
        reason = skip or "no stored event"
        delivery.settle(store, session_id, delivery.SKIPPED, reason, now, claimed["claim_token"])
        count("TikTokSkipped")
        return "skipped"
    outcome = delivery.send_claimed(
        store,
        http_client,
        settings,
        token,
        session_id,
        claimed["claim_token"],
        claimed["tiktok_event"],
        attempts=int(claimed.get("delivery_attempts") or 1),
        budget_seconds=settings.tiktok_timeout_seconds,
    )
    if outcome.sent:
        return "sent"
    return "failed_retryable" if outcome.retryable else "failed_permanent"
