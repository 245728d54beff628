"""The local stand-in for Lambda's stream event source mapping (devtools/stream_mapping.py): the
integration tests and `make run` trust it to deliver what Lambda would, so it is tested itself,
against the real stream of a table made from template.yaml."""

import pytest

from devtools.stream_mapping import LocalStreamMapping, MappingSettings, matches


def pattern(destination=None):
    """A filter on new pending deliveries (template.yaml's, for every destination), or on one
    destination's only."""
    image = {"delivery_status": {"S": ["pending"]}}
    if destination is not None:
        image["destination"] = {"S": [destination]}
    return {"eventName": ["INSERT"], "dynamodb": {"NewImage": image}}


@pytest.fixture
def table(tables):
    return tables["SESSIONS_TABLE_NAME"]


def put(dynamodb, table, session_id, status="pending", destination="tiktok"):
    item = {"session_id": {"S": session_id}, "delivery_status": {"S": status}}
    if destination is not None:
        item["destination"] = {"S": destination}
    dynamodb.put_item(TableName=table, Item=item)


def mapping_with(streams, dynamodb, table, handler):
    return LocalStreamMapping.for_table(streams, dynamodb, table, handler)


class Recorder:
    """A sender that fails the records it is told to, a given number of times."""

    def __init__(self, fail=(), times=1, crash_times=0):
        self.batches = []
        self._fail = {session: times for session in fail}
        self._crashes = crash_times

    def __call__(self, event, context):
        sessions = [record["dynamodb"]["Keys"]["session_id"]["S"] for record in event["Records"]]
        self.batches.append(sessions)
        if self._crashes:
            self._crashes -= 1
            raise RuntimeError("the function crashed")
        failures = []
        for record, session in zip(event["Records"], sessions, strict=True):
            if self._fail.get(session, 0) > 0:
                self._fail[session] -= 1
                failures.append({"itemIdentifier": record["dynamodb"]["SequenceNumber"]})
        return {"batchItemFailures": failures}


def test_the_templates_settings_are_read():
    [settings] = MappingSettings.all_from_template()  # one mapping, for every destination

    assert settings.event_name == "NewDeliveries"
    assert MappingSettings.from_template("NewDeliveries") == settings
    assert settings.function_name == "DeliverySenderFunction"
    assert settings.batch_size == 10 and settings.max_retries == 3
    assert settings.bisect_on_error is True and settings.reports_item_failures is True
    assert settings.filters == (pattern(),)
    assert settings.timeout_seconds == 120


def test_the_one_mapping_gets_every_destinations_new_deliveries_and_nothing_else(streams, dynamodb, table):
    recorder = Recorder()
    mapping = mapping_with(streams, dynamodb, table, recorder)
    put(dynamodb, table, "cs_a#tiktok")
    put(dynamodb, table, "cs_a#meta", destination="meta")
    dynamodb.put_item(TableName=table, Item={"session_id": {"S": "cs_a"}})  # a marker: no delivery state
    # A pending delivery with no destination (TikTok's, as recorded before there were two) is a
    # new pending delivery too: the filter passes it, and the sender reads it as TikTok's.
    put(dynamodb, table, "cs_old", destination=None)

    assert mapping.drain() == 3

    assert recorder.batches == [["cs_a#tiktok", "cs_a#meta", "cs_old"]]  # both destinations, one batch


def test_only_inserts_of_pending_deliveries_reach_the_function(streams, dynamodb, table):
    recorder = Recorder()
    mapping = mapping_with(streams, dynamodb, table, recorder)
    put(dynamodb, table, "cs_new")
    put(dynamodb, table, "cs_skipped", status="skipped")
    dynamodb.update_item(
        TableName=table,
        Key={"session_id": {"S": "cs_new"}},
        UpdateExpression="SET claim_token = :t",
        ExpressionAttributeValues={":t": {"S": "x"}},
    )
    dynamodb.delete_item(TableName=table, Key={"session_id": {"S": "cs_skipped"}})

    assert mapping.drain() == 1
    assert recorder.batches == [["cs_new"]]
    [invocation] = mapping.invocations
    [record] = invocation.event["Records"]
    assert record["eventSourceARN"] == mapping.stream_arn
    assert record["eventVersion"] == "1.1" and record["eventSource"] == "aws:dynamodb"
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
    assert mapping.drain() == 0  # nothing twice


