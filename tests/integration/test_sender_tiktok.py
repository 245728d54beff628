"""The TikTok CompletePayment, end to end through the outbox: the webhook answers Stripe and stores
the event, the Sessions table's stream hands it to the sender, which POSTs it to the TikTok
stand-in and records the outcome on the session item.

Covers what is sent (payload fields, currency exponents, match keys, event name, test and live
mode), when nothing is sent (skipped at the webhook, or at send time with the token cleared),
how each TikTok answer is recorded, that a hanging or slow TikTok neither slows the webhook nor
holds the sender past its timeout (and that the redrive sends it later, once), and that the logs
of both functions carry no secret or raw PII.
"""

import json
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.factories import checkout_session, stripe_event
from tests.integration.conftest import PIXEL_ID, TIKTOK_TOKEN, WEBHOOK_SECRET

pytest_plugins = ("tests.integration.redrive_fixtures",)

EMAIL_SHA256 = "86e0b9e56c17cc4d12387e1949b85053fbe73bc3ce5a1188713a9d300cc6133d"  # jane.doe@example.com
PHONE_SHA256 = "36a2cef4ff9bf7a1abd2a93359136b870393be4106e6c5d19b72ff564f9deca4"  # +14155550123
USER_42_SHA256 = "6d894aa3ee802549d7f340e7c1cf0d1c1cb14cd84f768d92ffaa6785337c4997"  # user-42
CUSTOMER_SHA256 = "3ca33e3c988c788fa1e3b0821bce9623dcbe5a08a8f9702c3d0baa8bb6ad10b5"  # cus_TestCustomer0001
# The factory's "Jane Doe" (first and last word, lower-cased) and billing address US / 94107.
FIRST_NAME_SHA256 = "81f8f6dde88365f3928796ec7aa53f72820b06db8664f5fe76a7eb13e24546a2"  # jane
LAST_NAME_SHA256 = "799ef92a11af918e3fb741df42934f3b568ed2d93ac1df74f1b8d41a27932a6f"  # doe
ZIP_SHA256 = "c884a209ebe08750a7d13db63bd02233b375bd79786cbe329ab11586cc35dead"  # 94107
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

PENDING = {"status": "pending"}
WEBHOOK = "StripeWebhookFunction"
SENDER = "DeliverySenderFunction"
# The webhook answers from one DynamoDB transaction: far below a second, whatever TikTok does.
WEBHOOK_ANSWER_SECONDS = 1.0
DAY = 86400


def send_bound(env) -> float:
    """How long one stream delivery may take: what the sender allows one send, 4x the timeout
    (one POST ends within the timeout, one deadline for the whole request), plus claiming and
    recording."""
    return 4 * float(env["TIKTOK_TIMEOUT_SECONDS"]) + 2


def timed(call, *args, **kwargs):
    started = time.monotonic()
    result = call(*args, **kwargs)
    return result, time.monotonic() - started


def queued(record) -> bool:
    return "redrive_queue" in record or "next_attempt_at" in record


def claimed(record) -> bool:
    return "claim_token" in record or "claim_expires_at" in record


def lines_of(logs, function_name):
    return [line for line in logs() if line.get("function_name") == function_name]


def assert_batch_succeeded(stream):
    """The sender handled every record itself: nothing for Lambda to retry or give up on."""
    assert stream.invocations, "the stream invoked the sender"
    for invocation in stream.invocations:
        assert invocation.error is None, invocation.error
        assert invocation.answer == {"batchItemFailures": []}
    assert stream.given_up == []


# ---------------------------------------------------------------------- what is sent


def test_complete_payment_carries_session_id_time_value_and_match_keys(env, checkout, tiktok_server):
    session = checkout_session()
    event = stripe_event(session=session)

    answer = checkout(event)

    assert answer.status == 200
    assert answer.body["deliveries"]["tiktok"] == PENDING
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
        "first_name": FIRST_NAME_SHA256,
        "last_name": LAST_NAME_SHA256,
        "zip_code": ZIP_SHA256,
        "country": "us",  # lower-cased, not hashed
        "ttclid": "E.C.P.test-ttclid",
        "ttp": "2abcDEFttpCookie",
        "ip": "203.0.113.7",
        "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
    }
    assert sent["page"] == {"url": "https://shop.example.com/checkout", "referrer": "https://www.tiktok.com/"}


