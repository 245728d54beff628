"""The Events API 2.0 event built at send time from the stored purchase (tiktok-events-api.md).

Hashes are computed here with hashlib from the normalised value the rule gives, never with the code
under test.
"""

import json
from dataclasses import replace
from decimal import Decimal

import pytest

from checkout_conversions.destinations.tiktok.match_keys import USER_KEYS
from checkout_conversions.destinations.tiktok.payload import (
    TIKTOK_CURRENCIES,
    build_event,
    build_request,
    match_key_names,
)
from checkout_conversions.purchase import Buyer, Content, Purchase
from checkout_conversions.values import encode_json as encode
from tests import payloads
from tests.payloads import MUG, SESSION_ID, TEE, sha, walk_keys, walk_values

BUYER = Buyer(
    email="jane.doe@example.com",
    phone="+1 (415) 555-0123",
    first_name="José",
    last_name="Van Der Berg",
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
)


def make_purchase(buyer=BUYER, **overrides) -> Purchase:
    return payloads.purchase(buyer, **overrides)


def buyer(**fields) -> Buyer:
    return Buyer(**fields)


# ---------------------------------------------------------------- the whole event


def test_build_event_with_every_key():
    purchase = make_purchase(limited_data_use=True)
    event = build_event(purchase, "CompletePayment", "GB", [TEE, MUG], limited_data_use=False)
    assert event == {
        "event": "CompletePayment",
        "event_time": 1735689600,
        "event_id": SESSION_ID,
        "user": {
            "email": sha("jane.doe@example.com"),
            "phone": sha("+14155550123"),
            "external_id": sha("User-42"),
            "first_name": sha("josé"),
            "last_name": sha("vanderberg"),
            "zip_code": sha("94107"),  # US ZIP+4: the first five digits
            "city": "sanfrancisco",
            "state": "ca",
            "country": "us",
            "ttclid": "E.C.P.test-ttclid",
            "ttp": "2abcDEFttpCookie",
            "ip": "203.0.113.7",
            "user_agent": "Mozilla/5.0 (iPhone)",
            "locale": "en-US",
        },
        "page": {"url": "https://shop.example.com/checkout", "referrer": "https://www.tiktok.com/"},
        "properties": {
            "order_id": SESSION_ID,
            "content_type": "product",
            "value": Decimal("39.97"),
            "currency": "USD",
            "contents": [
                {
                    "content_id": "price_Tee001",
                    "content_type": "product",
                    "content_name": "T-shirt",
                    "quantity": 2,
                    "price": Decimal("14.99"),
                },
                {
                    "content_id": "price_Mug001",
                    "content_type": "product",
                    "content_name": "Mug",
                    "quantity": 1,
                    "price": Decimal("9.99"),
                },
            ],
            "num_items": 3,
        },
        "limited_data_use": True,
    }


@pytest.mark.parametrize(
    "empty_buyer",
    [
        Buyer(),
        Buyer(**dict.fromkeys(USER_KEYS, "")),
        # Whitespace only: the normalised keys drop it (the raw ones arrive trimmed from
        # stripe_side/checkout.py)
        Buyer(**dict.fromkeys(USER_KEYS[:9], " \t ")),
    ],
    ids=["none", "empty-strings", "whitespace"],
)
def test_missing_keys_are_left_out_never_empty(empty_buyer):
    purchase = make_purchase(empty_buyer, amount=None, currency=None, page_url=None, page_referrer=None)
    event = build_event(purchase, "CompletePayment", "US")
    assert event == {
        "event": "CompletePayment",
        "event_time": 1735689600,
        "event_id": SESSION_ID,
        "user": {},
        "properties": {"order_id": SESSION_ID, "content_type": "product"},
    }
    values = list(walk_values(event))
    assert None not in values
    assert sha("") not in values


