"""The Conversions API event built at send time from the stored purchase.

Normalisation examples are Meta's own (Customer Information Parameters,
https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters).
Hashes are computed here with hashlib from the normalised value the rule gives, never with the code
under test; a few are also asserted as literal digests (Meta's published ones where it gives them).
"""

import json
import re
import unicodedata
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkout_conversions.currency import encode_json as encode
from checkout_conversions.meta_payload import (
    USER_DATA_KEYS,
    build_event,
    build_request,
    build_user_data,
    match_key_names,
    missing_user_agent,
)
from checkout_conversions.purchase import Buyer, Content, Purchase
from tests import payloads
from tests.payloads import MUG, SESSION_ID, TEE, sha, walk_values

HASHED = ("em", "ph", "fn", "ln", "ct", "st", "zp", "country", "external_id")
RAW = ("client_ip_address", "client_user_agent", "fbc", "fbp")

HEX64 = re.compile(r"^[0-9a-f]{64}$")

BUYER = Buyer(
    email="Jane.Doe@Example.com",
    phone="+1 (616) 954-78 88",
    first_name="José",
    last_name="O'Neil",
    zip_code="94035-1234",
    city="Menlo Park",
    state="CA",
    country="US",
    external_id="User-42",
    ip="203.0.113.7",
    user_agent="Mozilla/5.0 (iPhone)",
    fbp="fb.1.1558571054389.1098115397",
    fbc="fb.1.1554763741205.AbCdEfGhIjKlMnOpQrStUvWxYz1234567890",
    ttclid="E.C.P.not-for-meta",
    ttp="not-for-meta",
    locale="en-US",
)


def make_purchase(buyer=BUYER, **overrides) -> Purchase:
    return payloads.purchase(buyer, **{"page_referrer": "https://www.facebook.com/", **overrides})


def user_data(default_phone_country: str = "", **fields) -> dict[str, str]:
    return build_user_data(make_purchase(Buyer(**fields)), default_phone_country)


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


def test_user_data_keys_in_reporting_order():
    assert list(build_user_data(make_purchase(), "US")) == list(USER_DATA_KEYS)
    assert USER_DATA_KEYS == HASHED + RAW


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


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"first_name": "'-. "}, "fn"),
        ({"last_name": "--"}, "ln"),
        ({"city": "123 ..."}, "ct"),  # digits and punctuation only: no letters left
        ({"state": "--"}, "st"),
        ({"zip_code": " - "}, "zp"),
        ({"country": "USA"}, "country"),  # not ISO alpha-2: it would match nobody
        ({"country": "1"}, "country"),
        ({"phone": "call me"}, "ph"),
        ({"email": "   "}, "em"),
    ],
    ids=repr,
)
def test_a_value_that_normalises_to_nothing_leaves_its_key_out(fields, key):
    assert key not in user_data("US", **fields)


def test_meta_keys_only_no_tiktok_keys():
    keys = set(build_user_data(make_purchase(), "US"))
    assert not keys & {"ttclid", "ttp", "locale", "email", "phone", "ip", "user_agent"}


# ---------------------------------------------------------------- Meta's normalisation examples


def test_email_trimmed_and_lower_cased_with_metas_published_digest():
    # Meta's example: "John_Smith@gmail.com" -> "john_smith@gmail.com" -> 62a14e44...
    data = user_data(email="  John_Smith@Gmail.com \n")
    assert data["em"] == sha("john_smith@gmail.com")
    assert data["em"] == "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"


def test_phone_digits_with_country_code_and_no_plus():
    data = user_data(phone="+1 (616) 954-78 88")
    assert data["ph"] == sha("16169547888")
    # Computed once with hashlib.sha256(b"16169547888").hexdigest()
    assert data["ph"] == "bb2fa2e6d2cea4746530c99686d0c7886ab2019875dca2d7e9e171c0e6ada00d"


def test_city_literal_digest():
    # Computed once with hashlib.sha256(b"menlopark").hexdigest()
    assert (
        user_data(city="Menlo Park")["ct"]
        == "0007a3d64c01e23d5075203c5977c14e4f7e01a3fc570686fcc50b5e1dd42685"
    )


def test_phone_matches_metas_published_digest():
    # Meta's example: US number (650)555-1212 -> "16505551212" -> e323ec62...
    data = user_data("US", phone="(650)555-1212")
    assert data["ph"] == "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"


@pytest.mark.parametrize(
    ("phone", "country", "default_country", "expected"),
    [
        # A national number: the buyer's billing country first, then DEFAULT_PHONE_COUNTRY
        ("020 7946 0958", "GB", "US", "442079460958"),
        ("020 7946 0958", None, "GB", "442079460958"),
        ("(415) 555-0123", None, "US", "14155550123"),
        # A leading 00 or + with the country code wins over both
        ("+44 844 412 4653", "US", "US", "448444124653"),
        # No country code and no country to read it with: dropped, never guessed
        ("020 7946 0958", None, "", None),
        # Not valid in the buyer's country: dropped
        ("020 7946 0958", "US", "GB", None),
    ],
)
def test_phone_region_is_the_buyers_country_then_the_default(phone, country, default_country, expected):
    data = user_data(default_country, phone=phone, country=country)
    assert data.get("ph") == (sha(expected) if expected else None)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("Mary", "mary"),  # Meta's example
        ("Valéry", "valéry"),  # Meta's example: UTF-8 kept
        ("정", "정"),  # Meta's example
        ("José", "josé"),
        ("O'Neil", "oneil"),
        ("Mary-Ann", "maryann"),
        ("  Van Der Berg ", "vanderberg"),
        ("JEAN-LUC", "jeanluc"),
        ("Anne.", "anne"),
    ],
)
def test_names_lower_cased_without_punctuation_or_spaces(raw, normalised):
    data = user_data(first_name=raw, last_name=raw)
    assert data["fn"] == sha(normalised)
    assert data["ln"] == sha(normalised)


