"""A paid checkout session to a customer record and to the platform-neutral purchase (raw values):
stripe_side/checkout.py."""

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from checkout_conversions.purchase import Buyer, Consent, Purchase
from checkout_conversions.stripe_side.checkout import (
    ad_consent,
    customer_key,
    customer_record,
    person_names,
    purchase,
)

SESSION_ID = "cs_test_a1B2c3D4e5F6"
NOW = datetime(2025, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


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
            "address": {
                "line1": "1 Market St",
                "line2": None,
                "city": "San Francisco",
                "state": "CA",
                "postal_code": "94107-1234",
                "country": "US",
            },
        },
        "client_reference_id": "User-42",
        "locale": "fr",  # the Checkout page's language, not the buyer's: never the locale sent
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


def details(**overrides):
    """customer_details with the given fields replaced (the rest as in session())."""
    return {**session()["customer_details"], **overrides}


def address(**overrides):
    return details(address={**session()["customer_details"]["address"], **overrides})


def with_metadata(**values):
    return session(metadata={**session()["metadata"], **values})


def stripe_event(obj=None, **overrides):
    base = {
        "id": "evt_test_1",
        "type": "checkout.session.completed",
        "created": 1735689600,
        "livemode": False,
        "request": {"id": "req_FromStripesServers", "idempotency_key": None},
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
    assert purchase(session(amount_total=amount), stripe_event()).amount is None


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
    result = purchase(session(currency=currency), stripe_event())
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
    s = session(metadata={**session()["metadata"], "locale": "en-US", "limited_data_use": "true"})
    assert purchase(s, stripe_event()) == Purchase(
        event_id=SESSION_ID,
        event_time=1735689600,
        order_id=SESSION_ID,
        amount=1999,
        currency="USD",
        buyer=Buyer(
            email="jane.doe@example.com",  # trimmed and lower-cased: the only rewrite of a value
            phone="+1 (415) 555-0123",  # as entered: parsed and hashed at send time
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
        page_url="https://shop.example.com/checkout",
        page_referrer="https://www.tiktok.com/",
        limited_data_use=True,
    )


def test_nothing_is_hashed_in_the_purchase():
    stored = purchase(session(), stripe_event()).to_json()
    assert not _HEX64.search(stored)
    assert "Jane" in stored and "94107-1234" in stored


def test_a_bare_session_gives_a_bare_purchase():
    result = purchase({"id": SESSION_ID}, {"id": "evt_1", "created": 1735689600})
    assert result == Purchase(event_id=SESSION_ID, event_time=1735689600, order_id=SESSION_ID, buyer=Buyer())


def test_event_time_is_the_stripe_event_created_not_now():
    assert purchase(session(), stripe_event(created=1700000000)).event_time == 1700000000


def test_event_id_and_order_id_are_the_session_id():
    result = purchase(session(id="cs_live_XYZ"), stripe_event())
    assert result.event_id == "cs_live_XYZ"
    assert result.order_id == "cs_live_XYZ"


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("customer_details", "expected"),
    [
        # Stripe's individual_name wins over name
        ({"individual_name": "Jane Doe", "name": "Acme Inc"}, ("Jane", "Doe")),
        ({"individual_name": "Jane Doe", "business_name": "Acme Inc", "name": "Acme Inc"}, ("Jane", "Doe")),
        ({"individual_name": "Cher", "name": "Jane Doe"}, ("Cher", None)),
        # A business: `name` may be the business's, so no person's name at all
        ({"business_name": "Acme Inc", "name": "Jane Doe"}, (None, None)),
        ({"business_name": "Acme Inc", "name": "Acme Inc"}, (None, None)),
        ({"business_name": "Acme Inc"}, (None, None)),
        # An empty business or individual name does not count
        ({"business_name": "", "name": "Jane Doe"}, ("Jane", "Doe")),
        ({"business_name": "   ", "name": "Jane Doe"}, ("Jane", "Doe")),
        ({"business_name": None, "individual_name": None, "name": "Jane Doe"}, ("Jane", "Doe")),
        ({"individual_name": "  ", "name": "Jane Doe"}, ("Jane", "Doe")),
        # The first and the last word of name
        ({"name": "Jane Doe"}, ("Jane", "Doe")),
        ({"name": "Mary Ann Smith"}, ("Mary", "Smith")),
        ({"name": "Juan Carlos de la Cruz"}, ("Juan", "Cruz")),
        ({"name": "  Jean-Luc   Picard "}, ("Jean-Luc", "Picard")),
        ({"name": "José Álvarez"}, ("José", "Álvarez")),
        ({"name": "JANE DOE"}, ("JANE", "DOE")),  # raw: lower-cased only when hashed
        # One word is a first name only
        ({"name": "Jane"}, ("Jane", None)),
        ({"name": " Jane\t"}, ("Jane", None)),
        # Nothing
        ({"name": ""}, (None, None)),
        ({"name": "   "}, (None, None)),
        ({"name": None}, (None, None)),
        ({"name": 42}, (None, None)),
        ({}, (None, None)),
    ],
    ids=repr,
)
def test_person_names(customer_details, expected):
    assert person_names(customer_details) == expected
    buyer = purchase(session(customer_details=customer_details), stripe_event()).buyer
    assert (buyer.first_name, buyer.last_name) == expected


def test_a_business_name_is_kept_on_the_customer_record_but_never_sent_as_a_person():
    s = session(customer_details=details(business_name="Acme Inc", name="Acme Inc"))
    assert customer_record(s, stripe_event(), NOW)["name"] == "Acme Inc"
    buyer = purchase(s, stripe_event()).buyer
    assert (buyer.first_name, buyer.last_name) == (None, None)
    assert "Acme" not in purchase(s, stripe_event()).to_json()


# ---------------------------------------------------------------- address


def test_address_fields_are_kept_raw_and_trimmed():
    s = session(customer_details=address(postal_code=" SW1A 1AA ", city="  London ", state="", country="gb"))
    buyer = purchase(s, stripe_event()).buyer
    assert (buyer.zip_code, buyer.city, buyer.state, buyer.country) == ("SW1A 1AA", "London", None, "GB")


@pytest.mark.parametrize(
    ("country", "expected"),
    [
        ("US", "US"),
        ("us", "US"),
        (" gb ", "GB"),
        ("De", "DE"),
        ("USA", None),  # ISO 3166 alpha-2 only
        ("U", None),
        ("U1", None),
        ("ÜS", None),
        ("", None),
        (None, None),
        (840, None),
    ],
    ids=repr,
)
def test_country_is_two_letters_upper_cased(country, expected):
    assert (
        purchase(session(customer_details=address(country=country)), stripe_event()).buyer.country == expected
    )


@pytest.mark.parametrize("field", ["postal_code", "city", "state"])
def test_over_long_address_fields_are_dropped(field):
    buyer = purchase(session(customer_details=address(**{field: "x" * 201})), stripe_event()).buyer
    assert getattr(buyer, {"postal_code": "zip_code"}.get(field, field)) is None
    buyer = purchase(session(customer_details=address(**{field: "x" * 200})), stripe_event()).buyer
    assert getattr(buyer, {"postal_code": "zip_code"}.get(field, field)) == "x" * 200


@pytest.mark.parametrize("value", [None, {}, "1 Market St, San Francisco", ["US"]], ids=repr)
def test_missing_or_hostile_address(value):
    buyer = purchase(session(customer_details=details(address=value)), stripe_event()).buyer
    assert (buyer.zip_code, buyer.city, buyer.state, buyer.country) == (None, None, None, None)
    assert buyer.email == "jane.doe@example.com"


# ---------------------------------------------------------------- email, phone, external_id


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, "jane.doe@example.com"),
        (
            {"customer_details": {"email": None}, "customer_email": "Jane.Doe@Example.com"},
            "jane.doe@example.com",
        ),
        ({"customer_details": {"email": ""}, "customer_email": " jane@example.com "}, "jane@example.com"),
        ({"customer_details": None, "customer_email": "jane@example.com"}, "jane@example.com"),
        (
            {"customer_details": {"email": "jane@example.com"}, "customer_email": "x@x.example"},
            "jane@example.com",
        ),
        ({"customer_details": {"email": None}, "customer_email": None}, None),
        ({"customer_details": {}, "customer_email": "not-an-email"}, None),
    ],
    ids=repr,
)
def test_email_from_customer_details_then_customer_email(overrides, expected):
    assert purchase(session(**overrides), stripe_event()).buyer.email == expected