def test_unusable_values_leave_their_key_out():
    partial = Buyer(email="jane.doe@example.com", phone="call me", zip_code=" ", city="---", country="US")
    assert build_event(make_purchase(partial), "CompletePayment")["user"] == {
        "email": sha("jane.doe@example.com"),
        "country": "us",
    }


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


# ---------------------------------------------------------------- user keys


@pytest.mark.parametrize(
    ("fields", "key", "expected"),
    [
        ({"email": "  Jane.Doe@Example.COM "}, "email", sha("jane.doe@example.com")),
        ({"external_id": "User-42"}, "external_id", sha("User-42")),  # case kept
        ({"first_name": "JEAN-LUC"}, "first_name", sha("jeanluc")),  # no punctuation (issue 18)
        ({"last_name": "de la Cruz"}, "last_name", sha("delacruz")),
        ({"zip_code": "SW1A 1AA", "country": "GB"}, "zip_code", sha("sw1a1aa")),
        ({"zip_code": "94107-1234", "country": "GB"}, "zip_code", sha("941071234")),  # ZIP+4 only in the US
        ({"zip_code": "K1A 0B1", "country": "CA"}, "zip_code", sha("k1a0b1")),
        ({"city": "São Paulo"}, "city", "sãopaulo"),
        ({"state": "California", "country": "US"}, "state", "ca"),  # a US state's code (issue 18)
        ({"state": "Ontario", "country": "CA"}, "state", "ontario"),
        ({"country": "GB"}, "country", "gb"),
        ({"email": sha("x@example.com").upper()}, "email", sha("x@example.com")),  # already hashed
        ({"first_name": sha("jane")}, "first_name", sha("jane")),
    ],
    ids=lambda v: repr(v)[:40],
)
def test_user_key_normalisation(fields, key, expected):
    assert build_event(make_purchase(buyer(**fields)), "CompletePayment")["user"][key] == expected


@pytest.mark.parametrize(
    ("phone", "country", "default_country", "expected"),
    [
        # The buyer's billing country first
        ("020 7946 0958", "GB", "US", "+442079460958"),
        ("8 912 345-67-89", "RU", "", "+79123456789"),
        # Then DEFAULT_PHONE_COUNTRY
        ("020 7946 0958", None, "GB", "+442079460958"),
        ("(415) 555-0123", None, "US", "+14155550123"),
        # A country code wins over both
        ("+44 20 7946 0958", "US", "US", "+442079460958"),
        # A national number not valid in the buyer's country: dropped, the default is not tried
        ("020 7946 0958", "US", "GB", None),
        # No country code, no country, no default: dropped
        ("020 7946 0958", None, "", None),
    ],
)
def test_phone_region_is_the_buyers_country_then_the_default(phone, country, default_country, expected):
    user = build_event(
        make_purchase(buyer(phone=phone, country=country)), "CompletePayment", default_country
    )["user"]
    assert user.get("phone") == (sha(expected) if expected else None)
    if expected is None:
        assert "phone" not in user


def test_match_key_names_in_order_names_only():
    event = build_event(make_purchase(), "CompletePayment", "US")
    assert match_key_names(event) == [
        "email",
        "phone",
        "external_id",
        "first_name",
        "last_name",
        "zip_code",
        "city",
        "state",
        "country",
        "ttclid",
        "ttp",
        "ip",
        "user_agent",
        "locale",
    ]
    partial = build_event(make_purchase(buyer(ttclid="E.C.P.x", email="a@b.example")), "CompletePayment")
    assert match_key_names(partial) == ["email", "ttclid"]
    assert match_key_names(build_event(make_purchase(Buyer()), "CompletePayment")) == []
    assert match_key_names({"event": "CompletePayment"}) == []


# ---------------------------------------------------------------- value, currency, contents


