"""Stripe-shaped subscription objects for the tests of a subscription's life after its Checkout
(issue 10): the renewal sample events/invoice_paid.json and Stripe's own subscription fixture,
changed per case. Shared by test_events.py (what the events ask of us) and test_invoices.py."""

import copy
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
STRIPE_FIXTURE = ROOT.parent / "shared" / "fixtures" / "external" / "stripe" / "fixtures3.subscription.json"


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


RENEWAL_EVENT = _load(ROOT / "events" / "invoice_paid.json")
INVOICE_ID = "in_1SLocalSample0000000008"
SUBSCRIPTION_ID = "sub_1SLocalSample0000000001"
CUSTOMER_ID = "cus_TLocalSample0001"
PERIOD_END = 1765281600  # the renewal's line: period.end
PAID_AT = 1762693200  # status_transitions.paid_at (and the event's created)
# Stripe's own subscription object (beside this checkout); a fresh clone without it uses the
# sample built from it, which has the same shape (tests/unit/stripe_side/test_sample_events.py).
STRIPE_SUBSCRIPTION = (
    _load(STRIPE_FIXTURE)
    if STRIPE_FIXTURE.is_file()
    else _load(ROOT / "events" / "customer_subscription_updated.json")["data"]["object"]
)
ALL_STATUSES = (
    "active",
    "trialing",
    "past_due",
    "unpaid",
    "canceled",
    "incomplete",
    "incomplete_expired",
    "paused",
)
MISSING = object()


def invoice(**changes) -> dict:
    """The renewal sample's invoice; a value MISSING removes the key."""
    value = copy.deepcopy(RENEWAL_EVENT["data"]["object"])
    for key, new in changes.items():
        if new is MISSING:
            value.pop(key, None)
        else:
            value[key] = new
    return value


def invoice_event(obj=None, **changes) -> dict:
    event = copy.deepcopy(RENEWAL_EVENT)
    event["data"]["object"] = invoice() if obj is None else obj
    for key, new in changes.items():
        if new is MISSING:
            event.pop(key, None)
        else:
            event[key] = new
    return event


def subscription(**changes) -> dict:
    value = copy.deepcopy(STRIPE_SUBSCRIPTION)
    for key, new in changes.items():
        if new is MISSING:
            value.pop(key, None)
        else:
            value[key] = new
    return value


def subscription_event(obj=None, event_type="customer.subscription.updated", **changes) -> dict:
    event = {
        "id": "evt_1SLocalSample0000000099",
        "object": "event",
        "api_version": "2025-09-30.clover",
        "created": 1762779600,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
        "data": {"object": subscription() if obj is None else obj},
    }
    for key, new in changes.items():
        if new is MISSING:
            event.pop(key, None)
        else:
            event[key] = new
    return event


def lines(*periods) -> dict:
    """An invoice's `lines` list with one line per period (a dict, or any junk value)."""
    template = RENEWAL_EVENT["data"]["object"]["lines"]
    data = []
    for period in periods:
        line = copy.deepcopy(template["data"][0])
        if period is MISSING:
            line.pop("period")
        else:
            line["period"] = period
        data.append(line)
    return {**copy.deepcopy(template), "data": data, "total_count": len(data)}