@pytest.mark.parametrize("details_email", ["   ", "not-an-email"], ids=repr)
def test_purchase_email_agrees_with_the_customer_record(details_email):
    # The record falls back to customer_email when customer_details.email is unusable; the
    # purchase must carry the same buyer, not drop the email.
    s = session(customer_details={"email": details_email}, customer_email="jane.doe@example.com")
    assert customer_record(s, stripe_event(), NOW)["email"] == "jane.doe@example.com"
    assert purchase(s, stripe_event()).buyer.email == "jane.doe@example.com"


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        ("+1 (415) 555-0123", "+1 (415) 555-0123"),
        ("  020 7946 0958 ", "020 7946 0958"),
        ("", None),
        ("   ", None),
        (None, None),
        (14155550123, None),
        ("1" * 501, None),
    ],
    ids=lambda v: repr(v)[:20],
)
def test_phone_is_kept_as_entered(phone, expected):
    assert purchase(session(customer_details=details(phone=phone)), stripe_event()).buyer.phone == expected


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, "User-42"),  # client_reference_id wins, case kept
        ({"client_reference_id": "  User-42  "}, "User-42"),
        ({"client_reference_id": None}, "cus_TestCustomer0001"),
        ({"client_reference_id": ""}, "cus_TestCustomer0001"),
        ({"client_reference_id": "   "}, "cus_TestCustomer0001"),
        ({"client_reference_id": None, "customer": {"id": "cus_Expanded"}}, "cus_Expanded"),
        ({"client_reference_id": None, "customer": None}, None),
    ],
    ids=repr,
)
def test_external_id(overrides, expected):
    assert purchase(session(**overrides), stripe_event()).buyer.external_id == expected


