"""The sample events in events/ are what `make run`, `make demo` and `sam local invoke` send: they
must keep the shapes of Stripe's own objects (../shared/fixtures/external/stripe, when present)
and ask of the function what samples.json says."""

import json
from pathlib import Path

import pytest

from checkout_conversions.stripe_side.events import classify, subscription_of

ROOT = Path(__file__).resolve().parents[3]
EVENTS = ROOT / "events"
STRIPE_FIXTURES = ROOT.parent / "shared" / "fixtures" / "external" / "stripe"
SAMPLES = sorted(path for path in EVENTS.glob("*.json") if path.name != "samples.json")


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", SAMPLES, ids=lambda path: path.stem)
def test_every_sample_is_a_stripe_event_the_function_can_decide(path):
    event = load(path)
    assert event["object"] == "event" and event["id"].startswith("evt_")
    assert event["api_version"] == "2025-09-30.clover"
    assert event["livemode"] is False  # test mode only: samples must never look live
    classify(event)  # never raises: no sample is malformed


def test_the_manifest_names_every_sample_and_only_samples():
    manifest = load(EVENTS / "samples.json")["samples"]
    assert {entry["file"] for entry in manifest} == {path.name for path in SAMPLES}


@pytest.mark.skipif(not STRIPE_FIXTURES.is_dir(), reason="Stripe's fixtures are not beside this checkout")
@pytest.mark.parametrize("name", ["customer_subscription_deleted", "customer_subscription_updated"])
def test_subscription_samples_have_the_shape_of_stripes_fixture(name):
    fixture = load(STRIPE_FIXTURES / "fixtures3.subscription.json")
    sample = load(EVENTS / f"{name}.json")["data"]["object"]
    assert set(sample) == set(fixture)
    assert {
        key: type(value) for key, value in sample.items() if fixture[key] is not None and value is not None
    } == {
        key: type(fixture[key])
        for key, value in sample.items()
        if fixture[key] is not None and value is not None
    }


def test_the_subscription_samples_follow_sample_one():
    """The demo's story: sample 1's subscription gets its first invoice, a renewal, a cancellation
    and a late update, all for the same customer and subscription."""
    checkout = load(EVENTS / "checkout_session_completed.json")["data"]["object"]
    first = load(EVENTS / "invoice_paid_subscription_create.json")["data"]["object"]
    renewal = load(EVENTS / "invoice_paid.json")["data"]["object"]
    deleted = load(EVENTS / "customer_subscription_deleted.json")["data"]["object"]
    updated = load(EVENTS / "customer_subscription_updated.json")["data"]["object"]

    assert checkout["mode"] == "subscription"
    assert subscription_of(first) == subscription_of(renewal) == checkout["subscription"]
    assert deleted["id"] == updated["id"] == checkout["subscription"]
    assert {first["customer"], renewal["customer"], deleted["customer"], updated["customer"]} == {
        checkout["customer"]
    }
    assert (first["billing_reason"], renewal["billing_reason"]) == (
        "subscription_create",
        "subscription_cycle",
    )
    assert (deleted["status"], updated["status"]) == ("canceled", "active")
    first_end = max(line["period"]["end"] for line in first["lines"]["data"])
    renewal_end = max(line["period"]["end"] for line in renewal["lines"]["data"])
    assert first_end < renewal_end
