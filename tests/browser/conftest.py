"""The browser-side kit's tests: examples/ (the merchant's pages and checkout backends) checked
against what the webhook reads. No test leaves loopback."""

import importlib.util
from pathlib import Path

import pytest

from tests.browser.checkout_standin import CheckoutStandIn

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def load_flask_example():
    spec = importlib.util.spec_from_file_location(
        "checkout_backend", EXAMPLES / "python" / "checkout_backend.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def backend():
    """examples/python/checkout_backend.py, imported from its file (it is not a package)."""
    return load_flask_example()


@pytest.fixture(scope="session")
def _running_standin():
    standin = CheckoutStandIn().start()
    yield standin
    standin.stop()


@pytest.fixture
def stripe_standin(_running_standin, monkeypatch):
    """Stripe's API on loopback, empty, with the stripe library pointed at it."""
    import stripe

    _running_standin.reset()
    monkeypatch.setattr(stripe, "api_base", _running_standin.url)
    monkeypatch.setattr(stripe, "api_key", "sk_test_standin")
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    return _running_standin
