"""Secrets read from SSM Parameter Store (SecureString) or Secrets Manager, served by the same moto
server on loopback, through Powertools Parameters with its short cache.

The webhook reads only the Stripe signing secret; the stream sender and the redrive read the TikTok
token and the optional Stripe API key (line items), at send time."""

import time
import uuid

import boto3
import pytest

from devtools.stripe_standin import line_item
from tests.factories import checkout_session, stripe_event
from tests.integration.conftest import STRIPE_API_KEY, WEBHOOK_SECRET, read_secrets_from

pytest_plugins = ("tests.integration.redrive_fixtures",)

NOTHING_TO_RETRY = {"batchItemFailures": []}

ENV_SECRET = "whsec_in_the_environment_not_used"
ENV_TOKEN = "token-in-the-environment-not-used"
ENV_TEST_CODE = "TEST_IN_THE_ENVIRONMENT_NOT_USED"
STORED_TEST_CODE = "TEST_STORED"


class SecretStore:
    """One of the two stores, with names unique to the test."""

    def __init__(self, source: str, endpoint: str):
        self.source = source
        self._prefix = f"checkout-test-{uuid.uuid4().hex[:8]}"
        self._ssm = boto3.client("ssm", endpoint_url=endpoint)
        self._secrets = boto3.client("secretsmanager", endpoint_url=endpoint)

    def name(self, what: str) -> str:
        # An SSM parameter name in a hierarchy starts with "/"; a Secrets Manager name does not.
        return f"/{self._prefix}/{what}" if self.source == "ssm" else f"{self._prefix}/{what}"

    def write(self, name: str, value: str) -> None:
        if self.source == "ssm":
            self._ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)
        elif self._exists(name):
            self._secrets.put_secret_value(SecretId=name, SecretString=value)
        else:
            self._secrets.create_secret(Name=name, SecretString=value)

    def _exists(self, name: str) -> bool:
        try:
            self._secrets.describe_secret(SecretId=name)
        except self._secrets.exceptions.ResourceNotFoundException:
            return False
        return True


@pytest.fixture(params=["ssm", "secretsmanager"])
def secrets(request, env, aws_endpoint, monkeypatch):
    """The functions configured to read both secrets from one store (written by each test); the
    environment holds other values, which must never be used."""
    from aws_lambda_powertools.utilities import parameters

    read_secrets_from(aws_endpoint, monkeypatch)
    store = SecretStore(request.param, aws_endpoint)
    monkeypatch.setenv("SECRETS_SOURCE", request.param)
    monkeypatch.setenv("SECRETS_CACHE_SECONDS", "0")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET_NAME", store.name("stripe-webhook-secret"))
    monkeypatch.setenv("TIKTOK_ACCESS_TOKEN_NAME", store.name("tiktok-access-token"))
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", ENV_SECRET)
    monkeypatch.setenv("TIKTOK_ACCESS_TOKEN", ENV_TOKEN)
    # The test event code lives beside the token (the events are test mode): the environment's
    # is not used either.
    monkeypatch.setenv("TIKTOK_TEST_EVENT_CODE_NAME", store.name("tiktok-test-event-code"))
    monkeypatch.setenv("TIKTOK_TEST_EVENT_CODE", ENV_TEST_CODE)
    store.write(store.name("tiktok-test-event-code"), STORED_TEST_CODE)
    yield store
    parameters.clear_caches()


def test_the_webhook_reads_only_the_stripe_secret(secrets, deliver, db, tiktok_server, emf, logs):
    secrets.write(secrets.name("stripe-webhook-secret"), WEBHOOK_SECRET)  # no TikTok token entry at all

    answer = deliver(stripe_event())

    assert answer.status == 200
    assert answer.body["status"] == "provisioned" and answer.body["deliveries"]["tiktok"] == {
        "status": "pending"
    }
    assert len(db.customers()) == 1
    assert emf.total("ConfigurationErrors") == 0
    assert not [line for line in logs() if line.get("level") == "ERROR"]
    assert tiktok_server.requests == []
    # The secret in the environment is not the one used.
    assert deliver(stripe_event(), secret=ENV_SECRET).status == 400
    assert len(db.customers()) == 1


