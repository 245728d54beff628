"""The TikTok CompletePayment: what is sent, and that TikTok can never block or fail provisioning."""

import time

import pytest

from tests.factories import checkout_session, stripe_event
from tests.integration.conftest import PIXEL_ID, TIKTOK_TOKEN

EMAIL_SHA256 = "86e0b9e56c17cc4d12387e1949b85053fbe73bc3ce5a1188713a9d300cc6133d"  # jane.doe@example.com
PHONE_SHA256 = "36a2cef4ff9bf7a1abd2a93359136b870393be4106e6c5d19b72ff564f9deca4"  # +14155550123
USER_42_SHA256 = "6d894aa3ee802549d7f340e7c1cf0d1c1cb14cd84f768d92ffaa6785337c4997"  # user-42
CUSTOMER_SHA256 = "3ca33e3c988c788fa1e3b0821bce9623dcbe5a08a8f9702c3d0baa8bb6ad10b5"  # cus_TestCustomer0001
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_complete_payment_carries_session_id_time_value_and_match_keys(env, deliver, tiktok_server):
    session = checkout_session()
    event = stripe_event(session=session)

    deliver(event)

    [request] = tiktok_server.requests
    assert request.headers["access-token"] == TIKTOK_TOKEN
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    assert body["event_source"] == "web"
    assert body["event_source_id"] == PIXEL_ID
    assert body["test_event_code"] == "TEST12345"
    [sent] = body["data"]
    assert sent["event"] == "CompletePayment"
    assert sent["event_id"] == session["id"]
    assert sent["event_time"] == event["created"]
    assert type(sent["event_time"]) is int
    assert sent["properties"]["value"] == 19.99
    assert sent["properties"]["currency"] == "USD"
    assert sent["properties"]["order_id"] == session["id"]
    assert sent["user"] == {
        "email": EMAIL_SHA256,
        "phone": PHONE_SHA256,
        "external_id": USER_42_SHA256,
        "ttclid": "E.C.P.test-ttclid",
        "ttp": "2abcDEFttpCookie",
        "ip": "203.0.113.7",
        "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
    }
    assert sent["page"] == {"url": "https://shop.example.com/checkout", "referrer": "https://www.tiktok.com/"}


def test_webhook_requests_own_ip_and_user_agent_are_never_used(env, deliver, tiktok_server):
    session = checkout_session(metadata={})

    deliver(stripe_event(session=session))

    user = tiktok_server.events()[0]["user"]
    assert "ip" not in user and "user_agent" not in user  # the request came from Stripe's servers


@pytest.mark.parametrize(
    ("currency", "amount", "value"),
    [("jpy", 1500, 1500), ("usd", 1999, 19.99), ("kwd", 12340, 12.34), ("eur", 5, 0.05)],
)
def test_value_uses_stripe_currency_exponents(env, deliver, tiktok_server, currency, amount, value):
    deliver(stripe_event(session=checkout_session(currency=currency, amount_total=amount)))

    properties = tiktok_server.events()[0]["properties"]
    assert properties["value"] == value
    assert properties["currency"] == currency.upper()


def test_missing_match_keys_are_left_out_never_sent_empty(env, deliver, tiktok_server):
    session = checkout_session(
        customer=None,
        client_reference_id=None,
        customer_details={"email": "", "name": None, "phone": None},
        metadata={"ttclid": "", "page_url": "   "},
    )

    deliver(stripe_event(session=session))

    [sent] = tiktok_server.events()
    assert sent["user"] == {}
    assert "page" not in sent
    assert EMPTY_SHA256 not in tiktok_server.requests[0].body.decode()
    assert '""' not in tiktok_server.requests[0].body.decode()


def test_external_id_falls_back_to_the_stripe_customer_id(env, deliver, tiktok_server):
    deliver(stripe_event(session=checkout_session(client_reference_id=None)))

    assert tiktok_server.events()[0]["user"]["external_id"] == CUSTOMER_SHA256


