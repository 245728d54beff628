"""What a verified Stripe event asks of us (stripe_side/events.py, stripe-webhooks.md): provision a
paid checkout, record a subscription's payment or status change, or nothing, and why; and the
events that lack what their type must carry (MalformedEvent).

Subscription objects start from Stripe-shaped ones (subscription_objects.py) changed per case."""

import copy

import pytest

from checkout_conversions.stripe_side.events import (
    CheckoutPaid,
    Ignored,
    IgnoreReason,
    InvoicePaid,
    SubscriptionChanged,
    SubscriptionFacts,
    classify,
    subscription_facts,
    subscription_of,
)
from checkout_conversions.stripe_side.signature import MalformedEvent
from tests.unit.stripe_side.subscription_objects import (
    ALL_STATUSES,
    CUSTOMER_ID,
    INVOICE_ID,
    MISSING,
    RENEWAL_EVENT,
    ROOT,
    STRIPE_SUBSCRIPTION,
    SUBSCRIPTION_ID,
    _load,
    invoice,
    invoice_event,
    subscription,
    subscription_event,
)

SESSION_ID = "cs_test_a1B2c3D4e5F6"


# ---------------------------------------------------------------- classify: checkout sessions


def session(**overrides):
    base = {"id": SESSION_ID, "object": "checkout.session", "mode": "payment", "payment_status": "paid"}
    base.update(overrides)
    return base


def event(event_type="checkout.session.completed", obj=None, **overrides):
    base = {
        "id": "evt_test_1",
        "type": event_type,
        "created": 1735689600,
        "data": {"object": obj if obj is not None else session()},
    }
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    ("event_type", "session_fields", "provision"),
    [
        ("checkout.session.completed", {"payment_status": "paid"}, True),
        ("checkout.session.completed", {"payment_status": "no_payment_required"}, True),
        ("checkout.session.completed", {"payment_status": "paid", "mode": "subscription"}, True),
        ("checkout.session.completed", {"payment_status": "unpaid"}, False),
        ("checkout.session.completed", {"payment_status": None}, False),
        ("checkout.session.async_payment_succeeded", {"payment_status": "paid"}, True),
        # The event type itself says the payment succeeded; an older API version may lack the field.
        ("checkout.session.async_payment_succeeded", {"payment_status": None}, True),
        ("checkout.session.async_payment_failed", {"payment_status": "unpaid"}, False),
        ("checkout.session.expired", {"payment_status": "unpaid", "status": "expired"}, False),
        ("checkout.session.completed", {"mode": "setup", "payment_status": "no_payment_required"}, False),
        ("checkout.session.async_payment_succeeded", {"mode": "setup"}, False),
    ],
)
def test_decide_reference_table(event_type, session_fields, provision):
    decision = classify(event(event_type, session(**session_fields)))
    assert isinstance(decision, CheckoutPaid | Ignored)
    assert isinstance(decision, CheckoutPaid) is provision
    if provision:
        assert decision.session is not None
        assert decision.session["id"] == SESSION_ID
    else:
        assert decision.describe()  # why it is not provisioned


def test_unpaid_completed_waits_and_names_the_session():
    decision = classify(event(obj=session(payment_status="unpaid")))
    assert isinstance(decision, Ignored)
    assert decision.reason is IgnoreReason.AWAITING_PAYMENT
    assert "unpaid" in decision.describe()
    assert decision.session_id == SESSION_ID


@pytest.mark.parametrize(
    "event_type",
    [
        "invoice.paid",
        "invoice.payment_succeeded",
        "payment_intent.succeeded",
        "charge.succeeded",
        "customer.subscription.created",
        "checkout.session.expired",
    ],
)
def test_other_event_types_are_acknowledged_without_provisioning(event_type):
    invoice = {"id": "in_1", "object": "invoice", "billing_reason": "subscription_cycle"}
    decision = classify(event(event_type, invoice))
    assert not isinstance(decision, CheckoutPaid)