def test_the_sender_and_the_redrive_read_the_token_from_the_store_at_send_time(
    secrets, deliver, stream, pending, db, redrive, tiktok_server
):
    secrets.write(secrets.name("stripe-webhook-secret"), WEBHOOK_SECRET)
    streamed = checkout_session()
    assert deliver(stripe_event(session=streamed)).body["deliveries"]["tiktok"] == {"status": "pending"}
    # Written after provisioning: only read when the delivery is sent.
    secrets.write(secrets.name("tiktok-access-token"), f"token-from-{secrets.source}")

    stream.drain()

    assert [invocation.answer for invocation in stream.invocations] == [NOTHING_TO_RETRY]
    [request] = tiktok_server.requests
    assert request.headers["access-token"] == f"token-from-{secrets.source}"
    assert request.json()["data"][0]["event_id"] == streamed["id"]

    [(redriven, _)] = pending()
    secrets.write(secrets.name("tiktok-access-token"), "token-for-the-redrive")
    assert redrive(at=db.delivery(redriven["id"])["next_attempt_at"]) == {"sent": 1}
    assert tiktok_server.requests[-1].headers["access-token"] == "token-for-the-redrive"
    assert tiktok_server.requests[-1].json()["data"][0]["event_id"] == redriven["id"]


def test_the_test_event_code_is_read_from_the_store_at_send_time_and_cleared_there_to_go_live(
    secrets, deliver, stream, pending, db, redrive, tiktok_server
):
    """Test mode is switched on and off in the store, like the token, with no deploy: while a code
    is stored every event carries it (never the environment's); once it says `disabled` a live
    purchase goes out without one, and a test-mode purchase, still recorded pending by the
    webhook (which reads no platform secret), is skipped by the sender."""
    secrets.write(secrets.name("stripe-webhook-secret"), WEBHOOK_SECRET)
    secrets.write(secrets.name("tiktok-access-token"), "token")
    testing = checkout_session(livemode=False)
    assert deliver(stripe_event(session=testing)).body["deliveries"]["tiktok"] == {"status": "pending"}
    stream.drain()
    [request] = tiktok_server.requests
    assert request.json()["test_event_code"] == STORED_TEST_CODE

    [(redriven, _)] = pending()
    secrets.write(secrets.name("tiktok-test-event-code"), "TEST_FOR_THE_REDRIVE")
    assert redrive(at=db.delivery(redriven["id"])["next_attempt_at"]) == {"sent": 1}
    assert tiktok_server.requests[-1].json()["test_event_code"] == "TEST_FOR_THE_REDRIVE"

    secrets.write(secrets.name("tiktok-test-event-code"), "disabled")  # live: SECRETS_CACHE_SECONDS=0
    live = checkout_session(livemode=True)
    after = checkout_session(livemode=False)
    for session in (live, after):
        assert deliver(stripe_event(session=session)).body["deliveries"]["tiktok"] == {"status": "pending"}
    stream.drain()
    sent = tiktok_server.requests[-1].json()
    assert sent["data"][0]["event_id"] == live["id"] and "test_event_code" not in sent
    assert len(tiktok_server.requests) == 3  # nothing for the test-mode purchase
    skipped = db.delivery(after["id"])
    assert skipped["delivery_status"] == "skipped" and "purchase" not in skipped
    assert skipped["delivery_reason"] == "test-mode event and no TIKTOK_TEST_EVENT_CODE"
    assert db.delivery(live["id"])["delivery_status"] == "sent"


def test_rotation_accepts_every_secret_listed_in_the_store(secrets, deliver, db):
    secrets.write(secrets.name("stripe-webhook-secret"), f"whsec_old_0001,{WEBHOOK_SECRET}")

    assert deliver(stripe_event(), secret="whsec_old_0001").status == 200
    assert deliver(stripe_event(), secret=WEBHOOK_SECRET).status == 200
    assert len(db.customers()) == 2


def test_writing_disabled_switches_tiktok_off_once_the_cache_expires(
    secrets, checkout, db, tiktok_server, redrive, monkeypatch
):
    cache = 3  # seconds: long enough for a busy machine to make the second checkout within it
    monkeypatch.setenv("SECRETS_CACHE_SECONDS", str(cache))
    token_name = secrets.name("tiktok-access-token")
    secrets.write(secrets.name("stripe-webhook-secret"), WEBHOOK_SECRET)
    secrets.write(token_name, "token")

    checkout(stripe_event())
    read_by = time.monotonic()  # the sender read the token (and cached it) before this
    secrets.write(token_name, "disabled")

    # Within the cache age the warm container still has the old token.
    checkout(stripe_event())
    assert time.monotonic() - read_by < cache, "too slow to observe the cache"
    assert [request.headers["access-token"] for request in tiktok_server.requests] == ["token", "token"]

    # No drain or fixed clock can age Powertools' cache: wait it out.
    time.sleep(max(0.0, read_by + cache + 0.05 - time.monotonic()))
    session = checkout_session()
    answer = checkout(stripe_event(session=session))

    assert answer.status == 200 and answer.body["deliveries"]["tiktok"] == {
        "status": "pending"
    }  # it cannot tell
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "skipped"
    assert "switched off" in record["delivery_reason"] and "TIKTOK_ACCESS_TOKEN" in record["delivery_reason"]
    assert len(tiktok_server.requests) == 2
    assert "switched off" in redrive()["disabled"]
    read_by = time.monotonic()

    # Writing a token back switches TikTok on again once the cached "disabled" has aged out.
    # (A cached entry keeps the age it was given: lowering SECRETS_CACHE_SECONDS does not shorten it.)
    secrets.write(token_name, "token-2")
    time.sleep(max(0.0, read_by + cache + 0.05 - time.monotonic()))
    session = checkout_session()
    checkout(stripe_event(session=session))
    assert db.delivery(session["id"])["delivery_status"] == "sent"
    assert tiktok_server.requests[-1].headers["access-token"] == "token-2"


