"""Subscriptions (issue 10): the customer's subscription record follows the subscription, and a
renewal is its own TikTok event, never a second purchase.

Over real HTTP events (the webhook, signed now), the Sessions table's real stream into the real
sender, the TikTok stand-in and the DynamoDB server on loopback. The Stripe facts these tests
lean on: a subscription Checkout sends `checkout.session.completed` and `invoice.paid`
(`billing_reason` subscription_create) for the same first payment, in either order; renewals are
`invoice.paid` with `subscription_cycle`; Stripe delivers out of order and at least once.
"""

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from devtools.function_url import LambdaContext, signed_webhook_event
from tests.factories import checkout_session, invoice, stripe_event, subscription
from tests.integration.conftest import WEBHOOK_SECRET

pytest_plugins = ("tests.integration.redrive_fixtures",)

CUSTOMER = "cus_TestSubscriber0001"
SUBSCRIPTION = "sub_TestSubscription0001"
DAY = 86400
RENEWALS_OFF = "renewals are not reported: RENEWAL_EVENT_NAME is empty"
STATUSES = {
    "active",
    "trialing",
    "past_due",
    "unpaid",
    "canceled",
    "incomplete",
    "incomplete_expired",
    "paused",
}


@pytest.fixture(autouse=True)
def renewals_off_unless_a_test_turns_them_on(monkeypatch):
    monkeypatch.delenv("RENEWAL_EVENT_NAME", raising=False)


@pytest.fixture
def renewals_on(monkeypatch):
    monkeypatch.setenv("RENEWAL_EVENT_NAME", "Subscribe")


