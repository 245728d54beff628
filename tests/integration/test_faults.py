"""Faults: TikTok rejecting events, a crash mid-invocation, DynamoDB throttled or unreachable."""

import time

import boto3
import pytest
from botocore.config import Config

from devtools.local_dynamodb import free_port
from tests.factories import checkout_session, stripe_event

pytest_plugins = ("tests.integration.redrive_fixtures",)

DAY = 86400


def dead_dynamodb():
    """A client pointed at a closed loopback port: every call fails to connect."""
    return boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        config=Config(connect_timeout=0.5, read_timeout=0.5, retries={"mode": "standard", "max_attempts": 1}),
    )


def emf_blob_with(emf, name):
    blobs = [blob for blob in emf.blobs() if name in emf.names(blob)]
    assert len(blobs) == 1, f"one invocation emitted {name}"
    return blobs[0]


# --- TikTok rejects the event: a permanent failure -------------------------------------------


@pytest.mark.parametrize(
    ("code", "meaning"), [(40001, "token has no rights on the pixel"), (40105, "token expired or invalid")]
)
def test_permanent_rejection_is_recorded_alerted_and_never_retried(
    redrive_env, deliver, db, redrive, tiktok_server, emf, logs, code, meaning
):
    tiktok_server.behave(f"code:{code}")
    session = checkout_session()

    answer = deliver(stripe_event(session=session))

    assert answer.status == 200
    assert answer.body["status"] == "provisioned"
    # TikTok's message can quote rejected values: it is recorded, never put in Stripe's answer.
    assert answer.body["tiktok"] == {"status": "failed", "retryable": False, "code": code}
    assert len(db.customers()) == 1
    record = db.session(session["id"])
    assert record["delivery_status"] == "failed"
    assert record["delivery_retryable"] is False
    assert record["delivery_code"] == code
    assert record["delivery_message"] == f"stand-in error {code}"
    assert record["delivery_http_status"] == 200
    assert "redrive_queue" not in record and "next_attempt_at" not in record and "claim_token" not in record

    blob = emf_blob_with(emf, "TikTokPermanentFailures")
    assert emf.value(blob, "TikTokPermanentFailures") == 1
    assert emf.value(blob, "TikTokFailed") == 1 and emf.value(blob, "Provisioned") == 1
    assert blob["service"] == "checkout-conversions"  # the dimension template.yaml's alarms use
    assert ["service"] in blob["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    warning = [line for line in logs() if line.get("message") == "TikTok delivery failed"]
    assert warning and warning[0]["tiktok_code"] == code and warning[0]["retryable"] is False

    assert redrive() == {}
    assert redrive(at=time.time() + DAY) == {}
    assert len(tiktok_server.requests) == 1


# --- A crash mid-invocation ------------------------------------------------------------------


def test_crash_between_provisioning_and_the_tiktok_call(
    redrive_env, deliver, db, redrive, tiktok_server, sent_by_event, monkeypatch
):
    from checkout_conversions import delivery

    session = checkout_session()
    event = stripe_event(session=session)

    def crash(*args, **kwargs):
        raise RuntimeError("the Lambda died here")

    with monkeypatch.context() as patch:
        patch.setattr(delivery, "send_claimed", crash)
        with pytest.raises(RuntimeError, match="died"):
            deliver(event)

    assert tiktok_server.requests == []
    record = db.session(session["id"])
    assert record["delivery_status"] == "pending"
    assert record["claim_token"] and record["claim_expires_at"] > time.time()
    assert record["redrive_queue"] == "tiktok"

    # Stripe saw an error and retries the same event: a duplicate, nothing provisioned twice.
    retry = deliver(event)
    assert retry.status == 200
    assert retry.body["status"] == "duplicate"
    assert retry.body["tiktok"] == {"status": "pending"}
    assert len(db.customers()) == 1
    assert tiktok_server.requests == []

    # The webhook's claim still holds: the redrive leaves it alone.
    assert redrive() == {"not_claimed": 1}
    assert redrive(at=record["claim_expires_at"] - 1) == {"not_claimed": 1}
    assert tiktok_server.requests == []

    # Once it has expired, the redrive sends it, once.
    assert redrive(at=record["claim_expires_at"] + 1) == {"sent": 1}
    assert redrive(at=record["claim_expires_at"] + 2) == {}
    [body] = sent_by_event()[session["id"]]
    assert body["data"][0]["event_time"] == event["created"]
    record = db.session(session["id"])
    assert record["delivery_status"] == "sent"
    assert record["delivery_attempts"] == 2  # the webhook's claim counted as an attempt


def test_crash_after_the_send_before_recording_resends_the_same_event_once(
    redrive_env, deliver, db, redrive, tiktok_server, sent_by_event, monkeypatch
):
    """TikTok got it, but the outcome was never written: after the claim expires the redrive sends
    the same event_id again, which TikTok deduplicates."""
    from checkout_conversions import delivery

    session = checkout_session()

    def crash(*args, **kwargs):
        raise RuntimeError("the Lambda died here")

    with monkeypatch.context() as patch:
        patch.setattr(delivery, "record_outcome", crash)
        with pytest.raises(RuntimeError):
            deliver(stripe_event(session=session))

    record = db.session(session["id"])
    assert record["delivery_status"] == "pending" and record["claim_token"]
    assert redrive() == {"not_claimed": 1}
    assert redrive(at=record["claim_expires_at"] + 1) == {"sent": 1}
    first, second = sent_by_event()[session["id"]]
    assert first == second
    assert db.session(session["id"])["delivery_status"] == "sent"


# --- DynamoDB throttled or unreachable while provisioning ----------------------------------------


@pytest.mark.parametrize(
    ("code", "reasons"),
    [
        ("ProvisionedThroughputExceededException", None),
        ("ThrottlingException", None),
        ("TransactionCanceledException", [{"Code": "None"}, {"Code": "ThrottlingError"}]),
    ],
)
def test_throttled_provisioning_answers_500_and_the_retry_provisions_once(
    env, app, deliver, db, tiktok_server, emf, logs, failing_client, monkeypatch, code, reasons
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
    assert tiktok_server.requests == []
    assert db.sessions() == [] and db.customers() == []
    assert emf.total("ProvisioningFailures") == 1
    [failure] = [line for line in logs() if line.get("message") == "Provisioning failed: Stripe will retry"]
    assert failure["level"] == "ERROR"
    assert code in failure["store_error"] or "ThrottlingError" in failure["store_error"]

    retry = deliver(event)
    assert retry.status == 200 and retry.body["status"] == "provisioned"
    assert len(db.customers()) == 1
    assert len(tiktok_server.requests) == 1
    assert deliver(event).body["status"] == "duplicate"
    assert len(db.customers()) == 1 and len(tiktok_server.requests) == 1


def test_unreachable_dynamodb_answers_500_and_the_retry_provisions_once(
    env, app, deliver, db, tiktok_server, emf, monkeypatch
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
    assert tiktok_server.requests == []
    assert db.sessions() == [] and db.customers() == []
    assert emf.total("ProvisioningFailures") == 1

    assert deliver(event).body["status"] == "provisioned"
    assert len(db.customers()) == 1
    assert len(tiktok_server.requests) == 1


def test_throttled_outcome_record_keeps_the_answer_200_and_the_redrive_finishes(
    redrive_env, app, deliver, db, redrive, tiktok_server, sent_by_event, emf, failing_client, monkeypatch
):
    """Provisioned and sent, but recording 'sent' was throttled: the answer is still 200, the claim
    expires and the redrive sends the same event once more (TikTok deduplicates it)."""
    session = checkout_session()
    throttled = failing_client(
        app.dynamodb,
        "update_item",
        "ProvisionedThroughputExceededException",
        when=lambda kwargs: "claim_token = :claim_token" in kwargs.get("ConditionExpression", ""),
    )

    with monkeypatch.context() as patch:
        patch.setattr(app, "dynamodb", throttled)
        answer = deliver(stripe_event(session=session))

    assert answer.status == 200
    assert answer.body["tiktok"] == {"status": "sent"}
    assert emf.total("DeliveryRecordFailures") == 1
    record = db.session(session["id"])
    assert record["delivery_status"] == "pending" and record["claim_token"]
    assert len(db.customers()) == 1

    assert redrive() == {"not_claimed": 1}
    assert redrive(at=record["claim_expires_at"] + 1) == {"sent": 1}
    first, second = sent_by_event()[session["id"]]
    assert first == second
    assert db.session(session["id"])["delivery_status"] == "sent"


def test_redrive_fails_loudly_when_dynamodb_is_unreachable(
    redrive_env, pending, redrive_app, redrive_context, tiktok_server, monkeypatch
):
    """The scheduled run raises (a Lambda error, retried by the next schedule); nothing is sent."""
    from checkout_conversions.store import StoreError

    pending()
    monkeypatch.setattr(redrive_app, "dynamodb", dead_dynamodb())

    with pytest.raises(StoreError):
        redrive_app.lambda_handler({}, redrive_context())

    assert tiktok_server.requests == []


def test_no_log_line_on_any_path_carries_pii_or_secrets(
    redrive_env, app, deliver, pending, redrive, tiktok_server, logs, monkeypatch
):
    """Success, TikTok rejections, a DynamoDB failure (with its traceback) and the redrive: the
    buyer's email, name, phone, IP, click id and User-Agent, the token and the secret never
    reach a log line."""
    from tests.integration.conftest import TIKTOK_TOKEN, WEBHOOK_SECRET

    deliver(stripe_event())
    tiktok_server.behave("code:40002")
    deliver(stripe_event())
    tiktok_server.behave("http:500")
    pending(1)
    redrive()
    dead = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        config=Config(connect_timeout=0.3, read_timeout=0.3, retries={"mode": "standard", "max_attempts": 1}),
    )
    with monkeypatch.context() as patch:
        patch.setattr(app, "dynamodb", dead)
        assert deliver(stripe_event()).status == 500

    text = logs.text()
    assert "Provisioning failed" in text and "Redrive finished" in text and "TikTok delivery failed" in text
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
    ):
        assert secret not in text, secret
