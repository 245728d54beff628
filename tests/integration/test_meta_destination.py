"""Meta as a second destination, beside TikTok: each purchase reported to both exactly once, each
destination with its own delivery, retries and switch, over the real stream and real HTTP (a
Graph API stand-in and TikTok's stand-in side by side)."""

import hashlib
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import checkout_session, stripe_event
from tests.integration.conftest import META_PIXEL_ID, META_TOKEN

pytest_plugins = ("tests.integration.redrive_fixtures",)

DAY = 86400
SHA256 = re.compile(r"^[0-9a-f]{64}$")
HASHED = ("em", "ph", "fn", "ln", "ct", "st", "zp", "country", "external_id")


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def meta_state(db, session_id):
    return db.delivery(session_id, "meta")


# --- both delivered ---------------------------------------------------------------------------


def test_a_purchase_is_reported_to_both_once_with_the_session_id_as_event_id(
    both_env, checkout, db, tiktok_server, meta_server, emf
):
    session = checkout_session(
        metadata={
            **checkout_session()["metadata"],
            "fbp": "fb.1.1700000000000.1234567890",
            "fbclid": "IwAR2F4-dbP0l7Mn1IawQQ",
        }
    )
    event = stripe_event(session=session)

    answer = checkout(event)

    assert answer.body["deliveries"] == {"tiktok": {"status": "pending"}, "meta": {"status": "pending"}}
    assert [sent["event_id"] for sent in tiktok_server.events()] == [session["id"]]
    [request] = meta_server.requests
    assert request.path == f"/v24.0/{META_PIXEL_ID}/events"
    assert META_TOKEN not in request.path and "access-token" not in request.headers
    assert meta_server.access_tokens() == [META_TOKEN]  # in the body, where Meta reads it
    body = request.json()
    assert body["test_event_code"] == "TEST_META_1"
    [sent] = body["data"]
    assert sent["event_name"] == "Purchase" and sent["event_id"] == session["id"]
    assert sent["event_time"] == event["created"] and sent["action_source"] == "website"
    assert sent["event_source_url"] == "https://shop.example.com/checkout"
    assert sent["custom_data"] == {"value": 19.99, "currency": "USD", "order_id": session["id"]}
    user = sent["user_data"]
    assert user["em"] == sha256("jane.doe@example.com")
    assert user["ph"] == sha256("14155550123")  # digits with the country code, no '+'
    assert user["fn"] == sha256("jane") and user["ln"] == sha256("doe")
    assert user["zp"] == sha256("94107") and user["country"] == sha256("us")
    assert user["external_id"] == sha256("user-42")
    assert user["client_ip_address"] == "203.0.113.7"
    assert user["client_user_agent"].startswith("Mozilla/5.0")
    assert user["fbp"] == "fb.1.1700000000000.1234567890"
    assert user["fbc"] == f"fb.1.{session['created'] * 1000}.IwAR2F4-dbP0l7Mn1IawQQ"  # case kept
    for destination in ("tiktok", "meta"):
        record = db.delivery(session["id"], destination)
        assert record["delivery_status"] == "sent" and record["delivery_attempts"] == 1
        assert "purchase" not in record  # the buyer's details go once delivered
    assert meta_state(db, session["id"])["delivery_request_id"] == "AStandInFbTraceId"
    assert emf.total("TikTokSent") == 1 and emf.total("MetaSent") == 1


def test_a_duplicate_webhook_sends_neither_again(both_env, checkout, tiktok_server, meta_server):
    event = stripe_event()
    checkout(event)

    again = checkout(event)

    assert again.body["status"] == "duplicate"
    assert len(tiktok_server.requests) == 1 and len(meta_server.requests) == 1


def test_the_sender_spends_two_update_items_per_delivered_record(
    both_env, deliver, db, sender_app, streams, dynamodb, tables, monkeypatch, tiktok_server, meta_server
):
    """The figure docs/performance.md quotes: with both destinations on, a purchase costs the webhook one
    TransactWriteItems and the sender two UpdateItems (claim, outcome) per destination."""
    from devtools.stream_mapping import LocalStreamMapping
    from tests.integration.redrive_fixtures import RecordingClient

    recording = RecordingClient(dynamodb)
    monkeypatch.setattr(sender_app, "dynamodb", recording)
    mapping = LocalStreamMapping.for_table(
        streams, dynamodb, tables["SESSIONS_TABLE_NAME"], sender_app.lambda_handler
    )
    deliver(stripe_event())

    assert mapping.drain() == 2

    assert recording.operations() == ["update_item"] * 4
    assert len(tiktok_server.requests) == 1 and len(meta_server.requests) == 1


# --- one down, the other delivered ----------------------------------------------------------