# ---------------------------------------------------------------------- building events


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def subscription_checkout(**overrides: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Checkout that starts the subscription (client_reference_id "user-42"), completed."""
    session = checkout_session(
        mode="subscription", customer=CUSTOMER, subscription=SUBSCRIPTION, amount_total=2900, **overrides
    )
    return session, stripe_event(session=session)


def invoice_paid(billing_reason: str = "subscription_create", **overrides: Any) -> dict[str, Any]:
    """invoice.paid for the subscription; `created=` is the event's, the rest the invoice's."""
    created = overrides.pop("created", None)
    event = stripe_event(
        "invoice.paid",
        invoice(subscription=SUBSCRIPTION, customer=CUSTOMER, billing_reason=billing_reason, **overrides),
    )
    if created is not None:
        event["created"] = created
    return event


def renewal(**overrides: Any) -> dict[str, Any]:
    return invoice_paid("subscription_cycle", **overrides)


def status_event(status: str, created: int, event_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    event_type = "customer.subscription.deleted" if status == "canceled" else "customer.subscription.updated"
    event = stripe_event(
        event_type,
        subscription(id=SUBSCRIPTION, customer=CUSTOMER, status=status, **overrides),
        created=created,
    )
    if event_id is not None:
        event["id"] = event_id
    return event


def invoice_of(event: dict[str, Any]) -> dict[str, Any]:
    return event["data"]["object"]


def period_end(event: dict[str, Any]) -> int:
    return invoice_of(event)["lines"]["data"][0]["period"]["end"]


def subscription_records(db) -> list[dict[str, Any]]:
    return [item for item in db.customers() if item["checkout_session_id"].startswith("subscription#")]


def subscription_record(db) -> dict[str, Any]:
    [record] = subscription_records(db)
    assert record["customer_id"] == CUSTOMER
    assert record["checkout_session_id"] == f"subscription#{SUBSCRIPTION}"
    return record


def checkout_records(db) -> list[dict[str, Any]]:
    return [item for item in db.customers() if not item["checkout_session_id"].startswith("subscription#")]


def provisioned_subscription(checkout, with_first_invoice: bool = True) -> dict[str, Any]:
    """A subscription bought in Checkout (reported once) and its first invoice; the session."""
    session, completed = subscription_checkout()
    assert checkout(completed).body["status"] == "provisioned"
    if with_first_invoice:  # paid when the checkout completed, well before any later event
        first_invoice = invoice_paid(created=int(time.time()) - 600)
        assert checkout(first_invoice).body["status"] == "recorded"
    return session


def payment_answer(event: dict[str, Any], status: str, customer: str, **more: Any) -> dict[str, Any]:
    paid = invoice_of(event)
    return {
        "status": status,
        "event_type": "invoice.paid",
        "invoice_id": paid["id"],
        "subscription_id": SUBSCRIPTION,
        "billing_reason": paid["billing_reason"],
        "customer": customer,
        **more,
    }


def status_answer(event: dict[str, Any], status: str, recorded: str, customer: str = "provisioned") -> dict:
    return {
        "status": status,
        "event_type": event["type"],
        "subscription_id": SUBSCRIPTION,
        "subscription_status": recorded,
        "customer": customer,
    }


def racing(deliver, *events: dict[str, Any]) -> list[Any]:
    """Deliver the events at the same instant, one thread each; the answers in the same order."""
    start = threading.Barrier(len(events))

    def one(event):
        start.wait()
        return deliver(event)

    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        return list(pool.map(one, events))


# ---------------------------------------------------------------------- the first payment


@pytest.mark.parametrize("order", ["checkout first", "invoice first", "both at once"])
def test_the_checkout_and_its_subscription_create_invoice_are_one_conversion_in_any_order(
    env, renewals_on, deliver, stream, db, tiktok_server, order
):
    # Given: a subscription Checkout and its first invoice, with renewals reported (the first
    # invoice is not a renewal all the same)
    session, completed = subscription_checkout()
    first_invoice = invoice_paid()

    # When: Stripe delivers both, in this order
    if order == "checkout first":
        checkout_answer, invoice_answer = deliver(completed), deliver(first_invoice)
    elif order == "invoice first":
        invoice_answer = deliver(first_invoice)
        checkout_answer = deliver(completed)
    else:
        checkout_answer, invoice_answer = racing(deliver, completed, first_invoice)
    stream.drain()

    # Then: both acknowledged; one customer record, one subscription record that knows both
    assert checkout_answer.status == 200, checkout_answer.body
    assert checkout_answer.body == {
        "status": "provisioned",
        "session_id": session["id"],
        "duplicate": False,
        "deliveries": {"tiktok": {"status": "pending"}},
    }
    assert invoice_answer.status == 200, invoice_answer.body
    known = {"checkout first": "provisioned", "invoice first": "unknown"}.get(order)
    assert invoice_answer.body == payment_answer(
        first_invoice, "recorded", known or invoice_answer.body["customer"]
    )
    assert invoice_answer.body["customer"] in ("provisioned", "unknown")
    assert "renewal" not in invoice_answer.body
    [customer] = checkout_records(db)
    assert (customer["customer_id"], customer["checkout_session_id"]) == (CUSTOMER, session["id"])
    assert customer["subscription_id"] == SUBSCRIPTION
    record = subscription_record(db)
    assert record["paid_through"] == period_end(first_invoice)
    assert record["last_paid_invoice"] == invoice_of(first_invoice)["id"]
    assert record["checkout_session"] == session["id"]
    assert record["external_id"] == "user-42"
    # ... and one conversion: the checkout's, under the purchase's name; no delivery for the invoice
    assert len(tiktok_server.requests) == 1
    [event] = tiktok_server.events()
    assert (event["event"], event["event_id"]) == ("CompletePayment", session["id"])
    assert [item["event_id"] for item in db.deliveries()] == [session["id"]]


def test_a_plan_change_invoice_is_recorded_but_never_reported(env, renewals_on, checkout, db, tiktok_server):
    provisioned_subscription(checkout)
    proration = invoice_paid("subscription_update")

    answer = checkout(proration)

    assert answer.body == payment_answer(proration, "recorded", "provisioned")
    assert subscription_record(db)["last_paid_invoice"] == invoice_of(proration)["id"]
    assert db.delivery(invoice_of(proration)["id"]) is None
    assert [event["event"] for event in tiktok_server.events()] == ["CompletePayment"]


# ---------------------------------------------------------------------- renewals


def test_a_renewal_with_renewal_event_name_empty_is_recorded_and_not_reported(
    env, checkout, db, tiktok_server, monkeypatch
):
    monkeypatch.setenv("RENEWAL_EVENT_NAME", "")
    session = provisioned_subscription(checkout)
    now = int(time.time())
    cycle = renewal(period_end=now + 60 * DAY)
    plan = invoice_of(cycle)["lines"]["data"][0]
    # Billed with the next period's plan: last period's metered usage (in arrears), and a one-off
    # item. Paid through the latest end among the lines, whichever line it is on.
    usage = {**plan, "id": "il_test_usage", "period": {"start": now - 30 * DAY, "end": now}}
    one_off = {**plan, "id": "il_test_one_off", "period": {"start": now, "end": now}}
    invoice_of(cycle)["lines"]["data"] = [usage, plan, one_off]

    answer = checkout(cycle)

    assert answer.status == 200
    assert answer.body == payment_answer(
        cycle, "recorded", "provisioned", renewal={"status": "skipped", "reason": RENEWALS_OFF}
    )
    record = subscription_record(db)
    assert record["paid_through"] == now + 60 * DAY
    assert record["last_paid_invoice"] == invoice_of(cycle)["id"]
    assert record["last_paid_at"] == iso(invoice_of(cycle)["status_transitions"]["paid_at"])
    assert db.delivery(invoice_of(cycle)["id"]) is None
    assert [event["event_id"] for event in tiktok_server.events()] == [session["id"]]


@pytest.mark.parametrize(
    ("currency", "amount_paid", "value"),
    [("usd", 2900, 29), ("jpy", 3500, 3500)],  # JPY has no minor unit: 3500 is ¥3500, not ¥35
)
def test_a_renewal_is_reported_as_its_own_event_joined_to_the_purchase(
    env, renewals_on, checkout, db, tiktok_server, currency, amount_paid, value
):
    # Given: the subscription bought in Checkout by the merchant's user "user-42"
    session = provisioned_subscription(checkout)
    paid_at = int(time.time()) - 600
    cycle = renewal(
        currency=currency,
        amount_paid=amount_paid,
        total=amount_paid + 500,  # a credit balance covered the rest: value is what was paid
        status_transitions={"finalized_at": paid_at - 60, "paid_at": paid_at},
        created=paid_at + 5,
    )
    invoice_id = invoice_of(cycle)["id"]

    # When: its renewal is paid
    answer = checkout(cycle)

    # Then: a Subscribe event of its own, keyed by the invoice, joined to the purchase's buyer
    assert answer.body == payment_answer(cycle, "recorded", "provisioned", renewal={"status": "pending"})
    purchase, renewed = tiktok_server.events()
    assert (purchase["event"], purchase["event_id"]) == ("CompletePayment", session["id"])
    assert renewed["event"] == "Subscribe"  # never the purchase's CompletePayment
    assert renewed["event_id"] == invoice_id
    assert renewed["event_time"] == paid_at
    assert renewed["properties"]["order_id"] == invoice_id
    assert renewed["properties"]["value"] == value
    assert renewed["properties"]["currency"] == currency.upper()
    assert "contents" not in renewed["properties"]
    user = renewed["user"]
    assert user["external_id"] == sha256("user-42") == purchase["user"]["external_id"]
    assert user["email"] == sha256("ada.lovelace@example.com")  # " Ada.Lovelace@Example.COM "
    assert user["phone"] == sha256("+14155550101")  # "+1 415 555 0101" in E.164
    assert user["first_name"] == sha256("ada") and user["last_name"] == sha256("lovelace")
    assert user["zip_code"] == sha256("94107")  # ZIP+4 "94107-1234": the first five digits
    assert (user["city"], user["state"], user["country"]) == ("sanfrancisco", "ca", "us")
    assert not {"ttclid", "ttp", "ip", "user_agent"} & set(user)  # no browser at a renewal
    delivered = db.delivery(invoice_id)
    assert delivered["delivery_kind"] == "renewal" and delivered["delivery_status"] == "sent"
    assert "purchase" not in delivered  # the buyer's details go once TikTok has them
    assert len(db.deliveries()) == 2


def test_the_same_renewal_delivered_twice_is_reported_once(
    env, renewals_on, checkout, deliver, stream, db, tiktok_server, sent_by_event
):
    provisioned_subscription(checkout)
    cycle = renewal()
    invoice_id = invoice_of(cycle)["id"]

    first = deliver(cycle)
    before_the_send = deliver(cycle)
    stream.drain()
    sent = deliver(cycle)  # a third copy, once the stream's sender has reported the renewal

    assert first.body == payment_answer(cycle, "recorded", "provisioned", renewal={"status": "pending"})
    assert before_the_send.status == 200
    assert before_the_send.body == {
        **first.body,
        "status": "unchanged",
        "renewal": {"status": "pending", "duplicate": True},
    }
    assert sent.body == {
        **first.body,
        "status": "unchanged",
        "renewal": {"status": "sent", "duplicate": True},
    }
    assert len(sent_by_event()[invoice_id]) == 1
    assert [item["event_id"] for item in db.deliveries()].count(invoice_id) == 1


def test_a_renewal_started_by_the_previous_version_is_not_started_again_when_stripe_resends_it(
    env, renewals_on, checkout, deliver, stream, db, tables, dynamodb, tiktok_server, sent_by_event
):
    """Before deliveries were keyed by destination, a renewal's was keyed by the bare invoice id:
    a resend of that invoice.paid after the upgrade finds it there and starts nothing."""
    provisioned_subscription(checkout)
    cycle = renewal()
    invoice_id = invoice_of(cycle)["id"]
    assert deliver(cycle).body["renewal"] == {"status": "pending"}
    stream.drain()
    table = tables["SESSIONS_TABLE_NAME"]
    # As the previous version left it: the same delivery, sent, under the bare invoice id.
    item = dynamodb.get_item(TableName=table, Key={"session_id": {"S": f"{invoice_id}#tiktok"}})["Item"]
    dynamodb.delete_item(TableName=table, Key={"session_id": {"S": f"{invoice_id}#tiktok"}})
    for attribute in ("destination", "event_id"):
        item.pop(attribute)
    dynamodb.put_item(TableName=table, Item={**item, "session_id": {"S": invoice_id}})

    resent = deliver(cycle)

    assert resent.body["renewal"] == {"status": "sent", "duplicate": True}
    stream.drain()
    assert len(sent_by_event()[invoice_id]) == 1
    assert db.delivery(invoice_id) is None


def test_racing_deliveries_of_one_renewal_report_it_once(
    env, renewals_on, checkout, deliver, stream, db, tiktok_server, sent_by_event
):
    provisioned_subscription(checkout)
    cycle = renewal()
    invoice_id = invoice_of(cycle)["id"]

    answers = racing(deliver, cycle, cycle)
    stream.drain()

    assert [answer.status for answer in answers] == [200, 200], [answer.body for answer in answers]
    assert sorted(answer.body["status"] for answer in answers) == ["recorded", "unchanged"]
    assert sorted((answer.body["renewal"] for answer in answers), key=len) == [
        {"status": "pending"},
        {"status": "pending", "duplicate": True},
    ]
    assert len(sent_by_event()[invoice_id]) == 1
    assert [item["event_id"] for item in db.deliveries()].count(invoice_id) == 1
    assert db.delivery(invoice_id)["delivery_status"] == "sent"


def test_a_renewal_tiktok_failed_to_take_is_retried_by_the_redrive_and_sent_once(
    env, renewals_on, checkout, db, redrive, tiktok_server, sent_by_event
):
    # Given: TikTok answers the renewal's first send with HTTP 500
    provisioned_subscription(checkout)
    tiktok_server.behave("http:500", "ok")
    cycle = renewal()
    invoice_id = invoice_of(cycle)["id"]

    # When: the renewal is paid and the stream's sender tries it
    answer = checkout(cycle)

    # Then: recorded as a retryable failure, exactly as a purchase's would be
    assert answer.body["renewal"] == {"status": "pending"}
    record = db.delivery(invoice_id)
    assert record["delivery_status"] == "failed" and record["delivery_retryable"] is True
    assert record["delivery_http_status"] == 500 and record["delivery_attempts"] == 1
    due = record["next_attempt_at"]
    assert redrive(at=due - 1) == {}

    # When/Then: the redrive sends it once it is due, the same event, and never again
    assert redrive(at=due) == {"sent": 1}
    assert redrive(at=due + DAY) == {}
    failed, sent = sent_by_event()[invoice_id]
    assert failed == sent and sent["data"][0]["event"] == "Subscribe"
    assert len(tiktok_server.requests) == 2
    record = db.delivery(invoice_id)
    assert record["delivery_status"] == "sent" and record["delivery_attempts"] == 2


@pytest.mark.parametrize("sender", ["stream", "redrive"])
def test_a_renewal_is_skipped_when_renewal_event_name_is_cleared_before_the_send(
    env, renewals_on, checkout, deliver, stream, db, redrive, tiktok_server, monkeypatch, sender
):
    session = provisioned_subscription(checkout)
    cycle = renewal()
    invoice_id = invoice_of(cycle)["id"]
    assert deliver(cycle).body["renewal"] == {"status": "pending"}

    monkeypatch.setenv("RENEWAL_EVENT_NAME", "")  # the merchant turns renewals off meanwhile
    if sender == "stream":
        stream.drain()
    else:
        assert redrive(at=time.time() + DAY) == {"skipped": 1}

    record = db.delivery(invoice_id)
    assert record["delivery_status"] == "skipped"
    assert record["delivery_reason"] == RENEWALS_OFF
    assert "purchase" not in record and "redrive_queue" not in record
    assert [event["event_id"] for event in tiktok_server.events()] == [session["id"]]
    assert redrive(at=time.time() + 2 * DAY) == {}


# ---------------------------------------------------------------------- the buyer's consent, at every renewal

CONSENT_DENIED = "the buyer denied ad measurement (ad_consent=denied)"
CONSENT_MISSING = "no ad consent given (REQUIRE_AD_CONSENT is true, ad_consent is not granted)"
# What the renewal invoices (tests/factories.py invoice) say of the buyer, in every form the
# function could keep it: as Stripe sends it, normalised, or hashed for TikTok.
BUYER_AS_INVOICED = (
    "ada.lovelace@example.com",
    "ada lovelace",
    "lovelace",
    "+1 415 555 0101",
    "+14155550101",
    "100 example street",
    "san francisco",
    "94107",
    sha256("ada.lovelace@example.com"),
    sha256("+14155550101"),
    sha256("lovelace"),
    sha256("94107"),
)


def with_metadata(**choices: str) -> dict[str, Any]:
    """The Checkout's metadata (the buyer's browser signals) with the merchant's ad choices."""
    return {**checkout_session()["metadata"], **choices}