# ---------------------------------------------------------------- metadata


def _metadata_fields(result):
    return {
        "buyer.ttclid": result.buyer.ttclid,
        "buyer.ttp": result.buyer.ttp,
        "buyer.ip": result.buyer.ip,
        "buyer.user_agent": result.buyer.user_agent,
        "buyer.locale": result.buyer.locale,
        "page_url": result.page_url,
        "page_referrer": result.page_referrer,
        "limited_data_use": result.limited_data_use,
    }


@pytest.mark.parametrize(
    ("metadata_key", "attribute", "value", "expected"),
    [
        ("ttclid", "buyer.ttclid", "E.C.P.only", "E.C.P.only"),
        ("ttp", "buyer.ttp", "ttp-only", "ttp-only"),
        ("client_ip", "buyer.ip", "2001:db8::1", "2001:db8::1"),
        ("user_agent", "buyer.user_agent", "Agent/1.0", "Agent/1.0"),
        ("locale", "buyer.locale", "en-GB", "en-GB"),
        ("page_url", "page_url", "https://shop.example.com/p", "https://shop.example.com/p"),
        ("page_referrer", "page_referrer", "https://ref.example.com/", "https://ref.example.com/"),
        ("limited_data_use", "limited_data_use", "true", True),
    ],
)
def test_each_metadata_key_maps_to_its_field_alone(metadata_key, attribute, value, expected):
    fields = _metadata_fields(purchase(session(metadata={metadata_key: value}), stripe_event()))
    assert fields.pop(attribute) == expected
    assert all(v is None for v in fields.values()), fields


@pytest.mark.parametrize(
    "metadata",
    [None, {}, "ttclid=abc", ["ttclid"], {"ttclid": "", "ttp": "  ", "client_ip": None, "user_agent": 5}],
    ids=repr,
)
def test_missing_metadata_is_omitted(metadata):
    result = purchase(session(metadata=metadata), stripe_event())
    assert all(v is None for v in _metadata_fields(result).values())
    # The buyer's details come from the session itself, not from metadata
    assert result.buyer.email == "jane.doe@example.com"
    assert ad_consent(session(metadata=metadata)) is Consent.UNKNOWN  # was None: no choice given