@pytest.mark.parametrize(
    "event_type",
    ["checkout.session.completed", "checkout.session.async_payment_succeeded"],
)
@pytest.mark.parametrize(
    "broken",
    [
        {"data": None},
        {"data": {}},
        {"data": {"object": None}},
        {"data": {"object": "cs_test_1"}},
        {"data": {"object": {}}},
        {"data": {"object": {"id": "pi_123", "mode": "payment", "payment_status": "paid"}}},
        {"data": {"object": {"id": "in_123", "mode": "payment", "payment_status": "paid"}}},
        {"data": {"object": {"id": 123, "mode": "payment", "payment_status": "paid"}}},
        {"data": {"object": {"id": "cs_", "mode": "payment", "payment_status": "paid"}}},
        {"data": {"object": {"id": "cs_" + "x" * 300, "mode": "payment", "payment_status": "paid"}}},
        {"created": None},
        {"created": True},
        {"created": False},
        {"created": "1735689600"},
        {"created": 1735689600.5},
    ],
    ids=repr,
)
def test_malformed_checkout_events(event_type, broken):
    with pytest.raises(MalformedEvent):
        classify(event(event_type, **broken))


@pytest.mark.parametrize(
    "event_type",
    ["checkout.session.completed", "checkout.session.async_payment_succeeded"],
)
def test_missing_created_is_malformed(event_type):
    broken = event(event_type)
    del broken["created"]
    with pytest.raises(MalformedEvent):
        classify(broken)


@pytest.mark.parametrize("prefix", ["cs_test_", "cs_live_"])
def test_live_and_test_session_ids(prefix):
    assert isinstance(classify(event(obj=session(id=prefix + "a1B2c3"))), CheckoutPaid)


# ------------------------------------------------------------ classify: invoice.paid


def test_the_renewal_sample_is_a_subscriptions_paid_invoice():
    decision = classify(copy.deepcopy(RENEWAL_EVENT))

    assert not isinstance(decision, CheckoutPaid)  # never a checkout to provision
    assert isinstance(decision, InvoicePaid)  # neither a session nor a subscription's status
    assert decision.invoice["id"] == INVOICE_ID
    assert decision.invoice["customer"] == CUSTOMER_ID


def test_the_subscription_is_read_from_parent_subscription_details():
    """API versions since 2025-03-31: the invoice names its subscription only under `parent`."""
    obj = invoice(subscription=MISSING)
    assert obj["parent"]["subscription_details"]["subscription"] == SUBSCRIPTION_ID

    assert subscription_of(obj) == SUBSCRIPTION_ID
    assert isinstance(classify(invoice_event(obj)), InvoicePaid)


def test_the_subscription_is_read_from_the_legacy_field_of_older_api_versions():
    obj = invoice(parent=MISSING, subscription=SUBSCRIPTION_ID)

    assert subscription_of(obj) == SUBSCRIPTION_ID
    decision = classify(invoice_event(obj))
    assert isinstance(decision, InvoicePaid)
    assert decision.invoice["id"] == INVOICE_ID


def test_a_legacy_invoice_with_a_null_parent_still_names_its_subscription():
    assert subscription_of(invoice(parent=None, subscription=SUBSCRIPTION_ID)) == SUBSCRIPTION_ID


@pytest.mark.parametrize("where", ["parent", "legacy"])
def test_an_expanded_subscription_object_gives_its_id(where):
    expanded = subscription(id=SUBSCRIPTION_ID)
    if where == "parent":
        obj = invoice()
        obj["parent"]["subscription_details"]["subscription"] = expanded
    else:
        obj = invoice(parent=MISSING, subscription=expanded)

    assert subscription_of(obj) == SUBSCRIPTION_ID
    assert isinstance(classify(invoice_event(obj)), InvoicePaid)


