"""The stream sender: every new pending delivery in the Sessions table's stream, sent to its
destination."""

# One event source mapping carries every destination's new deliveries (its filter in template.yaml
# lets only INSERTs of pending deliveries through). A batch's deliveries are grouped by destination
# and each destination's are sent in a thread of its own, so a slow or failing platform holds the
# others' no longer than its own bounded time. Per destination: each record's delivery claimed, all
# of them POSTed in one request (outbox/batch.py), each outcome recorded. Records arrive at least
# once; the claim makes a record seen twice find the delivery held or finished.
#
# What Lambda is told (partial batch response): a platform's failure is recorded on the item, where
# the redrive retries it with backoff, and counts as processed. A record fails, and Lambda delivers
# it again, only when the work could not be done: the store failing while claiming or recording, an
# unreadable secret, or too little time left in this invocation to start the batch. Deliveries
# claimed and then left unsent for lack of time are released to the redrive (due at once).

import functools
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from checkout_conversions.destinations.base import DestinationSettings
from checkout_conversions.observability import count, in_this_trace, logger, report_ignored_settings
from checkout_conversions.outbox import attempt
from checkout_conversions.outbox.batch import RECORD_MARGIN_SECONDS, deliver, in_parallel
from checkout_conversions.outbox.model import AttemptResult, Delivery, Ledger, StoreError, event_of
from checkout_conversions.outbox.sending import open_sending
from checkout_conversions.secrets import ConfigurationError
from checkout_conversions.settings import Settings, load_settings


class OutOfTime(Exception):
    """Too little of the invocation is left to start another send: Lambda delivers it again."""


@dataclass(frozen=True)
class Batch:
    """What one invocation works with."""

    ledger: Ledger
    settings: Settings
    http: httpx.Client
    remaining_seconds: Callable[[], float]
    clock: Callable[[], float]


def new_processor() -> BatchProcessor:
    # A batch in which every record failed is answered like any other partial failure (every
    # sequence number listed), not raised: Lambda then retries from the first, as it would.
    return BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)


def send_new_deliveries(
    event: dict[str, Any],
    context: Any,
    processor: BatchProcessor,
    open_ledger: Callable[[Settings], Ledger],
    http_client: httpx.Client,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Process one batch of stream records; the answer lists the records Lambda must retry."""
    settings = load_settings()
    report_ignored_settings(settings.problems)
    settings.tables.require()
    batch = Batch(
        open_ledger(settings),
        settings,
        http_client,
        lambda: context.get_remaining_time_in_millis() / 1000,
        clock,
    )
    records = event.get("Records") if isinstance(event, dict) else None
    results = _send_all(batch, records if isinstance(records, list) else [])
    tally = Counter(
        (result if isinstance(result, AttemptResult) else AttemptResult.RETRY_LATER).value
        for result in results.values()
    )

    def answer(record: DynamoDBRecord) -> str:
        result = results.get(id(record.raw_event), AttemptResult.IGNORED)
        if isinstance(result, Exception):
            raise result
        return result.value

    response = process_partial_response(event, answer, processor, context)
    logger.info("Stream batch finished", extra=dict(tally))
    return dict(response)


def _send_all(batch: Batch, records: list[Any]) -> dict[int, AttemptResult | Exception]:
    """Each record's result, keyed by the record's identity; one thread per destination."""
    results: dict[int, AttemptResult | Exception] = {}
    by_destination: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for record in records:
        announced = batch.ledger.announced(record)
        destination = batch.settings.known_destination(announced[1]) if announced else None
        if announced is None or destination is None:
            results[id(record)] = AttemptResult.IGNORED
        else:
            by_destination[destination.name].append((id(record), announced[0]))
    groups = [(batch.settings.destination(name), keys) for name, keys in by_destination.items()]
    if len(groups) <= 1:
        for destination, keys in groups:
            results.update(_send_destination(batch, destination, keys))
        return results
    with ThreadPoolExecutor(max_workers=len(groups)) as pool:
        runs = [in_this_trace(functools.partial(_send_destination, batch, *group)) for group in groups]
        for done in pool.map(lambda run: run(), runs):
            results.update(done)
    return results


def _send_destination(
    batch: Batch, destination: DestinationSettings, keys: list[tuple[int, str]]
) -> dict[int, AttemptResult | Exception]:
    """One destination's records of the batch: each claimed, then all sent in one request."""
    try:
        sending = open_sending(destination, batch.settings, batch.http)
    except ConfigurationError as problem:
        # Read once per batch: the batch's other records of this destination fail with it.
        logger.error("Cannot read a secret; Lambda retries the batch", extra={"problem": str(problem)})
        count("ConfigurationErrors")
        return {identity: problem for identity, _ in keys}
    left_seconds = batch.remaining_seconds()
    needed_seconds = sending.worst_case_seconds + RECORD_MARGIN_SECONDS
    if left_seconds < needed_seconds:
        late = OutOfTime(f"{left_seconds:.1f}s left in this invocation, a send needs {needed_seconds:g}s")
        return {identity: _not_processed(key, late) for identity, key in keys}
    results, claimed = _claim_all(batch, keys, left_seconds)

    sent = deliver(batch.ledger, list(claimed.values()), sending, batch.clock, batch.remaining_seconds)
    for identity, key in keys:
        if key in sent:
            result = sent[key]
            results[identity] = _not_processed(key, result) if isinstance(result, Exception) else result
    return results


def _claim_all(
    batch: Batch, keys: list[tuple[int, str]], hold_seconds: float
) -> tuple[dict[int, AttemptResult | Exception], dict[str, Delivery]]:
    """Each record's delivery claimed, a few at a time: what could not be claimed (its result),
    and the claimed deliveries by key."""
    now = int(batch.clock())

    def claim(key: str) -> Delivery | Exception | None:
        try:
            return attempt.claim_new(batch.ledger, key, now, hold_seconds=hold_seconds)
        except Exception as error:  # noqa: BLE001 - Lambda delivers the record again
            return error

    results: dict[int, AttemptResult | Exception] = {}
    claimed: dict[str, Delivery] = {}
    for (identity, key), held in zip(keys, in_parallel(claim, [key for _, key in keys]), strict=True):
        if isinstance(held, Exception):
            results[identity] = _not_processed(key, held)
        elif held is None:
            logger.info(
                "Delivery already claimed or finished: nothing to send", extra={"event_id": event_of(key)}
            )
            results[identity] = AttemptResult.NOT_CLAIMED
        else:
            claimed[key] = held
    return results, claimed


def _not_processed(key: str, error: Exception) -> Exception:
    logger.warning(
        "Record not processed: Lambda delivers it again",
        extra={"event_id": event_of(key), "error": _described(error)},
    )
    count("SenderRecordFailures")
    return error


def _described(error: Exception) -> str:
    """Our own errors say what failed (an error code, a time, a setting's name); anything else is
    named by its type only, since its text could quote a value."""
    if isinstance(error, OutOfTime | StoreError | ConfigurationError):
        return f"{type(error).__name__}: {error}"
    return type(error).__name__