def test_webhook_requests_own_ip_and_user_agent_are_never_used(env, checkout, tiktok_server):
    session = checkout_session(metadata={})

    checkout(stripe_event(session=session))

    [sent] = tiktok_server.events()
    assert "ip" not in sent["user"] and "user_agent" not in sent["user"]  # Stripe's servers, not the buyer
    body = tiktok_server.requests[0].body.decode()
    assert "54.187.174.169" not in body and "Stripe/1.0" not in body


@pytest.mark.parametrize(
    ("currency", "amount", "value"),
    [("jpy", 1500, 1500), ("usd", 1999, 19.99), ("kwd", 12340, 12.34), ("eur", 5, 0.05)],
)
def test_value_uses_stripe_currency_exponents(env, checkout, tiktok_server, currency, amount, value):
    checkout(stripe_event(session=checkout_session(currency=currency, amount_total=amount)))

    [sent] = tiktok_server.events()
    assert sent["properties"]["value"] == value
    assert sent["properties"]["currency"] == currency.upper()


def test_missing_match_keys_are_left_out_never_sent_empty(env, checkout, tiktok_server):
    session = checkout_session(
        customer=None,
        client_reference_id=None,
        customer_details={"email": "", "name": None, "phone": None},
        metadata={"ttclid": "", "page_url": "   "},
    )

    checkout(stripe_event(session=session))

    [sent] = tiktok_server.events()
    assert sent["user"] == {}
    assert "page" not in sent
    body = tiktok_server.requests[0].body.decode()
    assert EMPTY_SHA256 not in body
    assert '""' not in body


def test_external_id_falls_back_to_the_stripe_customer_id(env, checkout, tiktok_server):
    checkout(stripe_event(session=checkout_session(client_reference_id=None)))

    [sent] = tiktok_server.events()
    assert sent["user"]["external_id"] == CUSTOMER_SHA256


def test_phone_without_country_code_uses_the_default_country_or_is_dropped(
    env, checkout, tiktok_server, monkeypatch
):
    details = {"email": "jane.doe@example.com", "phone": "(415) 555-0123"}
    checkout(stripe_event(session=checkout_session(customer_details=details)))
    [sent] = tiktok_server.events()
    assert sent["user"]["phone"] == PHONE_SHA256

    monkeypatch.setenv("DEFAULT_PHONE_COUNTRY", "")
    tiktok_server.behave("ok")
    checkout(stripe_event(session=checkout_session(customer_details=details)))
    [sent] = tiktok_server.events()
    assert "phone" not in sent["user"]


def test_event_name_is_configurable(env, checkout, tiktok_server, monkeypatch):
    monkeypatch.setenv("TIKTOK_EVENT_NAME", "Purchase")

    checkout(stripe_event())

    [sent] = tiktok_server.events()
    assert sent["event"] == "Purchase"


def test_live_event_without_test_code_is_sent_as_a_real_event(env, checkout, tiktok_server, db, monkeypatch):
    monkeypatch.setenv("TIKTOK_TEST_EVENT_CODE", "")
    session = checkout_session(livemode=True)

    answer = checkout(stripe_event(session=session))

    assert answer.body["deliveries"]["tiktok"] == PENDING
    [request] = tiktok_server.requests
    assert "test_event_code" not in request.json()
    assert db.delivery(session["id"])["delivery_status"] == "sent"


# ---------------------------------------------------------------------- the stored delivery


