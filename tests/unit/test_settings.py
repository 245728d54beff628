"""Settings from the environment (always passed in as a dict, never os.environ)."""

from dataclasses import replace

import pytest

from checkout_conversions.config import (
    DEFAULT_TIKTOK_API_URL,
    ConfigurationError,
    access_token,
    load_settings,
    read_secret,
    require_tables,
    webhook_secrets,
)


def test_defaults():
    settings = load_settings({})
    assert settings.tiktok_event_name == "CompletePayment"
    assert settings.tiktok_api_url == "https://business-api.tiktok.com/open_api/v1.3/event/track/"
    assert DEFAULT_TIKTOK_API_URL == "https://business-api.tiktok.com/open_api/v1.3/event/track/"
    assert settings.tiktok_timeout_seconds == 5.0
    assert isinstance(settings.tiktok_timeout_seconds, float)
    assert settings.record_retention_days == 35
    assert settings.secrets_source == "env"
    assert settings.tiktok_test_event_code == ""
    assert settings.tiktok_pixel_id == ""
    assert settings.default_phone_country == ""
    assert settings.sessions_table == ""
    assert settings.customers_table == ""


def test_values_are_read_and_trimmed():
    settings = load_settings(
        {
            "SESSIONS_TABLE_NAME": " sessions ",
            "CUSTOMERS_TABLE_NAME": "customers",
            "TIKTOK_PIXEL_ID": " C1234567890ABCDEF ",
            "TIKTOK_EVENT_NAME": " Purchase ",
            "TIKTOK_API_URL": "https://tiktok.test/track/",
            "TIKTOK_TEST_EVENT_CODE": " TEST123 ",
            "TIKTOK_TIMEOUT_SECONDS": " 2.5 ",
            "DEFAULT_PHONE_COUNTRY": " gb ",
            "RECORD_RETENTION_DAYS": " 90 ",
            "SECRETS_SOURCE": " SSM ",
        }
    )
    assert settings.sessions_table == "sessions"
    assert settings.customers_table == "customers"
    assert settings.tiktok_pixel_id == "C1234567890ABCDEF"
    assert settings.tiktok_event_name == "Purchase"
    assert settings.tiktok_api_url == "https://tiktok.test/track/"
    assert settings.tiktok_test_event_code == "TEST123"
    assert settings.tiktok_timeout_seconds == 2.5
    assert settings.default_phone_country == "GB"
    assert settings.record_retention_days == 90
    assert settings.secrets_source == "ssm"


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
    assert settings.tiktok_event_name == "CompletePayment"
    assert settings.tiktok_api_url == DEFAULT_TIKTOK_API_URL
    assert settings.tiktok_timeout_seconds == 5.0
    assert settings.record_retention_days == 35
    assert settings.secrets_source == "env"


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
    assert load_settings({"SECRETS_SOURCE": value}).secrets_source == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("whsec_one", ["whsec_one"]),
        (" whsec_one ", ["whsec_one"]),
        ("whsec_one,whsec_two", ["whsec_one", "whsec_two"]),
        (" whsec_one , whsec_two ", ["whsec_one", "whsec_two"]),
        ("whsec_one,,whsec_two,", ["whsec_one", "whsec_two"]),
        (",whsec_one, ,\twhsec_two , ,", ["whsec_one", "whsec_two"]),
    ],
)
def test_webhook_secrets_comma_separated(raw, expected):
    environ = {"STRIPE_WEBHOOK_SECRET": raw}
    assert webhook_secrets(load_settings(environ), environ) == expected


@pytest.mark.parametrize(
    "environ", [{}, {"STRIPE_WEBHOOK_SECRET": ""}, {"STRIPE_WEBHOOK_SECRET": " , ,, "}], ids=repr
)
def test_missing_webhook_secret_is_configuration_error(environ):
    with pytest.raises(ConfigurationError):
        webhook_secrets(load_settings(environ), environ)


@pytest.mark.parametrize(
    "raw",
    ["", "  ", "disabled", "DISABLED", " Disabled ", "none", "off", "-"],
    ids=repr,
)
def test_tiktok_access_token_switched_off(raw):
    environ = {"TIKTOK_ACCESS_TOKEN": raw}
    assert access_token(load_settings(environ), "tiktok", environ) == ""