@pytest.mark.parametrize(
    ("behaviour", "retryable", "code"),
    [
        ("error:803", False, 803),  # a wrong pixel id: permanent (a refused token pauses instead)
        ("error:100", False, 100),  # an invalid parameter: permanent
        ("error:613", True, 613),  # rate limited: retried
        ("error:17", True, 17),
        ("http:500", True, None),
        ("hang", True, None),
        ("trickle-headers:0.1", True, None),  # status line and headers one byte at a time
    ],
)
def test_meta_failing_never_touches_tiktok(
    both_env, checkout, db, tiktok_server, meta_server, behaviour, retryable, code
):
    meta_server.behave(behaviour)
    session = checkout_session()

    checkout(stripe_event(session=session))

    assert db.delivery(session["id"], "tiktok")["delivery_status"] == "sent"
    record = meta_state(db, session["id"])
    assert record["delivery_status"] == "failed" and record["delivery_retryable"] is retryable
    assert record.get("delivery_code") == code
    if code is not None:
        assert record["delivery_request_id"]  # Meta's fbtrace_id, for its support
    assert ("redrive_queue" in record) is retryable
    assert "purchase" in record  # kept for the retry (or an operator's requeue)
    assert len(tiktok_server.requests) == 1


def test_a_meta_answer_trickled_from_its_first_byte_is_cut_off_at_the_timeout(
    both_env, checkout, db, tiktok_server, meta_server
):
    """One deadline for the whole POST: Meta sending its status line and headers one byte at a
    time, each byte well within the timeout, holds the sender no longer than the timeout."""
    meta_server.behave("trickle-headers:0.1")  # ~10 s for the whole answer
    session = checkout_session()

    started = time.monotonic()
    checkout(stripe_event(session=session))
    elapsed = time.monotonic() - started
    meta_server.release_hung()

    assert elapsed < float(both_env["META_TIMEOUT_SECONDS"]) + 2  # the POST's 1 s, claiming and recording
    assert len(meta_server.requests) == 1
    record = meta_state(db, session["id"])
    assert record["delivery_status"] == "failed" and record["delivery_retryable"] is True
    assert record["delivery_message"] == "timed out (ReadTimeout, 1s)"
    assert record["redrive_queue"] == "meta"
    assert db.delivery(session["id"], "tiktok")["delivery_status"] == "sent"


@pytest.mark.parametrize(("down", "up"), [("meta", "tiktok"), ("tiktok", "meta")])
def test_the_destination_that_was_down_is_redriven_alone_and_the_other_is_not_sent_again(
    both_env, checkout, db, redrive, tiktok_server, meta_server, monkeypatch, down, up
):
    servers = {"tiktok": tiktok_server, "meta": meta_server}
    monkeypatch.setenv("REDRIVE_BACKOFF_BASE_SECONDS", "0")
    servers[down].behave("http:503")
    session = checkout_session()
    checkout(stripe_event(session=session))
    assert db.delivery(session["id"], down)["delivery_status"] == "failed"
    assert db.delivery(session["id"], up)["delivery_status"] == "sent"
    servers[down].behave("ok")  # back up (and its list of requests cleared)

    assert redrive(destination=up) == {}  # nothing due for the one that was up
    assert redrive(destination=down) == {"sent": 1}

    assert db.delivery(session["id"], down)["delivery_status"] == "sent"
    assert [event["event_id"] for event in servers[down].events()] == [session["id"]]
    assert len(servers[up].requests) == 1
    assert redrive(destination=down) == {}


def test_a_hanging_tiktok_does_not_hold_up_meta_in_the_stream(
    both_env, deliver, stream, db, tiktok_server, meta_server, monkeypatch
):
    """One event source mapping carries both destinations' deliveries, and the sender sends each
    destination's in a thread of its own: Meta's are not queued behind TikTok's timeout."""
    # TikTok's three go in one request, which times out once: 3 s, so that the records' times
    # (whole seconds) tell the two destinations apart.
    monkeypatch.setenv("TIKTOK_TIMEOUT_SECONDS", "3")
    tiktok_server.behave("hang")
    sessions = [checkout_session() for _ in range(3)]
    for session in sessions:
        deliver(stripe_event(session=session))

    started = time.monotonic()
    stream.drain()

    meta_done = [meta_state(db, session["id"])["delivery_updated_at"] for session in sessions]
    assert all(meta_done) and len(meta_server.requests) == 1
    assert sorted(meta_server.event_ids()) == sorted(session["id"] for session in sessions)
    assert {meta_state(db, session["id"])["delivery_status"] for session in sessions} == {"sent"}
    assert len(tiktok_server.requests) == 1
    assert {db.delivery(session["id"])["delivery_status"] for session in sessions} == {"failed"}
    # The one mapping handed both destinations' deliveries to the sender, in the same batch.
    by_invocation = [
        {record["dynamodb"]["NewImage"]["destination"]["S"] for record in invocation.event["Records"]}
        for invocation in stream.invocations
    ]
    assert {"tiktok", "meta"} in by_invocation
    # Meta's deliveries were recorded while TikTok's were still waiting on their timeouts.
    tiktok_done = [db.delivery(session["id"])["delivery_updated_at"] for session in sessions]
    assert max(meta_done) < min(tiktok_done)
    assert time.monotonic() - started >= 3  # TikTok's 3 s timeout did run