@pytest.mark.parametrize(
    "obj",
    [
        # a one-off invoice (the dashboard's, a quote's): no subscription anywhere
        invoice(parent=None, subscription=MISSING),
        invoice(
            parent={"quote_details": {"quote": "qt_1"}, "subscription_details": None, "type": "quote_details"}
        ),
        invoice(parent={"subscription_details": {"metadata": {}, "subscription": None}}),
        invoice(parent=MISSING, subscription=None),
        # not a subscription's id
        invoice(parent={"subscription_details": {"subscription": "si_TLocalSample0001"}}),
        invoice(parent={"subscription_details": {"subscription": "sub_"}}),
        invoice(parent={"subscription_details": {"subscription": 42}}),
        invoice(parent={"subscription_details": {"subscription": {"id": "cus_1"}}}),
        invoice(parent=MISSING, subscription="sub_" + "x" * 252),  # longer than Stripe's 255
    ],
    ids=[
        "no-parent",
        "quote",
        "null-subscription",
        "legacy-null",
        "item-id",
        "bare-prefix",
        "number",
        "expanded-wrong-id",
        "too-long",
    ],
)
def test_an_invoice_that_pays_no_subscription_is_ignored(obj):
    assert subscription_of(obj) is None
    decision = classify(invoice_event(obj))

    assert decision == Ignored(RENEWAL_EVENT["id"], "invoice.paid", IgnoreReason.NO_SUBSCRIPTION)
    assert decision.describe() == "the invoice pays no subscription"


def test_an_invoice_that_pays_no_subscription_needs_no_customer():
    """Ignored before the customer matters: a guest's one-off invoice is acknowledged (200)."""
    obj = invoice(parent=None, subscription=MISSING, customer=None)
    decision = classify(invoice_event(obj))
    assert isinstance(decision, Ignored)
    assert decision.describe() == "the invoice pays no subscription"


@pytest.mark.parametrize(
    "customer",
    [
        MISSING,
        None,
        "",
        "cus_",
        "acct_1SLocal",
        7,
        {"id": CUSTOMER_ID, "object": "customer"},
        "cus_" + "x" * 252,
    ],
    ids=["missing", "null", "empty", "bare-prefix", "account-id", "number", "expanded", "too-long"],
)
def test_a_subscriptions_invoice_without_a_valid_customer_is_malformed(customer):
    with pytest.raises(MalformedEvent, match="invoice has no customer"):
        classify(invoice_event(invoice(customer=customer)))


@pytest.mark.parametrize(
    "invoice_id",
    [MISSING, None, "", "in_", "ch_3SLocalSample", "il_1SLocalSample0000000008", 8, "in_" + "x" * 253],
    ids=["missing", "null", "empty", "bare-prefix", "charge-id", "line-id", "number", "too-long"],
)
def test_an_invoice_paid_event_without_an_invoice_id_is_malformed(invoice_id):
    with pytest.raises(MalformedEvent, match="event carries no invoice"):
        classify(invoice_event(invoice(id=invoice_id)))


@pytest.mark.parametrize("data", [MISSING, None, {}, {"object": None}, {"object": []}, [INVOICE_ID]])
def test_an_invoice_paid_event_without_an_object_is_malformed(data):
    event = invoice_event()
    if data is MISSING:
        del event["data"]
    else:
        event["data"] = data
    with pytest.raises(MalformedEvent, match="event carries no invoice"):
        classify(event)


@pytest.mark.parametrize(
    "created",
    [MISSING, None, "1762693200", 0, -1, True, 1762693200.5, 32503680000],
    ids=["missing", "null", "string", "zero", "negative", "bool", "float", "year-3000"],
)
def test_an_invoice_paid_event_without_a_valid_created_is_malformed(created):
    """`created` orders a subscription's writes: without it no write can be ordered."""
    with pytest.raises(MalformedEvent, match="no valid created time"):
        classify(invoice_event(created=created))


def test_an_invoice_without_a_subscription_and_without_created_is_still_malformed():
    """The event is checked before its invoice's content decides anything."""
    with pytest.raises(MalformedEvent, match="no valid created time"):
        classify(invoice_event(invoice(parent=None, subscription=MISSING), created=MISSING))


@pytest.mark.parametrize(
    "reason", ["subscription_create", "subscription_cycle", "subscription_update", None, 5]
)
def test_every_billing_reason_of_a_subscriptions_invoice_is_recorded(reason):
    """paid_through follows every payment of the subscription; which ones are renewals is
    decided later (webhook/subscriptions.py, record_payment), and a junk reason is no renewal."""
    decision = classify(invoice_event(invoice(billing_reason=reason)))
    assert isinstance(decision, InvoicePaid)  # recorded, never a checkout to provision


