"""A subscription's life after its Checkout, the pure parts (issue 10): what an `invoice.paid` or a
`customer.subscription.*` event asks of us, the period an invoice pays for and when it was paid,
a renewal as a purchase, and when a renewal is not reported.

Every object starts from a Stripe-shaped one (the renewal sample events/invoice_paid.json, and
Stripe's own subscription fixture) and is changed per case."""

import copy
import json
from decimal import Decimal
from pathlib import Path

import pytest

from checkout_conversions.config import load_settings
from checkout_conversions.conversion import renewal_purchase
from checkout_conversions.destinations import (
    RENEWAL,
    TIKTOK,
    skip_reason_at_send_time,
    skip_reason_for_renewal,
)
from checkout_conversions.purchase import Buyer, Purchase
from checkout_conversions.stripe_events import Decision, MalformedEvent, decide, subscription_of
from checkout_conversions.subscriptions import paid_at, paid_through

ROOT = Path(__file__).resolve().parents[2]
STRIPE_FIXTURE = ROOT.parent / "shared" / "fixtures" / "external" / "stripe" / "fixtures3.subscription.json"


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


RENEWAL_EVENT = _load(ROOT / "events" / "invoice_paid.json")
INVOICE_ID = "in_1SLocalSample0000000008"
SUBSCRIPTION_ID = "sub_1SLocalSample0000000001"
CUSTOMER_ID = "cus_TLocalSample0001"
PERIOD_END = 1765281600  # the renewal's line: period.end
PAID_AT = 1762693200  # status_transitions.paid_at (and the event's created)
# Stripe's own subscription object (beside this checkout); a fresh clone without it uses the
# sample built from it, which has the same shape (tests/unit/test_sample_events.py).
STRIPE_SUBSCRIPTION = (
    _load(STRIPE_FIXTURE)
    if STRIPE_FIXTURE.is_file()
    else _load(ROOT / "events" / "customer_subscription_updated.json")["data"]["object"]
)
ALL_STATUSES = (
    "active",
    "trialing",
    "past_due",
    "unpaid",
    "canceled",
    "incomplete",
    "incomplete_expired",
    "paused",
)
MISSING = object()


def invoice(**changes) -> dict:
    """The renewal sample's invoice; a value MISSING removes the key."""
    value = copy.deepcopy(RENEWAL_EVENT["data"]["object"])
    for key, new in changes.items():
        if new is MISSING:
            value.pop(key, None)
        else:
            value[key] = new
    return value


def invoice_event(obj=None, **changes) -> dict:
    event = copy.deepcopy(RENEWAL_EVENT)
    event["data"]["object"] = invoice() if obj is None else obj
    for key, new in changes.items():
        if new is MISSING:
            event.pop(key, None)
        else:
            event[key] = new
    return event


def subscription(**changes) -> dict:
    value = copy.deepcopy(STRIPE_SUBSCRIPTION)
    for key, new in changes.items():
        if new is MISSING:
            value.pop(key, None)
        else:
            value[key] = new
    return value


def subscription_event(obj=None, event_type="customer.subscription.updated", **changes) -> dict:
    event = {
        "id": "evt_1SLocalSample0000000099",
        "object": "event",
        "api_version": "2025-09-30.clover",
        "created": 1762779600,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
        "data": {"object": subscription() if obj is None else obj},
    }
    for key, new in changes.items():
        if new is MISSING:
            event.pop(key, None)
        else:
            event[key] = new
    return event


def lines(*periods) -> dict:
    """An invoice's `lines` list with one line per period (a dict, or any junk value)."""
    template = RENEWAL_EVENT["data"]["object"]["lines"]
    data = []
    for period in periods:
        line = copy.deepcopy(template["data"][0])
        if period is MISSING:
            line.pop("period")
        else:
            line["period"] = period
        data.append(line)
    return {**copy.deepcopy(template), "data": data, "total_count": len(data)}


# ------------------------------------------------------------ decide: invoice.paid


def test_the_renewal_sample_is_a_subscriptions_paid_invoice():
    decision = decide(copy.deepcopy(RENEWAL_EVENT))

    assert decision.provision is False  # never a checkout to provision
    assert decision.session is None and decision.subscription is None
    assert decision.invoice["id"] == INVOICE_ID
    assert decision.invoice["customer"] == CUSTOMER_ID


