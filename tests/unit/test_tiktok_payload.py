"""The Events API 2.0 request body: shape, types and JSON encoding (tiktok-events-api.md, Request)."""

import json
from decimal import Decimal

import pytest

from checkout_conversions.tiktok_payload import Purchase, User, build_event, build_request, encode

SHA_JANE = "86e0b9e56c17cc4d12387e1949b85053fbe73bc3ce5a1188713a9d300cc6133d"
SHA_US_PHONE = "36a2cef4ff9bf7a1abd2a93359136b870393be4106e6c5d19b72ff564f9deca4"
SHA_USER_42 = "fafe5e551759817bdc65038b8cb1a8263b1a8b3b60c269d67ff0f8c57ae0f733"
SESSION_ID = "cs_test_a1B2c3D4e5F6"

FULL_USER = User(
    email=SHA_JANE,
    phone=SHA_US_PHONE,
    external_id=SHA_USER_42,
    ttclid="E.C.P.test-ttclid",
    ttp="2abcDEFttpCookie",
    ip="203.0.113.7",
    user_agent="Mozilla/5.0 (iPhone)",
)


def make_purchase(**overrides) -> Purchase:
    fields = {
        "event_id": SESSION_ID,
        "event_time": 1735689600,
        "order_id": SESSION_ID,
        "value": Decimal("19.99"),
        "currency": "usd",
        "user": FULL_USER,
        "page_url": "https://shop.example.com/checkout",
        "page_referrer": "https://www.tiktok.com/",
    }
    fields.update(overrides)
    return Purchase(**fields)


