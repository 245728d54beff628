"""Reading secrets (secrets.py): a platform's token from the environment, SSM or Secrets Manager,
switched off by an empty or 'disabled' value, and the stores' clients with bounded timeouts."""

import pytest

from checkout_conversions import secrets
from checkout_conversions.secrets import ConfigurationError, SecretSource
from checkout_conversions.settings import Settings, load_settings
from checkout_conversions.webhook import _signing_secrets


def access_token(settings: Settings, destination: str, environ: dict[str, str]) -> str:
    """A destination's token as the sender reads it: "" when it is switched off."""
    return secrets.read_switch(settings.destination(destination).access_token, settings.secrets, environ)


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
def test_stored_secret_without_a_name_is_configuration_error(source, monkeypatch):
    settings = load_settings({"SECRETS_SOURCE": source})
    with pytest.raises(ConfigurationError):
        secrets.read(settings.destination("tiktok").access_token, settings.secrets, {})
    # The webhook reads its signing secrets from the process environment.
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_ignored_when_not_env")
    with pytest.raises(ConfigurationError):
        _signing_secrets(settings)


@pytest.mark.parametrize("source", ["ssm", "secretsmanager"])
def test_stored_secrets_are_read_with_bounded_timeouts_and_retries(source, monkeypatch):
    """botocore's defaults (60 s to connect, 60 s to read) would outlast the webhook's 10 s: the
    secret stores get the same short timeouts and bounded retries as DynamoDB."""
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
    }.items():
        monkeypatch.setenv(name, value)  # creating a client resolves credentials, never the network here
    provider = secrets._new_provider(SecretSource(source))
    client_config = provider.client.meta.config

    assert client_config.connect_timeout == 0.5
    assert client_config.read_timeout == 1.5
    assert client_config.retries == {"mode": "standard", "total_max_attempts": 3}


@pytest.mark.parametrize("source", ["ssm", "secretsmanager"])
def test_a_fresh_read_bypasses_the_cache_and_an_ordinary_one_uses_it(source, monkeypatch):
    """Issue 17: a token the platform refused is read again from the store at once (Powertools'
    force_fetch, which caches what it reads), not after SECRETS_CACHE_SECONDS."""

    class Provider:
        def __init__(self):
            self.calls = []

        def get(self, name, **options):
            self.calls.append((name, options))
            return " token-from-the-store\n"

    provider = Provider()
    monkeypatch.setattr(secrets, "_providers", {SecretSource(source): provider})
    environ = {"SECRETS_SOURCE": source, "TIKTOK_ACCESS_TOKEN_NAME": "/shop/tiktok-token"}
    settings = load_settings({**environ, "SECRETS_CACHE_SECONDS": "300"})
    ref = settings.destination("tiktok").access_token

    assert secrets.read_switch(ref, settings.secrets, environ) == "token-from-the-store"
    assert secrets.read_switch(ref, settings.secrets, environ, fresh=True) == "token-from-the-store"

    assert [(name, options["max_age"], options["force_fetch"]) for name, options in provider.calls] == [
        ("/shop/tiktok-token", 300, False),
        ("/shop/tiktok-token", 300, True),
    ]


def test_a_fresh_read_from_the_environment_reads_it_again():
    environ = {"TIKTOK_ACCESS_TOKEN": "old"}
    settings = load_settings(environ)
    ref = settings.destination("tiktok").access_token
    assert secrets.read_switch(ref, settings.secrets, environ) == "old"
    environ["TIKTOK_ACCESS_TOKEN"] = "new"
    assert secrets.read_switch(ref, settings.secrets, environ, fresh=True) == "new"