def test_tiktok_access_token_unset():
    assert access_token(load_settings({}), "tiktok", {}) == ""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("abc123token", "abc123token"), ("  abc123token\n", "abc123token"), ("AbC", "AbC")],
)
def test_tiktok_access_token_is_returned_trimmed(raw, expected):
    environ = {"TIKTOK_ACCESS_TOKEN": raw}
    assert access_token(load_settings(environ), "tiktok", environ) == expected


@pytest.mark.parametrize("source", ["ssm", "secretsmanager"])
def test_stored_secret_without_a_name_is_configuration_error(source):
    settings = load_settings({"SECRETS_SOURCE": source})
    with pytest.raises(ConfigurationError):
        read_secret(settings, "TIKTOK_ACCESS_TOKEN", settings.tiktok_access_token_name, {})
    with pytest.raises(ConfigurationError):
        webhook_secrets(settings, {"STRIPE_WEBHOOK_SECRET": "whsec_ignored_when_not_env"})


def test_require_tables():
    require_tables(load_settings({"SESSIONS_TABLE_NAME": "s", "CUSTOMERS_TABLE_NAME": "c"}))
    for environ in ({}, {"SESSIONS_TABLE_NAME": "s"}, {"CUSTOMERS_TABLE_NAME": "c"}):
        with pytest.raises(ConfigurationError):
            require_tables(load_settings(environ))


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


@pytest.mark.parametrize("source", ["ssm", "secretsmanager"])
def test_stored_secrets_are_read_with_bounded_timeouts_and_retries(source, monkeypatch):
    """botocore's defaults (60 s to connect, 60 s to read) would outlast the webhook's 10 s: the
    secret stores get the same short timeouts and bounded retries as DynamoDB."""
    from checkout_conversions import config

    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
    }.items():
        monkeypatch.setenv(name, value)  # creating a client resolves credentials, never the network here
    provider = config._new_provider(source)
    client_config = provider.client.meta.config

    assert client_config.connect_timeout == 0.5
    assert client_config.read_timeout == 1.5
    assert client_config.retries == {"mode": "standard", "total_max_attempts": 3}


def test_the_dynamodb_client_makes_three_attempts_in_all(monkeypatch):
    """Three attempts of 0.5 s + 1.5 s at most, with standard backoff, end inside the webhook's 10 s."""
    from checkout_conversions.clients import dynamodb_client

    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
    }.items():
        monkeypatch.setenv(name, value)
    client_config = dynamodb_client().meta.config

    assert client_config.retries == {"mode": "standard", "total_max_attempts": 3}
    worst_case = 3 * (client_config.connect_timeout + client_config.read_timeout) + 1 + 2
    assert worst_case < 10


# ---------------------------------------------------------------- Stripe API, contents, consent (issue 9)


def stripe_api_key(settings, environ):
    from checkout_conversions.config import stripe_api_key as read_stripe_api_key

    return read_stripe_api_key(settings, environ)


def test_issue_9_defaults():
    settings = load_settings({})
    assert settings.stripe_api_base == "https://api.stripe.com"
    assert settings.stripe_api_timeout_seconds == 5.0
    assert settings.stripe_api_key_name == ""
    assert settings.content_id_source == "price"
    assert settings.require_ad_consent is False
    assert settings.tiktok_limited_data_use is False
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
    assert load_settings({"STRIPE_API_BASE": value}).stripe_api_base == expected


@pytest.mark.parametrize(("value", "expected"), [("2", 2.0), (" 0.5 ", 0.5), ("10", 10.0)])
def test_stripe_api_timeout(value, expected):
    settings = load_settings({"STRIPE_API_TIMEOUT_SECONDS": value})
    assert settings.stripe_api_timeout_seconds == expected
    assert settings.problems == ()