def test_the_webhook_stores_a_pending_delivery_and_the_sender_records_it_sent(
    env, deliver, stream, tiktok_server, db
):
    session = checkout_session()

    # Given the webhook has answered: the delivery waits in the item, with the purchase to send
    # (platform-neutral, as Stripe gave it: nothing hashed yet; TikTok's event is built at send time).
    answer = deliver(stripe_event(session=session))
    provisioned_at = time.time()

    assert answer.body["deliveries"]["tiktok"] == PENDING
    assert tiktok_server.requests == []
    waiting = db.delivery(session["id"])
    assert waiting["delivery_status"] == "pending"
    assert waiting["delivery_attempts"] == 0
    stored = json.loads(waiting["purchase"])
    assert stored["event_id"] == stored["order_id"] == session["id"]
    assert (stored["amount"], stored["currency"]) == (1999, "USD")
    assert stored["buyer"]["email"] == "jane.doe@example.com"  # trimmed and lower-cased, not hashed
    assert (stored["buyer"]["first_name"], stored["buyer"]["last_name"]) == ("Jane", "Doe")
    assert "tiktok_event" not in waiting
    assert waiting["redrive_queue"] == "tiktok"
    assert abs(waiting["next_attempt_at"] - (provisioned_at + 120)) <= 5  # REDRIVE_GRACE_SECONDS
    assert not claimed(waiting)

    # When the stream hands it to the sender
    stream.drain()

    # Then it is sent once, and the item says so; the stored purchase (the buyer's details, raw IP,
    # User-Agent, click id) goes, and the names of the match keys the event carried stay.
    assert len(tiktok_server.requests) == 1
    assert_batch_succeeded(stream)
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "sent"
    assert record["delivery_attempts"] == 1
    assert record["delivery_request_id"] == "req-standin"
    assert record["delivery_code"] == 0
    assert abs(datetime.fromisoformat(record["delivery_sent_at"]).timestamp() - time.time()) < 60
    assert "purchase" not in record
    assert record["delivery_match_keys"] == [
        "email", "phone", "external_id", "first_name", "last_name", "zip_code", "country",
        "ttclid", "ttp", "ip", "user_agent",
    ]  # fmt: skip
    assert not queued(record) and not claimed(record)
    assert "delivery_retryable" not in record


def test_a_stream_record_seen_twice_sends_nothing_more(env, checkout, stream, tiktok_server, db):
    session = checkout_session()
    checkout(stripe_event(session=session))
    [first] = stream.invocations

    # Lambda delivers at least once: the same record again finds the delivery finished.
    again = stream.invoke(first.event)

    assert again.answer == {"batchItemFailures": []}
    assert len(tiktok_server.requests) == 1
    assert db.delivery(session["id"])["delivery_attempts"] == 1


# ---------------------------------------------------------------------- skipped


def test_test_mode_event_without_test_code_is_recorded_pending_and_skipped_by_the_sender(
    env, deliver, stream, tiktok_server, db, logs, monkeypatch
):
    """The webhook never reads a platform's secret (the test event code is one, read like the
    token): a test-mode purchase is recorded pending with its purchase, and the sender, which
    reads the code, settles it skipped without a request when none is set."""
    monkeypatch.setenv("TIKTOK_TEST_EVENT_CODE", "")
    session = checkout_session(livemode=False)

    answer = deliver(stripe_event(session=session))

    assert answer.body["status"] == "provisioned"
    assert answer.body["deliveries"]["tiktok"] == PENDING
    recorded = db.delivery(session["id"])
    assert recorded["delivery_status"] == "pending" and "purchase" in recorded
    stream.drain()
    assert tiktok_server.requests == []
    assert_batch_succeeded(stream)
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "skipped"
    assert record["delivery_reason"] == "test-mode event and no TIKTOK_TEST_EVENT_CODE"
    assert "purchase" not in record and not queued(record) and not claimed(record)
    said = [line for line in lines_of(logs, SENDER) if line.get("message") == "TikTok delivery skipped"]
    assert len(said) == 1 and said[0]["reason"] == "test-mode event and no TIKTOK_TEST_EVENT_CODE"


def test_clearing_the_pixel_id_starts_no_tiktok_delivery_at_the_webhook(
    env, checkout, stream, tiktok_server, db, logs, monkeypatch
):
    monkeypatch.setenv("TIKTOK_PIXEL_ID", "")
    session = checkout_session()

    answer = checkout(stripe_event(session=session))

    assert answer.status == 200
    assert answer.body["status"] == "provisioned"
    assert answer.body["deliveries"] == {}  # no pixel: TikTok is not part of this deployment
    assert db.delivery(session["id"]) is None
    assert tiktok_server.requests == []
    assert stream.invocations == []
    assert len(db.customers()) == 1
    # Not part of the deployment: no delivery item, nothing of the buyer's stored for it, no noise.
    assert db.delivery(session["id"]) is None
    assert [line for line in logs() if line.get("message") == "TikTok delivery skipped"] == []


