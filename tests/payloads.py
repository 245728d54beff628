"""What the TikTok and Meta payload tests share: one purchase, its line items, and ways to look
through a built event."""

import hashlib
from typing import Any

from checkout_conversions.purchase import Buyer, Content, Purchase

SESSION_ID = "cs_test_a1B2c3D4e5F6"
TEE = Content("price_Tee001", "T-shirt", 2, 1499, "USD")
MUG = Content("price_Mug001", "Mug", 1, 999, "USD")


def sha(normalised: str) -> str:
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def purchase(buyer: Buyer, **overrides: Any) -> Purchase:
    """39.97 USD paid on 2025-01-01 in checkout session SESSION_ID by `buyer`."""
    fields = {
        "event_id": SESSION_ID,
        "event_time": 1735689600,
        "order_id": SESSION_ID,
        "buyer": buyer,
        "amount": 3997,
        "currency": "USD",
        "page_url": "https://shop.example.com/checkout",
        "page_referrer": "https://www.tiktok.com/",
    }
    fields.update(overrides)
    return Purchase(**fields)


def walk_keys(value: Any):
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from walk_keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk_keys(item)


def walk_values(value: Any):
    if isinstance(value, dict):
        for item in value.values():
            yield from walk_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk_values(item)
    else:
        yield value