def personal_data_in(items: list[dict[str, Any]]) -> list[str]:
    text = json.dumps(items, default=str).lower()
    return [value for value in BUYER_AS_INVOICED if value in text]


def two_renewals(
    deliver, stream, before_the_stream: Callable[[], None] = lambda: None
) -> tuple[list[dict[str, Any]], list[Any]]:
    """Two monthly renewals of the subscription, each delivered by Stripe and then handed by the
    stream to the sender (`before_the_stream` runs in between): the events and the answers."""
    now = int(time.time())
    cycles = [
        renewal(period_end=now + 60 * DAY, created=now - 200),
        renewal(period_end=now + 90 * DAY, created=now - 100),
    ]
    answers = []
    for cycle in cycles:
        answers.append(deliver(cycle))
        before_the_stream()
        stream.drain()
    return cycles, answers


@pytest.mark.parametrize("order", ["checkout first", "first invoice first"])
def test_renewals_of_a_buyer_who_denied_ad_consent_are_never_reported_and_nothing_of_theirs_is_kept(
    env, renewals_on, deliver, stream, db, redrive, tiktok_server, order
):
    # Given: a subscription bought with ad_consent=denied (its checkout skipped), its first
    # invoice delivered before or after the checkout, and renewals reported (RENEWAL_EVENT_NAME)
    session, completed = subscription_checkout(metadata=with_metadata(ad_consent="denied"))
    first_invoice = invoice_paid(created=int(time.time()) - 600)
    events = [completed, first_invoice] if order == "checkout first" else [first_invoice, completed]
    answers = [deliver(event) for event in events]
    stream.drain()
    assert [answer.status for answer in answers] == [200, 200]

    # When: two renewals are paid, each delivered by Stripe and the stream run after it; what
    # the webhook stored is looked at before the sender could settle (and clear) anything
    stored: list[dict[str, Any]] = []
    cycles, renewed = two_renewals(deliver, stream, lambda: stored.extend(db.sessions()))

    # Then: both recorded, neither reported; nothing reaches TikTok, now or from the redrive
    for cycle, answer in zip(cycles, renewed, strict=True):
        assert answer.status == 200, answer.body
        assert answer.body == payment_answer(
            cycle, "recorded", "provisioned", renewal={"status": "skipped", "reason": CONSENT_DENIED}
        )
    assert redrive(at=time.time() + DAY) == {}
    assert tiktok_server.requests == []
    # ... and no item of those invoices, and nothing of the buyer's, anywhere in the Sessions table
    invoice_ids = [invoice_of(cycle)["id"] for cycle in cycles]
    sessions = db.sessions()
    assert [item for item in sessions if any(i in item["session_id"] for i in invoice_ids)] == []
    assert [item["session_id"] for item in stored + sessions if "purchase" in item] == []
    assert personal_data_in(stored + sessions) == []
    assert {item["session_id"] for item in stored + sessions} == {session["id"], f"{session['id']}#tiktok"}
    # ... nor in the stream: no new pending delivery, so the sender was never invoked
    assert stream.invocations == []
    # ... the subscription record keeps the payments and the buyer's choice
    record = subscription_record(db)
    assert (record["paid_through"], record["ad_consent"]) == (period_end(cycles[-1]), "denied")


