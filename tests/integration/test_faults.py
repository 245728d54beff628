"""Faults: TikTok rejecting events, the sender never running or crashing mid-batch, DynamoDB
throttled or unreachable. (DynamoDB failing under the stream sender itself: test_stream_sender.py.)"""

import time

import boto3
import pytest
from botocore.config import Config

from devtools.local_dynamodb import free_port
from tests.factories import checkout_session, stripe_event

pytest_plugins = ("tests.integration.redrive_fixtures",)

DAY = 86400
NOTHING_TO_RETRY = {"batchItemFailures": []}


class Crash(BaseException):
    """The Lambda dies (timeout, out of memory): not an Exception, so nothing in the handler
    catches it, and the mapping sees a function error."""


def dead_dynamodb(timeout_seconds=0.5):
    """A client pointed at a closed loopback port: every call fails to connect."""
    return boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        config=Config(
            connect_timeout=timeout_seconds,
            read_timeout=timeout_seconds,
            retries={"mode": "standard", "max_attempts": 1},
        ),
    )


def emf_blob_with(emf, name):
    blobs = [blob for blob in emf.blobs() if name in emf.names(blob)]
    assert len(blobs) == 1, f"one invocation emitted {name}"
    return blobs[0]


# --- TikTok rejects the event: a permanent failure -------------------------------------------