def test_a_payment_older_than_the_max_age_is_provisioned_but_not_reported(
    env, checkout, stream, tiktok_server, db
):
    """A dashboard resend of a 10-day-old event still provisions (if it was lost), but its
    conversion is as stale as the redrive's expiry rule says."""
    session = checkout_session()

    answer = checkout(stripe_event(session=session, created=int(time.time()) - 10 * DAY))

    assert answer.body["status"] == "provisioned"
    assert answer.body["deliveries"]["tiktok"] == {"status": "skipped", "reason": "payment older than 7 days"}
    assert tiktok_server.requests == []
    assert stream.invocations == []
    assert db.delivery(session["id"])["delivery_status"] == "skipped"
    assert len(db.customers()) == 1


@pytest.mark.parametrize("token", ["", "disabled", None], ids=["empty", "disabled", "unset"])
def test_clearing_the_token_lets_the_webhook_answer_pending_and_the_sender_skip(
    env, checkout, stream, tiktok_server, db, logs, monkeypatch, token
):
    if token is None:
        monkeypatch.delenv("TIKTOK_ACCESS_TOKEN")
    else:
        monkeypatch.setenv("TIKTOK_ACCESS_TOKEN", token)
    session = checkout_session()

    answer = checkout(stripe_event(session=session))

    # The webhook never reads the token: it cannot tell, and leaves the decision to the sender.
    assert answer.status == 200
    assert answer.body["status"] == "provisioned"
    assert answer.body["deliveries"]["tiktok"] == PENDING
    assert len(db.customers()) == 1
    # The sender settles it skipped, without a request, and that is not a batch failure.
    assert tiktok_server.requests == []
    assert_batch_succeeded(stream)
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "skipped"
    assert "TIKTOK_ACCESS_TOKEN" in record["delivery_reason"]
    assert "purchase" not in record and not queued(record) and not claimed(record)
    said = [line for line in lines_of(logs, SENDER) if line.get("message") == "TikTok delivery skipped"]
    assert len(said) == 1 and "TIKTOK_ACCESS_TOKEN" in said[0]["reason"]


@pytest.mark.parametrize(
    ("cleared", "reason"),
    [
        ("TIKTOK_PIXEL_ID", "TikTok is switched off: TIKTOK_PIXEL_ID is not set"),
        ("TIKTOK_TEST_EVENT_CODE", "test-mode event and no TIKTOK_TEST_EVENT_CODE"),
    ],
)
def test_a_setting_cleared_after_provisioning_skips_the_pending_delivery(
    env, deliver, stream, tiktok_server, db, monkeypatch, cleared, reason
):
    session = checkout_session(livemode=False)
    assert deliver(stripe_event(session=session)).body["deliveries"]["tiktok"] == PENDING

    monkeypatch.setenv(cleared, "")
    stream.drain()

    assert tiktok_server.requests == []
    assert_batch_succeeded(stream)
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "skipped"
    assert record["delivery_reason"] == reason
    assert "purchase" not in record and not queued(record)


# ---------------------------------------------------------------------- TikTok's answers


