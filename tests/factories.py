"""Stripe events shaped like the real thing (API version 2025-xx), built for each test."""

import time
import uuid
from typing import Any


def checkout_session(**overrides: Any) -> dict[str, Any]:
    session_id = overrides.pop("id", f"cs_test_{uuid.uuid4().hex}")
    session = {
        "id": session_id,
        "object": "checkout.session",
        "mode": "payment",
        "status": "complete",
        "payment_status": "paid",
        "livemode": False,
        "amount_subtotal": 1999,
        "amount_total": 1999,
        "currency": "usd",
        "customer": "cus_TestCustomer0001",
        "customer_email": None,
        "customer_details": {
            "email": "  Jane.Doe@Example.COM ",
            "name": "Jane Doe",
            "phone": "+1 (415) 555-0123",
            "address": {"country": "US", "postal_code": "94107"},
        },
        "client_reference_id": "user-42",
        "metadata": {
            "ttclid": "E.C.P.test-ttclid",
            "ttp": "2abcDEFttpCookie",
            "client_ip": "203.0.113.7",
            "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
            "page_url": "https://shop.example.com/checkout",
            "page_referrer": "https://www.tiktok.com/",
        },
        "subscription": None,
        "payment_intent": "pi_test_0001",
        "created": int(time.time()) - 60,
    }
    session.update(overrides)
    return session


def stripe_event(
    event_type: str = "checkout.session.completed",
    session: dict[str, Any] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    session = session if session is not None else checkout_session()
    event = {
        "id": f"evt_test_{uuid.uuid4().hex}",
        "object": "event",
        "api_version": "2025-09-30.clover",
        "created": int(time.time()) - 5,
        "livemode": session.get("livemode", False),
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
        "data": {"object": session},
    }
    event.update(overrides)
    return event


def invoice(
    subscription: str | None = "sub_TestSubscription0001",
    period_end: int | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A paid invoice of a subscription, shaped like events/invoice_paid.json (API 2025-09-30:
    the subscription under `parent.subscription_details`, the period on each line). The first
    payment's by default; `billing_reason="subscription_cycle"` makes it a renewal."""
    now = int(time.time())
    invoice_id = overrides.pop("id", f"in_test_{uuid.uuid4().hex}")
    period_end = period_end if period_end is not None else now + 30 * 86400
    value = {
        "id": invoice_id,
        "object": "invoice",
        "billing_reason": "subscription_create",
        "collection_method": "charge_automatically",
        "status": "paid",
        "livemode": False,
        "customer": "cus_TestCustomer0001",
        "customer_email": " Ada.Lovelace@Example.COM ",
        "customer_name": "Ada Lovelace",
        "customer_phone": "+1 415 555 0101",
        "customer_address": {
            "city": "San Francisco",
            "country": "US",
            "line1": "100 Example Street",
            "line2": None,
            "postal_code": "94107-1234",
            "state": "CA",
        },
        "currency": "usd",
        "amount_due": 2900,
        "amount_paid": 2900,
        "amount_remaining": 0,
        "total": 2900,
        "created": now - 3600,
        "lines": {
            "object": "list",
            "data": [
                {
                    "id": f"il_test_{uuid.uuid4().hex[:16]}",
                    "object": "line_item",
                    "amount": 2900,
                    "currency": "usd",
                    "description": "1 x Pro plan (at $29.00 / month)",
                    "parent": {
                        "type": "subscription_item_details",
                        "subscription_item_details": {
                            "proration": False,
                            "subscription": subscription,
                            "subscription_item": "si_TestItem0001",
                        },
                    },
                    "period": {"start": period_end - 30 * 86400, "end": period_end},
                    "quantity": 1,
                }
            ],
            "has_more": False,
            "total_count": 1,
            "url": f"/v1/invoices/{invoice_id}/lines",
        },
        "parent": {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": subscription},
        },
        "status_transitions": {
            "finalized_at": now - 120,
            "marked_uncollectible_at": None,
            "paid_at": now - 60,
            "voided_at": None,
        },
    }
    value.update(overrides)
    return value


def subscription(**overrides: Any) -> dict[str, Any]:
    """A subscription as customer.subscription.updated / deleted carry it (Stripe's fixture
    fixtures3.subscription.json, trimmed to what matters here)."""
    now = int(time.time())
    value = {
        "id": "sub_TestSubscription0001",
        "object": "subscription",
        "customer": "cus_TestCustomer0001",
        "status": "active",
        "livemode": False,
        "created": now - 86400,
        "currency": "usd",
        "cancel_at_period_end": False,
        "canceled_at": None,
        "ended_at": None,
        "collection_method": "charge_automatically",
        "items": {
            "object": "list",
            "data": [
                {
                    "id": "si_TestItem0001",
                    "object": "subscription_item",
                    "current_period_start": now - 86400,
                    "current_period_end": now + 29 * 86400,
                    "price": {"id": "price_TestProMonthly", "object": "price", "currency": "usd"},
                    "quantity": 1,
                }
            ],
        },
        "metadata": {},
    }
    value.update(overrides)
    return value