@pytest.mark.parametrize(("code", "meaning"), [(40002, "invalid field"), (40062, "PII not hashed")])
def test_permanent_rejection_is_recorded_by_the_sender_alerted_and_never_retried(
    redrive_env, checkout, stream, db, redrive, tiktok_server, emf, logs, code, meaning
):
    tiktok_server.behave(f"code:{code}")
    session = checkout_session()

    answer = checkout(stripe_event(session=session))

    # The webhook answered before TikTok was called: Stripe only ever hears "pending".
    assert answer.status == 200
    assert answer.body["status"] == "provisioned"
    assert answer.body["deliveries"]["tiktok"] == {"status": "pending"}
    assert len(db.customers()) == 1
    # A TikTok rejection is recorded on the item, not a record for Lambda to retry.
    assert [invocation.answer for invocation in stream.invocations] == [NOTHING_TO_RETRY]
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "failed"
    assert record["delivery_retryable"] is False
    assert record["delivery_code"] == code
    assert record["delivery_message"] == f"stand-in error {code}"
    assert record["delivery_http_status"] == 200
    assert "redrive_queue" not in record and "next_attempt_at" not in record and "claim_token" not in record
    assert "purchase" in record  # kept, so that an operator can requeue it once fixed

    blob = emf_blob_with(emf, "TikTokPermanentFailures")
    assert emf.value(blob, "TikTokPermanentFailures") == 1 and emf.value(blob, "TikTokFailed") == 1
    assert blob["service"] == "checkout-conversions"  # the dimension template.yaml's alarms use
    assert ["service"] in blob["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    assert emf.total("Provisioned") == 1
    warning = [line for line in logs() if line.get("message") == "TikTok delivery failed"]
    assert warning and warning[0]["platform_code"] == code and warning[0]["retryable"] is False
    assert warning[0]["function_name"] == "DeliverySenderFunction"

    assert redrive() == {}
    assert redrive(at=time.time() + DAY) == {}
    assert len(tiktok_server.requests) == 1


# --- the sender never ran, or crashed mid-batch --------------------------------------------------


def test_a_delivery_the_sender_never_ran_for_is_sent_once_by_the_redrive_after_the_grace_period(
    env, pending, deliver, stream, db, redrive, tiktok_server, sent_by_event
):
    [(session, event)] = pending()  # provisioned; the stream's record never reached the sender
    record = db.delivery(session["id"])
    grace_ends = record["next_attempt_at"]

    # Stripe resends the event meanwhile: a duplicate, nothing provisioned twice.
    retry = deliver(event)
    assert retry.status == 200 and retry.body["status"] == "duplicate"
    assert "deliveries" not in retry.body
    assert len(db.customers()) == 1

    assert redrive() == {}
    assert redrive(at=grace_ends - 1) == {}
    assert tiktok_server.requests == []

    assert redrive(at=grace_ends) == {"sent": 1}
    assert redrive(at=grace_ends + 1) == {}
    [body] = sent_by_event()[session["id"]]
    assert body["data"][0]["event_time"] == event["created"]
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "sent" and record["delivery_attempts"] == 1

    # The mapping catches up late: the record finds the delivery sent, and sends nothing.
    assert stream.drain() == 1
    assert [invocation.answer for invocation in stream.invocations] == [NOTHING_TO_RETRY]
    assert len(tiktok_server.requests) == 1
    assert deliver(event).body["status"] == "duplicate"


def test_a_crash_after_the_send_before_recording_resends_the_same_event_once(
    redrive_env, deliver, stream, db, redrive, tiktok_server, sent_by_event, monkeypatch
):
    """TikTok got the batch's request, but the Lambda died before writing the outcomes: the mapping
    bisects and retries the batch, which finds every claim held (nothing is sent twice meanwhile);
    after the claims expire the redrive sends the same event_ids again, which TikTok deduplicates."""
    from checkout_conversions.outbox import attempt

    crashed, other = checkout_session(), checkout_session()
    sessions = (crashed, other)
    for session in sessions:
        assert deliver(stripe_event(session=session)).body["deliveries"]["tiktok"] == {"status": "pending"}
    real_record = attempt.record
    crashes = []

    def record_then_crash(*args, **kwargs):
        if not stream.invocations:  # the first invocation dies: none of its outcomes is written
            crashes.append(args[2].key.rpartition("#")[0])  # record(ledger, destination, claimed, ...)
            raise Crash("the Lambda died here")
        return real_record(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(attempt, "record", record_then_crash)
        stream.drain()

    assert crashes and set(crashes) <= {crashed["id"], other["id"]}
    first, *retries = stream.invocations
    assert isinstance(first.error, Crash) and len(first.event["Records"]) == 2
    assert [len(retry.event["Records"]) for retry in retries] == [1, 1], "bisected"
    assert all(retry.answer == NOTHING_TO_RETRY for retry in retries)
    assert stream.given_up == []
    # Both went out in the one request the crashed invocation made; the retries sent nothing.
    [request] = tiktok_server.requests
    assert sorted(event["event_id"] for event in request.json()["data"]) == sorted(
        session["id"] for session in sessions
    )
    records = [db.delivery(session["id"]) for session in sessions]
    for record in records:
        assert record["delivery_status"] == "pending" and record["claim_token"]
    expires_at = max(record["claim_expires_at"] for record in records)

    assert redrive() == {"not_claimed": 2}
    assert len(tiktok_server.requests) == 1
    assert redrive(at=expires_at + 1) == {"sent": 2}
    assert redrive(at=expires_at + 2) == {}
    by_event = sent_by_event()
    assert sorted(by_event) == sorted(session["id"] for session in sessions)
    for session in sessions:
        [first_event, second_event] = [
            event
            for body in by_event[session["id"]]
            for event in body["data"]
            if event["event_id"] == session["id"]
        ]
        assert first_event == second_event, "the same event, with its event_id, sent once more"
        assert db.delivery(session["id"])["delivery_status"] == "sent"


# --- DynamoDB throttled or unreachable while provisioning ----------------------------------------


@pytest.mark.parametrize(
    ("code", "reasons"),
    [
        ("ProvisionedThroughputExceededException", None),
        ("ThrottlingException", None),
        ("TransactionCanceledException", [{"Code": "None"}, {"Code": "ThrottlingError"}]),
    ],
)
def test_throttled_provisioning_answers_500_and_the_retry_provisions_and_sends_once(
    env, app, deliver, stream, db, tiktok_server, emf, logs, failing_client, monkeypatch, code, reasons
):
    event = stripe_event()
    throttled = failing_client(app.dynamodb, "transact_write_items", code, cancellation_reasons=reasons)

    with monkeypatch.context() as patch:
        patch.setattr(app, "dynamodb", throttled)
        answer = deliver(event)

    assert throttled.failures == 1
    assert answer.status == 500
    assert answer.body == {
        "error": "provisioning failed, retry later",
        "session_id": event["data"]["object"]["id"],
    }
    assert db.sessions() == [] and db.customers() == []
    # Nothing was written, so nothing is in the stream for the sender.
    assert stream.drain() == 0
    assert tiktok_server.requests == []
    assert emf.total("ProvisioningFailures") == 1
    [failure] = [line for line in logs() if line.get("message") == "Provisioning failed: Stripe will retry"]
    assert failure["level"] == "ERROR"
    assert code in failure["store_error"] or "ThrottlingError" in failure["store_error"]

    retry = deliver(event)
    assert retry.status == 200 and retry.body["status"] == "provisioned"
    assert stream.drain() == 1
    assert len(db.customers()) == 1
    assert len(tiktok_server.requests) == 1
    duplicate = deliver(event)
    assert duplicate.body["status"] == "duplicate"
    assert stream.drain() == 0
    assert len(db.customers()) == 1 and len(tiktok_server.requests) == 1


def test_unreachable_dynamodb_answers_500_and_the_retry_provisions_and_sends_once(
    env, app, deliver, stream, db, tiktok_server, emf, monkeypatch
):
    event = stripe_event()

    with monkeypatch.context() as patch:
        patch.setattr(app, "dynamodb", dead_dynamodb())
        started = time.monotonic()
        answer = deliver(event)
        elapsed = time.monotonic() - started

    assert answer.status == 500
    assert answer.body["error"] == "provisioning failed, retry later"
    assert elapsed < 3
    assert db.sessions() == [] and db.customers() == []
    assert stream.drain() == 0
    assert tiktok_server.requests == []
    assert emf.total("ProvisioningFailures") == 1

    assert deliver(event).body["status"] == "provisioned"
    stream.drain()
    assert len(db.customers()) == 1
    assert len(tiktok_server.requests) == 1


def test_redrive_fails_loudly_when_dynamodb_is_unreachable(
    redrive_env, pending, redrive_app, redrive_context, tiktok_server, monkeypatch
):
    """The scheduled run raises (a Lambda error, retried by the next schedule); nothing is sent."""
    from checkout_conversions.outbox.model import StoreError

    pending()
    monkeypatch.setattr(redrive_app, "dynamodb", dead_dynamodb())

    with pytest.raises(StoreError):
        redrive_app.lambda_handler({}, redrive_context())

    assert tiktok_server.requests == []


def test_no_log_line_on_any_path_carries_pii_or_secrets(
    redrive_env,
    app,
    sender_app,
    checkout,
    deliver,
    pending,
    redrive,
    tiktok_server,
    failing_client,
    logs,
    monkeypatch,
):
    """The webhook, the sender and the redrive, on success, TikTok rejections and failures, and
    DynamoDB failures (with their tracebacks): the buyer's email, name, phone, IP, click id and
    User-Agent, the token and the secret never reach a log line."""
    from tests.integration.conftest import TIKTOK_TOKEN, WEBHOOK_SECRET

    checkout(stripe_event())
    tiktok_server.behave("code:40002")  # TikTok's message can quote rejected values
    checkout(stripe_event())
    tiktok_server.behave("http:500")
    checkout(stripe_event())
    pending(1)
    redrive()
    tiktok_server.behave("ok")
    claim_fails = failing_client(sender_app.dynamodb, "update_item", "InternalServerError", times=1)
    record_fails = failing_client(
        sender_app.dynamodb,
        "update_item",
        "InternalServerError",
        when=lambda kwargs: (
            kwargs.get("ExpressionAttributeValues", {}).get(":delivery_status") == {"S": "sent"}
        ),
        times=1,
    )
    with monkeypatch.context() as patch:
        patch.setattr(sender_app, "dynamodb", claim_fails)
        checkout(stripe_event())  # the claim fails once; the mapping's retry sends it
        patch.setattr(sender_app, "dynamodb", record_fails)
        checkout(stripe_event())  # sent, but the outcome is not recorded
    assert claim_fails.failures == record_fails.failures == 1
    with monkeypatch.context() as patch:
        patch.setattr(app, "dynamodb", dead_dynamodb(timeout_seconds=0.3))
        assert deliver(stripe_event()).status == 500

    text = logs.text()
    for expected in (
        "Provisioning failed",
        "Stream batch finished",
        "TikTok delivery failed",
        "Could not record the TikTok outcome",
        "Redrive finished",
    ):
        assert expected in text, expected
    for secret in (
        TIKTOK_TOKEN,
        WEBHOOK_SECRET,
        "jane.doe@example.com",
        "Jane.Doe@Example.COM",
        "Jane Doe",
        "+14155550123",
        "555-0123",
        "203.0.113.7",
        "E.C.P.test-ttclid",
        "2abcDEFttpCookie",
        "iPhone",
        "stand-in error",
    ):
        assert secret not in text, secret
