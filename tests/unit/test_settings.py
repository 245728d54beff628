"""Settings from the environment (always passed in as a dict, never os.environ): settings.py and
each platform's own (destinations/<platform>/settings.py)."""

from dataclasses import replace

import pytest

from checkout_conversions.destinations.tiktok.settings import DEFAULT_API_URL as DEFAULT_TIKTOK_API_URL
from checkout_conversions.purchase import ContentIdKind, ContentIdSource
from checkout_conversions.secrets import (
    ConfigurationError,
    SecretRef,
    SecretSource,
    SecretStore,
    read_optional,
)
from checkout_conversions.settings import Settings, load_settings


def tiktok(settings: Settings):
    return settings.destination("tiktok")


def test_defaults():
    settings = load_settings({})
    assert tiktok(settings).event_name == "CompletePayment"
    assert tiktok(settings).api_url == "https://business-api.tiktok.com/open_api/v1.3/event/track/"
    assert DEFAULT_TIKTOK_API_URL == "https://business-api.tiktok.com/open_api/v1.3/event/track/"
    assert tiktok(settings).timeout_seconds == 5.0
    assert isinstance(tiktok(settings).timeout_seconds, float)
    assert settings.record_retention_days == 35
    assert settings.secrets.source == "env"
    assert settings.secrets.source is SecretSource.ENV
    # Read at send time like the token: none unless set.
    assert tiktok(settings).test_event_code == SecretRef("TIKTOK_TEST_EVENT_CODE", "")
    assert read_optional(tiktok(settings).test_event_code, settings.secrets, {}) == ""
    assert tiktok(settings).pixel_id == ""
    assert tiktok(settings).default_phone_country == ""
    assert settings.destination("meta").default_phone_country == ""
    assert settings.tables.sessions == ""
    assert settings.tables.customers == ""


def test_values_are_read_and_trimmed():
    settings = load_settings(
        {
            "SESSIONS_TABLE_NAME": " sessions ",
            "CUSTOMERS_TABLE_NAME": "customers",
            "TIKTOK_PIXEL_ID": " C1234567890ABCDEF ",
            "TIKTOK_EVENT_NAME": " Purchase ",
            "TIKTOK_API_URL": "https://tiktok.test/track/",
            "TIKTOK_TEST_EVENT_CODE": " TEST123 ",
            "TIKTOK_TEST_EVENT_CODE_NAME": " /shop/tiktok-test-event-code ",
            "TIKTOK_TIMEOUT_SECONDS": " 2.5 ",
            "DEFAULT_PHONE_COUNTRY": " gb ",
            "RECORD_RETENTION_DAYS": " 90 ",
            "SECRETS_SOURCE": " SSM ",
        }
    )
    assert settings.tables.sessions == "sessions"
    assert settings.tables.customers == "customers"
    assert tiktok(settings).pixel_id == "C1234567890ABCDEF"
    assert tiktok(settings).event_name == "Purchase"
    assert tiktok(settings).api_url == "https://tiktok.test/track/"
    code = tiktok(settings).test_event_code
    assert code == SecretRef("TIKTOK_TEST_EVENT_CODE", "/shop/tiktok-test-event-code")
    assert read_optional(code, SecretStore(), {"TIKTOK_TEST_EVENT_CODE": " TEST123 "}) == "TEST123"
    assert tiktok(settings).timeout_seconds == 2.5
    assert tiktok(settings).default_phone_country == "GB"
    assert settings.destination("meta").default_phone_country == "GB"
    assert settings.record_retention_days == 90
    assert settings.secrets.source is SecretSource.SSM