def test_unreadable_webhook_secret_answers_500_and_accepts_nothing(
    secrets, deliver, checkout, stream, db, tiktok_server, emf, logs
):
    secrets.write(secrets.name("tiktok-access-token"), "tiktok-token-from-store-0001")  # no webhook secret

    answer = deliver(stripe_event())

    assert answer.status == 500
    assert answer.body == {"error": "webhook endpoint is not configured"}
    assert db.sessions() == [] and db.customers() == []
    assert stream.drain() == 0
    assert tiktok_server.requests == []
    assert emf.total("ConfigurationErrors") == 1
    [line] = [
        line for line in logs() if line.get("message") == "Refusing the event: the function is misconfigured"
    ]
    assert line["level"] == "ERROR"
    assert secrets.name("stripe-webhook-secret") in line["problem"]

    # Writing the secret fixes it without a restart; Stripe's retry then provisions.
    secrets.write(secrets.name("stripe-webhook-secret"), WEBHOOK_SECRET)
    assert checkout(stripe_event()).status == 200
    # Both secrets were read from the store and used; neither reached a log line.
    assert tiktok_server.requests[-1].headers["access-token"] == "tiktok-token-from-store-0001"
    for secret in (WEBHOOK_SECRET, ENV_SECRET, ENV_TOKEN, "tiktok-token-from-store-0001"):
        assert secret not in logs.text()


def test_missing_secret_names_answer_500(secrets, deliver, db, monkeypatch):
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET_NAME", "")

    answer = deliver(stripe_event())

    assert answer.status == 500
    assert db.customers() == []


def test_unreadable_token_leaves_the_delivery_pending_for_lambda_and_the_redrive_to_retry(
    secrets, redrive_env, deliver, stream, db, tiktok_server, redrive, logs
):
    secrets.write(secrets.name("stripe-webhook-secret"), WEBHOOK_SECRET)  # the token is never written
    session = checkout_session()

    answer = deliver(stripe_event(session=session))

    # The webhook never reads the token: provisioning is unaffected.
    assert answer.status == 200
    assert answer.body["status"] == "provisioned"
    assert answer.body["deliveries"]["tiktok"] == {"status": "pending"}
    assert len(db.customers()) == 1

    stream.drain()

    # The sender reports the record failed each time Lambda delivers it, and claims nothing.
    [record_id] = [record["dynamodb"]["SequenceNumber"] for record in stream.invocations[0].event["Records"]]
    assert all(
        invocation.answer == {"batchItemFailures": [{"itemIdentifier": record_id}]}
        for invocation in stream.invocations
    )
    assert len(stream.invocations) > 1 and len(stream.given_up) == 1
    assert tiktok_server.requests == []
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "pending" and record["delivery_attempts"] == 0
    assert record["redrive_queue"] == "tiktok" and "purchase" in record and "claim_token" not in record
    assert any(line.get("message", "").startswith("Cannot read a secret") for line in logs())

    # The redrive logs it and sends nothing.
    assert redrive() == {"disabled": "secret unreadable"}
    assert tiktok_server.requests == []
    [line] = [line for line in logs() if line.get("message") == "Cannot read a secret; nothing sent this run"]
    assert line["level"] == "ERROR" and secrets.name("tiktok-access-token") in line["problem"]

    secrets.write(secrets.name("tiktok-access-token"), "token-at-last")
    assert redrive() == {"sent": 1}
    [request] = tiktok_server.requests
    assert request.headers["access-token"] == "token-at-last"
    assert db.delivery(session["id"])["delivery_status"] == "sent"


# --- the optional Stripe API key (the sender reads the session's line items with it) ----------