def test_the_subscription_is_read_from_parent_subscription_details():
    """API versions since 2025-03-31: the invoice names its subscription only under `parent`."""
    obj = invoice(subscription=MISSING)
    assert obj["parent"]["subscription_details"]["subscription"] == SUBSCRIPTION_ID

    assert subscription_of(obj) == SUBSCRIPTION_ID
    assert decide(invoice_event(obj)).invoice is not None


def test_the_subscription_is_read_from_the_legacy_field_of_older_api_versions():
    obj = invoice(parent=MISSING, subscription=SUBSCRIPTION_ID)

    assert subscription_of(obj) == SUBSCRIPTION_ID
    assert decide(invoice_event(obj)).invoice["id"] == INVOICE_ID


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
    assert decide(invoice_event(obj)).invoice is not None


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
    decision = decide(invoice_event(obj))

    assert decision == Decision(False, "the invoice pays no subscription")


def test_an_invoice_that_pays_no_subscription_needs_no_customer():
    """Ignored before the customer matters: a guest's one-off invoice is acknowledged (200)."""
    obj = invoice(parent=None, subscription=MISSING, customer=None)
    assert decide(invoice_event(obj)).reason == "the invoice pays no subscription"


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
        decide(invoice_event(invoice(customer=customer)))


@pytest.mark.parametrize(
    "invoice_id",
    [MISSING, None, "", "in_", "ch_3SLocalSample", "il_1SLocalSample0000000008", 8, "in_" + "x" * 253],
    ids=["missing", "null", "empty", "bare-prefix", "charge-id", "line-id", "number", "too-long"],
)
def test_an_invoice_paid_event_without_an_invoice_id_is_malformed(invoice_id):
    with pytest.raises(MalformedEvent, match="event carries no invoice"):
        decide(invoice_event(invoice(id=invoice_id)))


@pytest.mark.parametrize("data", [MISSING, None, {}, {"object": None}, {"object": []}, [INVOICE_ID]])
def test_an_invoice_paid_event_without_an_object_is_malformed(data):
    event = invoice_event()
    if data is MISSING:
        del event["data"]
    else:
        event["data"] = data
    with pytest.raises(MalformedEvent, match="event carries no invoice"):
        decide(event)


@pytest.mark.parametrize(
    "created",
    [MISSING, None, "1762693200", 0, -1, True, 1762693200.5, 32503680000],
    ids=["missing", "null", "string", "zero", "negative", "bool", "float", "year-3000"],
)
def test_an_invoice_paid_event_without_a_valid_created_is_malformed(created):
    """`created` orders a subscription's writes: without it no write can be ordered."""
    with pytest.raises(MalformedEvent, match="no valid created time"):
        decide(invoice_event(created=created))


def test_an_invoice_without_a_subscription_and_without_created_is_still_malformed():
    """The event is checked before its invoice's content decides anything."""
    with pytest.raises(MalformedEvent, match="no valid created time"):
        decide(invoice_event(invoice(parent=None, subscription=MISSING), created=MISSING))


@pytest.mark.parametrize(
    "reason", ["subscription_create", "subscription_cycle", "subscription_update", None, 5]
)
def test_every_billing_reason_of_a_subscriptions_invoice_is_recorded(reason):
    """paid_through follows every payment of the subscription; which ones are renewals is
    decided later (subscriptions.record_payment), and a junk reason is no renewal."""
    decision = decide(invoice_event(invoice(billing_reason=reason)))
    assert decision.invoice is not None and decision.provision is False


# ---------------------------------------------------- decide: customer.subscription.*


@pytest.mark.parametrize("event_type", ["customer.subscription.updated", "customer.subscription.deleted"])
@pytest.mark.parametrize("status", ALL_STATUSES)
def test_every_status_stripe_knows_is_a_status_change(event_type, status):
    obj = subscription(status=status)
    decision = decide(subscription_event(obj, event_type))

    assert decision.provision is False and decision.session is None and decision.invoice is None
    assert decision.subscription["id"] == STRIPE_SUBSCRIPTION["id"]
    assert decision.subscription["status"] == status
    assert decision.subscription["customer"] == STRIPE_SUBSCRIPTION["customer"]


