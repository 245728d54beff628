"""Time budgets: the webhook answers before the Lambda's timeout, whatever the secret's store or
DynamoDB take with their retries: a 500 that Stripe retries, and the retry provisions once."""

import threading
import time

import pytest

from checkout_conversions import secrets
from devtools.function_url import LambdaContext, signed_webhook_event
from tests.factories import checkout_session, stripe_event
from tests.integration.conftest import WEBHOOK_SECRET, Answer

pytest_plugins = ("tests.integration.redrive_fixtures",)

LAMBDA_TIMEOUT = 2.0  # seconds the test's Lambda has; the slow step takes longer
SLOW_STEP = 3.0
SECRET_NAME = "/slow/stripe-webhook-secret"
TEST_CODE_NAME = "/slow/tiktok-test-event-code"


class SlowTransactions:
    """The DynamoDB client of the webhook, whose first TransactWriteItems takes SLOW_STEP before
    it reaches DynamoDB (and then commits): as when DynamoDB is slow and botocore retries."""

    def __init__(self, client):
        self._client = client
        self.done = threading.Event()
        self._slowed = False

    def transact_write_items(self, **request):
        if self._slowed:
            return self._client.transact_write_items(**request)
        self._slowed = True
        time.sleep(SLOW_STEP)
        try:
            return self._client.transact_write_items(**request)
        finally:
            self.done.set()

    def __getattr__(self, name):
        return getattr(self._client, name)


def invoke_within(app, event, seconds):
    started = time.monotonic()
    result = app.lambda_handler(event, LambdaContext(seconds))
    return result, time.monotonic() - started


def as_answer(result):
    import json

    return Answer(result["statusCode"], json.loads(result["body"]), result.get("headers", {}))


def test_slow_dynamodb_gets_a_500_before_the_timeout_and_the_retry_provisions_once(
    env, app, db, stream, tiktok_server, monkeypatch, emf
):
    slow = SlowTransactions(app.dynamodb)
    monkeypatch.setattr(app, "dynamodb", slow)
    session = checkout_session()
    event = signed_webhook_event(stripe_event(session=session), WEBHOOK_SECRET)

    result, took = invoke_within(app, event, LAMBDA_TIMEOUT)

    assert as_answer(result).status == 500 and took < LAMBDA_TIMEOUT
    assert emf.total("WebhookOutOfTime") == 1
    # The slow write goes on and commits; Stripe's retry finds the session provisioned.
    assert slow.done.wait(SLOW_STEP + 5)
    retried = as_answer(app.lambda_handler(event, LambdaContext(10.0)))
    assert retried.status == 200 and retried.body["status"] == "duplicate"
    assert [customer["checkout_session_id"] for customer in db.customers()] == [session["id"]]
    stream.drain()
    assert [sent["event_id"] for sent in tiktok_server.events()] == [session["id"]]


@pytest.fixture
def slow_secret_store(env, monkeypatch):
    """The signing secret read from a store that takes SLOW_STEP to answer, once."""
    answered = threading.Event()
    calls = []

    def slow_read(source, name, max_age):
        if name == TEST_CODE_NAME:
            return env["TIKTOK_TEST_EVENT_CODE"]  # the sender's test event code, read with its token
        if name != SECRET_NAME:
            return env["TIKTOK_ACCESS_TOKEN"]  # the sender's token, read at send time
        calls.append(name)
        if len(calls) == 1:
            time.sleep(SLOW_STEP)
            answered.set()
        return WEBHOOK_SECRET

    monkeypatch.setenv("SECRETS_SOURCE", "ssm")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET_NAME", SECRET_NAME)
    monkeypatch.setenv("TIKTOK_ACCESS_TOKEN_NAME", "/slow/tiktok-access-token")
    monkeypatch.setenv("TIKTOK_TEST_EVENT_CODE_NAME", TEST_CODE_NAME)
    monkeypatch.setattr(secrets, "_read_stored", slow_read)
    return answered


def test_a_slow_secret_store_gets_a_500_before_the_timeout_and_the_retry_provisions_once(
    slow_secret_store, app, db, stream, tiktok_server
):
    session = checkout_session()
    event = signed_webhook_event(stripe_event(session=session), WEBHOOK_SECRET)

    result, took = invoke_within(app, event, LAMBDA_TIMEOUT)

    assert as_answer(result).status == 500 and took < LAMBDA_TIMEOUT
    assert slow_secret_store.wait(SLOW_STEP + 5)
    # The first request's work goes on in its own thread once the store answers, and provisions.
    deadline = time.monotonic() + 5
    while not db.customers() and time.monotonic() < deadline:
        time.sleep(0.05)
    retried = as_answer(app.lambda_handler(event, LambdaContext(10.0)))
    assert (retried.status, retried.body["status"]) == (200, "duplicate")
    assert len(db.customers()) == 1
    stream.drain()
    assert [sent["event_id"] for sent in tiktok_server.events()] == [session["id"]]
