"""The stream sender: each new pending delivery in the Sessions table's stream is sent to TikTok
once, whatever Lambda's event source mapping does with the batch (duplicates, retries after a
partial failure, a crash mid-batch, too little time left), and whatever DynamoDB does meanwhile.

The webhook runs through `deliver`, the sender through the `stream` fixture (Lambda's mapping done
locally, with the template's filter and retries) or its handler directly, the redrive through the
`redrive` fixture; DynamoDB is a real server on loopback."""

import copy
import time
import uuid

import boto3
import pytest

from devtools.function_url import LambdaContext
from tests.factories import checkout_session, stripe_event
from tests.integration.conftest import PIXEL_ID, TIKTOK_TOKEN, WEBHOOK_SECRET

pytest_plugins = ("tests.integration.redrive_fixtures",)

DAY = 86400
NOTHING_TO_RETRY = {"batchItemFailures": []}


class Crash(BaseException):
    """The Lambda dies (timeout, out of memory): not an Exception, so nothing in the handler
    catches it, and the mapping sees a function error."""


def sequence_number(record):
    return record["dynamodb"]["SequenceNumber"]


def session_of(record):
    return record["dynamodb"]["Keys"]["session_id"]["S"].rpartition("#")[0]


def failed(answer):
    return [failure["itemIdentifier"] for failure in answer["batchItemFailures"]]


def of_session(session_id, destination="tiktok"):
    """The requests that touch this session's delivery to the destination."""
    return lambda kwargs: kwargs.get("Key") == {"session_id": {"S": f"{session_id}#{destination}"}}


def claims(kwargs):
    return "ADD delivery_attempts" in kwargs.get("UpdateExpression", "")


def sets_the_status(kwargs, *statuses):
    """An UpdateItem that writes `delivery_status` as one of `statuses`."""
    status = kwargs.get("ExpressionAttributeValues", {}).get(":delivery_status")
    return "delivery_status = :delivery_status" in kwargs.get("UpdateExpression", "") and status in [
        {"S": value} for value in statuses
    ]


def records_the_outcome(kwargs):
    return sets_the_status(kwargs, "sent", "failed")


def invoke_sender(sender_app, records, timeout_seconds=60.0):
    """One invocation of the sender's Lambda handler with these records, as the mapping makes it."""
    context = LambdaContext(timeout_seconds, function_name="DeliverySenderFunction")
    return sender_app.lambda_handler({"Records": records}, context)


def provision(deliver, count=1, **session_overrides):
    sessions = [checkout_session(**session_overrides) for _ in range(count)]
    for session in sessions:
        answer = deliver(stripe_event(session=session))
        assert answer.status == 200 and answer.body["deliveries"]["tiktok"] == {"status": "pending"}, (
            answer.body
        )
    return sessions


def batch_tallies(logs):
    return [line for line in logs() if line.get("message") == "Stream batch finished"]


def assert_untouched(record):
    """Pending as the webhook left it: never claimed, never attempted, still in the redrive index."""
    assert record["delivery_status"] == "pending"
    assert record["delivery_attempts"] == 0
    assert "claim_token" not in record and "claim_expires_at" not in record
    assert record["redrive_queue"] == "tiktok" and "purchase" in record


# --- the normal path --------------------------------------------------------------------------


def test_a_paid_session_is_sent_once_after_the_stream_is_drained(
    env, deliver, stream, db, tiktok_server, emf, logs
):
    session = checkout_session()
    event = stripe_event(session=session)

    answer = deliver(event)

    # The buyer's wait ends here: TikTok has not been called yet.
    assert answer.status == 200
    assert answer.body == {
        "status": "provisioned",
        "session_id": session["id"],
        "duplicate": False,
        "deliveries": {"tiktok": {"status": "pending"}},
    }
    assert tiktok_server.requests == []

    assert stream.drain() == 1

    [invocation] = stream.invocations
    assert invocation.error is None and invocation.answer == NOTHING_TO_RETRY
    [request] = tiktok_server.requests
    assert request.headers["access-token"] == TIKTOK_TOKEN
    body = request.json()
    assert body["event_source_id"] == PIXEL_ID and body["test_event_code"] == "TEST12345"
    [sent] = body["data"]
    assert sent["event_id"] == session["id"] and sent["event_time"] == event["created"]
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "sent" and record["delivery_attempts"] == 1
    assert record["delivery_code"] == 0 and record["delivery_request_id"] == "req-standin"
    for gone in ("claim_token", "claim_expires_at", "redrive_queue", "next_attempt_at", "purchase"):
        assert gone not in record, gone
    assert emf.total("TikTokSent") == 1
    assert [line["sent"] for line in batch_tallies(logs)] == [1]
    # Claims and outcomes are MODIFY records: the filter keeps them from invoking the sender again.
    assert stream.drain() == 0 and len(stream.invocations) == 1