def test_first_name_matches_metas_published_digests():
    assert (
        user_data(first_name="Mary")["fn"]
        == "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec"
    )
    assert (
        user_data(first_name="Valéry")["fn"]
        == "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c"
    )
    assert (
        user_data(first_name="정")["fn"] == "8fa8cd9c440be61d0151429310034083132b35975c4bea67fdd74158eb51db14"
    )


def test_composed_and_decomposed_names_hash_the_same():
    composed = unicodedata.normalize("NFC", "José")
    decomposed = unicodedata.normalize("NFD", "José")
    assert composed != decomposed
    assert user_data(first_name=composed)["fn"] == user_data(first_name=decomposed)["fn"] == sha("josé")
    assert user_data(city="Sa\u0303o Paulo")["ct"] == sha("são paulo".replace(" ", ""))


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [("Menlo Park", "menlopark"), ("NEW YORK", "newyork"), ("St. John's", "stjohns"), ("Paris 8e", "parise")],
)
def test_city_letters_only(raw, normalised):
    assert user_data(city=raw)["ct"] == sha(normalised)


@pytest.mark.parametrize(
    ("raw", "normalised"), [("CA", "ca"), (" ny ", "ny"), ("N.S.W.", "nsw"), ("13", "13")]
)
def test_state_letters_and_digits(raw, normalised):
    assert user_data(state=raw)["st"] == sha(normalised)


@pytest.mark.parametrize(
    ("zip_code", "country", "normalised"),
    [
        ("94035-1234", "US", "94035"),  # ZIP+4: the first five digits
        ("940351234", "US", "94035"),
        ("94035", "US", "94035"),
        ("M1 1AE", "GB", "m11ae"),  # UK: area, district and sector, no space
        ("SW1A 1AA", "GB", "sw1a1aa"),
        ("K1A 0B1", "CA", "k1a0b1"),
        ("00-950", "PL", "00950"),  # no dash
        ("94035-1234", "GB", "940351234"),  # five digits only in the US
        ("94035-1234", None, "940351234"),
    ],
)
def test_zip_code_lower_cased_no_spaces_no_dashes(zip_code, country, normalised):
    assert user_data(zip_code=zip_code, country=country)["zp"] == sha(normalised)


@pytest.mark.parametrize(("raw", "normalised"), [("US", "us"), ("gb", "gb"), (" DE ", "de")])
def test_country_lower_cased_alpha_2(raw, normalised):
    assert user_data(country=raw)["country"] == sha(normalised)


def test_external_id_trimmed_case_kept_same_as_tiktok():
    from checkout_conversions import match_keys

    data = user_data(external_id="  User-42 ")
    assert data["external_id"] == sha("User-42")
    assert data["external_id"] == match_keys.hashed_external_id("User-42")


@pytest.mark.parametrize("key", HASHED)
def test_already_hashed_values_pass_through_lower_cased(key):
    digest = sha("already hashed by the merchant")
    field = {
        "em": "email", "ph": "phone", "fn": "first_name", "ln": "last_name", "ct": "city",
        "st": "state", "zp": "zip_code", "country": "country", "external_id": "external_id",
    }[key]  # fmt: skip
    data = user_data(**{field: f" {digest.upper()} "})
    assert data[key] == digest


def test_raw_keys_are_sent_unhashed_as_given():
    data = build_user_data(make_purchase())
    assert data["client_ip_address"] == "203.0.113.7"
    assert data["client_user_agent"] == "Mozilla/5.0 (iPhone)"
    assert data["fbc"] == BUYER.fbc
    assert data["fbp"] == BUYER.fbp


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


# ---------------------------------------------------------------- property


TEXT_FIELDS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "zip_code",
    "city",
    "state",
    "country",
    "external_id",
)
any_text = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.text(alphabet=" \t-.'_,+()0123456789", max_size=12),
    st.sampled_from(["US", "GB", "+1 415 555 0123", "020 7946 0958", "José", "Jose\u0301", "İ", "ß"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fields=st.fixed_dictionaries({field: any_text for field in TEXT_FIELDS}),
    default_phone_country=st.sampled_from(["", "US", "GB", "de"]),
)
def test_every_hashed_key_is_a_lowercase_sha256_and_nothing_is_empty(fields, default_phone_country):
    data = build_user_data(make_purchase(Buyer(**fields)), default_phone_country)
    assert set(data) <= set(HASHED)
    for key, value in data.items():
        assert isinstance(value, str) and value, key
        assert HEX64.match(value), (key, value)
        assert value != sha(""), key