# --- switched off, too old ----------------------------------------------------------------


def test_clearing_metas_token_switches_meta_off_without_a_deploy(
    both_env, checkout, db, tiktok_server, meta_server, monkeypatch
):
    monkeypatch.setenv("META_ACCESS_TOKEN", "")
    session = checkout_session()

    checkout(stripe_event(session=session))

    record = meta_state(db, session["id"])
    assert record["delivery_status"] == "skipped"
    assert record["delivery_reason"] == "Meta is switched off: META_ACCESS_TOKEN is empty"
    assert "purchase" not in record
    assert meta_server.requests == [] and len(tiktok_server.requests) == 1


def test_without_a_meta_pixel_meta_is_not_part_of_the_deployment(
    both_env, checkout, db, meta_server, monkeypatch
):
    monkeypatch.setenv("META_PIXEL_ID", "")
    session = checkout_session()

    answer = checkout(stripe_event(session=session))

    assert answer.body["deliveries"] == {"tiktok": {"status": "pending"}}
    assert meta_state(db, session["id"]) is None and meta_server.requests == []
    assert db.session(session["id"])["destinations"] == ["tiktok"]


def test_a_nine_day_old_payment_goes_to_tiktok_and_not_to_meta(
    both_env, checkout, db, tiktok_server, meta_server, monkeypatch
):
    monkeypatch.setenv("DELIVERY_MAX_AGE_DAYS", "14")
    session = checkout_session()
    event = stripe_event(session=session, created=int(time.time()) - 9 * DAY)

    answer = checkout(event)

    assert answer.body["deliveries"]["meta"] == {"status": "skipped", "reason": "payment older than 7 days"}
    assert answer.body["deliveries"]["tiktok"] == {"status": "pending"}
    assert db.delivery(session["id"])["delivery_status"] == "sent"
    assert meta_server.requests == []


def test_the_redrive_gives_meta_up_after_seven_days_whatever_the_maximum_age_says(
    both_env, checkout, db, redrive, meta_server, monkeypatch
):
    monkeypatch.setenv("DELIVERY_MAX_AGE_DAYS", "14")
    meta_server.behave("http:503")
    session = checkout_session()
    checkout(stripe_event(session=session))
    meta_server.behave("ok")

    assert redrive(at=time.time() + 8 * DAY, destination="meta") == {"expired": 1}

    record = meta_state(db, session["id"])
    assert record["delivery_status"] == "expired" and record["delivery_reason"] == "not sent within 7 days"
    assert "purchase" not in record and meta_server.requests == []  # nothing more sent


# --- what is sent ------------------------------------------------------------------------


def test_without_a_user_agent_meta_is_still_sent_and_the_record_says_why_it_matches_poorly(
    both_env, checkout, db, meta_server, logs, emf
):
    metadata = {key: value for key, value in checkout_session()["metadata"].items() if key != "user_agent"}
    session = checkout_session(metadata=metadata)

    checkout(stripe_event(session=session))

    [sent] = meta_server.events()
    assert "client_user_agent" not in sent["user_data"] and sent["action_source"] == "website"
    record = meta_state(db, session["id"])
    assert record["delivery_status"] == "sent" and "client_user_agent" in record["delivery_note"]
    assert any("client_user_agent" in line.get("message", "") for line in logs())
    assert emf.total("MetaMissingUserAgent") == 1


def test_with_line_items_meta_gets_contents(both_env, stripe_api, checkout, meta_server):
    from devtools.stripe_standin import line_item

    session = checkout_session(amount_total=3000)
    stripe_api.set_line_items(
        session["id"],
        [line_item("price_A", "prod_A", "Mug", 2, 1000), line_item("price_B", "prod_B", "Cap", 1, 1000)],
    )

    checkout(stripe_event(session=session))

    [sent] = meta_server.events()
    custom = sent["custom_data"]
    assert custom["content_ids"] == ["price_A", "price_B"] and custom["num_items"] == 3
    assert custom["contents"] == [
        {"id": "price_A", "quantity": 2, "item_price": 10},
        {"id": "price_B", "quantity": 1, "item_price": 10},
    ]