# ---------------------------------------------------- classify: customer.subscription.*


@pytest.mark.parametrize("event_type", ["customer.subscription.updated", "customer.subscription.deleted"])
@pytest.mark.parametrize("status", ALL_STATUSES)
def test_every_status_stripe_knows_is_a_status_change(event_type, status):
    obj = subscription(status=status)
    decision = classify(subscription_event(obj, event_type))

    assert isinstance(decision, SubscriptionChanged)  # neither a checkout nor an invoice
    assert decision.status == status
    assert decision.subscription["id"] == STRIPE_SUBSCRIPTION["id"]
    assert decision.subscription["status"] == status
    assert decision.subscription["customer"] == STRIPE_SUBSCRIPTION["customer"]


def test_the_subscription_samples_are_status_changes():
    for name, status in [
        ("customer_subscription_deleted", "canceled"),
        ("customer_subscription_updated", "active"),
    ]:
        decision = classify(_load(ROOT / "events" / f"{name}.json"))
        assert isinstance(decision, SubscriptionChanged)
        assert (decision.subscription["id"], decision.subscription["status"]) == (SUBSCRIPTION_ID, status)


@pytest.mark.parametrize(
    "status",
    [MISSING, None, "", "Active", "cancelled", "ended", "incomplete_pending", 1],
    ids=["missing", "null", "empty", "capitalised", "british", "ended", "invented", "number"],
)
def test_a_subscription_without_a_known_status_is_malformed(status):
    with pytest.raises(MalformedEvent, match="no known status"):
        classify(subscription_event(subscription(status=status)))


@pytest.mark.parametrize("status", [["active"], {"value": "active"}], ids=["list", "object"])
def test_a_subscription_whose_status_is_a_list_or_object_is_malformed(status):
    with pytest.raises(MalformedEvent, match="no known status"):
        classify(subscription_event(subscription(status=status)))


@pytest.mark.parametrize(
    "customer",
    [MISSING, None, "", "cus_", "acct_1Local", 3, {"id": "cus_QXg1o8vcGmoR32", "object": "customer"}],
    ids=["missing", "null", "empty", "bare-prefix", "account-id", "number", "expanded"],
)
def test_a_subscription_without_a_valid_customer_is_malformed(customer):
    with pytest.raises(MalformedEvent, match="subscription has no customer"):
        classify(subscription_event(subscription(customer=customer)))


@pytest.mark.parametrize(
    "subscription_id",
    [MISSING, None, "", "sub_", "si_QXhVnC2h0Jczwc", "cus_QXg1o8vcGmoR32", 12, "sub_" + "x" * 252],
    ids=["missing", "null", "empty", "bare-prefix", "item-id", "customer-id", "number", "too-long"],
)
def test_a_subscription_event_without_a_subscription_id_is_malformed(subscription_id):
    with pytest.raises(MalformedEvent, match="event carries no subscription"):
        classify(subscription_event(subscription(id=subscription_id)))


def test_a_subscription_event_carrying_an_invoice_is_malformed():
    with pytest.raises(MalformedEvent, match="event carries no subscription"):
        classify(subscription_event(invoice()))


@pytest.mark.parametrize("created", [MISSING, None, "1762779600", 0, False, 32503680001])
def test_a_subscription_event_without_a_valid_created_is_malformed(created):
    with pytest.raises(MalformedEvent, match="no valid created time"):
        classify(subscription_event(created=created))


def test_other_subscription_and_invoice_events_are_not_handled():
    for event_type in (
        "customer.subscription.created",
        "invoice.payment_failed",
        "invoice.payment_succeeded",
    ):
        event = subscription_event(event_type=event_type)
        decision = classify(event)
        assert decision == Ignored(event["id"], event_type, IgnoreReason.NOT_HANDLED)
        assert decision.describe() == f"event type {event_type} is not handled"


# ------------------------------------- subscription_facts: what orders two events of one second

STRIPE_ITEM_PERIOD_END = STRIPE_SUBSCRIPTION["items"]["data"][0]["current_period_end"]
JUNK_EPOCHS = ["1762779600", 1762779600.0, True, 0, -5, 32503680001, {"at": 1}, [1762779600]]