def test_the_same_batch_delivered_twice_sends_nothing_more(env, deliver, stream, db, tiktok_server, logs):
    sessions = provision(deliver, 2)
    stream.drain()
    assert len(tiktok_server.requests) == 1  # the batch's two in one request
    assert sorted(tiktok_server.event_ids()) == sorted(session["id"] for session in sessions)

    # Lambda delivers at least once: the very same batch again.
    again = stream.invoke(stream.invocations[0].event)

    assert again.error is None and again.answer == NOTHING_TO_RETRY
    assert len(tiktok_server.requests) == 1
    assert sorted(tiktok_server.event_ids()) == sorted(session["id"] for session in sessions)
    for session in sessions:
        record = db.delivery(session["id"])
        assert record["delivery_status"] == "sent" and record["delivery_attempts"] == 1
    assert batch_tallies(logs)[-1]["not_claimed"] == 2
    assert "sent" not in batch_tallies(logs)[-1]


# --- DynamoDB errors while claiming -------------------------------------------------------------


def test_a_failed_claim_fails_only_that_record_and_the_retry_sends_it_once(
    env, deliver, stream, sender_app, db, sent_by_event, failing_client, monkeypatch
):
    first, middle, last = provision(deliver, 3)
    throttled = failing_client(
        sender_app.dynamodb,
        "update_item",
        "ProvisionedThroughputExceededException",
        when=of_session(middle["id"]),
        times=1,
    )
    sent_after = []
    stream.on_invocation = lambda invocation: sent_after.append(sorted(sent_by_event()))
    monkeypatch.setattr(sender_app, "dynamodb", throttled)

    stream.drain()

    assert throttled.failures == 1
    failing, retry = stream.invocations
    records = failing.event["Records"]
    assert [session_of(record) for record in records] == [first["id"], middle["id"], last["id"]]
    assert failing.answer == {"batchItemFailures": [{"itemIdentifier": sequence_number(records[1])}]}
    assert sent_after[0] == sorted([first["id"], last["id"]]), "the others went out in the first invocation"
    # Lambda retries from the first failed record: the last one comes again and is not re-sent.
    assert retry.event["Records"] == records[1:]
    assert retry.answer == NOTHING_TO_RETRY
    by_event = sent_by_event()
    assert sorted(by_event) == sorted(session["id"] for session in (first, middle, last))
    assert all(len(bodies) == 1 for bodies in by_event.values())
    assert stream.given_up == []
    assert db.delivery(middle["id"])["delivery_attempts"] == 1  # the throttled claim took nothing


def test_every_claim_failing_fails_the_whole_batch_and_the_retry_delivers(
    env, deliver, stream, sender_app, db, tiktok_server, sent_by_event, failing_client, monkeypatch
):
    sessions = provision(deliver, 3)
    throttled = failing_client(
        sender_app.dynamodb, "update_item", "ProvisionedThroughputExceededException", when=claims, times=3
    )
    untouched_after_the_failure = []
    stream.on_invocation = lambda invocation: untouched_after_the_failure.append(
        (len(tiktok_server.requests), [db.delivery(session["id"]) for session in sessions])
    )
    monkeypatch.setattr(sender_app, "dynamodb", throttled)

    stream.drain()

    failing, retry = stream.invocations
    assert failing.error is None, "answered with every record listed, not raised"
    assert failed(failing.answer) == [sequence_number(record) for record in failing.event["Records"]]
    requests, records = untouched_after_the_failure[0]
    assert requests == 0
    for record in records:
        assert_untouched(record)
    assert retry.event == failing.event and retry.answer == NOTHING_TO_RETRY
    assert sorted(sent_by_event()) == sorted(session["id"] for session in sessions)
    assert sorted(tiktok_server.event_ids()) == sorted(session["id"] for session in sessions)
    assert len(tiktok_server.requests) == 1  # the retried batch's three in one request
    assert all(db.delivery(session["id"])["delivery_status"] == "sent" for session in sessions)