@pytest.mark.parametrize(
    ("behaviour", "retryable", "code", "http_status"),
    [
        ("code:40002", False, 40002, 200),  # payload errors (a refused token pauses instead)
        ("code:40062", False, 40062, 200),
        ("code:40100", True, 40100, 200),
        ("code:50000", True, 50000, 200),
        ("http:500", True, None, 500),
        ("http:429", True, None, 429),
        ("garbage", True, None, 200),  # HTTP 200, not JSON: a proxy in between
        ("http:404", False, None, 404),  # JSON, but not TikTok's (no code): a wrong TIKTOK_API_URL
    ],
)
def test_tiktok_failures_are_recorded_on_the_item_and_never_change_the_answer(
    env, checkout, stream, tiktok_server, db, monkeypatch, behaviour, retryable, code, http_status
):
    monkeypatch.setenv("REDRIVE_BACKOFF_BASE_SECONDS", "60")
    tiktok_server.behave(behaviour)
    session = checkout_session()

    answer = checkout(stripe_event(session=session))
    drained_at = time.time()

    assert answer.status == 200
    assert answer.body["status"] == "provisioned"
    assert answer.body["deliveries"]["tiktok"] == PENDING
    assert len(db.customers()) == 1
    assert len(tiktok_server.requests) == 1
    # A TikTok failure is the item's business, not Lambda's: the record counts as processed.
    assert_batch_succeeded(stream)
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "failed"
    assert record["delivery_retryable"] is retryable
    assert record["delivery_attempts"] == 1
    assert record.get("delivery_code") == code
    assert record["delivery_http_status"] == http_status
    assert record["delivery_message"]
    assert not claimed(record)
    assert "purchase" in record  # kept for the redrive, or for an operator's requeue
    if retryable:
        assert record["redrive_queue"] == "tiktok"
        assert abs(record["next_attempt_at"] - (drained_at + 60)) <= 5
    else:
        assert not queued(record)
    if code:
        assert record["delivery_request_id"] == "req-standin"
    if behaviour == "http:404":
        assert "TIKTOK_API_URL" in record["delivery_message"]


