"""The purchase stored on the session item (the outbox): JSON written by the webhook, read back by
the sender and the redrive, possibly by a newer or older version of the code."""

import json
from decimal import Decimal

import pytest

from checkout_conversions.purchase import Buyer, Purchase

FULL = Purchase(
    event_id="cs_test_a1",
    event_time=1735689600,
    order_id="cs_test_a1",
    buyer=Buyer(
        email="jane.doe@example.com",
        phone="+1 (415) 555-0123",
        first_name="Jane",
        last_name="Doe",
        zip_code="94107-1234",
        city="San Francisco",
        state="CA",
        country="US",
        external_id="User-42",
        ttclid="E.C.P.test-ttclid",
        ttp="2abcDEFttpCookie",
        ip="203.0.113.7",
        user_agent="Mozilla/5.0 (iPhone)",
        locale="en-US",
    ),
    amount=1999,
    currency="USD",
    page_url="https://shop.example.com/checkout",
    page_referrer="https://www.tiktok.com/",
    limited_data_use=False,
)
MINIMAL = Purchase(event_id="cs_test_b2", event_time=1735689600, order_id="cs_test_b2", buyer=Buyer())


@pytest.mark.parametrize("purchase", [FULL, MINIMAL], ids=["full", "minimal"])
def test_round_trip(purchase):
    assert Purchase.from_json(purchase.to_json()) == purchase


def test_every_field_is_stored():
    stored = json.loads(FULL.to_json())
    assert stored == {
        "event_id": "cs_test_a1",
        "event_time": 1735689600,
        "order_id": "cs_test_a1",
        "buyer": {
            "email": "jane.doe@example.com",
            "phone": "+1 (415) 555-0123",
            "first_name": "Jane",
            "last_name": "Doe",
            "zip_code": "94107-1234",
            "city": "San Francisco",
            "state": "CA",
            "country": "US",
            "external_id": "User-42",
            "ttclid": "E.C.P.test-ttclid",
            "ttp": "2abcDEFttpCookie",
            "ip": "203.0.113.7",
            "user_agent": "Mozilla/5.0 (iPhone)",
            "locale": "en-US",
        },
        "amount": 1999,
        "currency": "USD",
        "page_url": "https://shop.example.com/checkout",
        "page_referrer": "https://www.tiktok.com/",
        "limited_data_use": False,  # a choice the merchant made: kept, unlike None
    }


def test_none_values_are_not_stored():
    stored = json.loads(MINIMAL.to_json())
    assert stored == {
        "event_id": "cs_test_b2",
        "event_time": 1735689600,
        "order_id": "cs_test_b2",
        "buyer": {},
    }
    partial = Purchase(
        event_id="cs_1", event_time=1, order_id="cs_1", buyer=Buyer(email="a@b.example", country=None)
    )
    assert json.loads(partial.to_json())["buyer"] == {"email": "a@b.example"}
    assert "null" not in partial.to_json()


def test_unknown_keys_in_stored_json_are_ignored():
    # A purchase written by a newer version (a new field, a new buyer field) is still sent by an
    # older sender, with what it knows.
    stored = json.loads(FULL.to_json())
    stored["coupon"] = "SUMMER"
    stored["destinations"] = ["tiktok", "meta"]
    stored["buyer"]["date_of_birth"] = "1990-01-01"
    stored["buyer"]["gender"] = "f"
    assert Purchase.from_json(json.dumps(stored)) == FULL


def test_stored_json_without_buyer_reads_as_an_empty_buyer():
    stored = {"event_id": "cs_1", "event_time": 1735689600, "order_id": "cs_1"}
    assert Purchase.from_json(json.dumps(stored)).buyer == Buyer()


def test_non_ascii_is_kept_as_is():
    purchase = Purchase(
        event_id="cs_1",
        event_time=1735689600,
        order_id="cs_1",
        buyer=Buyer(
            first_name="José", last_name="Müller-Lüdenscheidt", city="São Paulo", user_agent="Agent 😀"
        ),
    )
    text = purchase.to_json()
    assert "José" in text and "São Paulo" in text and "😀" in text
    assert "\\u" not in text  # stored as UTF-8 text, not escaped
    assert Purchase.from_json(text) == purchase


def test_stored_json_is_compact():
    assert ": " not in MINIMAL.to_json()
    assert ", " not in MINIMAL.to_json()


@pytest.mark.parametrize(
    ("amount", "currency", "value"),
    [
        (1999, "USD", Decimal("19.99")),
        (1500, "JPY", Decimal("1500")),
        (12345, "KWD", Decimal("12.345")),
        (0, "EUR", Decimal("0")),
        (None, "USD", None),
        (1999, None, None),
    ],
)
def test_value_in_the_currencys_units(amount, currency, value):
    purchase = Purchase(
        event_id="cs", event_time=1, order_id="cs", buyer=Buyer(), amount=amount, currency=currency
    )
    assert purchase.value == value
    assert "value" not in json.loads(purchase.to_json())  # derived, never stored
