"""The Conversions API event built at send time from the stored purchase
(destinations/meta/payload.py); its user_data is tested with Meta's match keys (test_match_keys.py).
"""

import json
from decimal import Decimal

import pytest

from checkout_conversions.destinations.meta.match_keys import USER_DATA_KEYS
from checkout_conversions.destinations.meta.payload import (
    build_event,
    build_request,
    match_key_names,
    missing_user_agent,
)
from checkout_conversions.purchase import Buyer, Content, Purchase
from checkout_conversions.values import encode_json as encode
from tests import payloads
from tests.payloads import MUG, SESSION_ID, TEE, sha, walk_values
from tests.unit.destinations.meta.samples import BUYER


def make_purchase(buyer=BUYER, **overrides) -> Purchase:
    return payloads.purchase(buyer, **{"page_referrer": "https://www.facebook.com/", **overrides})


# ---------------------------------------------------------------- the whole event


def test_build_event_with_every_key():
    event = build_event(make_purchase(), "Purchase", "GB", [TEE, MUG])
    assert event == {
        "event_name": "Purchase",
        "event_time": 1735689600,
        "event_id": SESSION_ID,
        "action_source": "website",
        "event_source_url": "https://shop.example.com/checkout",
        "user_data": {
            "em": sha("jane.doe@example.com"),
            "ph": sha("16169547888"),
            "fn": sha("josé"),
            "ln": sha("oneil"),
            "ct": sha("menlopark"),
            "st": sha("ca"),
            "zp": sha("94035"),
            "country": sha("us"),
            "external_id": sha("User-42"),
            "client_ip_address": "203.0.113.7",
            "client_user_agent": "Mozilla/5.0 (iPhone)",
            "fbc": "fb.1.1554763741205.AbCdEfGhIjKlMnOpQrStUvWxYz1234567890",
            "fbp": "fb.1.1558571054389.1098115397",
        },
        "custom_data": {
            "value": Decimal("39.97"),
            "currency": "USD",
            "order_id": SESSION_ID,
            "contents": [
                {"id": "price_Tee001", "quantity": 2, "item_price": Decimal("14.99")},
                {"id": "price_Mug001", "quantity": 1, "item_price": Decimal("9.99")},
            ],
            "content_ids": ["price_Tee001", "price_Mug001"],
            "content_type": "product",
            "num_items": 3,
        },
    }


# Every buyer field Meta's event reads.
META_FIELDS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "zip_code",
    "city",
    "state",
    "country",
    "external_id",
    "ip",
    "user_agent",
    "fbc",
    "fbp",
)


@pytest.mark.parametrize(
    "empty_buyer",
    [Buyer(), Buyer(**dict.fromkeys(META_FIELDS, "")), Buyer(**dict.fromkeys(META_FIELDS, " \t\n "))],
    ids=["none", "empty-strings", "whitespace"],
)
def test_empty_or_blank_fields_never_produce_a_key(empty_buyer):
    purchase = make_purchase(empty_buyer, amount=None, currency=None, page_url=None)
    event = build_event(purchase, "Purchase", "US")
    assert event == {
        "event_name": "Purchase",
        "event_time": 1735689600,
        "event_id": SESSION_ID,
        "action_source": "website",
        "user_data": {},
        "custom_data": {"order_id": SESSION_ID},
    }
    values = list(walk_values(event))
    assert None not in values
    assert "" not in values
    assert sha("") not in values


def test_no_raw_pii_in_the_request():
    body = encode(build_request([build_event(make_purchase(), "Purchase", "US")])).decode()
    for raw in ("jane.doe", "Jane", "954", "José", "Jos\\u00e9", "Neil", "Menlo", "94035", "User-42"):
        assert raw not in body


# ---------------------------------------------------------------- custom_data


@pytest.mark.parametrize(
    ("amount", "currency", "unit_amount", "value", "price"),
    [
        (3997, "USD", 1499, Decimal("39.97"), Decimal("14.99")),
        (1999, "eur", 1999, Decimal("19.99"), Decimal("19.99")),
        (1500, "JPY", 500, Decimal("1500"), Decimal("500")),  # zero-decimal
        (12345, "KWD", 2500, Decimal("12.345"), Decimal("2.5")),  # three decimals
        (1999, "XCD", 1999, Decimal("19.99"), Decimal("19.99")),  # no TikTok-style currency filter
    ],
)
def test_value_and_item_prices_with_the_currencys_exponent(amount, currency, unit_amount, value, price):
    contents = [Content("price_X", "X", 1, unit_amount, currency.upper())]
    custom = build_event(make_purchase(amount=amount, currency=currency), "Purchase", "", contents)[
        "custom_data"
    ]
    assert custom["value"] == value
    assert custom["currency"] == currency.upper()
    assert custom["contents"][0]["item_price"] == price


@pytest.mark.parametrize(("amount", "currency"), [(None, "USD"), (1999, None), (1999, "")])
def test_value_and_currency_only_together(amount, currency):
    custom = build_event(make_purchase(amount=amount, currency=currency), "Purchase", "", [TEE])[
        "custom_data"
    ]
    assert "value" not in custom
    assert "currency" not in custom
    assert custom["contents"] == [{"id": "price_Tee001", "quantity": 2}]  # no price in no currency


def test_item_price_only_in_the_events_currency():
    contents = [Content("price_A", "A", 1, 500, "EUR"), Content("price_B", "B", 1, None, "USD"),
                Content("price_C", "C", 1, 700, None)]  # fmt: skip
    custom = build_event(make_purchase(), "Purchase", "", contents)["custom_data"]
    assert custom["contents"] == [
        {"id": "price_A", "quantity": 1},
        {"id": "price_B", "quantity": 1},
        {"id": "price_C", "quantity": 1},
    ]


