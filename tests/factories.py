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