@pytest.mark.parametrize(
    ("amount", "currency", "unit_amount", "value", "price"),
    [
        (3997, "USD", 1499, Decimal("39.97"), Decimal("14.99")),
        (1999, "EUR", 1999, Decimal("19.99"), Decimal("19.99")),
        (1999, "eur", 1999, Decimal("19.99"), Decimal("19.99")),
        (1500, "JPY", 500, Decimal("1500"), Decimal("500")),  # zero-decimal
        (12345, "KWD", 2500, Decimal("12.345"), Decimal("2.5")),  # three decimals
        (0, "USD", 0, Decimal("0"), Decimal("0")),
    ],
)
def test_value_and_prices_with_the_currencys_exponent(amount, currency, unit_amount, value, price):
    contents = [Content("price_X", "X", 1, unit_amount, currency.upper())]
    properties = build_event(
        make_purchase(amount=amount, currency=currency), "CompletePayment", "", contents
    )["properties"]
    assert properties["value"] == value
    assert properties["currency"] == currency.upper()
    assert properties["contents"][0]["price"] == price


@pytest.mark.parametrize("currency", ["XCD", "ALL", "xcd", "UGX"])
def test_unsupported_currency_goes_without_value_currency_and_prices(currency):
    contents = [
        Content("price_Tee001", "T-shirt", 2, 1499, currency.upper()),
        Content("price_Mug", "Mug", 1, 999, None),
    ]
    properties = build_event(make_purchase(amount=3997, currency=currency), "CompletePayment", "", contents)[
        "properties"
    ]
    assert properties == {
        "order_id": SESSION_ID,
        "content_type": "product",
        "contents": [
            {
                "content_id": "price_Tee001",
                "content_type": "product",
                "content_name": "T-shirt",
                "quantity": 2,
            },
            {"content_id": "price_Mug", "content_type": "product", "content_name": "Mug", "quantity": 1},
        ],
        "num_items": 3,
    }


@pytest.mark.parametrize("currency", [None, "XCD"])
def test_prices_only_when_the_event_carries_a_currency(currency):
    # TikTok reads every price in properties.currency: without it a price would be meaningless.
    properties = build_event(make_purchase(currency=currency), "CompletePayment", "", [TEE])["properties"]
    assert "currency" not in properties
    assert "price" not in properties["contents"][0]
    assert properties["contents"][0]["quantity"] == 2


@pytest.mark.parametrize(
    ("amount", "currency"),
    [(None, "USD"), (1999, None), (1999, "")],
)
def test_value_and_currency_travel_together(amount, currency):
    properties = build_event(make_purchase(amount=amount, currency=currency), "CompletePayment")["properties"]
    assert "value" not in properties
    assert "currency" not in properties


def test_tiktok_currencies_are_tiktoks_documented_list():
    documented = """AED ARS AUD BDT BHD BIF BOB BRL CAD CHF CLP CNY COP CRC CZK DKK DZD EGP EUR GBP GTQ HKD
    HNL HUF IDR ILS INR ISK JPY KES KHR KRW KWD KZT MAD MOP MXN MYR NGN NIO NOK NZD OMR PEN PHP PKR PLN
    PYG QAR RON RUB SAR SEK SGD THB TRY TWD UAH USD VES VND ZAR""".split()
    assert set(documented) == TIKTOK_CURRENCIES


@pytest.mark.parametrize("contents", [None, []], ids=repr)
def test_no_contents_without_line_items(contents):
    properties = build_event(make_purchase(), "CompletePayment", "", contents)["properties"]
    assert "contents" not in properties
    assert "num_items" not in properties
    assert properties["value"] == Decimal("39.97")


def test_content_keys_that_are_missing_are_left_out():
    contents = [Content(None, None, 4, None, "USD")]
    properties = build_event(make_purchase(), "CompletePayment", "", contents)["properties"]
    assert properties["contents"] == [{"content_type": "product", "quantity": 4}]
    assert properties["num_items"] == 4


def test_num_items_is_the_sum_of_quantities():
    contents = [Content(f"price_{n}", f"Item {n}", n, 100, "USD") for n in (1, 2, 3, 10)]
    properties = build_event(make_purchase(), "CompletePayment", "", contents)["properties"]
    assert properties["num_items"] == 16
    assert [item["quantity"] for item in properties["contents"]] == [1, 2, 3, 10]


