"""The stream sender: every new pending delivery in the Sessions table's stream, sent to TikTok.

Lambda's event source mapping invokes it with batches of stream records (only INSERTs of pending
deliveries pass the template's filter). Per record: claim the delivery, POST, record the outcome.
Records arrive at least once; the claim makes a record seen twice, or a batch replayed after a
partial failure, find the delivery held or finished, so nothing is sent twice.

What Lambda is told (partial batch response): a TikTok failure is recorded on the item, where the
redrive retries it with backoff, and counts as processed. A record fails, and Lambda delivers it
again, only when the work could not be done: DynamoDB errors while claiming or recording, an
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

from checkout_conversions import delivery, tiktok_api, tiktok_request
from checkout_conversions.config import (
    ConfigurationError,
    Settings,
    load_settings,
    require_tables,
    tiktok_access_token,
)
from checkout_conversions.delivery import DeliveryStatus
from checkout_conversions.observability import count, logger, report_ignored_settings
from checkout_conversions.store import Store, StoreError

# A send is only started when what it can take at most (tiktok_request.worst_case_seconds: the
# line items read and the POST) and this much more for the claim and the record is left.
RECORD_MARGIN_SECONDS = 10


class OutOfTime(Exception):
    """Too little of the invocation is left to start another send: Lambda delivers it again."""


def new_processor() -> BatchProcessor:
    # A batch in which every record failed is answered like any other partial failure (every
    # sequence number listed), not raised: Lambda then retries from the first, as it would.
    return BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)


def pending_delivery(record: DynamoDBRecord) -> str | None:
    """The session id of a newly provisioned delivery waiting to be sent, else None: the filter
    in template.yaml lets only those through, but a record is checked here all the same, on its
    raw typed JSON, so that no shape of record can make this fail."""
    raw = record.raw_event
    stream_record = raw.get("dynamodb")
    image = stream_record.get("NewImage") if isinstance(stream_record, dict) else None
    if raw.get("eventName") != "INSERT" or not isinstance(image, dict):
        return None
    if image.get("delivery_status") != {"S": DeliveryStatus.PENDING.value}:
        return None
    session_id = image.get("session_id")
    if not isinstance(session_id, dict) or not isinstance(session_id.get("S"), str) or not session_id["S"]:
        return None
    return session_id["S"]


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
        session_id = pending_delivery(record)
        if session_id is None:
            tally["ignored"] += 1
            return "ignored"
        logger.append_keys(checkout_session_id=session_id)
        try:
            outcome = _send_one(session_id, store, settings, context, secrets, http_client, clock)
        except Exception as error:
            tally["retry_later"] += 1
            logger.warning(
                "Record not processed: Lambda delivers it again", extra={"error": _described(error)}
            )
            count("SenderRecordFailures")
            raise
        finally:
            logger.remove_keys(["checkout_session_id"])
        tally[outcome] += 1
        return outcome

    answer = process_partial_response(event, handle, processor, context)
    logger.info("Stream batch finished", extra=dict(tally))
    return answer


class _SecretsOncePerBatch:
    """The TikTok token and the Stripe API key (what reads line items, or None without a key),
    read at send time, once per batch. A read that failed fails the batch's other records too,
    without trying again: logged and counted once, retried by Lambda."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._secrets: tuple[str, tiktok_request.LineItems | None] | None = None
        self._problem: ConfigurationError | None = None

    def __call__(self) -> tuple[str, tiktok_request.LineItems | None]:
        if self._problem is not None:
            raise self._problem
        if self._secrets is None:
            try:
                self._secrets = (
                    tiktok_access_token(self._settings),
                    tiktok_request.line_items_reader(self._settings),
                )
            except ConfigurationError as problem:
                logger.error(
                    "Cannot read a secret; Lambda retries the batch", extra={"problem": str(problem)}
                )
                count("ConfigurationErrors")
                self._problem = problem
                raise
        return self._secrets


def _send_one(
    session_id: str,
    store: Store,
    settings: Settings,
    context: Any,
    secrets: _SecretsOncePerBatch,
    http_client: httpx.Client,
    clock: Callable[[], float],
) -> str:
    token, read_line_items = secrets()  # before the claim: an unreadable secret holds nothing
    left_seconds = context.get_remaining_time_in_millis() / 1000
    needed_seconds = tiktok_request.worst_case_seconds(settings, read_line_items is not None)
    if left_seconds < needed_seconds + RECORD_MARGIN_SECONDS:
        raise OutOfTime(f"{left_seconds:.1f}s left in this invocation, a send needs {needed_seconds:g}s")
    claimed = delivery.claim_new(store, session_id, int(clock()), hold_seconds=left_seconds)
    if claimed is None:
        logger.info("Delivery already claimed or finished: nothing to send")
        return "not_claimed"
    prepare = functools.partial(tiktok_request.prepare, settings=settings, read_line_items=read_line_items)
    post = functools.partial(
        tiktok_api.post,
        http_client,
        settings.tiktok_api_url,
        token,
        timeout_seconds=settings.tiktok_timeout_seconds,
    )
    return delivery.deliver_claimed(store, claimed, token, prepare, post, settings, clock)


def _described(error: Exception) -> str:
    """Our own errors say what failed (an error code, a time, a setting's name); anything else is
    named by its type only, since its text could quote a value."""
    if isinstance(error, OutOfTime | StoreError | ConfigurationError):
        return f"{type(error).__name__}: {error}"
    return type(error).__name__