@pytest.mark.parametrize("value", ["0", "11", "five", "-1"])
def test_bad_stripe_api_timeout_falls_back_and_is_reported(value):
    settings = load_settings({"STRIPE_API_TIMEOUT_SECONDS": value})
    assert settings.stripe_api_timeout_seconds == 5.0
    [problem] = settings.problems
    assert "STRIPE_API_TIMEOUT_SECONDS" in problem


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("price", "price"),
        ("product", "product"),
        (" PRODUCT ", "product"),
        ("metadata:sku", "metadata:sku"),
        ("", "price"),
    ],
)
def test_content_id_source(value, expected):
    from checkout_conversions.line_items import ContentIdSource

    settings = load_settings({"CONTENT_ID_SOURCE": value})
    assert settings.content_id_source == expected
    assert settings.problems == ()
    ContentIdSource.parse(settings.content_id_source)  # what the sender does with it: never raises


def test_content_id_source_keeps_the_case_of_the_metadata_key():
    assert load_settings({"CONTENT_ID_SOURCE": "metadata:SKU"}).content_id_source == "metadata:SKU"


@pytest.mark.parametrize("value", ["sku", "prices", "price:x", "metadata:", "metadata: ", "lookup_key", "id"])
def test_invalid_content_id_source_is_reported_and_price_is_used(value):
    settings = load_settings({"CONTENT_ID_SOURCE": value})
    assert settings.content_id_source == "price"
    assert settings == replace(load_settings({}), problems=settings.problems)
    [problem] = settings.problems
    assert "CONTENT_ID_SOURCE" in problem and "price" in problem


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
    assert getattr(settings, name.lower()) is expected
    assert settings.problems == ()


@pytest.mark.parametrize("name", ["REQUIRE_AD_CONSENT", "TIKTOK_LIMITED_DATA_USE"])
@pytest.mark.parametrize("value", ["maybe", "ture", "2", "enabled", "y e s"])
def test_bad_boolean_is_false_and_reported(name, value):
    settings = load_settings({name: value})
    assert getattr(settings, name.lower()) is False
    [problem] = settings.problems
    assert name in problem


def test_stripe_api_key_unset_is_empty():
    assert stripe_api_key(load_settings({}), {}) == ""


@pytest.mark.parametrize(
    "raw", ["", "  ", "disabled", "DISABLED", " Disabled ", "none", "off", "-"], ids=repr
)
def test_stripe_api_key_switched_off(raw):
    environ = {"STRIPE_API_KEY": raw}
    assert stripe_api_key(load_settings(environ), environ) == ""


@pytest.mark.parametrize(
    ("raw", "expected"), [("rk_test_abc", "rk_test_abc"), ("  rk_test_abc\n", "rk_test_abc")]
)
def test_stripe_api_key_from_env_is_trimmed(raw, expected):
    environ = {"STRIPE_API_KEY": raw}
    assert stripe_api_key(load_settings(environ), environ) == expected


@pytest.mark.parametrize("source", ["ssm", "secretsmanager"])
def test_stored_stripe_api_key_is_optional(source, monkeypatch):
    """Without STRIPE_API_KEY_NAME there is no key (no contents), not a configuration error, and
    the store is never asked (no network: the unit tests' sockets are blocked too)."""
    from checkout_conversions import config

    def never(*args, **kwargs):
        raise AssertionError("the secret store must not be read")

    monkeypatch.setattr(config, "_read_stored_secret", never)
    environ = {"SECRETS_SOURCE": source, "STRIPE_API_KEY": "rk_test_ignored_when_not_env"}
    assert stripe_api_key(load_settings(environ), environ) == ""


@pytest.mark.parametrize(("stored", "expected"), [(" rk_live_abc\n", "rk_live_abc"), ("disabled", "")])
def test_stored_stripe_api_key_is_read_by_name(stored, expected, monkeypatch):
    from checkout_conversions import config

    reads = []
    monkeypatch.setattr(config, "_read_stored_secret", lambda *args: reads.append(args) or stored)
    environ = {
        "SECRETS_SOURCE": "ssm",
        "STRIPE_API_KEY_NAME": "/shop/stripe-api-key",
        "SECRETS_CACHE_SECONDS": "60",
    }
    assert stripe_api_key(load_settings(environ), environ) == expected
    assert reads == [("ssm", "/shop/stripe-api-key", 60)]