@pytest.mark.parametrize(
    "consent",
    ["none at checkout", "unreadable at checkout", "no checkout provisioned here"],
)
def test_with_require_ad_consent_renewals_of_a_subscription_that_never_granted_it_are_not_reported(
    env, renewals_on, checkout, deliver, stream, db, redrive, tiktok_server, monkeypatch, consent
):
    # Given: REQUIRE_AD_CONSENT=true, and a subscription whose buyer never granted ad consent
    monkeypatch.setenv("REQUIRE_AD_CONSENT", "true")
    if consent != "no checkout provisioned here":
        metadata = with_metadata(ad_consent="maybe") if consent == "unreadable at checkout" else None
        _, completed = subscription_checkout(**({"metadata": metadata} if metadata else {}))
        answer = checkout(completed)
        assert answer.body["deliveries"] == {"tiktok": {"status": "skipped", "reason": CONSENT_MISSING}}

    # When: two renewals are paid
    cycles, renewed = two_renewals(deliver, stream)

    # Then: neither reported nor kept, exactly as the checkout was not
    customer = "unknown" if consent == "no checkout provisioned here" else "provisioned"
    for cycle, answer in zip(cycles, renewed, strict=True):
        assert answer.body == payment_answer(
            cycle, "recorded", customer, renewal={"status": "skipped", "reason": CONSENT_MISSING}
        )
    assert redrive(at=time.time() + DAY) == {}
    assert tiktok_server.requests == []
    assert [item for item in db.deliveries() if item.get("delivery_kind") == "renewal"] == []
    assert personal_data_in(db.sessions()) == []
    if consent != "no checkout provisioned here":
        assert subscription_record(db)["ad_consent"] == "unknown"


@pytest.mark.parametrize("require_ad_consent", ["false", "true"])
def test_renewals_of_a_buyer_who_granted_ad_consent_are_reported(
    env, renewals_on, checkout, deliver, stream, db, tiktok_server, monkeypatch, require_ad_consent
):
    monkeypatch.setenv("REQUIRE_AD_CONSENT", require_ad_consent)
    session, completed = subscription_checkout(metadata=with_metadata(ad_consent="granted"))
    assert checkout(completed).body["deliveries"] == {"tiktok": {"status": "pending"}}

    cycles, renewed = two_renewals(deliver, stream)

    invoice_ids = [invoice_of(cycle)["id"] for cycle in cycles]
    assert [answer.body["renewal"] for answer in renewed] == [{"status": "pending"}] * 2
    assert [(event["event"], event["event_id"]) for event in tiktok_server.events()] == [
        ("CompletePayment", session["id"]),
        *[("Subscribe", invoice_id) for invoice_id in invoice_ids],
    ]
    for invoice_id in invoice_ids:
        delivered = db.delivery(invoice_id)
        assert delivered["delivery_status"] == "sent" and "purchase" not in delivered


@pytest.mark.parametrize(
    ("limited_data_use", "flagged"),
    [("true", True), ("false", False), (None, False)],
    ids=["asked for", "declined", "not said"],
)
def test_a_renewal_carries_the_limited_data_use_the_checkout_asked_for(
    env, renewals_on, checkout, deliver, stream, db, tiktok_server, limited_data_use, flagged
):
    # Given: a subscription bought with limited_data_use in its metadata (or not), the operator's
    # TIKTOK_LIMITED_DATA_USE off
    choices = {"limited_data_use": limited_data_use} if limited_data_use is not None else {}
    session, completed = subscription_checkout(metadata=with_metadata(**choices))
    checkout(completed)

    # When: it renews
    cycles, _ = two_renewals(deliver, stream)

    # Then: every renewal's TikTok event carries the checkout's choice, as the checkout's did
    purchase, *renewed = tiktok_server.events()
    assert purchase["event_id"] == session["id"]
    assert [event["event_id"] for event in renewed] == [invoice_of(cycle)["id"] for cycle in cycles]
    for event in [purchase, *renewed]:
        assert event.get("limited_data_use") == (True if flagged else None)
    assert subscription_record(db).get("limited_data_use") == (None if limited_data_use is None else flagged)


# ---------------------------------------------------------------------- out of order, at least once


def test_an_older_update_arriving_after_the_deletion_leaves_it_canceled(env, checkout, db):
    provisioned_subscription(checkout)
    now = int(time.time())
    deleted = status_event("canceled", now - 100)
    older_update = status_event("active", now - 200)

    first, late = checkout(deleted), checkout(older_update)

    assert first.body == status_answer(deleted, "recorded", "canceled")
    assert late.status == 200
    assert late.body == status_answer(older_update, "unchanged", "canceled")
    record = subscription_record(db)
    assert record["status"] == "canceled"
    assert record["status_changed_at"] == iso(now - 100)
    assert record["status_event_id"] == deleted["id"]


def test_an_update_then_a_newer_deletion_ends_canceled(env, checkout, db):
    provisioned_subscription(checkout)
    now = int(time.time())
    update = status_event("past_due", now - 200)
    deleted = status_event("canceled", now - 100)

    assert checkout(update).body == status_answer(update, "recorded", "past_due")
    assert checkout(deleted).body == status_answer(deleted, "recorded", "canceled")

    record = subscription_record(db)
    assert (record["status"], record["status_changed_at"]) == ("canceled", iso(now - 100))


def ids_sorted(order: str) -> tuple[str, str]:
    """Two Stripe event ids, the first sorting before the second as text or after it."""
    smaller, larger = (f"evt_test_{prefix}{uuid.uuid4().hex}" for prefix in ("a", "b"))
    return (smaller, larger) if order == "first sorts first" else (larger, smaller)


def items_ending(current_period_end: int) -> dict[str, Any]:
    """A subscription's items since API version 2025-03-31: the current period on each item."""
    return {
        "object": "list",
        "data": [
            {
                "id": "si_TestItem0001",
                "object": "subscription_item",
                "current_period_start": current_period_end - 30 * DAY,
                "current_period_end": current_period_end,
                "quantity": 1,
            }
        ],
    }


def deliver_in(arrival: str, checkout, first: dict[str, Any], second: dict[str, Any]) -> list[Any]:
    """The two events in the order Stripe created them, delivered in that order or the reverse;
    the answers in the order the events were created."""
    if arrival == "as created":
        return [checkout(first), checkout(second)]
    later, earlier = checkout(second), checkout(first)
    return [earlier, later]


@pytest.mark.parametrize("ids", ["first sorts first", "first sorts last"])
@pytest.mark.parametrize("arrival", ["as created", "reversed"])
def test_a_deletion_and_an_update_of_the_same_second_end_canceled_in_any_order(
    env, checkout, db, arrival, ids
):
    # Given: in one second, the subscription is updated (still active) and cancelled at once;
    # Stripe stamps both events with that second, and its ids are random
    provisioned_subscription(checkout)
    second = int(time.time()) - 100
    period = items_ending(second + 20 * DAY)
    update_id, delete_id = ids_sorted(ids)
    updated = status_event("active", second, event_id=update_id, items=period)
    deleted = status_event(
        "canceled", second, event_id=delete_id, items=period, canceled_at=second, ended_at=second
    )

    # When: both are delivered, in either order
    answers = deliver_in(arrival, checkout, updated, deleted)

    # Then: canceled, whichever came first and whichever id sorts first
    assert answers[1].body == status_answer(deleted, "recorded", "canceled")
    if arrival == "as created":
        assert answers[0].body == status_answer(updated, "recorded", "active")
    else:
        assert answers[0].body == status_answer(updated, "unchanged", "canceled")
    record = subscription_record(db)
    assert (record["status"], record["status_event_id"]) == ("canceled", deleted["id"])
    assert record["status_changed_at"] == iso(second)