def test_the_subscription_samples_are_status_changes():
    for name, status in [
        ("customer_subscription_deleted", "canceled"),
        ("customer_subscription_updated", "active"),
    ]:
        decision = decide(_load(ROOT / "events" / f"{name}.json"))
        assert (decision.subscription["id"], decision.subscription["status"]) == (SUBSCRIPTION_ID, status)


@pytest.mark.parametrize(
    "status",
    [MISSING, None, "", "Active", "cancelled", "ended", "incomplete_pending", 1],
    ids=["missing", "null", "empty", "capitalised", "british", "ended", "invented", "number"],
)
def test_a_subscription_without_a_known_status_is_malformed(status):
    with pytest.raises(MalformedEvent, match="no known status"):
        decide(subscription_event(subscription(status=status)))


@pytest.mark.parametrize("status", [["active"], {"value": "active"}], ids=["list", "object"])
def test_a_subscription_whose_status_is_a_list_or_object_is_malformed(status):
    with pytest.raises(MalformedEvent, match="no known status"):
        decide(subscription_event(subscription(status=status)))


@pytest.mark.parametrize(
    "customer",
    [MISSING, None, "", "cus_", "acct_1Local", 3, {"id": "cus_QXg1o8vcGmoR32", "object": "customer"}],
    ids=["missing", "null", "empty", "bare-prefix", "account-id", "number", "expanded"],
)
def test_a_subscription_without_a_valid_customer_is_malformed(customer):
    with pytest.raises(MalformedEvent, match="subscription has no customer"):
        decide(subscription_event(subscription(customer=customer)))


@pytest.mark.parametrize(
    "subscription_id",
    [MISSING, None, "", "sub_", "si_QXhVnC2h0Jczwc", "cus_QXg1o8vcGmoR32", 12, "sub_" + "x" * 252],
    ids=["missing", "null", "empty", "bare-prefix", "item-id", "customer-id", "number", "too-long"],
)
def test_a_subscription_event_without_a_subscription_id_is_malformed(subscription_id):
    with pytest.raises(MalformedEvent, match="event carries no subscription"):
        decide(subscription_event(subscription(id=subscription_id)))


def test_a_subscription_event_carrying_an_invoice_is_malformed():
    with pytest.raises(MalformedEvent, match="event carries no subscription"):
        decide(subscription_event(invoice()))


@pytest.mark.parametrize("created", [MISSING, None, "1762779600", 0, False, 32503680001])
def test_a_subscription_event_without_a_valid_created_is_malformed(created):
    with pytest.raises(MalformedEvent, match="no valid created time"):
        decide(subscription_event(created=created))


def test_other_subscription_and_invoice_events_are_not_handled():
    for event_type in (
        "customer.subscription.created",
        "invoice.payment_failed",
        "invoice.payment_succeeded",
    ):
        decision = decide(subscription_event(event_type=event_type))
        assert decision == Decision(False, f"event type {event_type} is not handled")


# ------------------------------------------------------------------- paid_through


def test_paid_through_is_the_renewal_lines_period_end():
    assert paid_through(invoice()) == PERIOD_END


def test_paid_through_is_the_latest_end_among_several_lines():
    """A plan with an add-on, or a proration line: the invoice pays up to its latest end."""
    obj = invoice(
        lines=lines(
            {"start": 1762689600, "end": 1765281600},
            {"start": 1762689600, "end": 1767960000},  # the latest, not the last
            {"start": 1760097600, "end": 1762689600},
        )
    )
    assert paid_through(obj) == 1767960000


@pytest.mark.parametrize(
    "periods",
    [
        (None,),
        (MISSING,),
        ({"start": 1762689600},),
        ({"start": 1762689600, "end": None},),
        ({"end": "1765281600"},),
        ({"end": 1765281600.0},),
        ({"end": True},),
        ({"end": 0},),
        ({"end": -5},),
        ({"end": 32503680000},),
        ("2025-12-09",),
        ([1762689600, 1765281600],),
    ],
    ids=[
        "null-period",
        "no-period",
        "no-end",
        "null-end",
        "string-end",
        "float-end",
        "bool-end",
        "zero-end",
        "negative-end",
        "year-3000",
        "period-string",
        "period-list",
    ],
)
def test_paid_through_is_none_when_no_line_has_a_valid_period_end(periods):
    assert paid_through(invoice(lines=lines(*periods))) is None


