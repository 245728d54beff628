"""What Lambda's event source mapping does with the Sessions table's stream, done on loopback.

In AWS, the function's event source mapping (one for every destination: `NewDeliveries`, whose
filter passes the INSERT of each new pending delivery, TikTok's and Meta's alike) polls the
DynamoDB stream, drops the records that do not pass its FilterCriteria, and invokes the function
with batches of the rest; it retries a batch that failed (from the first record the function
reported failed, or the whole batch, bisected, when the invocation itself failed) up to
MaximumRetryAttempts, then hands it to the on-failure destination. Locally nothing does that, so
this does, reading those settings from template.yaml: moto and DynamoDB Local both serve the
DynamoDB Streams API at their DynamoDB endpoint. Should the template ever hold several mappings
of the stream, each is run apart, in a thread of its own, as Lambda runs them.

    mapping = LocalStreamMapping.for_table(streams_client, "local-SessionsTable", handler)
    mapping.drain()          # deliver everything written so far, then return
    mapping.start()          # or keep polling in a thread (make run), four times a second

Records are shaped as Lambda delivers them (`eventSourceARN`, `eventVersion` 1.1,
`ApproximateCreationDateTime` in epoch seconds). Nothing here is deployed.
"""

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devtools.function_url import LambdaContext
from devtools.template_tables import load_template

SENDER_FUNCTION = "DeliverySenderFunction"
POLL_INTERVAL_SECONDS = 0.25  # Lambda polls a shard about four times a second

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True)
class MappingSettings:
    """A DynamoDB event of a function in template.yaml, as far as a local run needs it."""

    event_name: str
    function_name: str
    timeout_seconds: float
    batch_size: int
    max_retries: int
    bisect_on_error: bool
    reports_item_failures: bool
    filters: tuple[dict[str, Any], ...]

    @classmethod
    def all_from_template(
        cls, function_name: str = SENDER_FUNCTION, template: dict | None = None
    ) -> tuple["MappingSettings", ...]:
        template = template or load_template()
        function = template["Resources"][function_name]["Properties"]
        return tuple(
            cls._of(name, event["Properties"], function_name, function)
            for name, event in function["Events"].items()
            if event["Type"] == "DynamoDB"
        )

    @classmethod
    def from_template(
        cls, event_name: str, function_name: str = SENDER_FUNCTION, template: dict | None = None
    ) -> "MappingSettings":
        [settings] = [
            mapping
            for mapping in cls.all_from_template(function_name, template)
            if mapping.event_name == event_name
        ]
        return settings

    @classmethod
    def _of(
        cls, event_name: str, properties: dict[str, Any], function_name: str, function: dict[str, Any]
    ) -> "MappingSettings":
        filters = properties.get("FilterCriteria", {}).get("Filters", [])
        return cls(
            event_name=event_name,
            function_name=function_name,
            timeout_seconds=float(function.get("Timeout", 3)),
            batch_size=int(properties.get("BatchSize", 100)),
            max_retries=int(properties.get("MaximumRetryAttempts", -1)),
            bisect_on_error=bool(properties.get("BisectBatchOnFunctionError", False)),
            reports_item_failures="ReportBatchItemFailures" in properties.get("FunctionResponseTypes", []),
            filters=tuple(json.loads(entry["Pattern"]) for entry in filters),
        )


def new_delivery_record(
    key: str,
    stream_arn: str,
    sequence_number: str = "100000000000000000001",
    created: int = 0,
    destination: str = "tiktok",
) -> dict[str, Any]:
    """A stream record as Lambda delivers it for a new delivery (`make event SESSION=...`,
    events/stream/): the sender reads the delivery's key and destination from it and claims the
    delivery in the table, so the rest of the item is left out."""
    image = {"session_id": {"S": key}, "destination": {"S": destination}, "delivery_status": {"S": "pending"}}
    return {
        "eventID": uuid.uuid5(uuid.NAMESPACE_URL, f"{stream_arn}/{sequence_number}").hex,
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": stream_arn.split(":")[3] if stream_arn.count(":") >= 5 else "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": created or int(time.time()),
            "Keys": {"session_id": {"S": key}},
            "NewImage": image,
            "SequenceNumber": sequence_number,
            "SizeBytes": 64 + len(key) + len(destination),
            "StreamViewType": "NEW_IMAGE",
        },
        "eventSourceARN": stream_arn,
    }


def _identity(record: dict[str, Any]) -> str:
    return record.get("eventID") or json.dumps(record["dynamodb"], sort_keys=True, default=str)