@pytest.mark.parametrize("value", ["", "   "], ids=repr)
def test_blank_values_fall_back_to_defaults(value):
    settings = load_settings(
        {
            "TIKTOK_EVENT_NAME": value,
            "TIKTOK_API_URL": value,
            "TIKTOK_TIMEOUT_SECONDS": value,
            "RECORD_RETENTION_DAYS": value,
            "SECRETS_SOURCE": value,
        }
    )
    assert tiktok(settings).event_name == "CompletePayment"
    assert tiktok(settings).api_url == DEFAULT_TIKTOK_API_URL
    assert tiktok(settings).timeout_seconds == 5.0
    assert settings.record_retention_days == 35
    assert settings.secrets.source is SecretSource.ENV


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TIKTOK_TIMEOUT_SECONDS", "abc"),
        ("TIKTOK_TIMEOUT_SECONDS", "3s"),
        ("TIKTOK_TIMEOUT_SECONDS", "0"),
        ("TIKTOK_TIMEOUT_SECONDS", "0.05"),
        ("TIKTOK_TIMEOUT_SECONDS", "-1"),
        ("TIKTOK_TIMEOUT_SECONDS", "nan"),
        ("TIKTOK_TIMEOUT_SECONDS", "inf"),
        ("RECORD_RETENTION_DAYS", "abc"),
        ("RECORD_RETENTION_DAYS", "3.5"),
        ("RECORD_RETENTION_DAYS", "0"),
        ("RECORD_RETENTION_DAYS", "-35"),
        ("RECORD_RETENTION_DAYS", "1e3"),
        ("SECRETS_CACHE_SECONDS", "five"),
        ("SECRETS_CACHE_SECONDS", "-1"),
        ("DELIVERY_MAX_AGE_DAYS", "0"),
        ("REDRIVE_BATCH_SIZE", "0"),
        ("REDRIVE_GRACE_SECONDS", "x"),
        ("REDRIVE_BACKOFF_BASE_SECONDS", "1.5"),
        ("REDRIVE_BACKOFF_CAP_SECONDS", "-5"),
        ("RECORD_RETENTION_DAYS", "30"),
        ("RECORD_RETENTION_DAYS", "1" * 40),
        ("TIKTOK_TIMEOUT_SECONDS", "11"),
        ("REDRIVE_GRACE_SECONDS", "9" * 38),
    ],
)
def test_invalid_numbers_fall_back_to_their_default_and_are_reported(name, value):
    """A typo in a tuning number must never stop provisioning: the default is used and the
    problem is reported (logged as an error and counted by the function)."""
    settings = load_settings({name: value})

    assert settings == replace(load_settings({}), problems=settings.problems)
    [problem] = settings.problems
    assert name in problem and repr(value) in problem


def test_valid_settings_report_no_problem():
    assert load_settings({"TIKTOK_TIMEOUT_SECONDS": "2.5", "RECORD_RETENTION_DAYS": "31"}).problems == ()


@pytest.mark.parametrize("value", ["vault", "parameter-store", "secrets manager", "envs"])
def test_invalid_secrets_source(value):
    with pytest.raises(ConfigurationError):
        load_settings({"SECRETS_SOURCE": value})


@pytest.mark.parametrize(
    ("value", "expected"),
    [("env", "env"), ("ENV", "env"), ("ssm", "ssm"), ("SecretsManager", "secretsmanager")],
)
def test_valid_secrets_source(value, expected):
    assert load_settings({"SECRETS_SOURCE": value}).secrets.source == expected
    assert load_settings({"SECRETS_SOURCE": value}).secrets.source is SecretSource(expected)


def test_require_tables():
    load_settings({"SESSIONS_TABLE_NAME": "s", "CUSTOMERS_TABLE_NAME": "c"}).tables.require()
    for environ in ({}, {"SESSIONS_TABLE_NAME": "s"}, {"CUSTOMERS_TABLE_NAME": "c"}):
        with pytest.raises(ConfigurationError):
            load_settings(environ).tables.require()


@pytest.mark.parametrize(
    ("max_age", "retention", "expected"),
    [("35", "35", 34), ("60", "40", 39), ("365", "", 34), ("34", "35", 34), ("7", "", 7)],
)
def test_max_age_is_kept_below_the_record_retention(max_age, retention, expected):
    """TTL deletes a session item after RECORD_RETENTION_DAYS: a delivery allowed to stay pending
    longer would vanish unsent and unreported. Such a max age is clamped, and said."""
    settings = load_settings({"DELIVERY_MAX_AGE_DAYS": max_age, "RECORD_RETENTION_DAYS": retention})

    assert settings.delivery_max_age_days == expected
    assert settings.delivery_max_age_days < settings.record_retention_days
    if int(max_age) == expected:
        assert settings.problems == ()
    else:
        [problem] = settings.problems
        assert "DELIVERY_MAX_AGE_DAYS" in problem and "RECORD_RETENTION_DAYS" in problem


# ---------------------------------------------------------------- Stripe API, contents, consent (issue 9)