def test_lines_without_a_valid_end_do_not_hide_the_valid_one():
    obj = invoice(lines=lines(None, {"start": 1}, {"end": "soon"}, {"start": 1762689600, "end": PERIOD_END}))
    assert paid_through(obj) == PERIOD_END


def test_junk_lines_are_skipped():
    obj = invoice(lines=lines({"end": PERIOD_END}))
    obj["lines"]["data"] = [None, "il_1", 7, [], *obj["lines"]["data"]]
    assert paid_through(obj) == PERIOD_END


@pytest.mark.parametrize(
    "value",
    [
        MISSING,
        None,
        {"object": "list", "data": [], "has_more": False},
        {"object": "list"},
        {"data": None},
        [],
        "lines",
        3,
    ],
    ids=["missing", "null", "empty-list", "no-data", "null-data", "a-list", "string", "number"],
)
def test_paid_through_is_none_without_lines(value):
    assert paid_through(invoice(lines=value)) is None


@pytest.mark.parametrize("data", [{"0": {"period": {"end": PERIOD_END}}}, "data"], ids=["object", "string"])
def test_paid_through_is_none_when_lines_data_is_not_a_list(data):
    assert paid_through(invoice(lines={"object": "list", "data": data})) is None


@pytest.mark.parametrize("data", [5, 2.5, True], ids=["int", "float", "bool"])
def test_paid_through_is_none_when_lines_data_is_a_scalar(data):
    assert paid_through(invoice(lines={"object": "list", "data": data})) is None


# ------------------------------------------------------------------------ paid_at


def test_paid_at_is_the_invoices_paid_transition():
    event = invoice_event(created=PAID_AT + 3600)  # delivered an hour after the payment
    assert paid_at(event["data"]["object"], event) == PAID_AT


@pytest.mark.parametrize(
    "transitions",
    [
        MISSING,
        None,
        {},
        {"paid_at": None},
        {"paid_at": "1762693200"},
        {"paid_at": True},
        {"paid_at": 0},
        {"paid_at": -1},
        {"paid_at": 1762693200.5},
        {"paid_at": 32503680000},
        "paid",
        [],
    ],
    ids=[
        "missing",
        "null",
        "empty",
        "null-paid-at",
        "string",
        "bool",
        "zero",
        "negative",
        "float",
        "year-3000",
        "transitions-string",
        "transitions-list",
    ],
)
def test_paid_at_falls_back_to_the_events_created(transitions):
    event = invoice_event(invoice(status_transitions=transitions), created=1762696800)
    assert paid_at(event["data"]["object"], event) == 1762696800


# ---------------------------------------------------------------- renewal_purchase


def test_a_renewal_is_a_purchase_keyed_by_its_invoice_with_the_original_external_id():
    purchase = renewal_purchase(invoice(), PAID_AT, "user_1001")

    assert purchase == Purchase(
        event_id=INVOICE_ID,
        event_time=PAID_AT,
        order_id=INVOICE_ID,
        amount=2900,
        currency="USD",
        buyer=Buyer(
            email="ada.lovelace@example.com",
            phone="+14155550101",
            first_name="Ada",
            last_name="Lovelace",
            zip_code="94107",
            city="San Francisco",
            state="CA",
            country="US",
            external_id="user_1001",
        ),
    )
    assert purchase.value == Decimal("29.00")
    assert Purchase.from_json(purchase.to_json()) == purchase


@pytest.mark.parametrize("external_id", [None, "", "   "], ids=["none", "empty", "blank"])
def test_without_the_original_external_id_the_invoices_customer_is_the_external_id(external_id):
    """A subscription created outside Checkout has no recorded external id: the Stripe customer id
    is what the checkout would have used too."""
    assert renewal_purchase(invoice(), PAID_AT, external_id).buyer.external_id == CUSTOMER_ID


def test_the_external_id_is_trimmed_and_keeps_its_case():
    assert renewal_purchase(invoice(), PAID_AT, "  User-42 ").buyer.external_id == "User-42"


def test_the_buyer_comes_from_the_invoice_alone():
    obj = invoice(
        customer_email="  Ada.Lovelace@Example.COM ",
        customer_phone=" +44 20 7946 0958 ",
        customer_name="  Augusta Ada King Lovelace ",
        customer_address={
            "city": " London ",
            "country": "gb",
            "line1": "1 Example Row",
            "line2": None,
            "postal_code": " SW1A 1AA ",
            "state": None,
        },
    )
    buyer = renewal_purchase(obj, PAID_AT, None).buyer

    assert buyer == Buyer(
        email="ada.lovelace@example.com",
        phone="+44 20 7946 0958",  # as entered: normalised at send time (match_keys)
        first_name="Augusta",
        last_name="Lovelace",
        zip_code="SW1A 1AA",
        city="London",
        state=None,
        country="GB",
        external_id=CUSTOMER_ID,
    )