def test_phone_without_country_code_uses_the_default_country_or_is_dropped(
    env, deliver, tiktok_server, monkeypatch
):
    details = {"email": "jane.doe@example.com", "phone": "(415) 555-0123"}
    deliver(stripe_event(session=checkout_session(customer_details=details)))
    assert tiktok_server.events()[0]["user"]["phone"] == PHONE_SHA256

    monkeypatch.setenv("DEFAULT_PHONE_COUNTRY", "")
    tiktok_server.behave("ok")
    deliver(stripe_event(session=checkout_session(customer_details=details)))
    assert "phone" not in tiktok_server.events()[0]["user"]


def test_event_name_is_configurable(env, deliver, tiktok_server, monkeypatch):
    monkeypatch.setenv("TIKTOK_EVENT_NAME", "Purchase")

    deliver(stripe_event())

    assert tiktok_server.events()[0]["event"] == "Purchase"


def test_live_event_without_test_code_is_sent_as_a_real_event(env, deliver, tiktok_server, monkeypatch):
    monkeypatch.setenv("TIKTOK_TEST_EVENT_CODE", "")

    answer = deliver(stripe_event(session=checkout_session(livemode=True)))

    assert answer.body["tiktok"]["status"] == "sent"
    assert "test_event_code" not in tiktok_server.requests[0].json()


def test_test_mode_event_without_test_code_is_skipped(env, deliver, tiktok_server, db, monkeypatch):
    monkeypatch.setenv("TIKTOK_TEST_EVENT_CODE", "")
    session = checkout_session(livemode=False)

    answer = deliver(stripe_event(session=session))

    assert answer.body["status"] == "provisioned"
    assert answer.body["tiktok"] == {
        "status": "skipped",
        "reason": "test-mode event and no TIKTOK_TEST_EVENT_CODE",
    }
    assert tiktok_server.requests == []
    assert db.session(session["id"])["delivery_status"] == "skipped"


@pytest.mark.parametrize("cleared", ["TIKTOK_ACCESS_TOKEN", "TIKTOK_PIXEL_ID"])
def test_clearing_the_token_or_pixel_switches_tiktok_off(
    env, deliver, tiktok_server, db, logs, monkeypatch, cleared
):
    monkeypatch.setenv(cleared, "")
    session = checkout_session()

    answer = deliver(stripe_event(session=session))

    assert answer.status == 200
    assert answer.body["status"] == "provisioned"
    assert answer.body["tiktok"]["status"] == "skipped"
    assert cleared in answer.body["tiktok"]["reason"]
    assert tiktok_server.requests == []
    assert len(db.customers()) == 1
    record = db.session(session["id"])
    assert record["delivery_status"] == "skipped"
    assert cleared in record["delivery_reason"]
    said = [line for line in logs() if "switched off" in str(line.get("reason", ""))]
    assert len(said) == 1


def test_unsetting_the_token_switches_tiktok_off(env, deliver, tiktok_server, monkeypatch):
    monkeypatch.delenv("TIKTOK_ACCESS_TOKEN")

    assert deliver(stripe_event()).body["tiktok"]["status"] == "skipped"
    assert tiktok_server.requests == []


def test_sent_delivery_is_recorded(env, deliver, db):
    session = checkout_session()

    deliver(stripe_event(session=session))

    record = db.session(session["id"])
    assert record["delivery_status"] == "sent"
    assert record["delivery_attempts"] == 1
    assert record["delivery_request_id"] == "req-standin"
    assert "redrive_queue" not in record and "claim_token" not in record
    assert "tiktok_event" not in record  # the raw IP, User-Agent and click id are not kept once sent