def test_issue_9_defaults():
    settings = load_settings({})
    assert settings.stripe_api.base == "https://api.stripe.com"
    assert settings.stripe_api.timeout_seconds == 5.0
    assert settings.stripe_api.key.stored_name == ""
    assert settings.stripe_api.content_id_source == ContentIdSource(ContentIdKind.PRICE)
    assert settings.require_ad_consent is False
    assert tiktok(settings).limited_data_use is False
    assert settings.problems == ()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://127.0.0.1:12111", "http://127.0.0.1:12111"),
        ("http://127.0.0.1:12111/", "http://127.0.0.1:12111"),  # the library adds /v1/...
        (" https://proxy.example/stripe/ ", "https://proxy.example/stripe"),
        ("https://api.stripe.com//", "https://api.stripe.com"),
        ("", "https://api.stripe.com"),
        ("   ", "https://api.stripe.com"),
    ],
)
def test_stripe_api_base(value, expected):
    assert load_settings({"STRIPE_API_BASE": value}).stripe_api.base == expected


@pytest.mark.parametrize(("value", "expected"), [("2", 2.0), (" 0.5 ", 0.5), ("10", 10.0)])
def test_stripe_api_timeout(value, expected):
    settings = load_settings({"STRIPE_API_TIMEOUT_SECONDS": value})
    assert settings.stripe_api.timeout_seconds == expected
    assert settings.problems == ()


@pytest.mark.parametrize("value", ["0", "11", "five", "-1"])
def test_bad_stripe_api_timeout_falls_back_and_is_reported(value):
    settings = load_settings({"STRIPE_API_TIMEOUT_SECONDS": value})
    assert settings.stripe_api.timeout_seconds == 5.0
    [problem] = settings.problems
    assert "STRIPE_API_TIMEOUT_SECONDS" in problem


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("price", ContentIdSource(ContentIdKind.PRICE)),
        ("product", ContentIdSource(ContentIdKind.PRODUCT)),
        (" PRODUCT ", ContentIdSource(ContentIdKind.PRODUCT)),
        ("metadata:sku", ContentIdSource(ContentIdKind.METADATA, "sku")),
        ("", ContentIdSource(ContentIdKind.PRICE)),
    ],
)
def test_content_id_source(value, expected):
    settings = load_settings({"CONTENT_ID_SOURCE": value})
    assert settings.stripe_api.content_id_source == expected
    assert settings.problems == ()
    # What the sender uses: parsed once, here, so nothing downstream can fail to read it.
    assert isinstance(settings.stripe_api.content_id_source, ContentIdSource)


def test_content_id_source_keeps_the_case_of_the_metadata_key():
    assert load_settings(
        {"CONTENT_ID_SOURCE": "metadata:SKU"}
    ).stripe_api.content_id_source == ContentIdSource(ContentIdKind.METADATA, "SKU")


@pytest.mark.parametrize("value", ["sku", "prices", "price:x", "metadata:", "metadata: ", "lookup_key", "id"])
def test_invalid_content_id_source_is_reported_and_price_is_used(value):
    settings = load_settings({"CONTENT_ID_SOURCE": value})
    assert settings.stripe_api.content_id_source == ContentIdSource(ContentIdKind.PRICE)
    assert settings == replace(load_settings({}), problems=settings.problems)
    [problem] = settings.problems
    assert "CONTENT_ID_SOURCE" in problem and "price" in problem


def boolean_setting(settings: Settings, name: str) -> bool:
    if name == "TIKTOK_LIMITED_DATA_USE":
        return tiktok(settings).limited_data_use
    return getattr(settings, name.lower())


@pytest.mark.parametrize("name", ["REQUIRE_AD_CONSENT", "TIKTOK_LIMITED_DATA_USE"])
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        (" True ", True),
        ("1", True),
        ("yes", True),
        ("on", True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
        ("off", False),
        ("", False),
    ],
)
def test_boolean_settings(name, value, expected):
    settings = load_settings({name: value})
    assert boolean_setting(settings, name) is expected
    assert settings.problems == ()


@pytest.mark.parametrize("name", ["REQUIRE_AD_CONSENT", "TIKTOK_LIMITED_DATA_USE"])
@pytest.mark.parametrize("value", ["maybe", "ture", "2", "enabled", "y e s"])
def test_bad_boolean_is_false_and_reported(name, value):
    settings = load_settings({name: value})
    assert boolean_setting(settings, name) is False
    [problem] = settings.problems
    assert name in problem