def walk_keys(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from walk_keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk_keys(item)


def walk_values(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from walk_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk_values(item)
    else:
        yield value


def test_build_event_with_every_key():
    event = build_event(make_purchase(), "CompletePayment")
    assert event == {
        "event": "CompletePayment",
        "event_time": 1735689600,
        "event_id": SESSION_ID,
        "user": {
            "email": SHA_JANE,
            "phone": SHA_US_PHONE,
            "external_id": SHA_USER_42,
            "ttclid": "E.C.P.test-ttclid",
            "ttp": "2abcDEFttpCookie",
            "ip": "203.0.113.7",
            "user_agent": "Mozilla/5.0 (iPhone)",
        },
        "page": {"url": "https://shop.example.com/checkout", "referrer": "https://www.tiktok.com/"},
        "properties": {
            "order_id": SESSION_ID,
            "content_type": "product",
            "value": Decimal("19.99"),
            "currency": "USD",
        },
    }


@pytest.mark.parametrize(
    "user",
    [
        User(),
        User(email="", phone="", external_id="", ttclid="", ttp="", ip="", user_agent=""),
    ],
    ids=["none", "empty-strings"],
)
def test_build_event_with_no_optional_keys(user):
    purchase = make_purchase(user=user, value=None, currency=None, page_url=None, page_referrer=None)
    event = build_event(purchase, "CompletePayment")
    assert event == {
        "event": "CompletePayment",
        "event_time": 1735689600,
        "event_id": SESSION_ID,
        "user": {},
        "properties": {"order_id": SESSION_ID, "content_type": "product"},
    }
    assert "page" not in event
    assert None not in list(walk_values(event))
    assert "" not in list(walk_values(event))


@pytest.mark.parametrize(
    ("page_url", "page_referrer", "expected_page"),
    [
        ("https://shop.example.com/checkout", None, {"url": "https://shop.example.com/checkout"}),
        (None, "https://www.tiktok.com/", {"referrer": "https://www.tiktok.com/"}),
        ("", "https://www.tiktok.com/", {"referrer": "https://www.tiktok.com/"}),
        (None, None, None),
        ("", "", None),
    ],
)
def test_page_only_with_url_or_referrer(page_url, page_referrer, expected_page):
    event = build_event(make_purchase(page_url=page_url, page_referrer=page_referrer), "CompletePayment")
    assert event.get("page") == expected_page
    if expected_page is None:
        assert "page" not in event


def test_partial_user_keeps_only_present_keys():
    user = User(email=SHA_JANE, ttclid="E.C.P.abc", ip="")
    event = build_event(make_purchase(user=user), "CompletePayment")
    assert event["user"] == {"email": SHA_JANE, "ttclid": "E.C.P.abc"}


@pytest.mark.parametrize(
    ("value", "currency"),
    [(None, "usd"), (Decimal("19.99"), None), (Decimal("19.99"), "")],
)
def test_value_and_currency_travel_together(value, currency):
    properties = build_event(make_purchase(value=value, currency=currency), "CompletePayment")["properties"]
    assert "value" not in properties
    assert "currency" not in properties


@pytest.mark.parametrize(
    ("event_id", "expected"),
    [(SESSION_ID, SESSION_ID), (12345, "12345"), (10**20, "100000000000000000000")],
)
def test_event_id_is_always_a_string(event_id, expected):
    event = build_event(make_purchase(event_id=event_id), "CompletePayment")
    assert event["event_id"] == expected
    assert json.loads(encode(event))["event_id"] == expected


@pytest.mark.parametrize("event_time", [1735689600, 1735689600.0, 1735689600.7])
def test_event_time_is_integer_seconds(event_time):
    event = build_event(make_purchase(event_time=event_time), "CompletePayment")
    assert event["event_time"] == 1735689600
    assert type(event["event_time"]) is int
    assert b'"event_time":1735689600,' in encode(event)


@pytest.mark.parametrize("event_name", ["CompletePayment", "Purchase"])
def test_event_name_is_the_configured_one(event_name):
    assert build_event(make_purchase(), event_name)["event"] == event_name


@pytest.mark.parametrize(
    ("currency", "expected"),
    [("usd", "USD"), ("USD", "USD"), ("jpy", "JPY"), ("Eur", "EUR")],
)
def test_currency_is_uppercase(currency, expected):
    properties = build_event(make_purchase(currency=currency), "CompletePayment")["properties"]
    assert properties["currency"] == expected


def test_order_id_and_content_type():
    properties = build_event(make_purchase(order_id="cs_test_order"), "CompletePayment")["properties"]
    assert properties["order_id"] == "cs_test_order"
    assert properties["content_type"] == "product"


@pytest.mark.parametrize(
    ("value", "json_text", "python_value", "python_type"),
    [
        (Decimal("19.99"), '"value":19.99', 19.99, float),
        (Decimal("0.05"), '"value":0.05', 0.05, float),
        (Decimal("12.345"), '"value":12.345', 12.345, float),
        (Decimal("1500"), '"value":1500', 1500, int),
        (Decimal("10"), '"value":10', 10, int),
        (Decimal("10.00"), '"value":10', 10, int),
        (Decimal("0"), '"value":0', 0, int),
        (Decimal("1000000000000"), '"value":1000000000000', 10**12, int),
    ],
)
def test_value_is_encoded_as_a_json_number(value, json_text, python_value, python_type):
    encoded = encode(build_request([build_event(make_purchase(value=value), "CompletePayment")], "PIXEL"))
    text = encoded.decode("utf-8")
    assert json_text + "," in text or json_text + "}" in text
    assert '"value":"' not in text  # never a string
    decoded = json.loads(encoded)["data"][0]["properties"]["value"]
    assert decoded == python_value
    assert type(decoded) is python_type


def test_encode_returns_utf8_json_bytes():
    purchase = make_purchase(user=User(user_agent="Agent ü"))
    encoded = encode(build_request([build_event(purchase, "CompletePayment")], "PIXEL"))
    assert isinstance(encoded, bytes)
    assert json.loads(encoded.decode("utf-8"))["data"][0]["user"]["user_agent"] == "Agent ü"


def test_encode_rejects_unknown_types():
    with pytest.raises(TypeError):
        encode({"value": object()})


def test_build_request_without_test_event_code():
    event = build_event(make_purchase(), "CompletePayment")
    body = build_request([event], "C1234567890ABCDEF")
    assert body == {"event_source": "web", "event_source_id": "C1234567890ABCDEF", "data": [event]}
    assert "test_event_code" not in body


@pytest.mark.parametrize("code", ["TEST12345", "TEST00001"])
def test_build_request_with_test_event_code(code):
    event = build_event(make_purchase(), "CompletePayment")
    body = build_request([event], "C1234567890ABCDEF", test_event_code=code)
    assert body["test_event_code"] == code
    assert body["event_source"] == "web"
    assert body["event_source_id"] == "C1234567890ABCDEF"
    assert body["data"] == [event]


def test_build_request_with_empty_test_event_code_omits_key():
    body = build_request([], "PIXEL", test_event_code="")
    assert "test_event_code" not in body


def test_no_partner_name_and_no_sunset_1x_fields():
    body = build_request([build_event(make_purchase(), "CompletePayment")], "PIXEL", "TEST1")
    keys = set(walk_keys(json.loads(encode(body))))
    forbidden = {"partner_name", "pixel_code", "timestamp", "context", "phone_number", "ad", "callback"}
    assert not keys & forbidden
    assert None not in list(walk_values(json.loads(encode(body))))
    assert "" not in list(walk_values(json.loads(encode(body))))


def test_full_request_round_trip():
    body = build_request([build_event(make_purchase(), "CompletePayment")], "C1234567890ABCDEF")
    assert json.loads(encode(body)) == {
        "event_source": "web",
        "event_source_id": "C1234567890ABCDEF",
        "data": [
            {
                "event": "CompletePayment",
                "event_time": 1735689600,
                "event_id": SESSION_ID,
                "user": {
                    "email": SHA_JANE,
                    "phone": SHA_US_PHONE,
                    "external_id": SHA_USER_42,
                    "ttclid": "E.C.P.test-ttclid",
                    "ttp": "2abcDEFttpCookie",
                    "ip": "203.0.113.7",
                    "user_agent": "Mozilla/5.0 (iPhone)",
                },
                "page": {"url": "https://shop.example.com/checkout", "referrer": "https://www.tiktok.com/"},
                "properties": {
                    "order_id": SESSION_ID,
                    "content_type": "product",
                    "value": 19.99,
                    "currency": "USD",
                },
            }
        ],
    }
