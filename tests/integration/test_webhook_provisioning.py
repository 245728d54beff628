"""Deciding, provisioning exactly once, and answering Stripe."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

from devtools.local_dynamodb import free_port
from tests.factories import checkout_session, stripe_event

pytest_plugins = ("tests.integration.redrive_fixtures",)


def test_paid_checkout_provisions_a_customer_record(env, deliver, db):
    session = checkout_session(mode="subscription", subscription="sub_0001", amount_total=4900)
    event = stripe_event(session=session)

    answer = deliver(event)

    assert answer.status == 200
    assert answer.body["status"] == "provisioned"
    assert answer.body["session_id"] == session["id"]
    assert answer.body["duplicate"] is False
    assert answer.body["deliveries"]["tiktok"] == {"status": "pending"}
    # The checkout's record, and (a subscription) the subscription's record beside it.
    [customer] = [item for item in db.customers() if item["checkout_session_id"] == session["id"]]
    [subscription] = [
        item for item in db.customers() if item["checkout_session_id"] == "subscription#sub_0001"
    ]
    assert subscription["checkout_session"] == session["id"] and subscription["external_id"] == "user-42"
    assert customer["customer_id"] == "cus_TestCustomer0001"
    assert customer["checkout_session_id"] == session["id"]
    assert customer["email"] == "jane.doe@example.com"
    assert customer["name"] == "Jane Doe"
    assert customer["subscription_id"] == "sub_0001"
    assert customer["mode"] == "subscription"
    assert customer["amount_total"] == 4900
    assert customer["currency"] == "USD"
    assert customer["livemode"] is False
    assert customer["stripe_event_id"] == event["id"]
    assert customer["provisioned_at"].startswith(time.strftime("%Y-", time.gmtime()))


def test_guest_checkout_is_keyed_by_normalised_email(env, deliver, db):
    session = checkout_session(customer=None)
    session["customer_details"]["email"] = " Guest.Buyer@Example.com"

    assert deliver(stripe_event(session=session)).status == 200

    [customer] = db.customers()
    assert customer["customer_id"] == "email#guest.buyer@example.com"
    assert "stripe_customer_id" not in customer


def test_no_payment_required_provisions(env, deliver, db):
    session = checkout_session(payment_status="no_payment_required", amount_total=0)

    assert deliver(stripe_event(session=session)).body["status"] == "provisioned"
    assert len(db.customers()) == 1


def test_sessions_record_expires_after_at_least_30_days(env, deliver, db):
    session = checkout_session()
    deliver(stripe_event(session=session))

    record = db.delivery(session["id"])
    assert record["expires_at"] - time.time() >= 30 * 86400


def test_unrelated_event_types_are_acknowledged_and_ignored(env, checkout, stream, db, tiktok_server):
    for event_type in ("invoice.payment_succeeded", "checkout.session.expired", "customer.created"):
        answer = checkout(stripe_event(event_type))
        assert answer.status == 200
        assert answer.body["status"] == "ignored"
        assert event_type in answer.body["reason"]
    assert db.sessions() == [] and db.customers() == []
    assert stream.invocations == []
    assert tiktok_server.requests == []


def test_setup_mode_is_ignored(env, deliver, db):
    session = checkout_session(mode="setup", payment_status="no_payment_required", amount_total=None)

    answer = deliver(stripe_event(session=session))

    assert answer.body["status"] == "ignored"
    assert "setup" in answer.body["reason"]
    assert db.customers() == []


def test_async_payment_failed_is_ignored(env, deliver, db):
    answer = deliver(
        stripe_event("checkout.session.async_payment_failed", checkout_session(payment_status="unpaid"))
    )

    assert answer.body["status"] == "ignored"
    assert db.customers() == []


def test_unpaid_completion_waits_then_async_success_provisions(env, checkout, db, tiktok_server):
    session = checkout_session(payment_status="unpaid")

    waiting = checkout(stripe_event(session=session))
    assert waiting.status == 200
    assert waiting.body["status"] == "ignored"
    assert "unpaid" in waiting.body["reason"]
    assert db.customers() == []
    assert tiktok_server.requests == []

    paid = checkout(
        stripe_event("checkout.session.async_payment_succeeded", {**session, "payment_status": "paid"})
    )
    assert paid.body["status"] == "provisioned"
    assert paid.body["deliveries"]["tiktok"] == {"status": "pending"}
    assert len(db.customers()) == 1
    assert len(tiktok_server.requests) == 1


def test_redelivery_of_the_same_event_is_a_duplicate(env, checkout, db, tiktok_server):
    event = stripe_event()

    first, second = checkout(event), checkout(event)

    assert first.body["duplicate"] is False
    assert first.body["deliveries"]["tiktok"] == {"status": "pending"}
    assert second.status == 200
    assert second.body["status"] == "duplicate"
    assert second.body["duplicate"] is True
    assert "deliveries" not in second.body  # their states live on the delivery items
    assert len(db.customers()) == 1
    assert len(tiktok_server.requests) == 1


def test_duplicate_before_the_send_sends_once(env, deliver, stream, db, tiktok_server):
    event = stripe_event()

    first, second = deliver(event), deliver(event)
    stream.drain()

    assert first.body["deliveries"]["tiktok"] == {"status": "pending"}
    assert second.body == {"status": "duplicate", "session_id": first.body["session_id"], "duplicate": True}
    assert len(db.customers()) == 1
    assert len(tiktok_server.requests) == 1
    assert db.delivery(event["data"]["object"]["id"])["delivery_status"] == "sent"


def test_a_new_session_and_its_duplicate_each_cost_one_dynamodb_request(
    env, app, deliver, recording_dynamodb, db, monkeypatch
):
    monkeypatch.setattr(app, "dynamodb", recording_dynamodb)
    event = stripe_event()

    first = deliver(event)
    new_session_calls = recording_dynamodb.operations()
    second = deliver(event)

    assert (first.body["status"], second.body["status"]) == ("provisioned", "duplicate")
    assert new_session_calls == ["transact_write_items"]
    assert recording_dynamodb.operations() == ["transact_write_items", "transact_write_items"]
    assert len(db.customers()) == 1


def test_another_event_for_a_processed_session_is_a_duplicate(env, checkout, db, tiktok_server):
    session = checkout_session()

    checkout(stripe_event(session=session))
    answer = checkout(stripe_event("checkout.session.async_payment_succeeded", session))

    assert answer.body["status"] == "duplicate"
    assert len(db.customers()) == 1
    assert len(tiktok_server.requests) == 1


def test_async_success_before_completed_provisions_once(env, checkout, db, tiktok_server):
    session = checkout_session()

    first = checkout(stripe_event("checkout.session.async_payment_succeeded", session))
    second = checkout(stripe_event(session=session))

    assert (first.body["status"], second.body["status"]) == ("provisioned", "duplicate")
    assert len(db.customers()) == 1
    assert len(tiktok_server.requests) == 1


def test_racing_deliveries_of_one_session_provision_once(env, deliver, stream, db, tiktok_server):
    session = checkout_session()
    events = [stripe_event(session=session) for _ in range(16)]
    start = threading.Barrier(len(events))

    def race(event):
        start.wait()
        return deliver(event)

    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        answers = list(pool.map(race, events))
    stream.drain()

    statuses = sorted(answer.body.get("status", answer.status) for answer in answers)
    assert statuses.count("provisioned") == 1
    assert all(answer.status in (200, 409) for answer in answers), statuses
    assert len(db.customers()) == 1
    assert [item["session_id"] for item in db.markers()] == [session["id"]]
    assert [item["session_id"] for item in db.deliveries()] == [f"{session['id']}#tiktok"]
    assert len(tiktok_server.requests) == 1
    # Stripe retries every loser that got a non-2xx: the retry gets 200 and changes nothing.
    for answer, event in zip(answers, events, strict=True):
        if answer.status != 200:
            retry = deliver(event)
            assert retry.status == 200 and retry.body["status"] == "duplicate"
    stream.drain()
    assert len(db.customers()) == 1
    assert len(db.markers()) == 1 and len(db.deliveries()) == 1
    assert len(tiktok_server.requests) == 1


def test_dynamodb_unreachable_gives_500_and_no_tiktok_request(
    env, app, deliver, checkout, stream, db, tiktok_server, monkeypatch
):
    dead = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        config=Config(connect_timeout=0.5, read_timeout=0.5, retries={"mode": "standard", "max_attempts": 2}),
    )
    event = stripe_event()

    with monkeypatch.context() as patch:
        patch.setattr(app, "dynamodb", dead)
        answer = deliver(event)

    stream.drain()
    assert answer.status == 500
    assert answer.body["error"] == "provisioning failed, retry later"
    assert db.sessions() == [] and db.customers() == []
    assert stream.invocations == []  # nothing reached the stream
    assert tiktok_server.requests == []
    # Stripe's retry, with DynamoDB back, provisions once.
    retry = checkout(event)
    assert retry.body["status"] == "provisioned"
    assert len(db.customers()) == 1
    assert len(tiktok_server.requests) == 1