def test_webhook_request_ip_and_user_agent_are_never_used():
    # The webhook request comes from Stripe's servers: only the merchant's metadata counts, and
    # keys that merely look similar are ignored.
    metadata = {
        "ip": "198.51.100.1",
        "userAgent": "Stripe/1.0",
        "ttclid ": "x",
        "TTCLID": "y",
        "IP": "1.2.3.4",
    }
    event = stripe_event(request={"id": "req_1", "ip": "198.51.100.9", "user_agent": "Stripe/1.0"})
    buyer = purchase(session(metadata=metadata), event).buyer
    assert (buyer.ttclid, buyer.ip, buyer.user_agent) == (None, None, None)


def test_metadata_values_are_trimmed_and_over_long_ones_dropped_not_cut():
    # Stripe caps metadata values at 500 characters; a longer one is not Stripe's, and a cut
    # ttclid or URL would be wrong data, so it is left out.
    metadata = {
        "ttclid": "  E.C.P.abc  ",
        "page_url": "https://shop.example.com/" + "a" * 1000,
        "user_agent": "U" * 500,
        "client_ip": "1" * 501,
    }
    result = purchase(session(metadata=metadata), stripe_event())
    assert result.buyer.ttclid == "E.C.P.abc"
    assert result.page_url is None
    assert result.buyer.user_agent == "U" * 500
    assert result.buyer.ip is None


# ---------------------------------------------------------------- locale


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("en-US", "en-US"),
        ("pt_BR", "pt-BR"),  # written the BCP 47 way
        ("en", "en"),
        ("zh-Hant-TW", "zh-Hant-TW"),
        (" fr-FR ", "fr-FR"),
        ("english", None),
        ("", None),
        ("   ", None),
        ("e", None),
        ("en US", None),
        ("en-US;q=0.9", None),
        ("en-US,fr", None),
        ("<script>", None),
    ],
    ids=repr,
)
def test_locale_only_from_metadata_and_only_bcp47(value, expected):
    assert purchase(with_metadata(locale=value), stripe_event()).buyer.locale == expected


def test_stripe_checkout_locale_is_not_the_buyers_locale():
    assert session()["locale"] == "fr"
    assert purchase(session(), stripe_event()).buyer.locale is None


# ---------------------------------------------------------------- ad_consent, limited_data_use


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("granted", Consent.GRANTED),
        ("denied", Consent.DENIED),
        ("GRANTED", Consent.GRANTED),
        (" Denied ", Consent.DENIED),
        # Anything else is no choice: None before, Consent.UNKNOWN now
        ("yes", Consent.UNKNOWN),
        ("no", Consent.UNKNOWN),
        ("true", Consent.UNKNOWN),
        ("revoked", Consent.UNKNOWN),
        ("", Consent.UNKNOWN),
        (None, Consent.UNKNOWN),
    ],
    ids=repr,
)
def test_ad_consent(value, expected):
    assert ad_consent(with_metadata(ad_consent=value)) is expected
    assert ad_consent(with_metadata(ad_consent=value)) == expected.value  # stored as "granted" ...


def test_ad_consent_absent():
    assert ad_consent(session()) is Consent.UNKNOWN  # was None: no choice given


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        (" True ", True),
        ("1", True),
        ("yes", True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
        ("on", True),  # the words TIKTOK_LIMITED_DATA_USE takes, too
        ("off", False),
        ("maybe", None),  # not a choice: the setting's default applies
        ("", None),
        (None, None),
    ],
    ids=repr,
)
def test_limited_data_use_metadata(value, expected):
    assert purchase(with_metadata(limited_data_use=value), stripe_event()).limited_data_use is expected


# ---------------------------------------------------------------- amount, currency


@pytest.mark.parametrize(
    ("amount", "currency", "expected_amount", "expected_currency"),
    [
        (1999, "usd", 1999, "USD"),  # minor units, as Stripe counts them
        (1500, "jpy", 1500, "JPY"),
        (12345, "kwd", 12345, "KWD"),
        (0, "eur", 0, "EUR"),
        (1999, "xcd", 1999, "XCD"),  # not TikTok's: still recorded, the sender decides
        (None, "usd", None, "USD"),
    ],
)
def test_amount_in_minor_units_and_currency_upper_cased(amount, currency, expected_amount, expected_currency):
    result = purchase(session(amount_total=amount, currency=currency), stripe_event())
    assert result.amount == expected_amount
    assert result.currency == expected_currency
