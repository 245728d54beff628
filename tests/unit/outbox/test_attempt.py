"""What one attempt at a delivery needs before it sends (outbox/sending.py): the Stripe API key that
reads line items (optional), and the worst case of preparing and sending one request."""

from unittest import mock

import httpx
import pytest

from checkout_conversions import destinations
from checkout_conversions.aws import WORST_CASE_CALL_SECONDS
from checkout_conversions.outbox import sending
from checkout_conversions.outbox.sender import RECORD_MARGIN_SECONDS
from checkout_conversions.outbox.sending import Sending
from checkout_conversions.settings import Settings, load_settings

# ---------------------------------------------------------------- the Stripe API key (issue 9)


def stripe_api_key(settings: Settings, environ: dict[str, str]) -> str:
    """The key the sender reads line items with, or "" when it reads none (no contents sent)."""
    keys = []

    def new_stripe_client(api_key, api_base, timeout_seconds):
        keys.append(api_key)
        return object()

    with mock.patch.object(sending, "_stripe_client", new_stripe_client):
        reader = sending._line_items_reader(settings, environ)
    if reader is None:
        assert keys == []
        return ""
    [key] = keys
    return key


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
    from checkout_conversions import secrets

    def never(*args, **kwargs):
        raise AssertionError("the secret store must not be read")

    monkeypatch.setattr(secrets, "_read_stored", never)
    environ = {"SECRETS_SOURCE": source, "STRIPE_API_KEY": "rk_test_ignored_when_not_env"}
    assert stripe_api_key(load_settings(environ), environ) == ""


@pytest.mark.parametrize(("stored", "expected"), [(" rk_live_abc\n", "rk_live_abc"), ("disabled", "")])
def test_stored_stripe_api_key_is_read_by_name(stored, expected, monkeypatch):
    from checkout_conversions import secrets

    reads = []
    monkeypatch.setattr(secrets, "_read_stored", lambda *args: reads.append(args) or stored)
    environ = {
        "SECRETS_SOURCE": "ssm",
        "STRIPE_API_KEY_NAME": "/shop/stripe-api-key",
        "SECRETS_CACHE_SECONDS": "60",
    }
    assert stripe_api_key(load_settings(environ), environ) == expected
    assert reads == [("ssm", "/shop/stripe-api-key", 60)]


# ---------------------------------------------------------------- the sender's budget


def worst_case_seconds(destination, settings: Settings, reads_line_items: bool) -> float:
    """How long preparing and sending one request to `destination` can take at most."""
    with httpx.Client() as http:
        sending = Sending(
            destination=destination,
            platform=destinations.platform(destination),
            access_token="token",
            read_line_items=(lambda session_id: []) if reads_line_items else None,
            http=http,
            settings=settings,
        )
        return sending.worst_case_seconds


def test_the_senders_budget_counts_the_line_items_read_only_when_there_is_a_key():
    settings = load_settings(
        {"TIKTOK_TIMEOUT_SECONDS": "5", "META_TIMEOUT_SECONDS": "2", "STRIPE_API_TIMEOUT_SECONDS": "3"}
    )
    tiktok, meta = settings.destination("tiktok"), settings.destination("meta")

    # A POST is one deadline of the platform's timeout; a refused token adds its re-read (one AWS
    # call with its retries) and a second POST.
    refused = WORST_CASE_CALL_SECONDS
    assert worst_case_seconds(tiktok, settings, reads_line_items=False) == 2 * 5 + refused
    assert worst_case_seconds(tiktok, settings, reads_line_items=True) == 2 * 5 + refused + 5 * 3
    assert worst_case_seconds(meta, settings, reads_line_items=True) == 2 * 2 + refused + 5 * 3  # its own
    # With every timeout at its maximum, a send still fits in the sender's 120 s (template.yaml)
    # with its claim and its record.
    slowest = load_settings(
        {"TIKTOK_TIMEOUT_SECONDS": "10", "META_TIMEOUT_SECONDS": "10", "STRIPE_API_TIMEOUT_SECONDS": "10"}
    )
    for destination in (slowest.destination("tiktok"), slowest.destination("meta")):
        assert worst_case_seconds(destination, slowest, reads_line_items=True) + RECORD_MARGIN_SECONDS <= 120