@pytest.mark.parametrize(
    ("behaviour", "retryable", "code"),
    [
        ("code:40001", False, 40001),
        ("code:40105", False, 40105),
        ("code:40100", True, 40100),
        ("code:50000", True, 50000),
        ("http:500", True, None),
        ("http:429", True, None),
        ("garbage", True, None),
    ],
)
def test_tiktok_failures_never_fail_provisioning_and_are_recorded(
    env, deliver, tiktok_server, db, behaviour, retryable, code
):
    tiktok_server.behave(behaviour)
    session = checkout_session()

    answer = deliver(stripe_event(session=session))

    assert answer.status == 200
    assert answer.body["status"] == "provisioned"
    assert answer.body["tiktok"]["status"] == "failed"
    assert answer.body["tiktok"]["retryable"] is retryable
    assert len(db.customers()) == 1
    record = db.session(session["id"])
    assert record["delivery_status"] == "failed"
    assert record["delivery_retryable"] is retryable
    assert record["delivery_attempts"] == 1
    assert record.get("delivery_code") == code
    assert record.get("delivery_message")
    # A retryable failure stays queued for the redrive; a permanent one leaves the queue.
    assert ("redrive_queue" in record) is retryable
    if code:
        assert record["delivery_request_id"] == "req-standin"


def test_hanging_tiktok_cannot_hold_the_answer_past_the_budget(env, deliver, tiktok_server, db, monkeypatch):
    monkeypatch.setenv("TIKTOK_TIMEOUT_SECONDS", "1.0")
    tiktok_server.behave("hang")
    session = checkout_session()

    started = time.monotonic()
    answer = deliver(stripe_event(session=session))
    elapsed = time.monotonic() - started
    tiktok_server.release_hung()

    assert answer.status == 200
    assert answer.body["status"] == "provisioned"
    assert answer.body["tiktok"]["status"] == "failed"
    assert answer.body["tiktok"]["retryable"] is True
    assert 1.0 <= elapsed < 2.0
    assert db.session(session["id"])["delivery_status"] == "failed"


def test_slow_tiktok_gets_the_whole_budget(env, deliver, tiktok_server, monkeypatch):
    monkeypatch.setenv("TIKTOK_TIMEOUT_SECONDS", "1.0")
    tiktok_server.behave("slow-headers:0.8")

    answer = deliver(stripe_event())

    assert answer.body["tiktok"] == {"status": "sent"}


@pytest.mark.parametrize(
    "behaviour",
    [
        "slow-body:0.7:5",  # headers after 0.7 s, then the body stalls
        "trickle:0.2",  # every read returns within its timeout, the whole answer never does
    ],
)
def test_one_deadline_covers_waiting_and_reading_the_answer(
    env, deliver, tiktok_server, monkeypatch, behaviour
):
    """A server that is slow in several phases, or trickles its answer, cannot stretch the
    webhook's answer past the one budget."""
    monkeypatch.setenv("TIKTOK_TIMEOUT_SECONDS", "1.0")
    tiktok_server.behave(behaviour)

    started = time.monotonic()
    answer = deliver(stripe_event())
    elapsed = time.monotonic() - started
    tiktok_server.release_hung()

    assert answer.body["tiktok"]["status"] == "failed"
    assert answer.body["tiktok"]["retryable"] is True
    assert elapsed < 1.4


def test_budget_never_exceeds_the_lambdas_remaining_time(env, invoke, tiktok_server, monkeypatch):
    from devtools.function_url import signed_webhook_event
    from tests.integration.conftest import WEBHOOK_SECRET

    monkeypatch.setenv("TIKTOK_TIMEOUT_SECONDS", "5")
    tiktok_server.behave("hang")

    started = time.monotonic()
    answer = invoke(signed_webhook_event(stripe_event(), WEBHOOK_SECRET), timeout_seconds=3.0)
    elapsed = time.monotonic() - started
    tiktok_server.release_hung()

    assert answer.status == 200
    assert elapsed < 3.0 - 1.0  # remaining time minus the margin kept for recording and answering


def test_no_time_left_leaves_the_delivery_to_the_redrive(env, invoke, tiktok_server, db):
    from devtools.function_url import signed_webhook_event
    from tests.integration.conftest import WEBHOOK_SECRET

    session = checkout_session()

    answer = invoke(signed_webhook_event(stripe_event(session=session), WEBHOOK_SECRET), timeout_seconds=1.8)

    assert answer.status == 200
    assert answer.body["tiktok"] == {"status": "pending"}
    assert tiktok_server.requests == []
    record = db.session(session["id"])
    assert record["delivery_status"] == "pending"
    assert record["redrive_queue"] == "tiktok"