def test_the_sender_reads_the_stripe_api_key_from_the_store(
    secrets, stripe_api, deliver, stream, pending, redrive, db, tiktok_server, logs, monkeypatch
):
    monkeypatch.setenv("STRIPE_API_KEY_NAME", secrets.name("stripe-api-key"))
    secrets.write(secrets.name("stripe-webhook-secret"), WEBHOOK_SECRET)
    secrets.write(secrets.name("tiktok-access-token"), "tiktok-token")
    secrets.write(secrets.name("stripe-api-key"), f"rk_test_from_{secrets.source}")
    session = checkout_session()
    stripe_api.set_line_items(session["id"], [line_item("price_tee", "prod_tee", "T-shirt")])

    assert deliver(stripe_event(session=session)).body["deliveries"]["tiktok"] == {"status": "pending"}
    stream.drain()

    # The key in the store, not the one in the environment, as a Bearer token; and contents sent.
    [request] = stripe_api.requests
    assert request["headers"]["authorization"] == f"Bearer rk_test_from_{secrets.source}"
    [event] = tiktok_server.events()
    assert [content["content_id"] for content in event["properties"]["contents"]] == ["price_tee"]

    # The redrive reads it too.
    [(redriven, _)] = pending()
    stripe_api.set_line_items(redriven["id"], [line_item("price_mug", "prod_mug", "Mug")])
    assert redrive(at=db.delivery(redriven["id"])["next_attempt_at"]) == {"sent": 1}
    assert stripe_api.requests[-1]["headers"]["authorization"] == f"Bearer rk_test_from_{secrets.source}"
    assert tiktok_server.events()[-1]["properties"]["contents"][0]["content_id"] == "price_mug"
    for secret in (f"rk_test_from_{secrets.source}", STRIPE_API_KEY, "tiktok-token"):
        assert secret not in logs.text()


def test_without_a_stripe_api_key_name_the_store_is_not_asked_and_no_contents_are_sent(
    secrets, stripe_api, checkout, db, tiktok_server, emf, monkeypatch
):
    # SECRETS_SOURCE is a store and STRIPE_API_KEY_NAME empty: no key (the environment's is ignored).
    monkeypatch.setenv("STRIPE_API_KEY_NAME", "")
    secrets.write(secrets.name("stripe-webhook-secret"), WEBHOOK_SECRET)
    secrets.write(secrets.name("tiktok-access-token"), "tiktok-token")
    session = checkout_session()
    stripe_api.set_line_items(session["id"], [line_item("price_tee", "prod_tee", "T-shirt")])

    checkout(stripe_event(session=session))

    assert stripe_api.requests == []
    [event] = tiktok_server.events()
    assert "contents" not in event["properties"]
    assert db.delivery(session["id"])["delivery_status"] == "sent"
    assert emf.total("ConfigurationErrors") == 0


def test_an_unreadable_stripe_api_key_makes_the_delivery_wait_then_it_goes_with_contents(
    secrets, stripe_api, checkout, db, tiktok_server, emf, logs, redrive, monkeypatch
):
    """A key that is configured but cannot be read (a store error, a missing permission) is not
    "no key": the delivery waits, as for an unreadable token, rather than go without contents."""
    monkeypatch.setenv("STRIPE_API_KEY_NAME", secrets.name("stripe-api-key"))  # not written yet
    secrets.write(secrets.name("stripe-webhook-secret"), WEBHOOK_SECRET)
    secrets.write(secrets.name("tiktok-access-token"), "tiktok-token")
    session = checkout_session()
    stripe_api.set_line_items(session["id"], [line_item("price_tee", "prod_tee", "T-shirt")])

    answer = checkout(stripe_event(session=session))

    # The webhook answered as ever; the sender claimed nothing and Lambda retried the record.
    assert answer.body["deliveries"]["tiktok"] == {"status": "pending"}
    assert tiktok_server.requests == [] and stripe_api.requests == []
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "pending" and "claim_token" not in record
    assert emf.total("ConfigurationErrors") >= 1
    [line, *_] = [line for line in logs() if line.get("message", "").startswith("Cannot read a secret")]
    assert line["level"] == "ERROR" and secrets.name("stripe-api-key") in line["problem"]
    assert redrive(at=record["next_attempt_at"] + 1) == {"disabled": "secret unreadable"}
    assert tiktok_server.requests == []

    # The key written, the redrive sends it with what was bought.
    secrets.write(secrets.name("stripe-api-key"), STRIPE_API_KEY)
    assert redrive(at=record["next_attempt_at"] + 1) == {"sent": 1}
    [event] = tiktok_server.events()
    assert [item["content_id"] for item in event["properties"]["contents"]] == ["price_tee"]
    assert STRIPE_API_KEY not in logs.text()