@pytest.mark.parametrize("arrival", ["as created", "reversed"])
def test_an_update_stripe_created_after_the_deletion_does_not_bring_the_subscription_back(
    env, checkout, db, arrival
):
    provisioned_subscription(checkout)
    now = int(time.time())
    deleted = status_event("canceled", now - 100, canceled_at=now - 100, ended_at=now - 100)
    later_update = status_event("active", now - 50)

    answers = deliver_in(arrival, checkout, deleted, later_update)

    assert answers[0].body == status_answer(deleted, "recorded", "canceled")
    if arrival == "as created":
        assert answers[1].body == status_answer(later_update, "unchanged", "canceled")
    record = subscription_record(db)
    assert (record["status"], record["status_event_id"]) == ("canceled", deleted["id"])
    assert record["status_changed_at"] == iso(now - 100)


def test_an_expired_incomplete_subscription_stays_expired(env, checkout, db):
    provisioned_subscription(checkout)
    now = int(time.time())
    expired = status_event("incomplete_expired", now - 100, ended_at=now - 100)
    same_second = status_event("incomplete", now - 100)
    later = status_event("active", now - 10)

    assert checkout(expired).body == status_answer(expired, "recorded", "incomplete_expired")
    assert checkout(same_second).body == status_answer(same_second, "unchanged", "incomplete_expired")
    assert checkout(later).body == status_answer(later, "unchanged", "incomplete_expired")
    assert subscription_record(db)["status_event_id"] == expired["id"]


# The object's own facts that order two status events of one second: the earlier event's, and
# the later event's (subscription fields, as customer.subscription.updated carries them).
PERIOD_END = 1767225600  # 2026-01-01
LATER_BY = {
    "its items' current period": (
        {"items": items_ending(PERIOD_END)},
        {"items": items_ending(PERIOD_END + 30 * DAY)},
    ),
    "its own current period (before API 2025-03-31)": (
        {"current_period_end": PERIOD_END, "items": items_ending(PERIOD_END)},
        {"current_period_end": PERIOD_END + 30 * DAY, "items": {"object": "list", "data": []}},
    ),
    "a cancellation scheduled": (
        {"items": items_ending(PERIOD_END), "canceled_at": None},
        {"items": items_ending(PERIOD_END), "canceled_at": PERIOD_END - 5 * DAY},
    ),
}


@pytest.mark.parametrize("ids", ["first sorts first", "first sorts last"])
@pytest.mark.parametrize("arrival", ["as created", "reversed"])
@pytest.mark.parametrize("later_by", list(LATER_BY))
def test_status_events_of_the_same_second_are_ordered_by_the_subscriptions_own_facts_never_by_id(
    env, checkout, db, arrival, ids, later_by
):
    """Replaces the test that ordered them by comparing event ids as text (random)."""
    provisioned_subscription(checkout)
    second = int(time.time()) - 100
    earlier_facts, later_facts = LATER_BY[later_by]
    earlier_id, later_id = ids_sorted(ids)
    earlier = status_event("active", second, event_id=earlier_id, **earlier_facts)
    later = status_event("past_due", second, event_id=later_id, **later_facts)

    answers = deliver_in(arrival, checkout, earlier, later)

    assert answers[1].body == status_answer(later, "recorded", "past_due")
    if arrival == "reversed":
        assert answers[0].body == status_answer(earlier, "unchanged", "past_due")
    record = subscription_record(db)
    assert (record["status"], record["status_event_id"]) == ("past_due", later["id"])


@pytest.mark.parametrize("ids", ["first sorts first", "first sorts last"])
def test_status_events_of_the_same_second_that_nothing_orders_keep_the_one_recorded_first(
    env, checkout, db, ids
):
    """Nothing in either object says which came later: the status recorded stays, whatever the
    ids (a redelivery of either changes nothing either)."""
    provisioned_subscription(checkout)
    second = int(time.time()) - 100
    period = items_ending(second + 20 * DAY)
    first_id, second_id = ids_sorted(ids)
    first = status_event("past_due", second, event_id=first_id, items=period)
    other = status_event("active", second, event_id=second_id, items=period)

    assert checkout(first).body == status_answer(first, "recorded", "past_due")
    assert checkout(other).body == status_answer(other, "unchanged", "past_due")
    assert checkout(first).body == status_answer(first, "unchanged", "past_due")
    record = subscription_record(db)
    assert (record["status"], record["status_event_id"]) == ("past_due", first["id"])


@pytest.mark.parametrize("ids", ["first sorts first", "first sorts last"])
@pytest.mark.parametrize("arrival", ["as created", "reversed"])
def test_payments_of_the_same_second_leave_paid_through_at_the_later_period(
    env, renewals_on, checkout, db, arrival, ids
):
    # Given: two payments Stripe stamped with the same second, paying consecutive periods (a
    # customer settling an overdue invoice as the next one is paid)
    provisioned_subscription(checkout)
    second = int(time.time()) - 100
    earlier_id, later_id = ids_sorted(ids)
    earlier = renewal(period_end=second + 30 * DAY, created=second)
    later = renewal(period_end=second + 60 * DAY, created=second)
    earlier["id"], later["id"] = earlier_id, later_id

    answers = deliver_in(arrival, checkout, earlier, later)

    # Then: paid through the later period, from its invoice, whichever came first; both renewals
    # reported all the same
    assert answers[1].body["status"] == "recorded"
    if arrival == "reversed":
        assert answers[0].body["status"] == "unchanged"
    record = subscription_record(db)
    assert record["paid_through"] == second + 60 * DAY
    assert record["last_paid_invoice"] == invoice_of(later)["id"]
    assert record["payment_event_id"] == later["id"]
    assert {answer.body["renewal"]["status"] for answer in answers} == {"pending"}


@pytest.mark.parametrize("recorded", ["canceled", "active"])
def test_a_record_written_before_the_order_was_kept_is_ordered_by_created_and_yields_to_a_final_state(
    env, checkout, db, dynamodb, tables, recorded
):
    """A record the previous version wrote has no `status_event_order`: an event of its second
    or older changes it only when it is a final state the record is not in; a later one does."""
    provisioned_subscription(checkout)
    second = int(time.time()) - 100
    written = status_event(recorded, second, canceled_at=second, ended_at=second)
    assert checkout(written).body["status"] == "recorded"
    dynamodb.update_item(  # as the previous version left it
        TableName=tables["CUSTOMERS_TABLE_NAME"],
        Key={
            "customer_id": {"S": CUSTOMER},
            "checkout_session_id": {"S": f"subscription#{SUBSCRIPTION}"},
        },
        UpdateExpression="REMOVE status_event_order, payment_event_order",
    )
    same_second_update = status_event("past_due", second)
    same_second_deletion = status_event("canceled", second, canceled_at=second, ended_at=second)

    assert checkout(same_second_update).body == status_answer(same_second_update, "unchanged", recorded)
    final = checkout(same_second_deletion)
    later_update = status_event("active", second + 50)
    later = checkout(later_update)

    assert final.body["status"] == ("unchanged" if recorded == "canceled" else "recorded")
    assert later.body == status_answer(later_update, "unchanged", "canceled")
    record = subscription_record(db)
    assert record["status"] == "canceled"
    assert record["status_event_id"] == (written if recorded == "canceled" else same_second_deletion)["id"]


def test_a_redelivered_status_event_changes_nothing(env, checkout, db):
    provisioned_subscription(checkout)
    deleted = status_event("canceled", int(time.time()) - 100)
    first = checkout(deleted)
    before = db.customers()

    again = checkout(deleted)

    assert again.status == 200
    assert again.body == {**first.body, "status": "unchanged"}
    assert db.customers() == before