def test_a_content_without_id_is_left_out_but_counted():
    contents = [Content(None, "Gift wrap", 4, 100, "USD"), TEE]
    custom = build_event(make_purchase(), "Purchase", "", contents)["custom_data"]
    assert custom["contents"] == [{"id": "price_Tee001", "quantity": 2, "item_price": Decimal("14.99")}]
    assert custom["content_ids"] == ["price_Tee001"]
    assert custom["num_items"] == 6


def test_only_contents_without_id():
    custom = build_event(make_purchase(), "Purchase", "", [Content(None, None, 3, None, None)])["custom_data"]
    assert "contents" not in custom
    assert "content_ids" not in custom
    assert "content_type" not in custom
    assert custom["num_items"] == 3


@pytest.mark.parametrize("contents", [None, []], ids=repr)
def test_no_contents_without_line_items(contents):
    custom = build_event(make_purchase(), "Purchase", "", contents)["custom_data"]
    assert custom == {"value": Decimal("39.97"), "currency": "USD", "order_id": SESSION_ID}


# ---------------------------------------------------------------- event shape


@pytest.mark.parametrize(("event_id", "expected"), [(SESSION_ID, SESSION_ID), (12345, "12345")])
def test_event_id_is_always_a_string(event_id, expected):
    event = build_event(make_purchase(event_id=event_id), "Purchase")
    assert event["event_id"] == expected
    assert json.loads(encode(event))["event_id"] == expected


@pytest.mark.parametrize("event_time", [1735689600, 1735689600.0, 1735689600.7])
def test_event_time_is_integer_seconds(event_time):
    event = build_event(make_purchase(event_time=event_time), "Purchase")
    assert event["event_time"] == 1735689600
    assert type(event["event_time"]) is int


@pytest.mark.parametrize("page_url", [None, ""])
def test_event_source_url_left_out_when_unknown(page_url):
    event = build_event(make_purchase(page_url=page_url), "Purchase")
    assert "event_source_url" not in event
    assert event["action_source"] == "website"


def test_match_key_names_in_order_names_only():
    assert match_key_names(build_event(make_purchase(), "Purchase", "US")) == list(USER_DATA_KEYS)
    partial = build_event(make_purchase(Buyer(fbp="fb.1.2.3", email="a@b.example")), "Purchase")
    assert match_key_names(partial) == ["em", "fbp"]
    assert match_key_names(build_event(make_purchase(Buyer()), "Purchase")) == []
    assert match_key_names({"event_name": "Purchase"}) == []


def test_missing_user_agent():
    assert missing_user_agent(build_event(make_purchase(), "Purchase")) is False
    assert missing_user_agent(build_event(make_purchase(Buyer(email="a@b.example")), "Purchase")) is True
    assert missing_user_agent(build_event(make_purchase(Buyer(user_agent="  ")), "Purchase")) is True
    assert missing_user_agent({}) is True


# ---------------------------------------------------------------- request and encoding


@pytest.mark.parametrize(
    ("amount", "currency", "json_text", "python_value", "python_type"),
    [
        (1999, "USD", '"value":19.99', 19.99, float),
        (1500, "JPY", '"value":1500', 1500, int),
        (12345, "BHD", '"value":12.345', 12.345, float),
        (1000, "USD", '"value":10', 10, int),
        (0, "USD", '"value":0', 0, int),
    ],
)
def test_value_is_encoded_as_a_json_number(amount, currency, json_text, python_value, python_type):
    encoded = encode(
        build_request([build_event(make_purchase(amount=amount, currency=currency), "Purchase")])
    )
    text = encoded.decode("utf-8")
    assert json_text + "," in text or json_text + "}" in text
    assert '"value":"' not in text
    decoded = json.loads(encoded)["data"][0]["custom_data"]["value"]
    assert decoded == python_value
    assert type(decoded) is python_type


def test_item_prices_are_encoded_as_json_numbers():
    event = build_event(make_purchase(), "Purchase", "", [TEE, Content("price_M", "M", 1, 1000, "USD")])
    contents = json.loads(encode(event))["custom_data"]["contents"]
    assert [(item["item_price"], type(item["item_price"])) for item in contents] == [
        (14.99, float),
        (10, int),
    ]


def test_build_request_without_test_event_code():
    event = build_event(make_purchase(), "Purchase")
    body = build_request([event])
    assert body == {"data": [event]}
    assert build_request([event], test_event_code="") == {"data": [event]}


def test_build_request_with_test_event_code_at_the_top_level_only():
    event = build_event(make_purchase(), "Purchase")
    body = build_request([event], test_event_code="TEST12345")
    assert body == {"data": [event], "test_event_code": "TEST12345"}
    assert "test_event_code" not in body["data"][0]


def test_the_body_never_holds_an_access_token():
    body = build_request([build_event(make_purchase(), "Purchase", "US", [TEE])], "TEST1")
    assert b"access_token" not in encode(body)


def test_encode_returns_compact_utf8_json():
    encoded = encode(build_request([build_event(make_purchase(Buyer(user_agent="Agent ü")), "Purchase")]))
    assert isinstance(encoded, bytes)
    assert b": " not in encoded and b", " not in encoded
    assert json.loads(encoded.decode("utf-8"))["data"][0]["user_data"]["client_user_agent"] == "Agent ü"