def test_an_invoice_that_names_nothing_of_the_buyer_gives_only_the_external_id():
    obj = invoice(customer_email=None, customer_phone=None, customer_name=None, customer_address=None)
    assert renewal_purchase(obj, PAID_AT, "user_1001").buyer == Buyer(external_id="user_1001")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"customer_email": "not-an-email"}, {"email": None}),
        ({"customer_email": 5}, {"email": None}),
        ({"customer_phone": ""}, {"phone": None}),
        ({"customer_phone": ["+14155550101"]}, {"phone": None}),
        ({"customer_name": "Ada"}, {"first_name": "Ada", "last_name": None}),
        ({"customer_name": "   "}, {"first_name": None, "last_name": None}),
        ({"customer_name": {"first": "Ada"}}, {"first_name": None, "last_name": None}),
        (
            {"customer_address": "San Francisco"},
            {"city": None, "country": None, "zip_code": None, "state": None},
        ),
        (
            {"customer_address": {"country": "USA", "city": 9, "postal_code": "94107", "state": "CA"}},
            {"country": None, "city": None},
        ),
    ],
    ids=[
        "bad-email",
        "number-email",
        "empty-phone",
        "list-phone",
        "one-word-name",
        "blank-name",
        "object-name",
        "string-address",
        "bad-country-and-city",
    ],
)
def test_junk_buyer_values_are_dropped_and_the_rest_kept(changes, expected):
    buyer = renewal_purchase(invoice(**changes), PAID_AT, "user_1001").buyer

    base = renewal_purchase(invoice(), PAID_AT, "user_1001").buyer
    for name, value in vars(base).items():
        assert getattr(buyer, name) == expected.get(name, value), name


@pytest.mark.parametrize(
    ("amount_paid", "currency", "amount", "code", "value"),
    [
        (2900, "usd", 2900, "USD", Decimal("29.00")),
        (1500, "jpy", 1500, "JPY", Decimal("1500")),  # no minor unit
        (12345, "kwd", 12345, "KWD", Decimal("12.345")),  # three decimals
        (0, "usd", 0, "USD", Decimal("0.00")),  # a 100% coupon: paid nothing
        (-100, "usd", None, "USD", None),
        ("2900", "usd", None, "USD", None),
        (True, "usd", None, "USD", None),
        (2900, "dollars", 2900, None, None),
        (2900, None, 2900, None, None),
    ],
    ids=["usd", "jpy", "kwd", "zero", "negative", "string", "bool", "bad-currency", "no-currency"],
)
def test_the_value_is_amount_paid_with_stripes_exponent(amount_paid, currency, amount, code, value):
    """amount_paid, never amount_due or total: what the customer actually paid for the renewal."""
    obj = invoice(amount_paid=amount_paid, currency=currency, amount_due=999999, total=999999)
    purchase = renewal_purchase(obj, PAID_AT, None)

    assert (purchase.amount, purchase.currency, purchase.value) == (amount, code, value)


def test_the_event_time_is_the_one_given_not_the_invoices_created():
    purchase = renewal_purchase(invoice(created=1), 1762700000, None)
    assert (purchase.event_time, purchase.event_id, purchase.order_id) == (1762700000, INVOICE_ID, INVOICE_ID)


# ------------------------------------------------------ when a renewal is not reported

ON = {"RENEWAL_EVENT_NAME": "Subscribe", "TIKTOK_PIXEL_ID": "CPIXEL01", "TIKTOK_TEST_EVENT_CODE": "TEST123"}
NOW = 1762700000
NAME_EMPTY = "renewals are not reported: RENEWAL_EVENT_NAME is empty"
TOKEN_EMPTY = "TikTok is switched off: TIKTOK_ACCESS_TOKEN is empty"
PIXEL_EMPTY = "TikTok is switched off: TIKTOK_PIXEL_ID is not set"
NO_TEST_CODE = "test-mode event and no TIKTOK_TEST_EVENT_CODE"