# --- DynamoDB errors while recording the outcome --------------------------------------------------


@pytest.mark.parametrize(
    ("tiktok", "counted"),
    [(("ok",), "TikTokSent"), (("http:503", "ok"), "TikTokFailed")],
    ids=["recording-sent", "recording-failed"],
)
def test_an_outcome_that_cannot_be_recorded_is_retried_and_resent_once_by_the_redrive(
    redrive_env,
    deliver,
    stream,
    sender_app,
    db,
    redrive,
    tiktok_server,
    sent_by_event,
    emf,
    logs,
    failing_client,
    monkeypatch,
    tiktok,
    counted,
):
    """TikTok was called, but DynamoDB refused the outcome: the record fails, Lambda's retry finds
    the claim held and sends nothing; once the claim expires the redrive sends the same event_id
    again, which TikTok deduplicates."""
    tiktok_server.behave(*tiktok)
    [session] = provision(deliver)
    throttled = failing_client(
        sender_app.dynamodb, "update_item", "ProvisionedThroughputExceededException", when=records_the_outcome
    )

    with monkeypatch.context() as patch:
        patch.setattr(sender_app, "dynamodb", throttled)
        stream.drain()

    assert throttled.failures == 1
    failing, retry = stream.invocations
    assert failed(failing.answer) == [sequence_number(failing.event["Records"][0])]
    assert retry.answer == NOTHING_TO_RETRY
    assert len(tiktok_server.requests) == 1
    assert emf.total("DeliveryRecordFailures") == 1
    assert emf.total(counted) == 1
    assert any(line.get("message") == "Could not record the TikTok outcome" for line in logs())
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "pending" and record["claim_token"]
    assert record["delivery_attempts"] == 1

    # The sender's claim still holds: the redrive leaves it alone until it expires.
    assert redrive() == {"not_claimed": 1}
    assert redrive(at=record["claim_expires_at"]) == {"not_claimed": 1}
    assert redrive(at=record["claim_expires_at"] + 1) == {"sent": 1}
    assert redrive(at=record["claim_expires_at"] + 2) == {}

    first, second = sent_by_event()[session["id"]]
    assert first == second
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "sent" and record["delivery_attempts"] == 2
    assert "claim_token" not in record


# --- a crash mid-batch ----------------------------------------------------------------------------


def test_a_crash_between_claim_and_send_leaves_the_claim_to_expire_then_the_redrive_sends_once(
    env, deliver, stream, db, redrive, tiktok_server, sent_by_event, monkeypatch
):
    from checkout_conversions.destinations.tiktok.client import TikTok

    monkeypatch.setenv("REDRIVE_GRACE_SECONDS", "30")  # shorter than the sender's claim (~90 s)
    [session] = provision(deliver)

    def crash(*args, **kwargs):
        raise Crash("the Lambda died before its request left")

    with monkeypatch.context() as patch:
        patch.setattr(TikTok, "post", crash)
        stream.drain()

    crashed, *retries = stream.invocations
    assert isinstance(crashed.error, Crash)
    assert retries, "the mapping retries a batch whose invocation failed"
    assert all(retry.error is None and retry.answer == NOTHING_TO_RETRY for retry in retries)
    assert stream.given_up == []
    assert tiktok_server.requests == []
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "pending" and record["redrive_queue"] == "tiktok"
    assert record["claim_token"] and record["claim_expires_at"] > time.time() + 60
    assert record["delivery_attempts"] == 1, "the crashed attempt is counted"
    assert record["next_attempt_at"] < record["claim_expires_at"]

    # The grace period is over but the claim holds: the redrive does nothing.
    assert redrive(at=record["next_attempt_at"]) == {"not_claimed": 1}
    assert redrive(at=record["claim_expires_at"]) == {"not_claimed": 1}
    assert tiktok_server.requests == []

    assert redrive(at=record["claim_expires_at"] + 1) == {"sent": 1}
    assert redrive(at=record["claim_expires_at"] + 2) == {}
    assert stream.drain() == 0
    assert len(sent_by_event()[session["id"]]) == 1
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "sent" and record["delivery_attempts"] == 2


# --- records that are not new pending deliveries ----------------------------------------------------


def _modified(record):
    record["eventName"] = "MODIFY"