def test_an_older_invoice_arriving_late_does_not_roll_paid_through_back(
    env, renewals_on, checkout, db, tiktok_server
):
    provisioned_subscription(checkout)
    now = int(time.time())
    earlier = renewal(period_end=now + 30 * DAY, created=now - 200)
    later = renewal(period_end=now + 60 * DAY, created=now - 100)

    assert checkout(later).body["status"] == "recorded"
    late = checkout(earlier)

    # Then: the newer payment stays recorded, but the late invoice is still a renewal paid
    assert late.body == payment_answer(earlier, "unchanged", "provisioned", renewal={"status": "pending"})
    record = subscription_record(db)
    assert record["paid_through"] == now + 60 * DAY
    assert record["last_paid_invoice"] == invoice_of(later)["id"]
    renewals = [event["event_id"] for event in tiktok_server.events() if event["event"] == "Subscribe"]
    assert sorted(renewals) == sorted([invoice_of(earlier)["id"], invoice_of(later)["id"]])


def test_payments_and_statuses_are_ordered_apart(env, checkout, db):
    # A cancellation is newer than the last payment: both are recorded, neither hides the other.
    provisioned_subscription(checkout, with_first_invoice=False)
    now = int(time.time())
    deleted = status_event("canceled", now - 100)
    last_payment = invoice_paid(created=now - 200)

    assert checkout(deleted).body["status"] == "recorded"
    assert checkout(last_payment).body == payment_answer(last_payment, "recorded", "provisioned")

    record = subscription_record(db)
    assert record["status"] == "canceled"
    assert record["paid_through"] == period_end(last_payment)


# ---------------------------------------------------------------------- never provisioned


def test_events_of_a_subscription_never_provisioned_are_recorded_as_unknown(
    env, deliver, stream, db, tiktok_server
):
    # Given: a subscription created outside Checkout (no checkout.session.completed, ever)
    now = int(time.time())
    updated = status_event("active", now - 300)
    first_invoice = invoice_paid(created=now - 200)
    cycle = renewal(created=now - 100, period_end=now + 60 * DAY)

    answers = [deliver(event) for event in (updated, first_invoice, cycle)]
    stream.drain()

    assert [answer.status for answer in answers] == [200, 200, 200]
    assert answers[0].body == status_answer(updated, "recorded", "active", customer="unknown")
    assert answers[1].body == payment_answer(first_invoice, "recorded", "unknown")
    assert answers[2].body == payment_answer(
        cycle, "recorded", "unknown", renewal={"status": "skipped", "reason": RENEWALS_OFF}
    )
    [record] = db.customers()  # the subscription record only: no checkout record invented
    assert record["checkout_session_id"] == f"subscription#{SUBSCRIPTION}"
    assert "checkout_session" not in record and "external_id" not in record
    assert (record["status"], record["paid_through"]) == ("active", now + 60 * DAY)
    assert db.sessions() == []
    assert tiktok_server.requests == []


def test_a_renewal_of_a_subscription_never_provisioned_is_reported_for_the_stripe_customer(
    env, renewals_on, deliver, stream, db, tiktok_server
):
    """What the code does (decided, not required by the issue): a renewal is a paid renewal
    whoever started the subscription, so it is reported; with no checkout to take the buyer's
    external id from, the Stripe customer id is the external id (as for a purchase without
    client_reference_id)."""
    cycle = renewal()
    invoice_id = invoice_of(cycle)["id"]

    answer = deliver(cycle)
    stream.drain()

    assert answer.body == payment_answer(cycle, "recorded", "unknown", renewal={"status": "pending"})
    [event] = tiktok_server.events()
    assert (event["event"], event["event_id"]) == ("Subscribe", invoice_id)
    assert event["user"]["external_id"] == sha256(CUSTOMER)
    assert event["user"]["email"] == sha256("ada.lovelace@example.com")
    [record] = db.customers()
    assert "checkout_session" not in record
    [item] = db.deliveries()
    assert (item["event_id"], item["delivery_kind"], item["delivery_status"]) == (
        invoice_id,
        "renewal",
        "sent",
    )


# ---------------------------------------------------------------------- hostile but signed


