"""The stream sender: every new pending delivery in the Sessions table's stream, sent to its
destination.

Lambda's event source mappings invoke it with batches of stream records, one mapping per
destination (its filter in template.yaml lets only INSERTs of that destination's pending
deliveries through), so a destination that is down or slow holds up only its own shard
iterator. Per record: claim the delivery, POST, record the outcome. Records arrive at least
once; the claim makes a record seen twice, or a batch replayed after a partial failure, find the
delivery held or finished, so nothing is sent twice.

What Lambda is told (partial batch response): a platform's failure is recorded on the item, where
the redrive retries it with backoff, and counts as processed. A record fails, and Lambda delivers
it again, only when the work could not be done: DynamoDB errors while claiming or recording, an
unreadable token, or too little time left in this invocation to start another send.
"""

import functools
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from checkout_conversions import delivery, destinations, outbound
from checkout_conversions.config import (
    ConfigurationError,
    Settings,
    access_token,
    load_settings,
    require_tables,
)
from checkout_conversions.delivery import DeliveryStatus
from checkout_conversions.destinations import Destination
from checkout_conversions.observability import count, logger, report_ignored_settings
from checkout_conversions.store import Store, StoreError

# A send is only started when what it can take at most (outbound.worst_case_seconds: the line
# items read and the POST) and this much more for the claim and the record is left.
RECORD_MARGIN_SECONDS = 10


class OutOfTime(Exception):
    """Too little of the invocation is left to start another send: Lambda delivers it again."""


def new_processor() -> BatchProcessor:
    # A batch in which every record failed is answered like any other partial failure (every
    # sequence number listed), not raised: Lambda then retries from the first, as it would.
    return BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)


def pending_delivery(record: DynamoDBRecord) -> tuple[str, Destination] | None:
    """The key and destination of a newly started delivery waiting to be sent, else None: the
    filters in template.yaml let only those through, but a record is checked here all the same,
    on its raw typed JSON, so that no shape of record can make this fail."""
    raw = record.raw_event
    stream_record = raw.get("dynamodb")
    image = stream_record.get("NewImage") if isinstance(stream_record, dict) else None
    if raw.get("eventName") != "INSERT" or not isinstance(image, dict):
        return None
    if image.get("delivery_status") != {"S": DeliveryStatus.PENDING.value}:
        return None
    key = _text(image.get("session_id"))
    if "destination" in image:
        destination = destinations.recorded(_text(image["destination"]))
    else:
        destination = destinations.TIKTOK  # recorded before there were two destinations
    if key is None or destination is None:
        return None
    return key, destination


def _text(value: Any) -> str | None:
    text = value.get("S") if isinstance(value, dict) else None
    return text if isinstance(text, str) and text else None


def send_new_deliveries(
    event: dict[str, Any],
    context: Any,
    processor: BatchProcessor,
    dynamodb: Any,
    http_client: httpx.Client,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Process one batch of stream records; the answer lists the records Lambda must retry."""
    settings = load_settings()
    report_ignored_settings(settings.problems)
    require_tables(settings)
    store = Store(dynamodb, settings.sessions_table, settings.customers_table)
    secrets = _SecretsOncePerBatch(settings)
    tally: Counter[str] = Counter()

    def handle(record: DynamoDBRecord) -> str:
        pending = pending_delivery(record)
        if pending is None:
            tally["ignored"] += 1
            return "ignored"
        key, destination = pending
        logger.append_keys(event_id=key.rpartition("#")[0] or key, destination=destination.name)
        try:
            outcome = _send_one(destination, key, store, settings, context, secrets, http_client, clock)
        except Exception as error:
            tally["retry_later"] += 1
            logger.warning(
                "Record not processed: Lambda delivers it again", extra={"error": _described(error)}
            )
            count("SenderRecordFailures")
            raise
        finally:
            logger.remove_keys(["event_id", "destination"])
        tally[outcome] += 1
        return outcome

    answer = process_partial_response(event, handle, processor, context)
    logger.info("Stream batch finished", extra=dict(tally))
    return answer


class _SecretsOncePerBatch:
    """A destination's token and the Stripe API key (what reads line items, or None without a
    key), read at send time, once per batch. A read that failed fails the batch's other records
    that need it too, without trying again: logged and counted once, retried by Lambda."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._read: dict[str, Any] = {}

    def __call__(self, destination: Destination) -> tuple[str, outbound.LineItems | None]:
        token = self._once(destination.name, lambda: access_token(self._settings, destination.name))
        return token, self._once("stripe", lambda: outbound.line_items_reader(self._settings))

    def _once(self, name: str, read: Callable[[], Any]) -> Any:
        if name not in self._read:
            try:
                self._read[name] = read()
            except ConfigurationError as problem:
                logger.error(
                    "Cannot read a secret; Lambda retries the batch", extra={"problem": str(problem)}
                )
                count("ConfigurationErrors")
                self._read[name] = problem
        value = self._read[name]
        if isinstance(value, ConfigurationError):
            raise value
        return value


def _send_one(
    destination: Destination,
    key: str,
    store: Store,
    settings: Settings,
    context: Any,
    secrets: _SecretsOncePerBatch,
    http_client: httpx.Client,
    clock: Callable[[], float],
) -> str:
    token, read_line_items = secrets(destination)  # before the claim: an unreadable secret holds nothing
    left_seconds = context.get_remaining_time_in_millis() / 1000
    needed_seconds = outbound.worst_case_seconds(destination, settings, read_line_items is not None)
    if left_seconds < needed_seconds + RECORD_MARGIN_SECONDS:
        raise OutOfTime(f"{left_seconds:.1f}s left in this invocation, a send needs {needed_seconds:g}s")
    claimed = delivery.claim_new(store, key, int(clock()), hold_seconds=left_seconds)
    if claimed is None:
        logger.info("Delivery already claimed or finished: nothing to send")
        return "not_claimed"
    prepare = functools.partial(
        outbound.prepare, destination, settings=settings, read_line_items=read_line_items
    )
    post = functools.partial(destination.module().post, http_client, settings, token)
    return delivery.deliver_claimed(store, destination, claimed, token, prepare, post, settings, clock)


def _described(error: Exception) -> str:
    """Our own errors say what failed (an error code, a time, a setting's name); anything else is
    named by its type only, since its text could quote a value."""
    if isinstance(error, OutOfTime | StoreError | ConfigurationError):
        return f"{type(error).__name__}: {error}"
    return type(error).__name__