def _removed(record):
    # A TTL deletion: no new image, and DynamoDB itself as the principal.
    record["eventName"] = "REMOVE"
    del record["dynamodb"]["NewImage"]
    record["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def _status(status):
    def change(record):
        record["dynamodb"]["NewImage"]["delivery_status"] = {"S": status}

    return change


def _no_new_image(record):
    del record["dynamodb"]["NewImage"]


@pytest.mark.parametrize(
    "change",
    [_modified, _removed, _status("skipped"), _status("sent"), _status("failed"), _no_new_image],
    ids=["modify", "remove", "insert-skipped", "insert-sent", "insert-failed", "no-new-image"],
)
def test_records_that_are_not_new_pending_deliveries_are_ignored(
    env, deliver, stream, sender_app, db, tiktok_server, change
):
    """The template's filter keeps these from the sender; given to it anyway, it does nothing."""
    [session] = provision(deliver)
    [real] = stream.poll()
    other = copy.deepcopy(real)
    change(other)

    answer = invoke_sender(sender_app, [other])

    assert answer == NOTHING_TO_RETRY
    assert tiktok_server.requests == []
    assert_untouched(db.delivery(session["id"]))

    # The record it was made from is sent: the check above can fail.
    assert invoke_sender(sender_app, [real]) == NOTHING_TO_RETRY
    assert len(tiktok_server.requests) == 1


# --- settings and secrets changed since provisioning --------------------------------------------------


@pytest.mark.parametrize("cleared", ["", "disabled"])
def test_a_token_cleared_after_provisioning_settles_the_delivery_skipped(
    env, deliver, stream, db, redrive, tiktok_server, emf, monkeypatch, cleared
):
    [session] = provision(deliver)  # the webhook cannot tell: it never reads the token
    monkeypatch.setenv("TIKTOK_ACCESS_TOKEN", cleared)

    stream.drain()

    assert [invocation.answer for invocation in stream.invocations] == [NOTHING_TO_RETRY]
    assert tiktok_server.requests == []
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "skipped"
    assert "TIKTOK_ACCESS_TOKEN" in record["delivery_reason"]
    for gone in ("redrive_queue", "next_attempt_at", "claim_token", "purchase"):
        assert gone not in record, gone
    assert emf.total("TikTokSkipped") == 1

    # Skipped for good: switching TikTok on again does not bring it back.
    monkeypatch.setenv("TIKTOK_ACCESS_TOKEN", TIKTOK_TOKEN)
    assert redrive(at=time.time() + DAY) == {}
    assert tiktok_server.requests == []


def test_too_little_time_left_fails_the_records_unclaimed_and_a_full_invocation_sends_them(
    env, deliver, stream, sender_app, db, tiktok_server, logs
):
    sessions = provision(deliver, 2)
    records = stream.poll()

    # 5 s left: less than one whole send (4 x TIKTOK_TIMEOUT_SECONDS) plus the recording margin.
    answer = invoke_sender(sender_app, records, timeout_seconds=5.0)

    assert failed(answer) == [sequence_number(record) for record in records]
    assert tiktok_server.requests == []
    for session in sessions:
        assert_untouched(db.delivery(session["id"]))
    assert batch_tallies(logs)[-1]["retry_later"] == 2

    assert invoke_sender(sender_app, records) == NOTHING_TO_RETRY
    assert sorted(event["event_id"] for event in tiktok_server.events()) == sorted(
        session["id"] for session in sessions
    )
    assert all(db.delivery(session["id"])["delivery_status"] == "sent" for session in sessions)


def test_an_unreadable_token_fails_the_records_unclaimed_and_counts_a_configuration_error(
    env, aws_endpoint, deliver, stream, db, redrive, tiktok_server, emf, logs, monkeypatch
):
    from checkout_conversions import secrets

    prefix = f"/checkout-test-{uuid.uuid4().hex[:8]}"
    ssm = boto3.client("ssm", endpoint_url=aws_endpoint)
    ssm.put_parameter(Name=f"{prefix}/stripe", Value=WEBHOOK_SECRET, Type="SecureString")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", aws_endpoint)
    monkeypatch.setattr(secrets, "_providers", {})  # new providers, which see the endpoint
    monkeypatch.setenv("SECRETS_SOURCE", "ssm")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET_NAME", f"{prefix}/stripe")
    monkeypatch.setenv("TIKTOK_ACCESS_TOKEN_NAME", f"{prefix}/tiktok-token")  # never written
    # The events are test mode: their code is stored, beside the token.
    ssm.put_parameter(Name=f"{prefix}/tiktok-test-code", Value="TEST12345", Type="SecureString")
    monkeypatch.setenv("TIKTOK_TEST_EVENT_CODE_NAME", f"{prefix}/tiktok-test-code")
    sessions = provision(deliver, 2)

    stream.drain()

    records = stream.invocations[0].event["Records"]
    for invocation in stream.invocations:
        assert failed(invocation.answer) == [sequence_number(record) for record in records]
    # Retried as the template says (MaximumRetryAttempts 3), then handed to the failure queue.
    assert len(stream.invocations) == 4
    assert stream.given_up == records
    assert tiktok_server.requests == []
    for session in sessions:
        assert_untouched(db.delivery(session["id"]))
    # Logged and counted once per invocation (the batch's other records fail without a new read).
    assert emf.total("ConfigurationErrors") == len(stream.invocations)
    problems = [
        line["problem"]
        for line in logs()
        if line.get("message") == "Cannot read a secret; Lambda retries the batch"
    ]
    assert len(problems) == len(stream.invocations)
    assert all(f"{prefix}/tiktok-token" in problem for problem in problems)

    # The given-up deliveries are still in the redrive index: the token written, they go out.
    ssm.put_parameter(Name=f"{prefix}/tiktok-token", Value="token-at-last", Type="SecureString")
    due = db.delivery(sessions[0]["id"])["next_attempt_at"]
    assert redrive(at=due + 1) == {"sent": 2}
    assert {request.headers["access-token"] for request in tiktok_server.requests} == {"token-at-last"}


def test_a_record_left_to_lambdas_retry_is_logged_and_counted_without_the_buyers_data(
    env, deliver, stream, sender_app, logs, emf
):
    """An operator sees why records come back (and why the failure queue fills), never a value."""
    from devtools.function_url import LambdaContext

    session = checkout_session()
    deliver(stripe_event(session=session))
    [record] = stream.poll()

    answer = sender_app.lambda_handler(
        {"Records": [record]}, LambdaContext(5.0, function_name="DeliverySenderFunction")
    )

    assert answer == {"batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]}
    [line] = [
        line for line in logs() if line.get("message") == "Record not processed: Lambda delivers it again"
    ]
    assert line["level"] == "WARNING" and line["error"].startswith("OutOfTime: ")
    assert line["event_id"] == session["id"]
    assert emf.total("SenderRecordFailures") == 1
    assert session["customer_details"]["email"].strip() not in logs.text()


@pytest.mark.parametrize("taker", ["stream", "redrive"])
def test_a_claim_whose_answer_was_lost_is_still_its_takers_when_the_sdk_retries_it(
    env, deliver, stream, db, tiktok_server, tables, taker
):
    """DynamoDB applied the claim but its answer never came back (a timeout), and botocore sent
    the same write again: the retry's condition fails on this very claim, which is still the
    taker's, so the delivery is sent now rather than after the claim expires."""
    from checkout_conversions.store.deliveries import DynamoDeliveries

    client = boto3.client("dynamodb")
    retried = []

    def retry_the_first_claim_once(attempts, request_dict, **_):
        if not retried and "ADD delivery_attempts" in request_dict["body"].decode():
            retried.append(attempts)
            return 0  # retry at once: the first attempt was applied, its answer "lost"
        return None

    client.meta.events.register_first("needs-retry.dynamodb.UpdateItem", retry_the_first_claim_once)
    store = DynamoDeliveries(client, tables["SESSIONS_TABLE_NAME"])
    [session] = provision(deliver)
    key = f"{session['id']}#tiktok"
    now = int(time.time())

    if taker == "stream":
        claimed = store.claim_new(key, "claim-1", now, now + 60)
    else:  # the redrive, once the delivery is due
        claimed = store.claim_due(key, "tiktok", "claim-1", now + DAY, now + DAY + 60)

    assert retried == [1]
    assert claimed is not None and claimed.claim_token == "claim-1"
    assert claimed.attempts == 1 and claimed.purchase_json is not None
    # Anyone else still finds it held.
    assert store.claim_new(key, "claim-2", now, now + 60) is None
    assert db.delivery(session["id"])["claim_token"] == "claim-1"