class NotTheEventsApi(BaseHTTPRequestHandler):
    """What a wrong TIKTOK_API_URL reaches: a web server answering HTML (a 404 page, a redirect)."""

    status = 404

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        raw = b"<html><body>Not Found</body></html>"
        self.send_response(self.status)
        if self.status // 100 == 3:
            self.send_header("location", "https://example.com/elsewhere")
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize("status", [404, 301])
def test_an_api_url_that_answers_html_is_a_permanent_failure_naming_the_setting(
    env, checkout, stream, db, monkeypatch, status
):
    handler = type("Answers", (NotTheEventsApi,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("TIKTOK_API_URL", f"http://127.0.0.1:{server.server_address[1]}/wrong/path")
        session = checkout_session()

        answer = checkout(stripe_event(session=session))
    finally:
        server.shutdown()
        server.server_close()

    assert answer.status == 200
    assert answer.body["deliveries"]["tiktok"] == PENDING
    assert_batch_succeeded(stream)
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "failed"
    assert record["delivery_retryable"] is False  # retrying for days cannot fix a wrong URL
    assert record["delivery_http_status"] == status
    assert "TIKTOK_API_URL" in record["delivery_message"]
    assert not queued(record) and not claimed(record)


def test_hanging_tiktok_never_slows_the_webhook_and_the_redrive_sends_it_once_later(
    env, deliver, stream, tiktok_server, db, redrive
):
    tiktok_server.behave("hang")
    session = checkout_session()

    # The webhook answers at once: it never calls TikTok.
    answer, webhook_seconds = timed(deliver, stripe_event(session=session))

    assert answer.status == 200
    assert answer.body["deliveries"]["tiktok"] == PENDING
    assert webhook_seconds < WEBHOOK_ANSWER_SECONDS
    assert tiktok_server.requests == []

    # The sender gives up within its timeout and records a retryable failure.
    _, drain_seconds = timed(stream.drain)
    tiktok_server.release_hung()

    assert drain_seconds < send_bound(env)
    [hung] = tiktok_server.requests
    assert_batch_succeeded(stream)
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "failed"
    assert record["delivery_retryable"] is True
    assert "timed out" in record["delivery_message"]
    assert record["next_attempt_at"] > time.time()
    assert record["redrive_queue"] == "tiktok"
    assert not claimed(record)

    # TikTok is back: the redrive, once the backoff has passed, sends the same event once more.
    tiktok_server.behave("ok")
    assert redrive(at=record["next_attempt_at"] - 1) == {}
    assert tiktok_server.requests == []

    assert redrive(at=record["next_attempt_at"] + 1) == {"sent": 1}

    [resent] = tiktok_server.requests
    assert resent.json()["data"][0]["event_id"] == hung.json()["data"][0]["event_id"] == session["id"]
    assert resent.json() == hung.json()
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "sent"
    assert record["delivery_attempts"] == 2
    assert redrive(at=time.time() + DAY) == {}
    assert len(tiktok_server.requests) == 1


@pytest.mark.parametrize(
    ("behaviour", "sent"),
    [
        ("slow-headers:0.7", True),  # slow, but within the timeout: sent
        ("slow-body:0.7:5", False),  # headers in time, then the body stalls
        ("trickle:0.2", False),  # every read within the timeout, the whole answer never in time
        ("trickle-headers:0.1", False),  # the same from the status line on: ~8 s with per-read timeouts
    ],
)
def test_slow_answers_are_bounded_by_the_timeout(env, checkout, stream, tiktok_server, db, behaviour, sent):
    tiktok_server.behave(behaviour)
    session = checkout_session()

    answer, elapsed = timed(checkout, stripe_event(session=session))
    tiktok_server.release_hung()

    assert answer.body["deliveries"]["tiktok"] == PENDING
    assert elapsed < send_bound(env)
    assert len(tiktok_server.requests) == 1
    assert_batch_succeeded(stream)
    record = db.delivery(session["id"])
    if sent:
        assert record["delivery_status"] == "sent"
    else:
        assert record["delivery_status"] == "failed"
        assert record["delivery_retryable"] is True
        assert record["redrive_queue"] == "tiktok" and "next_attempt_at" in record
        assert not claimed(record)


def test_an_answer_trickled_from_its_first_byte_is_cut_off_at_the_timeout(
    env, checkout, stream, tiktok_server, db
):
    """One deadline for the whole POST: TikTok sending even its status line and headers one byte
    at a time, each byte well within the timeout, holds the sender no longer than the timeout."""
    tiktok_server.behave("trickle-headers:0.1")  # ~8 s for the whole answer
    session = checkout_session()

    answer, elapsed = timed(checkout, stripe_event(session=session))
    tiktok_server.release_hung()

    assert answer.body["deliveries"]["tiktok"] == PENDING
    assert elapsed < float(env["TIKTOK_TIMEOUT_SECONDS"]) + 2  # the POST's 1 s, claiming and recording
    assert_batch_succeeded(stream)
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "failed" and record["delivery_retryable"] is True
    assert record["delivery_message"] == "timed out (ReadTimeout, 1s)"
    assert record["redrive_queue"] == "tiktok" and "next_attempt_at" in record
    assert not claimed(record)


POST_TIMEOUT = 0.5
# What one POST may take beyond its timeout: the last read's wake-up and closing the connection.
POST_SLACK = 0.25


@pytest.fixture
def http_client():
    from checkout_conversions.destinations import http

    client = http.new_client()
    yield client
    client.close()


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        ("trickle-headers:0.05", "ReadTimeout"),  # every read within the timeout, headers never done
        ("trickle:0.05", "ReadTimeout"),  # the same for the body
        ("slow-body:0.3:5", "ReadTimeout"),  # headers in time, the body's wait runs out the deadline
        ("slow-headers:5", "ReadTimeout"),
        ("hang", "ReadTimeout"),
    ],
)
def test_one_post_ends_within_its_timeout_however_slowly_the_answer_comes(
    tiktok_server, http_client, behaviour, error
):
    from checkout_conversions.destinations import http
    from checkout_conversions.destinations.tiktok.client import classify

    tiktok_server.behave(behaviour)

    answer, elapsed = timed(
        http.post, http_client, tiktok_server.url, b'{"data": []}', {}, POST_TIMEOUT, classify
    )
    tiktok_server.release_hung()

    assert answer.retryable is True
    assert answer.message == f"timed out ({error}, {POST_TIMEOUT:g}s)"
    assert POST_TIMEOUT <= elapsed < POST_TIMEOUT + POST_SLACK
    assert len(tiktok_server.requests) == 1


def test_a_post_after_one_cut_off_gets_a_fresh_connection_and_its_own_deadline(tiktok_server, http_client):
    """The deadline is the request's, not the client's or the connection's: a cut-off connection
    is closed, and the next POST on the same client has its whole timeout."""
    from checkout_conversions.destinations import http
    from checkout_conversions.destinations.tiktok.client import classify

    tiktok_server.behave("trickle-headers:0.05", "slow-headers:0.4")
    post = (http_client, tiktok_server.url, b'{"data": []}', {}, POST_TIMEOUT, classify)

    cut_off = http.post(*post)
    answered, elapsed = timed(http.post, *post)
    tiktok_server.release_hung()

    assert cut_off.message == f"timed out (ReadTimeout, {POST_TIMEOUT:g}s)"
    assert answered.accepted is True
    assert 0.4 <= elapsed < POST_TIMEOUT