def matches(pattern: dict[str, Any], record: Any) -> bool:
    """Lambda event filtering, for the pattern forms this project uses: nested objects, and lists
    of exact values (any one may match). Other forms (prefix, numeric, anything-but ...) are
    refused rather than guessed."""
    if not isinstance(record, dict):
        return False
    for key, expected in pattern.items():
        if key not in record:
            return False
        value = record[key]
        if isinstance(expected, dict):
            if not matches(expected, value):
                return False
        elif isinstance(expected, list):
            if any(isinstance(option, dict) for option in expected):
                raise ValueError(f"filter operator {expected} is not supported by the local mapping")
            if value not in expected:
                return False
        else:
            raise ValueError(f"filter value {expected!r} must be a list or an object")
    return True


@dataclass
class Invocation:
    event: dict[str, Any]
    answer: Any = None
    error: BaseException | None = None

    def failed_ids(self) -> list[str]:
        if self.error is not None:
            return [record["dynamodb"]["SequenceNumber"] for record in self.event["Records"]]
        failures = self.answer.get("batchItemFailures", []) if isinstance(self.answer, dict) else []
        return [str(failure.get("itemIdentifier") or "") for failure in failures]


@dataclass
class LocalStreamMapping:
    """The function's event source mapping of one stream (template.yaml has one, for every
    destination): read once per poll, the records its filter passes delivered in batches. With
    several mappings, each one's records go in a thread of its own."""

    streams: Any
    stream_arn: str
    handler: Handler
    mappings: tuple[MappingSettings, ...]
    region: str = "us-east-1"
    invocations: list[Invocation] = field(default_factory=list)
    # What Lambda gave up on: the on-failure destination (an SQS queue in AWS).
    given_up: list[dict[str, Any]] = field(default_factory=list)
    on_invocation: Callable[[Invocation], None] | None = None

    def __post_init__(self) -> None:
        self._seen: set[str] = set()
        self._last_read: dict[str, tuple[str, str]] = {}
        self._finished_shards: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_table(
        cls, streams: Any, dynamodb: Any, table_name: str, handler: Handler, **kwargs: Any
    ) -> "LocalStreamMapping":
        arn = dynamodb.describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
        return cls(streams, arn, handler, MappingSettings.all_from_template(), **kwargs)

    @property
    def settings(self) -> MappingSettings:
        """The (first) mapping's settings: the function, its timeout, the batch size and retries."""
        return self.mappings[0]

    # ------------------------------------------------------------------ reading the stream

    def poll(self) -> list[dict[str, Any]]:
        """The records written since the last poll, from every shard, in Lambda's shape; those no
        mapping's filter passes are read and discarded, as Lambda does."""
        return [record for record in self._read() if any(self._passes(m, record) for m in self.mappings)]

    def _read(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for shard_id in self._shard_ids():
            if shard_id in self._finished_shards:
                continue
            # Each poll starts after the last record read, unless that record is no longer there:
            # moto 5.2 rolls a cancelled transaction (every duplicate webhook) back with a copy of
            # the stream taken earlier, and the next records then reuse sequence numbers already
            # read. Then the shard is read again from its start, skipping the records seen.
            iterator: str | None = self._iterator(shard_id)
            while iterator:
                answer = self.streams.get_records(ShardIterator=iterator, Limit=1000)
                iterator = answer.get("NextShardIterator")
                if iterator is None:
                    self._finished_shards.add(shard_id)  # a closed shard, read to its end
                if not answer["Records"]:
                    break
                for record in answer["Records"]:
                    identity = _identity(record)
                    if identity not in self._seen:
                        self._seen.add(identity)
                        records.append(self._as_lambda_record(record))
                last = answer["Records"][-1]
                self._last_read[shard_id] = (last["dynamodb"]["SequenceNumber"], _identity(last))
        return records

    def _iterator(self, shard_id: str) -> str:
        request = {"StreamArn": self.stream_arn, "ShardId": shard_id, "ShardIteratorType": "TRIM_HORIZON"}
        if shard_id in self._last_read:
            sequence_number, identity = self._last_read[shard_id]
            at = self.streams.get_shard_iterator(
                **request | {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": sequence_number}
            )["ShardIterator"]
            still_there = self.streams.get_records(ShardIterator=at, Limit=1)["Records"]
            if still_there and _identity(still_there[0]) == identity:
                request.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=sequence_number)
        return self.streams.get_shard_iterator(**request)["ShardIterator"]

    def _shard_ids(self) -> list[str]:
        shards, start = [], None
        while True:
            request: dict[str, Any] = {"StreamArn": self.stream_arn}
            if start:
                request["ExclusiveStartShardId"] = start
            description = self.streams.describe_stream(**request)["StreamDescription"]
            shards += [shard["ShardId"] for shard in description["Shards"]]
            start = description.get("LastEvaluatedShardId")
            if not start:
                return shards

    def _as_lambda_record(self, record: dict[str, Any]) -> dict[str, Any]:
        stream_record = dict(record["dynamodb"])
        created = stream_record.get("ApproximateCreationDateTime")
        if hasattr(created, "timestamp"):
            stream_record["ApproximateCreationDateTime"] = int(created.timestamp())
        shaped = {
            "eventID": record.get("eventID") or uuid.uuid4().hex,
            "eventName": record["eventName"],
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": record.get("awsRegion") or self.region,
            "dynamodb": stream_record,
            "eventSourceARN": self.stream_arn,
        }
        if record.get("userIdentity"):
            shaped["userIdentity"] = record["userIdentity"]
        return shaped

    @staticmethod
    def _passes(mapping: MappingSettings, record: dict[str, Any]) -> bool:
        return not mapping.filters or any(matches(pattern, record) for pattern in mapping.filters)

    # ------------------------------------------------------------------ invoking the function

    def drain(self, timeout_seconds: float = 30.0) -> int:
        """Deliver every record written so far (and any written meanwhile); how many were read."""
        deadline = time.monotonic() + timeout_seconds
        total = 0
        with self._lock:
            while records := self.poll():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the stream kept producing records for {timeout_seconds}s")
                total += len(records)
                routed = [
                    (mapping, [record for record in records if self._passes(mapping, record)])
                    for mapping in self.mappings
                ]
                threads = [
                    threading.Thread(target=self._deliver_all, args=(mapping, mine), name=mapping.event_name)
                    for mapping, mine in routed
                    if mine
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
        return total

    def _deliver_all(self, mapping: MappingSettings, records: list[dict[str, Any]]) -> None:
        for start in range(0, len(records), mapping.batch_size):
            self.deliver(records[start : start + mapping.batch_size], mapping=mapping)

    def deliver(
        self,
        records: list[dict[str, Any]],
        retries_left: int | None = None,
        mapping: MappingSettings | None = None,
    ) -> None:
        """Invoke the function with one batch, retrying as Lambda would until it succeeds or the
        retries run out (then the records left go to `given_up`)."""
        mapping = mapping or self.settings
        retries_left = mapping.max_retries if retries_left is None else retries_left
        batch = list(records)
        while batch:
            invocation = self.invoke({"Records": batch}, mapping)
            failed = set(invocation.failed_ids())
            if not failed:
                return
            if invocation.error is not None and mapping.bisect_on_error and len(batch) > 1:
                middle = len(batch) // 2
                halves_retries = retries_left if retries_left < 0 else max(retries_left - 1, 0)  # -1: forever
                self.deliver(batch[:middle], halves_retries, mapping)
                self.deliver(batch[middle:], halves_retries, mapping)
                return
            # Lambda retries from the first failed record; an id it cannot find fails the batch.
            ids = [record["dynamodb"]["SequenceNumber"] for record in batch]
            first = min((ids.index(item) for item in failed if item in ids), default=0)
            if retries_left == 0:
                self.given_up += batch[first:]
                return
            retries_left -= 1
            batch = batch[first:]

    def invoke(self, event: dict[str, Any], mapping: MappingSettings | None = None) -> Invocation:
        """One invocation of the function with this event, as Lambda makes it."""
        mapping = mapping or self.settings
        invocation = Invocation(event)
        context = LambdaContext(mapping.timeout_seconds, function_name=mapping.function_name)
        try:
            invocation.answer = self.handler(event, context)
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # noqa: BLE001 - a crash, a timeout: a function error Lambda retries
            invocation.error = error
        if not mapping.reports_item_failures and invocation.error is None:
            invocation.answer = None
        self.invocations.append(invocation)
        if self.on_invocation:
            self.on_invocation(invocation)
        return invocation

    # ------------------------------------------------------------------ in the background

    def start(self, interval_seconds: float = POLL_INTERVAL_SECONDS) -> "LocalStreamMapping":
        def run() -> None:
            while not self._stop.wait(interval_seconds):
                try:
                    self.drain()
                except Exception as error:  # noqa: BLE001 - keep polling, as Lambda does
                    print(f"stream mapping: {type(error).__name__}: {error}", flush=True)

        self._thread = threading.Thread(target=run, name="stream-mapping", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
