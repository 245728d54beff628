"""A subscription's paid invoice, the pure parts (issue 10, stripe_side/invoices.py): the period an
invoice pays for, when it was paid, and a renewal as a purchase.

Every object starts from a Stripe-shaped one (the renewal sample events/invoice_paid.json, and
Stripe's own subscription fixture: subscription_objects.py) and is changed per case."""

from decimal import Decimal

import pytest

from checkout_conversions.purchase import Buyer, Purchase
from checkout_conversions.stripe_side.invoices import paid_at, paid_through, renewal_purchase
from tests.unit.stripe_side.subscription_objects import (
    CUSTOMER_ID,
    INVOICE_ID,
    MISSING,
    PAID_AT,
    PERIOD_END,
    invoice,
    invoice_event,
    lines,
)

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
    assert paid_at(event["data"]["object"], event["created"]) == PAID_AT


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
    assert paid_at(event["data"]["object"], event["created"]) == 1762696800


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
        phone="+44 20 7946 0958",  # as entered: normalised at send time (match keys)
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