def item(**changes) -> dict:
    """Stripe's own subscription item, changed (a value MISSING removes the key)."""
    value = copy.deepcopy(STRIPE_SUBSCRIPTION["items"]["data"][0])
    for key, new in changes.items():
        if new is MISSING:
            value.pop(key, None)
        else:
            value[key] = new
    return value


def items(*values) -> dict:
    return {**copy.deepcopy(STRIPE_SUBSCRIPTION["items"]), "data": list(values)}


def test_stripes_own_subscription_object_gives_its_facts():
    """fixtures3.subscription.json (API 2025-03-31 and later): the period is on its item only."""
    assert "current_period_end" not in STRIPE_SUBSCRIPTION
    assert subscription_facts(STRIPE_SUBSCRIPTION) == SubscriptionFacts(
        final=False,
        ended_at=STRIPE_SUBSCRIPTION["ended_at"],
        canceled_at=STRIPE_SUBSCRIPTION["canceled_at"],
        current_period_end=STRIPE_ITEM_PERIOD_END,
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("customer_subscription_deleted", SubscriptionFacts(True, 1762779600, 1762779600, 976287773)),
        ("customer_subscription_updated", SubscriptionFacts(False, None, None, 976287773)),
    ],
)
def test_the_subscription_samples_give_their_facts_and_classify_carries_them(name, expected):
    event = _load(ROOT / "events" / f"{name}.json")
    decision = classify(event)
    assert isinstance(decision, SubscriptionChanged)
    assert decision.progress == expected == subscription_facts(event["data"]["object"])


@pytest.mark.parametrize("status", ALL_STATUSES)
def test_canceled_and_incomplete_expired_are_the_final_statuses(status):
    facts = subscription_facts(subscription(status=status))
    assert facts.final is (status in ("canceled", "incomplete_expired"))
    assert classify(subscription_event(subscription(status=status))).progress == facts


@pytest.mark.parametrize("status", [MISSING, None, ["canceled"], {"status": "canceled"}, "Canceled"])
def test_a_status_that_is_no_known_text_is_not_final_and_never_raises(status):
    assert subscription_facts(subscription(status=status)).final is False


@pytest.mark.parametrize(
    ("on_subscription", "on_items", "expected"),
    [
        (1762779600, [MISSING], 1762779600),  # before API 2025-03-31: on the subscription
        (MISSING, [1765458000], 1765458000),  # since: on each item
        (None, [1765458000], 1765458000),
        (1762779600, [1765458000], 1765458000),  # both (a version in between): the latest
        (1765458000, [1762779600], 1765458000),
        (MISSING, [1762779600, 1765458000, MISSING], 1765458000),  # items of several periods
        (MISSING, [MISSING], None),
        (MISSING, [], None),
    ],
)
def test_the_current_period_end_is_read_from_the_subscription_and_from_its_items(
    on_subscription, on_items, expected
):
    obj = subscription(
        current_period_end=on_subscription,
        items=items(*(item(current_period_end=end) for end in on_items)),
    )
    assert subscription_facts(obj).current_period_end == expected


@pytest.mark.parametrize("junk", JUNK_EPOCHS)
def test_an_implausible_time_is_no_fact(junk):
    obj = subscription(
        ended_at=junk, canceled_at=junk, current_period_end=junk, items=items(item(current_period_end=junk))
    )
    assert subscription_facts(obj) == SubscriptionFacts(False, None, None, None)


@pytest.mark.parametrize(
    "junk_items",
    [
        MISSING,
        None,
        "si_1",
        [],
        {"data": None},
        {"data": "items"},
        {"data": {"0": {}}},
        {"data": [None, 5, "si"]},
    ],
)
def test_items_of_any_shape_never_raise_and_the_subscriptions_own_period_still_counts(junk_items):
    obj = subscription(current_period_end=1762779600, items=junk_items)
    assert subscription_facts(obj).current_period_end == 1762779600
    assert (
        subscription_facts(subscription(current_period_end=MISSING, items=junk_items)).current_period_end
        is None
    )