def settings(**changes):
    return load_settings({**ON, **changes})


@pytest.mark.parametrize(
    ("environ", "livemode", "expected"),
    [
        ({}, False, None),
        ({}, True, None),
        ({"RENEWAL_EVENT_NAME": "Renewal"}, False, None),  # a custom name is reported too
        ({"RENEWAL_EVENT_NAME": ""}, False, NAME_EMPTY),
        ({"RENEWAL_EVENT_NAME": "   "}, True, NAME_EMPTY),
        ({"RENEWAL_EVENT_NAME": "", "TIKTOK_PIXEL_ID": ""}, True, NAME_EMPTY),  # off says so first
        ({"TIKTOK_PIXEL_ID": ""}, True, PIXEL_EMPTY),
        ({"TIKTOK_TEST_EVENT_CODE": ""}, False, NO_TEST_CODE),
        ({"TIKTOK_TEST_EVENT_CODE": ""}, True, None),
    ],
    ids=[
        "on-test",
        "on-live",
        "custom-name",
        "name-empty",
        "name-blank",
        "name-and-pixel-empty",
        "pixel-empty",
        "test-without-code",
        "live-without-code",
    ],
)
def test_skip_reason_for_renewal(environ, livemode, expected):
    assert skip_reason_for_renewal(TIKTOK, settings(**environ), livemode, NOW - 60, NOW) == expected


def test_a_renewal_off_by_default():
    """RENEWAL_EVENT_NAME is empty unless set: a merchant who sets nothing reports no renewal."""
    bare = load_settings({"TIKTOK_PIXEL_ID": "CPIXEL01", "TIKTOK_TEST_EVENT_CODE": "TEST123"})
    assert bare.renewal_event_name == ""
    assert bare.tiktok_event_name == "CompletePayment"  # never borrowed for renewals
    assert skip_reason_for_renewal(TIKTOK, bare, False, NOW, NOW) == NAME_EMPTY


def test_a_renewal_older_than_the_maximum_age_is_not_reported():
    week = 7 * 86400  # DELIVERY_MAX_AGE_DAYS' default
    assert skip_reason_for_renewal(TIKTOK, settings(), True, NOW - week, NOW) is None
    assert (
        skip_reason_for_renewal(TIKTOK, settings(), True, NOW - week - 1, NOW) == "payment older than 7 days"
    )
    assert skip_reason_for_renewal(
        TIKTOK, settings(DELIVERY_MAX_AGE_DAYS="2"), True, NOW - 3 * 86400, NOW
    ) == ("payment older than 2 days")


@pytest.mark.parametrize(
    ("environ", "token", "livemode", "expected"),
    [
        ({}, "token", False, None),
        ({}, "", True, TOKEN_EMPTY),
        ({"RENEWAL_EVENT_NAME": ""}, "", True, TOKEN_EMPTY),  # the token is checked first
        ({"RENEWAL_EVENT_NAME": ""}, "token", True, NAME_EMPTY),  # cleared after the renewal started
        ({"TIKTOK_PIXEL_ID": ""}, "token", True, PIXEL_EMPTY),
        ({"TIKTOK_TEST_EVENT_CODE": ""}, "token", False, NO_TEST_CODE),
        ({"TIKTOK_TEST_EVENT_CODE": ""}, "token", True, None),
    ],
    ids=[
        "on",
        "token-empty",
        "token-and-name-empty",
        "name-cleared",
        "pixel-cleared",
        "code-cleared",
        "live-without-code",
    ],
)
def test_skip_reason_at_send_time_of_a_renewal(environ, token, livemode, expected):
    assert skip_reason_at_send_time(TIKTOK, settings(**environ), token, livemode, kind=RENEWAL) == expected
    assert RENEWAL == "renewal"  # the delivery_kind the webhook stores on a renewal's item


@pytest.mark.parametrize("kind", [None, "purchase", "subscription_cycle"])
def test_an_empty_renewal_event_name_never_stops_a_purchase(kind):
    """Only renewals depend on RENEWAL_EVENT_NAME: a purchase (no delivery_kind) is still sent."""
    off = settings(RENEWAL_EVENT_NAME="")
    assert skip_reason_at_send_time(TIKTOK, off, "token", True, kind=kind) is None
    assert skip_reason_at_send_time(TIKTOK, off, "token", True) is None