def post(app, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The webhook's answer; a crash is what the Function URL would answer it with (502)."""
    try:
        result = app.lambda_handler(signed_webhook_event(event, WEBHOOK_SECRET), LambdaContext(10.0))
    except Exception as error:  # a Lambda error, which the Function URL answers with a 502
        return 502, {"crash": f"{type(error).__name__}: {error}"}
    return result["statusCode"], json.loads(result["body"])


def hostile_invoice(**changes: Any) -> dict[str, Any]:
    """A signed renewal (paying for a period later than the first invoice's) whose invoice has
    these fields replaced (None: removed)."""
    event = renewal(period_end=int(time.time()) + 60 * DAY)
    paid = invoice_of(event)
    for name, value in changes.items():
        if value is None:
            paid.pop(name, None)
        else:
            paid[name] = value
    return event


def with_line(**line: Any) -> dict[str, Any]:
    event = hostile_invoice()
    invoice_of(event)["lines"]["data"][0].update(line)
    return event


def with_period_end(value: Any) -> dict[str, Any]:
    return with_line(period={"start": int(time.time()), "end": value})


def hostile_subscription(**changes: Any) -> dict[str, Any]:
    event = status_event("canceled", int(time.time()) - 10)
    for name, value in changes.items():
        if value is None:
            event["data"]["object"].pop(name, None)
        else:
            event["data"]["object"][name] = value
    return event


def object_replaced(event: dict[str, Any], value: Any) -> dict[str, Any]:
    event["data"]["object"] = value
    return event


# What a hostile event may do: nothing (refused: 400, or ignored: 200), or record the payment
# with paid_through kept (no readable period) or moved to its period's end.
REFUSED, IGNORED, KEPT, NEW_PERIOD = "refused", "ignored", "paid_through kept", "paid_through moved"
HOSTILE = [
    pytest.param(lambda: hostile_invoice(lines=None), KEPT, id="lines missing"),
    pytest.param(lambda: with_line(period=None), KEPT, id="period null"),
    pytest.param(lambda: hostile_invoice(lines=[{"period": {"end": 1}}]), KEPT, id="lines a list"),
    pytest.param(lambda: hostile_invoice(lines={"data": "lines"}), KEPT, id="lines.data a string"),
    pytest.param(
        lambda: hostile_invoice(lines={"object": "list", "data": 5}),
        KEPT,
        id="lines.data a number",
    ),
    pytest.param(lambda: with_period_end("1765281600"), KEPT, id="period end a string"),
    pytest.param(lambda: with_period_end(1.7e9), KEPT, id="period end a float"),
    pytest.param(lambda: with_period_end(True), KEPT, id="period end true"),
    pytest.param(lambda: with_period_end(10**40), KEPT, id="period end beyond DynamoDB"),
    pytest.param(lambda: hostile_invoice(amount_paid="2900"), NEW_PERIOD, id="amount_paid a string"),
    pytest.param(lambda: hostile_invoice(currency=840), NEW_PERIOD, id="currency a number"),
    pytest.param(
        lambda: hostile_invoice(status_transitions="paid"), NEW_PERIOD, id="status_transitions a string"
    ),
    pytest.param(
        lambda: hostile_invoice(
            customer_email=5, customer_name=["Ada"], customer_phone={}, customer_address="SF"
        ),
        NEW_PERIOD,
        id="buyer fields of wrong types",
    ),
    pytest.param(lambda: hostile_invoice(billing_reason=7), NEW_PERIOD, id="billing_reason a number"),
    pytest.param(lambda: hostile_invoice(parent="subscription"), IGNORED, id="parent a string"),
    pytest.param(
        lambda: hostile_invoice(parent={"subscription_details": {"subscription": "si_1"}}),
        IGNORED,
        id="subscription id wrong prefix",
    ),
    pytest.param(lambda: hostile_invoice(customer=None), REFUSED, id="invoice customer missing"),
    pytest.param(lambda: hostile_invoice(customer=42), REFUSED, id="invoice customer an int"),
    pytest.param(lambda: hostile_invoice(id="ch_3Test0001"), REFUSED, id="invoice id wrong prefix"),
    pytest.param(
        lambda: object_replaced(hostile_invoice(), [invoice()]), REFUSED, id="invoice object a list"
    ),
    pytest.param(lambda: {**hostile_invoice(), "created": "yesterday"}, REFUSED, id="event created a string"),
    pytest.param(lambda: hostile_subscription(status="sleeping"), REFUSED, id="status unknown"),
    pytest.param(lambda: hostile_subscription(status=None), REFUSED, id="status missing"),
    pytest.param(
        lambda: hostile_subscription(status=["canceled"]),
        REFUSED,
        id="status a list",
    ),
    pytest.param(lambda: hostile_subscription(customer=None), REFUSED, id="subscription customer missing"),
    pytest.param(lambda: hostile_subscription(customer=42), REFUSED, id="subscription customer an int"),
    pytest.param(lambda: hostile_subscription(id="in_1Test"), REFUSED, id="subscription id wrong prefix"),
    pytest.param(
        lambda: object_replaced(hostile_subscription(), [subscription()]), REFUSED, id="subscription a list"
    ),
]


@pytest.mark.parametrize(("build", "outcome"), HOSTILE)
def test_hostile_signed_invoices_and_subscriptions_never_get_a_5xx_or_change_what_they_should_not(
    env, renewals_on, app, checkout, stream, db, tiktok_server, build, outcome
):
    # Given: a provisioned subscription, paid through its first invoice's period
    session = provisioned_subscription(checkout)
    customers_before, sessions_before = checkout_records(db), db.sessions()
    record_before = subscription_record(db)
    event = build()

    # When: Stripe (signed) sends the hostile object, and the stream runs the sender
    status, body = post(app, event)
    stream.drain()

    # Then: never a 5xx, the sender never fails, the checkout's records are never touched
    assert status == (400 if outcome == REFUSED else 200), body
    assert all(invocation.answer == {"batchItemFailures": []} for invocation in stream.invocations)
    assert stream.given_up == []
    assert checkout_records(db) == customers_before
    record = subscription_record(db)
    assert record["checkout_session"] == session["id"] and record["external_id"] == "user-42"
    if outcome in (REFUSED, IGNORED):
        assert outcome == REFUSED or body["status"] == "ignored"
        assert record == record_before and db.sessions() == sessions_before
        assert len(tiktok_server.requests) == 1  # the checkout's
        return
    paid = invoice_of(event)
    assert body["status"] == "recorded"
    assert record["last_paid_invoice"] == paid["id"]
    assert record["paid_through"] == (record_before["paid_through"] if outcome == KEPT else period_end(event))
    renewals = [item for item in db.deliveries() if item["event_id"] != session["id"]]
    if paid["billing_reason"] != "subscription_cycle":
        assert "renewal" not in body and renewals == []
        return
    # A renewal with an unreadable part is reported with what could be read.
    assert body["renewal"] == {"status": "pending"}
    assert [(item["event_id"], item["delivery_status"]) for item in renewals] == [(paid["id"], "sent")]
    _, renewed = tiktok_server.events()
    assert renewed["event"] == "Subscribe" and renewed["event_id"] == paid["id"]
    assert renewed["user"]["external_id"] == sha256("user-42")
    if not isinstance(paid["amount_paid"], int) or not isinstance(paid["currency"], str):
        assert "value" not in renewed["properties"] and "currency" not in renewed["properties"]


FUZZ = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=list(HealthCheck),
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12))
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
EPOCHS = st.one_of(st.integers(min_value=-(10**20), max_value=10**20), JSON)
PERIODS = st.one_of(JSON, st.fixed_dictionaries({}, optional={"start": EPOCHS, "end": EPOCHS}))
LINE = st.one_of(JSON, st.fixed_dictionaries({}, optional={"period": PERIODS, "amount": JSON}))
LINES_DATA = st.one_of(st.lists(LINE, max_size=3), JSON)
LINES = st.one_of(JSON, st.fixed_dictionaries({"data": LINES_DATA}))
TEXTISH = st.one_of(st.text(max_size=30), JSON)
INVOICE_CHANGES = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(max_size=12).map(lambda text: f"in_{text}"), JSON),
        "customer": st.one_of(st.just(CUSTOMER), st.text(max_size=12).map(lambda text: f"cus_{text}"), JSON),
        "billing_reason": st.one_of(
            st.sampled_from(["subscription_cycle", "subscription_create", "subscription_update", "manual"]),
            JSON,
        ),
        "amount_paid": st.one_of(st.integers(), JSON),
        "currency": st.one_of(st.sampled_from(["usd", "jpy", "kwd", "xyz", ""]), JSON),
        "lines": LINES,
        "parent": st.one_of(
            st.fixed_dictionaries({"subscription_details": st.fixed_dictionaries({"subscription": JSON})}),
            JSON,
        ),
        "subscription": st.one_of(st.just(SUBSCRIPTION), JSON),
        "status_transitions": st.one_of(st.fixed_dictionaries({"paid_at": EPOCHS}), JSON),
        "customer_email": TEXTISH,
        "customer_name": TEXTISH,
        "customer_phone": TEXTISH,
        "customer_address": st.one_of(
            JSON,
            st.fixed_dictionaries({}, optional={"postal_code": TEXTISH, "country": TEXTISH, "city": TEXTISH}),
        ),
    },
)
SUBSCRIPTION_CHANGES = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.just(SUBSCRIPTION), st.text(max_size=12).map(lambda text: f"sub_{text}"), JSON),
        "customer": st.one_of(st.just(CUSTOMER), JSON),
        "status": st.one_of(st.sampled_from(sorted(STATUSES)), JSON),
    },
)
EVENT_CHANGES = st.fixed_dictionaries(
    {},
    optional={
        "created": st.one_of(st.integers(min_value=-(10**20), max_value=10**20), JSON),
        "livemode": JSON,
    },
)