def test_concurrent_posts_on_one_client_each_have_their_own_deadline(tiktok_server, http_client):
    """The sender sends destinations from threads sharing one client: a POST that is cut off at
    its deadline cuts off no other, and one started later is not bounded by an earlier deadline."""
    from checkout_conversions.destinations import http
    from checkout_conversions.destinations.tiktok.client import classify

    tiktok_server.behave("trickle-headers:0.05", "slow-headers:0.7")
    results = {}

    def send(name, timeout):
        results[name] = timed(
            http.post, http_client, tiktok_server.url, b'{"data": []}', {}, timeout, classify
        )

    trickled = threading.Thread(target=send, args=("trickled", POST_TIMEOUT))
    trickled.start()
    time.sleep(0.2)  # the trickled POST is the stand-in's first request
    later = threading.Thread(target=send, args=("later", 2.0))
    later.start()
    trickled.join()
    later.join()
    tiktok_server.release_hung()

    (cut_off, cut_off_seconds), (answered, answered_seconds) = results["trickled"], results["later"]
    assert cut_off.message == f"timed out (ReadTimeout, {POST_TIMEOUT:g}s)"
    assert cut_off_seconds < POST_TIMEOUT + POST_SLACK
    assert answered.accepted is True and answered_seconds >= 0.7  # past the first one's deadline


# ---------------------------------------------------------------------- logs and settings


def test_logs_carry_no_secret_token_or_raw_pii(env, checkout, stream, logs, tiktok_server):
    tiktok_server.behave("code:40002", "ok")
    rejected, accepted = stripe_event(), stripe_event()

    checkout(rejected)
    checkout(accepted)
    checkout(rejected)  # Stripe's resend: a duplicate

    text = logs.text()
    webhook, sender = lines_of(logs, WEBHOOK), lines_of(logs, SENDER)
    assert webhook and sender, "both functions log as JSON"
    assert {line["message"] for line in sender} >= {"TikTok delivery failed", "TikTok delivery sent"}
    for secret in (
        TIKTOK_TOKEN,
        WEBHOOK_SECRET,
        "whsec_",
        "jane.doe@example.com",
        "Jane.Doe@Example.COM",
        "Jane Doe",
        "94107",
        "555-0123",
        "203.0.113.7",
        "Mozilla/5.0 (iPhone",
        "E.C.P.test-ttclid",
        "2abcDEFttpCookie",
    ):
        assert secret not in text
    events = {
        rejected["data"]["object"]["id"]: rejected["id"],
        accepted["data"]["object"]["id"]: accepted["id"],
    }
    for line in webhook:
        assert events[line["checkout_session_id"]] == line["correlation_id"]
    deliveries = [line for line in sender if line["message"].startswith("TikTok delivery")]
    assert sorted(line["event_id"] for line in deliveries) == sorted(events)


def test_an_invalid_tiktok_setting_never_stops_provisioning_or_sending(
    env, checkout, stream, tiktok_server, db, logs, monkeypatch
):
    monkeypatch.setenv("TIKTOK_TIMEOUT_SECONDS", "three")
    monkeypatch.setenv("REDRIVE_BATCH_SIZE", "0")
    session = checkout_session()

    answer = checkout(stripe_event(session=session))

    assert answer.body["status"] == "provisioned"
    assert answer.body["deliveries"]["tiktok"] == PENDING
    assert len(tiktok_server.requests) == 1
    assert db.delivery(session["id"])["delivery_status"] == "sent"
    for function_name in (WEBHOOK, SENDER):
        [error] = [
            line
            for line in lines_of(logs, function_name)
            if line.get("message", "").startswith("Invalid settings ignored")
        ]
        assert error["level"] == "ERROR"
        assert any("TIKTOK_TIMEOUT_SECONDS" in problem for problem in error["problems"])
        assert any("REDRIVE_BATCH_SIZE" in problem for problem in error["problems"])
