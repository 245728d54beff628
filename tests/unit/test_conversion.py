"""A paid checkout session to a customer record and to a TikTok purchase."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from checkout_conversions.conversion import customer_key, customer_record, purchase
from checkout_conversions.tiktok_payload import Purchase, User

SESSION_ID = "cs_test_a1B2c3D4e5F6"
SHA_JANE = "86e0b9e56c17cc4d12387e1949b85053fbe73bc3ce5a1188713a9d300cc6133d"  # jane.doe@example.com
SHA_US_PHONE = "36a2cef4ff9bf7a1abd2a93359136b870393be4106e6c5d19b72ff564f9deca4"  # +14155550123
SHA_USER_42 = "fafe5e551759817bdc65038b8cb1a8263b1a8b3b60c269d67ff0f8c57ae0f733"  # User-42
SHA_CUSTOMER = "3ca33e3c988c788fa1e3b0821bce9623dcbe5a08a8f9702c3d0baa8bb6ad10b5"  # cus_TestCustomer0001
NOW = datetime(2025, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)


def session(**overrides):
    base = {
        "id": SESSION_ID,
        "object": "checkout.session",
        "mode": "payment",
        "payment_status": "paid",
        "livemode": False,
        "amount_total": 1999,
        "currency": "usd",
        "customer": "cus_TestCustomer0001",
        "customer_email": None,
        "customer_details": {
            "email": "  Jane.Doe@Example.COM ",
            "name": "Jane Doe",
            "phone": "+1 (415) 555-0123",
        },
        "client_reference_id": "User-42",
        "metadata": {
            "ttclid": "E.C.P.test-ttclid",
            "ttp": "2abcDEFttpCookie",
            "client_ip": "203.0.113.7",
            "user_agent": "Mozilla/5.0 (iPhone)",
            "page_url": "https://shop.example.com/checkout",
            "page_referrer": "https://www.tiktok.com/",
        },
        "subscription": None,
    }
    base.update(overrides)
    return base


def stripe_event(obj=None, **overrides):
    base = {
        "id": "evt_test_1",
        "type": "checkout.session.completed",
        "created": 1735689600,
        "livemode": False,
        "data": {"object": obj if obj is not None else session()},
    }
    base.update(overrides)
    return base


# ---------------------------------------------------------------- customer_key


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, "cus_TestCustomer0001"),
        ({"customer": {"id": "cus_Expanded0001", "object": "customer"}}, "cus_Expanded0001"),
        ({"customer": " cus_Padded "}, "cus_Padded"),
        ({"customer": None}, "email#jane.doe@example.com"),
        ({"customer": ""}, "email#jane.doe@example.com"),
        ({"customer": {"id": None}}, "email#jane.doe@example.com"),
        ({"customer": "cus_" + "x" * 300}, "email#jane.doe@example.com"),
        (
            {"customer": None, "customer_details": {"email": None}, "customer_email": " Pre@Example.com "},
            "email#pre@example.com",
        ),
        (
            {"customer": None, "customer_details": None, "customer_email": "prefill@example.com"},
            "email#prefill@example.com",
        ),
        ({"customer": None, "customer_details": {"email": None}}, f"session#{SESSION_ID}"),
        ({"customer": None, "customer_details": {}, "customer_email": ""}, f"session#{SESSION_ID}"),
        ({"customer": None, "customer_details": {"email": "not-an-email"}}, f"session#{SESSION_ID}"),
    ],
    ids=repr,
)
def test_customer_key(overrides, expected):
    assert customer_key(session(**overrides)) == expected


def test_guest_key_is_the_same_whatever_the_email_case():
    a = session(customer=None, customer_details={"email": "JANE.DOE@example.com"})
    b = session(customer=None, customer_details={"email": " jane.doe@EXAMPLE.COM "})
    assert customer_key(a) == customer_key(b) == "email#jane.doe@example.com"


# ---------------------------------------------------------------- customer_record


def test_customer_record_full():
    record = customer_record(session(subscription="sub_1"), stripe_event(livemode=True), NOW)
    assert record == {
        "customer_id": "cus_TestCustomer0001",
        "checkout_session_id": SESSION_ID,
        "stripe_customer_id": "cus_TestCustomer0001",
        "email": "jane.doe@example.com",
        "name": "Jane Doe",
        "subscription_id": "sub_1",
        "client_reference_id": "User-42",
        "mode": "payment",
        "amount_total": 1999,
        "currency": "USD",
        "livemode": True,
        "stripe_event_id": "evt_test_1",
        "provisioned_at": "2025-01-01T12:00:00.123+00:00",
    }


def test_customer_record_drops_missing_fields():
    bare = {"id": SESSION_ID}
    record = customer_record(bare, {"id": "evt_test_1"}, NOW)
    assert record == {
        "customer_id": f"session#{SESSION_ID}",
        "checkout_session_id": SESSION_ID,
        "livemode": False,
        "stripe_event_id": "evt_test_1",
        "provisioned_at": "2025-01-01T12:00:00.123+00:00",
    }
    assert None not in record.values()


def test_customer_record_guest():
    record = customer_record(session(customer=None, client_reference_id=None), stripe_event(), NOW)
    assert record["customer_id"] == "email#jane.doe@example.com"
    assert "stripe_customer_id" not in record
    assert "client_reference_id" not in record


def test_customer_record_expanded_subscription_and_customer():
    record = customer_record(
        session(customer={"id": "cus_X"}, subscription={"id": "sub_X", "object": "subscription"}),
        stripe_event(),
        NOW,
    )
    assert record["customer_id"] == "cus_X"
    assert record["stripe_customer_id"] == "cus_X"
    assert record["subscription_id"] == "sub_X"


def test_provisioned_at_is_utc_with_milliseconds():
    paris = timezone(timedelta(hours=1))
    record = customer_record(session(), stripe_event(), datetime(2025, 1, 1, 13, 0, 0, 987654, tzinfo=paris))
    assert record["provisioned_at"] == "2025-01-01T12:00:00.987+00:00"


@pytest.mark.parametrize(
    ("event_livemode", "session_livemode", "expected"),
    [(True, False, True), (False, True, False), (None, True, False)],
)
def test_livemode(event_livemode, session_livemode, expected):
    event = stripe_event(livemode=event_livemode)
    if event_livemode is None:
        del event["livemode"]
        expected = session_livemode
    assert customer_record(session(livemode=session_livemode), event, NOW)["livemode"] is expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Jane Doe", "Jane Doe"),
        ("  Jane Doe  ", "Jane Doe"),
        ("x" * 500, "x" * 500),
        ("x" * 501, "x" * 500),
        ("y" * 100_000, "y" * 500),
        ("", None),
        ("   ", None),
        (None, None),
        (42, None),
    ],
    ids=lambda v: repr(v)[:20],
)
def test_name_is_capped(name, expected):
    s = session(customer_details={"email": "a@b.example", "name": name})
    record = customer_record(s, stripe_event(), NOW)
    assert record.get("name") == expected
    if expected is None:
        assert "name" not in record


@pytest.mark.parametrize(
    "amount",
    ["1999", True, False, -1, -1999, 10**20, 10**12 + 1, 19.99, None, [1999], {"v": 1}],
    ids=repr,
)
def test_hostile_amount_never_reaches_the_record(amount):
    record = customer_record(session(amount_total=amount), stripe_event(), NOW)
    assert "amount_total" not in record
    assert purchase(session(amount_total=amount), stripe_event(), "US").value is None


@pytest.mark.parametrize("amount", [0, 1, 1999, 10**12])
def test_plausible_amounts_are_kept(amount):
    assert customer_record(session(amount_total=amount), stripe_event(), NOW)["amount_total"] == amount


@pytest.mark.parametrize(
    "currency",
    ["us$", "usdd", "us", "", "   ", "u5d", "12$", "ÜSD", None, 840, ["usd"]],
    ids=repr,
)
def test_hostile_currency_never_reaches_the_record(currency):
    record = customer_record(session(currency=currency), stripe_event(), NOW)
    assert "currency" not in record
    result = purchase(session(currency=currency), stripe_event(), "US")
    assert result.currency is None
    assert result.value is None


@pytest.mark.parametrize(("currency", "expected"), [("usd", "USD"), ("JPY", "JPY"), (" eur ", "EUR")])
def test_currency_is_uppercased(currency, expected):
    assert customer_record(session(currency=currency), stripe_event(), NOW)["currency"] == expected


@pytest.mark.parametrize(
    ("field", "record_key"),
    [
        ("client_reference_id", "client_reference_id"),
        ("subscription", "subscription_id"),
        ("mode", "mode"),
    ],
)
def test_too_long_ids_are_dropped_not_truncated(field, record_key):
    record = customer_record(session(**{field: "x" * 256}), stripe_event(), NOW)
    assert record_key not in record
    record = customer_record(session(**{field: "x" * 255}), stripe_event(), NOW)
    assert record[record_key] == "x" * 255


def test_too_long_customer_id_is_dropped():
    record = customer_record(session(customer="cus_" + "x" * 300), stripe_event(), NOW)
    assert "stripe_customer_id" not in record
    assert record["customer_id"] == "email#jane.doe@example.com"
    assert all(len(v) <= 500 for v in record.values() if isinstance(v, str))


@pytest.mark.parametrize("value", [123, {"id": "x"}, ["x"], True], ids=repr)
def test_non_text_ids_are_dropped(value):
    record = customer_record(session(client_reference_id=value, mode=value), stripe_event(), NOW)
    assert "client_reference_id" not in record
    assert "mode" not in record


def test_hostile_customer_details():
    record = customer_record(session(customer=None, customer_details="jane@example.com"), stripe_event(), NOW)
    assert record["customer_id"] == f"session#{SESSION_ID}"
    assert "email" not in record
    assert "name" not in record


# ---------------------------------------------------------------- purchase


def test_purchase_full():
    result = purchase(session(), stripe_event(), "US")
    assert result == Purchase(
        event_id=SESSION_ID,
        event_time=1735689600,
        order_id=SESSION_ID,
        value=Decimal("19.99"),
        currency="USD",
        user=User(
            email=SHA_JANE,
            phone=SHA_US_PHONE,
            external_id=SHA_USER_42,
            ttclid="E.C.P.test-ttclid",
            ttp="2abcDEFttpCookie",
            ip="203.0.113.7",
            user_agent="Mozilla/5.0 (iPhone)",
        ),
        page_url="https://shop.example.com/checkout",
        page_referrer="https://www.tiktok.com/",
    )


def test_event_time_is_the_stripe_event_created_not_now():
    assert purchase(session(), stripe_event(created=1700000000), "US").event_time == 1700000000


@pytest.mark.parametrize(
    ("metadata_key", "attribute", "value"),
    [
        ("ttclid", "user.ttclid", "E.C.P.only"),
        ("ttp", "user.ttp", "ttp-only"),
        ("client_ip", "user.ip", "2001:db8::1"),
        ("user_agent", "user.user_agent", "Agent/1.0"),
        ("page_url", "page_url", "https://shop.example.com/p"),
        ("page_referrer", "page_referrer", "https://ref.example.com/"),
    ],
)
def test_each_metadata_key_maps_to_its_field_alone(metadata_key, attribute, value):
    result = purchase(session(metadata={metadata_key: value}), stripe_event(), "US")
    fields = {
        "user.ttclid": result.user.ttclid,
        "user.ttp": result.user.ttp,
        "user.ip": result.user.ip,
        "user.user_agent": result.user.user_agent,
        "page_url": result.page_url,
        "page_referrer": result.page_referrer,
    }
    assert fields.pop(attribute) == value
    assert all(v is None for v in fields.values()), fields


@pytest.mark.parametrize(
    "metadata",
    [None, {}, "ttclid=abc", ["ttclid"], {"ttclid": "", "ttp": "  ", "client_ip": None, "user_agent": 5}],
    ids=repr,
)
def test_missing_metadata_is_omitted(metadata):
    result = purchase(session(metadata=metadata), stripe_event(), "US")
    user = result.user
    assert (user.ttclid, user.ttp, user.ip, user.user_agent) == (None, None, None, None)
    assert result.page_url is None
    assert result.page_referrer is None
    # Hashed keys come from the session itself, not from metadata
    assert user.email == SHA_JANE


def test_webhook_request_ip_and_user_agent_are_never_used():
    # Only metadata counts; other names that look similar are ignored.
    metadata = {"ip": "198.51.100.1", "userAgent": "Stripe/1.0", "ttclid ": "x", "TTCLID": "y"}
    user = purchase(session(metadata=metadata), stripe_event(), "US").user
    assert (user.ttclid, user.ip, user.user_agent) == (None, None, None)


def test_metadata_values_are_trimmed_and_over_long_ones_dropped_not_cut():
    # Stripe caps metadata values at 500 characters; a longer one is not Stripe's, and a cut
    # ttclid or URL would be wrong data, so it is left out.
    metadata = {"ttclid": "  E.C.P.abc  ", "page_url": "https://shop.example.com/" + "a" * 1000}
    result = purchase(session(metadata=metadata), stripe_event(), "US")
    assert result.user.ttclid == "E.C.P.abc"
    assert result.page_url is None


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, SHA_USER_42),  # client_reference_id wins
        ({"client_reference_id": "  User-42  "}, SHA_USER_42),
        ({"client_reference_id": None}, SHA_CUSTOMER),
        ({"client_reference_id": ""}, SHA_CUSTOMER),
        ({"client_reference_id": "   "}, SHA_CUSTOMER),
        ({"client_reference_id": None, "customer": {"id": "cus_TestCustomer0001"}}, SHA_CUSTOMER),
        ({"client_reference_id": None, "customer": None}, None),
    ],
    ids=repr,
)
def test_external_id(overrides, expected):
    assert purchase(session(**overrides), stripe_event(), "US").user.external_id == expected


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, SHA_JANE),
        ({"customer_details": {"email": None}, "customer_email": "Jane.Doe@Example.com"}, SHA_JANE),
        ({"customer_details": {"email": ""}, "customer_email": " jane.doe@example.com "}, SHA_JANE),
        ({"customer_details": None, "customer_email": "jane.doe@example.com"}, SHA_JANE),
        ({"customer_details": {"email": "jane.doe@example.com"}, "customer_email": "x@x.example"}, SHA_JANE),
        ({"customer_details": {"email": None}, "customer_email": None}, None),
        ({"customer_details": {}, "customer_email": "not-an-email"}, None),
    ],
    ids=repr,
)
def test_email_from_customer_details_then_customer_email(overrides, expected):
    assert purchase(session(**overrides), stripe_event(), "US").user.email == expected


@pytest.mark.parametrize(
    "details_email",
    ["   ", "not-an-email"],
    ids=repr,
)
def test_purchase_email_agrees_with_the_customer_record(details_email):
    # The record falls back to customer_email when customer_details.email is unusable; the TikTok
    # event must carry the same buyer, not drop the email.
    s = session(customer_details={"email": details_email}, customer_email="jane.doe@example.com")
    assert customer_record(s, stripe_event(), NOW)["email"] == "jane.doe@example.com"
    assert purchase(s, stripe_event(), "US").user.email == SHA_JANE


@pytest.mark.parametrize(
    ("phone", "country", "expected"),
    [
        ("+1 (415) 555-0123", "", SHA_US_PHONE),
        ("415-555-0123", "US", SHA_US_PHONE),
        ("415-555-0123", "", None),
        (None, "US", None),
        ("", "US", None),
    ],
)
def test_phone_uses_the_default_country(phone, country, expected):
    s = session(customer_details={"email": "jane.doe@example.com", "phone": phone})
    assert purchase(s, stripe_event(), country).user.phone == expected


@pytest.mark.parametrize(
    ("amount", "currency", "value", "code"),
    [
        (1999, "usd", Decimal("19.99"), "USD"),
        (1500, "jpy", Decimal("1500"), "JPY"),
        (12345, "bhd", Decimal("12.345"), "BHD"),
        (1000, "isk", Decimal("10"), "ISK"),
        (0, "eur", Decimal("0"), "EUR"),
        (None, "usd", None, "USD"),
    ],
)
def test_value_and_currency(amount, currency, value, code):
    result = purchase(session(amount_total=amount, currency=currency), stripe_event(), "US")
    assert result.value == value
    if value is not None:
        assert type(result.value) is Decimal
    assert result.currency == code


def test_event_id_and_order_id_are_the_session_id():
    result = purchase(session(id="cs_live_XYZ"), stripe_event(), "US")
    assert result.event_id == "cs_live_XYZ"
    assert result.order_id == "cs_live_XYZ"