def test_fuzzed_invoice_and_subscription_shapes_never_get_a_5xx(
    env, renewals_on, app, checkout, stream, db, tiktok_server
):
    session = provisioned_subscription(checkout)
    customers_before = checkout_records(db)
    started: set[str] = set()  # the invoices whose renewal the webhook answered pending
    answered: set[tuple[str, int, str | None]] = set()

    @FUZZ
    @given(st.sampled_from(["invoice", "subscription"]), INVOICE_CHANGES, SUBSCRIPTION_CHANGES, EVENT_CHANGES)
    @example("invoice", {"lines": {"data": [{"period": None}]}, "amount_paid": "29"}, {}, {})
    @example("subscription", {}, {"status": "paused"}, {"created": 1})
    def check(kind, invoice_changes, subscription_changes, event_changes):
        if kind == "invoice":
            event = renewal()
            invoice_of(event).update(invoice_changes)
        else:
            event = status_event("canceled", int(time.time()) - 10)
            event["data"]["object"].update(subscription_changes)
        event.update(event_changes)

        status, body = post(app, event)

        assert 200 <= status < 300 or 400 <= status < 500, (status, body)
        answered.add((kind, status, body.get("status")))
        if body.get("renewal") == {"status": "pending"}:
            started.add(body["invoice_id"])

    check()
    stream.drain()
    # The examples reached every branch: refused, ignored, recorded, unchanged, renewals started.
    assert {("invoice", 400, None), ("invoice", 200, "ignored"), ("invoice", 200, "recorded")} <= answered
    assert {("subscription", 400, None), ("subscription", 200, "recorded")} <= answered
    assert started, answered

    # The checkout's records keep what the checkout wrote; every other Customers item is a
    # subscription record, every other Sessions item a renewal the webhook said it started.
    assert checkout_records(db) == customers_before
    record = subscription_record_of(db, CUSTOMER, SUBSCRIPTION)
    assert record["checkout_session"] == session["id"] and record["external_id"] == "user-42"
    for item in subscription_records(db):
        assert item.get("status", "active") in STATUSES
        assert 0 < item.get("paid_through", 1) < 32503680000
        if item["checkout_session_id"] != record["checkout_session_id"] or item["customer_id"] != CUSTOMER:
            assert "checkout_session" not in item  # never provisioned: no session invented
    renewal_items = {item["event_id"] for item in db.deliveries() if item["event_id"] != session["id"]}
    assert renewal_items == started
    assert all(invocation.answer == {"batchItemFailures": []} for invocation in stream.invocations)
    assert stream.given_up == []
    events = tiktok_server.events()
    assert events[0]["event_id"] == session["id"]
    assert sorted(event["event_id"] for event in events[1:]) == sorted(started)
    assert {event["event"] for event in events[1:]} <= {"Subscribe"}


def subscription_record_of(db, customer_id: str, subscription_id: str) -> dict[str, Any]:
    [record] = [
        item
        for item in db.customers()
        if (item["customer_id"], item["checkout_session_id"])
        == (customer_id, f"subscription#{subscription_id}")
    ]
    return record


# ---------------------------------------------------------------------- DynamoDB down, Stripe retries


THROTTLED = "ProvisionedThroughputExceededException"


def test_a_status_write_dynamodb_refuses_is_a_500_and_stripes_retry_applies_it_once(
    env, app, checkout, deliver, db, dynamodb, failing_client, emf, monkeypatch
):
    provisioned_subscription(checkout)
    before = subscription_record(db)
    deleted = status_event("canceled", int(time.time()) - 10)
    monkeypatch.setattr(app, "dynamodb", failing_client(dynamodb, "update_item", THROTTLED, times=1))

    refused = deliver(deleted)

    assert refused.status == 500
    assert refused.body == {"error": "recording failed, retry later", "subscription_id": SUBSCRIPTION}
    assert subscription_record(db) == before

    # Stripe retries the same event: applied once; a further copy changes nothing
    retried, again = deliver(deleted), deliver(deleted)

    assert retried.body == status_answer(deleted, "recorded", "canceled")
    assert again.body == status_answer(deleted, "unchanged", "canceled")
    record = subscription_record(db)
    assert (record["status"], record["status_event_id"]) == ("canceled", deleted["id"])
    assert emf.total("SubscriptionWriteFailures") == 1
    assert emf.total("SubscriptionStatusesRecorded") == 1


def test_a_payment_write_dynamodb_refuses_is_a_500_and_stripes_retry_applies_it_once(
    env, renewals_on, app, checkout, deliver, stream, db, dynamodb, failing_client, tiktok_server, monkeypatch
):
    provisioned_subscription(checkout)
    before = subscription_record(db)
    cycle = renewal()
    invoice_id = invoice_of(cycle)["id"]
    monkeypatch.setattr(app, "dynamodb", failing_client(dynamodb, "update_item", THROTTLED, times=1))

    refused = deliver(cycle)
    stream.drain()

    assert refused.status == 500
    assert refused.body == {"error": "recording failed, retry later", "invoice_id": invoice_id}
    assert subscription_record(db) == before
    assert db.delivery(invoice_id) is None  # no renewal started for a payment not recorded
    assert len(tiktok_server.requests) == 1

    retried = checkout(cycle)

    assert retried.body == payment_answer(cycle, "recorded", "provisioned", renewal={"status": "pending"})
    assert subscription_record(db)["paid_through"] == period_end(cycle)
    assert [event["event_id"] for event in tiktok_server.events()].count(invoice_id) == 1


def test_a_renewal_put_failing_after_the_payment_applied_is_started_once_by_the_retry(
    env,
    renewals_on,
    app,
    checkout,
    deliver,
    stream,
    db,
    dynamodb,
    failing_client,
    tiktok_server,
    emf,
    monkeypatch,
):
    provisioned_subscription(checkout)
    cycle = renewal()
    invoice_id = invoice_of(cycle)["id"]
    monkeypatch.setattr(app, "dynamodb", failing_client(dynamodb, "put_item", THROTTLED, times=1))

    # When: the payment is recorded, then starting its renewal fails
    refused = deliver(cycle)
    stream.drain()

    assert refused.status == 500
    assert refused.body == {"error": "recording failed, retry later", "invoice_id": invoice_id}
    assert subscription_record(db)["last_paid_invoice"] == invoice_id  # the update had applied
    assert db.delivery(invoice_id) is None
    assert len(tiktok_server.requests) == 1

    # When: Stripe retries: the payment is already recorded, the renewal starts now, once
    retried = checkout(cycle)
    again = checkout(cycle)

    assert retried.body == payment_answer(cycle, "unchanged", "provisioned", renewal={"status": "pending"})
    assert again.body == {**retried.body, "renewal": {"status": "sent", "duplicate": True}}
    [renewed] = [event for event in tiktok_server.events() if event["event_id"] == invoice_id]
    assert renewed["event"] == "Subscribe"
    assert renewed["user"]["external_id"] == sha256("user-42")  # read back from the record
    assert emf.total("RenewalsStarted") == 1
    assert emf.total("RenewalDuplicates") == 1


# ---------------------------------------------------------------------- what each event costs


def test_dynamodb_requests_per_subscription_event(
    env, renewals_on, app, deliver, recording_dynamodb, monkeypatch
):
    monkeypatch.setattr(app, "dynamodb", recording_dynamodb)
    _, completed = subscription_checkout()
    # Later than the subscription_create invoice below (created 5 s ago): its payment is recorded,
    # not found older (two events of one second would be ordered by the periods they pay).
    cycle = renewal(created=int(time.time()))
    plain_invoice = stripe_event("invoice.paid", invoice(subscription=None, customer=CUSTOMER))

    def cost(event: dict[str, Any]) -> list[str]:
        recording_dynamodb.calls.clear()
        assert deliver(event).status == 200
        return recording_dynamodb.operations()

    assert cost(completed) == ["transact_write_items"]
    [(_, transaction)] = recording_dynamodb.calls
    assert [next(iter(item)) for item in transaction["TransactItems"]] == ["Put", "Put", "Put", "Update"]
    assert cost(invoice_paid()) == ["update_item"]  # subscription_create
    assert cost(cycle) == ["update_item", "put_item"]  # a renewal reported
    assert cost(cycle) == ["update_item", "get_item", "put_item"]  # ... and its duplicate (and a look for
    # a renewal the previous version started under the bare invoice id)
    assert cost(status_event("canceled", int(time.time()) - 10)) == ["update_item"]
    assert cost(plain_invoice) == []  # an invoice that pays no subscription: ignored
    monkeypatch.setenv("RENEWAL_EVENT_NAME", "")
    assert cost(renewal()) == ["update_item"]  # a renewal not reported