def test_logs_carry_no_secret_token_or_raw_pii(env, deliver, logs, tiktok_server):
    tiktok_server.behave("code:40001")
    event = stripe_event()

    deliver(event)
    deliver(event)

    text = logs.text()
    lines = logs()
    assert lines, "the function logs as JSON"
    for secret in (
        TIKTOK_TOKEN,
        "whsec_",
        "jane.doe@example.com",
        "Jane.Doe@Example.COM",
        "Jane Doe",
        "555-0123",
        "203.0.113.7",
        "E.C.P.test-ttclid",
    ):
        assert secret not in text
    assert {line.get("correlation_id") for line in lines if line.get("level")} == {event["id"]}
    assert all(
        line.get("checkout_session_id") == event["data"]["object"]["id"]
        for line in lines
        if line.get("level") and line["message"] != "Rejected a webhook"
    )


class SlowTransactions:
    """The function's DynamoDB client, with transactions that take `delay` seconds (botocore
    retrying a throttled write, say)."""

    def __init__(self, client, delay):
        self._client, self._delay = client, delay

    def transact_write_items(self, **request):
        time.sleep(self._delay)
        return self._client.transact_write_items(**request)

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_slow_provisioning_shrinks_the_tiktok_budget_instead_of_overrunning(
    env, app, invoke, tiktok_server, db, monkeypatch
):
    from devtools.function_url import signed_webhook_event
    from tests.integration.conftest import WEBHOOK_SECRET

    monkeypatch.setenv("TIKTOK_TIMEOUT_SECONDS", "3")
    monkeypatch.setattr(app, "dynamodb", SlowTransactions(app.dynamodb, 2.2))
    tiktok_server.behave("hang")
    session = checkout_session()

    started = time.monotonic()
    answer = invoke(signed_webhook_event(stripe_event(session=session), WEBHOOK_SECRET), timeout_seconds=4.0)
    elapsed = time.monotonic() - started
    tiktok_server.release_hung()

    # 4 s of Lambda time, 2.2 s spent provisioning: what is left after the 1.5 s margin is too
    # little to send, so the delivery waits for the redrive and the answer comes in time.
    assert answer.body["status"] == "provisioned"
    assert answer.body["tiktok"] == {"status": "pending"}
    assert elapsed < 4.0 - 1.0
    assert tiktok_server.requests == []
    assert db.session(session["id"])["redrive_queue"] == "tiktok"


def test_an_invalid_tiktok_setting_never_stops_provisioning(env, deliver, tiktok_server, logs, monkeypatch):
    monkeypatch.setenv("TIKTOK_TIMEOUT_SECONDS", "three")
    monkeypatch.setenv("REDRIVE_BATCH_SIZE", "0")

    answer = deliver(stripe_event())

    assert answer.body["status"] == "provisioned"
    assert answer.body["tiktok"] == {"status": "sent"}
    [error] = [line for line in logs() if line.get("message", "").startswith("Invalid settings ignored")]
    assert error["level"] == "ERROR"
    assert any("TIKTOK_TIMEOUT_SECONDS" in problem for problem in error["problems"])
    assert any("REDRIVE_BATCH_SIZE" in problem for problem in error["problems"])


def test_a_payment_older_than_the_max_age_is_provisioned_but_not_reported(env, deliver, tiktok_server, db):
    """A dashboard resend of a 10-day-old event still provisions (if it was lost), but its
    conversion is as stale as the redrive's expiry rule says."""
    session = checkout_session()

    answer = deliver(stripe_event(session=session, created=int(time.time()) - 10 * 86400))

    assert answer.body["status"] == "provisioned"
    assert answer.body["tiktok"] == {"status": "skipped", "reason": "payment older than 7 days"}
    assert tiktok_server.requests == []
    assert db.session(session["id"])["delivery_status"] == "skipped"