# ---------------------------------------------------------------- limited_data_use


@pytest.mark.parametrize(
    ("setting", "purchase_choice", "expected"),
    [
        (False, None, False),  # the default: off
        (True, None, True),  # the setting
        (True, False, True),  # a session cannot switch the operator's choice off
        (False, True, True),  # but it can ask for it
        (True, True, True),
        (False, False, False),
    ],
)
def test_limited_data_use(setting, purchase_choice, expected):
    event = build_event(make_purchase(limited_data_use=purchase_choice), "CompletePayment", "", None, setting)
    if expected:
        assert event["limited_data_use"] is True
    else:
        assert "limited_data_use" not in event


def test_limited_data_use_is_off_by_default():
    assert "limited_data_use" not in build_event(make_purchase(), "CompletePayment")


# ---------------------------------------------------------------- event shape


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


def test_order_id_and_content_type():
    properties = build_event(make_purchase(order_id="cs_test_order"), "CompletePayment")["properties"]
    assert properties["order_id"] == "cs_test_order"
    assert properties["content_type"] == "product"


# ---------------------------------------------------------------- request and encoding


@pytest.mark.parametrize(
    ("amount", "currency", "json_text", "python_value", "python_type"),
    [
        (1999, "USD", '"value":19.99', 19.99, float),
        (5, "USD", '"value":0.05', 0.05, float),
        (12345, "BHD", '"value":12.345', 12.345, float),
        (1500, "JPY", '"value":1500', 1500, int),
        (1000, "USD", '"value":10', 10, int),
        (0, "USD", '"value":0', 0, int),
        (10**12, "JPY", '"value":1000000000000', 10**12, int),
    ],
)
def test_value_is_encoded_as_a_json_number(amount, currency, json_text, python_value, python_type):
    purchase = make_purchase(amount=amount, currency=currency)
    encoded = encode(build_request([build_event(purchase, "CompletePayment")], "PIXEL"))
    text = encoded.decode("utf-8")
    assert json_text + "," in text or json_text + "}" in text
    assert '"value":"' not in text  # never a string
    decoded = json.loads(encoded)["data"][0]["properties"]["value"]
    assert decoded == python_value
    assert type(decoded) is python_type


def test_content_prices_are_encoded_as_json_numbers():
    event = build_event(make_purchase(), "CompletePayment", "", [TEE, replace(MUG, unit_amount=1000)])
    contents = json.loads(encode(event))["properties"]["contents"]
    assert [(item["price"], type(item["price"])) for item in contents] == [(14.99, float), (10, int)]
    assert b'"price":"' not in encode(event)


def test_encode_returns_utf8_json_bytes():
    purchase = make_purchase(Buyer(user_agent="Agent ü"))
    encoded = encode(build_request([build_event(purchase, "CompletePayment")], "PIXEL"))
    assert isinstance(encoded, bytes)
    assert json.loads(encoded.decode("utf-8"))["data"][0]["user"]["user_agent"] == "Agent ü"


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


def test_no_partner_name_no_sunset_1x_fields_and_nothing_empty():
    event = build_event(make_purchase(), "CompletePayment", "US", [TEE, MUG], True)
    decoded = json.loads(encode(build_request([event], "PIXEL", "TEST1")))
    keys = set(walk_keys(decoded))
    forbidden = {"partner_name", "pixel_code", "timestamp", "context", "phone_number", "ad", "callback"}
    assert not keys & forbidden
    values = list(walk_values(decoded))
    assert None not in values
    assert "" not in values
    assert sha("") not in values


def test_no_raw_pii_in_the_request():
    body = encode(build_request([build_event(make_purchase(), "CompletePayment", "US")], "PIXEL")).decode()
    for raw in ("jane.doe@example.com", "415", "José", "Berg", "User-42", "94107"):
        assert raw not in body