def test_a_delivery_recorded_before_meta_is_tiktoks_and_the_redrive_sends_it(
    redrive_env, tables, dynamodb, redrive, db, tiktok_server
):
    """Migration: an item with today's fields under the bare session id is TikTok's delivery."""
    from checkout_conversions.purchase import Buyer, Purchase
    from checkout_conversions.store.items import to_item

    now = int(time.time())
    purchase = Purchase(
        "cs_test_legacy_1", now - 60, "cs_test_legacy_1", Buyer(email="a@example.com"), 500, "USD"
    )
    legacy = {
        "session_id": "cs_test_legacy_1",
        "customer_id": "cus_legacy",
        "event_time": now - 60,
        "livemode": False,
        "delivery_status": "pending",
        "delivery_attempts": 0,
        "purchase": purchase.to_json(),
        "redrive_queue": "tiktok",
        "next_attempt_at": now - 1,
    }
    dynamodb.put_item(TableName=tables["SESSIONS_TABLE_NAME"], Item=to_item(legacy))

    assert redrive() == {"sent": 1}

    assert db.session("cs_test_legacy_1")["delivery_status"] == "sent"
    assert [event["event_id"] for event in tiktok_server.events()] == ["cs_test_legacy_1"]


# --- hostile input --------------------------------------------------------------------------

hostile_text = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.sampled_from(["", " ", "\u200b", "+", "0", "()", "-", "\t\n", "😀", "ß", "null"]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    email=hostile_text,
    phone=hostile_text,
    name=hostile_text,
    city=hostile_text,
    state=hostile_text,
    postal=hostile_text,
    country=hostile_text,
    reference=hostile_text,
)
def test_hostile_sessions_never_give_meta_an_empty_or_unhashed_identity(
    both_env, checkout, meta_server, email, phone, name, city, state, postal, country, reference
):
    meta_server.behave("ok")
    details = {
        "email": email,
        "phone": phone,
        "name": name,
        "address": {"city": city, "state": state, "postal_code": postal, "country": country},
    }
    session = checkout_session(customer_details=details, client_reference_id=reference, customer=None)

    answer = checkout(stripe_event(session=session))

    assert answer.status == 200
    for request in meta_server.requests:
        for sent in request.json()["data"]:
            user = sent["user_data"]
            assert all(value not in ("", None) for value in user.values())
            for key in HASHED:
                if key in user:
                    assert SHA256.match(user[key]), (key, user[key])


# --- the operator's view ----------------------------------------------------------------------


def test_make_deliveries_lists_each_destination_and_requeues_metas_alone(
    both_env, checkout, db, redrive, tiktok_server, meta_server, monkeypatch
):
    import io

    from devtools import deliveries

    def run(*argv):
        out = io.StringIO()
        return deliveries.main(list(argv), out=out), out.getvalue()

    meta_server.behave("error:803")  # a wrong pixel id: permanent, kept for an operator's requeue
    session = checkout_session()
    checkout(stripe_event(session=session))

    code, listing = run()
    assert code == 0
    tiktok_part, meta_part = listing.split("\n\nMeta deliveries")
    assert (
        "sent 1," in tiktok_part
        and "failed 1," in meta_part
        and "(0 of the failed will be retried)" in meta_part
    )
    assert "803" in meta_part and session["id"] in meta_part
    assert "jane" not in listing.lower()  # names, codes and times only, never the buyer

    meta_server.behave("ok")  # the pixel id was fixed
    code, said = run("--requeue", session["id"], "--destination", "meta")
    assert code == 0 and said.startswith(f"Requeued Meta's delivery of {session['id']}")
    monkeypatch.setenv("REDRIVE_GRACE_SECONDS", "0")
    assert redrive(destination="meta") == {"sent": 1}
    assert meta_state(db, session["id"])["delivery_status"] == "sent"
    assert len(tiktok_server.requests) == 1  # TikTok's delivery untouched
    code, refused = run("--requeue", session["id"], "--destination", "tiktok")
    assert code == 1 and "already has it" in refused


def test_metas_schedule_idles_without_reading_a_secret_where_meta_is_not_used(env, redrive, monkeypatch, emf):
    """A TikTok-only merchant with stored secrets (no MetaAccessTokenName) still has Meta's
    schedule: every run must idle quietly, never count a ConfigurationError (its alarm would
    never clear and would hide real ones)."""
    monkeypatch.setenv("SECRETS_SOURCE", "ssm")
    monkeypatch.delenv("META_PIXEL_ID", raising=False)

    assert redrive(destination="meta") == {"disabled": "Meta is switched off: META_PIXEL_ID is not set"}

    emf.flush()
    assert emf.total("ConfigurationErrors") == 0
