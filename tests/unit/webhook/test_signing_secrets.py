"""The webhook's Stripe signing secrets (webhook/__init__.py): comma-separated, for rotation and for
test and live endpoints, read from the process environment when SECRETS_SOURCE is env."""

import pytest

from checkout_conversions.secrets import ConfigurationError
from checkout_conversions.settings import load_settings
from checkout_conversions.webhook import _signing_secrets


def webhook_secrets(environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The secrets the webhook accepts when its environment is exactly `environ`'s secret."""
    if "STRIPE_WEBHOOK_SECRET" in environ:
        monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", environ["STRIPE_WEBHOOK_SECRET"])
    else:
        monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    return _signing_secrets(load_settings(environ))


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
def test_webhook_secrets_comma_separated(raw, expected, monkeypatch):
    environ = {"STRIPE_WEBHOOK_SECRET": raw}
    assert webhook_secrets(environ, monkeypatch) == expected


@pytest.mark.parametrize(
    "environ", [{}, {"STRIPE_WEBHOOK_SECRET": ""}, {"STRIPE_WEBHOOK_SECRET": " , ,, "}], ids=repr
)
def test_missing_webhook_secret_is_configuration_error(environ, monkeypatch):
    with pytest.raises(ConfigurationError):
        webhook_secrets(environ, monkeypatch)