def test_records_written_after_a_cancelled_transaction_are_still_delivered(streams, dynamodb, table):
    """Every duplicate webhook is a cancelled transaction; moto 5.2 then stops serving new records
    on an old shard iterator, which the mapping must not be fooled by."""
    recorder = Recorder()
    mapping = mapping_with(streams, dynamodb, table, recorder)
    put(dynamodb, table, "cs_first")
    mapping.drain()
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table,
                        "Item": {"session_id": {"S": "cs_first"}, "delivery_status": {"S": "pending"}},
                        "ConditionExpression": "attribute_not_exists(session_id)",
                    }
                }
            ]
        )
    put(dynamodb, table, "cs_second")

    mapping.drain()

    assert recorder.batches == [["cs_first"], ["cs_second"]]


def test_a_partial_failure_is_retried_from_the_first_failed_record(streams, dynamodb, table):
    recorder = Recorder(fail=["cs_2"])
    mapping = mapping_with(streams, dynamodb, table, recorder)
    for number in range(1, 5):
        put(dynamodb, table, f"cs_{number}")

    mapping.drain()

    assert recorder.batches == [["cs_1", "cs_2", "cs_3", "cs_4"], ["cs_2", "cs_3", "cs_4"]]
    assert mapping.given_up == []


def test_records_are_given_up_after_the_maximum_retries(streams, dynamodb, table):
    recorder = Recorder(fail=["cs_2"], times=99)
    mapping = mapping_with(streams, dynamodb, table, recorder)
    for number in range(1, 4):
        put(dynamodb, table, f"cs_{number}")

    mapping.drain()

    assert len(recorder.batches) == 1 + 3  # the first attempt, then MaximumRetryAttempts
    assert [record["dynamodb"]["Keys"]["session_id"]["S"] for record in mapping.given_up] == ["cs_2", "cs_3"]


def test_a_function_error_bisects_the_batch(streams, dynamodb, table):
    recorder = Recorder(crash_times=1)
    mapping = mapping_with(streams, dynamodb, table, recorder)
    for number in range(1, 5):
        put(dynamodb, table, f"cs_{number}")

    mapping.drain()

    assert recorder.batches == [["cs_1", "cs_2", "cs_3", "cs_4"], ["cs_1", "cs_2"], ["cs_3", "cs_4"]]
    assert mapping.invocations[0].error is not None


def test_batches_hold_at_most_the_batch_size(streams, dynamodb, table):
    recorder = Recorder()
    mapping = mapping_with(streams, dynamodb, table, recorder)
    for number in range(23):
        put(dynamodb, table, f"cs_{number:02d}")

    assert mapping.drain() == 23
    assert [len(batch) for batch in recorder.batches] == [10, 10, 3]


@pytest.mark.parametrize(
    ("record", "passes"),
    [
        (
            {
                "eventName": "INSERT",
                "dynamodb": {
                    "NewImage": {"delivery_status": {"S": "pending"}, "destination": {"S": "tiktok"}}
                },
            },
            True,
        ),
        ({"eventName": "INSERT", "dynamodb": {"NewImage": {"delivery_status": {"S": "pending"}}}}, False),
        (
            {
                "eventName": "INSERT",
                "dynamodb": {"NewImage": {"delivery_status": {"S": "pending"}, "destination": {"S": "meta"}}},
            },
            False,
        ),
        ({"eventName": "MODIFY", "dynamodb": {"NewImage": {"delivery_status": {"S": "pending"}}}}, False),
        ({"eventName": "INSERT", "dynamodb": {"NewImage": {"delivery_status": {"S": "sent"}}}}, False),
        ({"eventName": "INSERT", "dynamodb": {"Keys": {}}}, False),
        ({"eventName": "INSERT", "dynamodb": "not an object"}, False),
    ],
)
def test_filter_patterns(record, passes):
    assert matches(pattern("tiktok"), record) is passes


def test_unsupported_filter_operators_are_refused_not_guessed():
    with pytest.raises(ValueError, match="not supported"):
        matches({"eventName": [{"prefix": "INS"}]}, {"eventName": "INSERT"})


def test_a_function_that_always_crashes_is_bisected_and_given_up_not_retried_forever(
    streams, dynamodb, table
):
    recorder = Recorder(crash_times=10_000)
    mapping = mapping_with(streams, dynamodb, table, recorder)
    for number in range(1, 11):
        put(dynamodb, table, f"cs_{number:02d}")

    mapping.drain(timeout_seconds=10)

    assert len(mapping.given_up) == 10
    assert len(recorder.batches) < 60  # halves share the retries left, they do not restart them
