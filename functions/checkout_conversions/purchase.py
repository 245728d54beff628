"""The one platform-neutral purchase: what was paid, and what is known of the buyer.

The webhook builds it from the checkout session (conversion.py) and stores it on the session
item, inside the provisioning transaction (the outbox). At send time each destination builds its
own event from it, with its own normalisation and hashing (tiktok_payload.py for TikTok), so
nothing slow or heavy (phone number parsing, Stripe API calls) happens while the buyer waits.
Values are kept as Stripe and the merchant's metadata give them, trimmed and bounded, never
hashed here; the item is encrypted at rest and the stored purchase is deleted once delivered.
"""

import json
from dataclasses import asdict, dataclass, fields
from decimal import Decimal
from typing import Any

from checkout_conversions.currency import to_decimal_amount


@dataclass(frozen=True)
class Buyer:
    email: str | None = None  # trimmed, lower-cased
    phone: str | None = None  # as entered at checkout
    first_name: str | None = None
    last_name: str | None = None
    zip_code: str | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = None  # ISO 3166 alpha-2, upper-case (the billing address's)
    external_id: str | None = None  # the merchant's user id, else the Stripe customer id
    ttclid: str | None = None
    ttp: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    locale: str | None = None  # BCP 47 (en-US), only when the merchant passes one
    fbp: str | None = None  # Meta's browser id (the _fbp cookie)
    fbc: str | None = None  # Meta's click id (the _fbc cookie, or built from the landing fbclid)


@dataclass(frozen=True)
class Purchase:
    event_id: str
    event_time: int
    order_id: str
    buyer: Buyer
    amount: int | None = None  # in the currency's minor units, as Stripe counts them
    currency: str | None = None  # ISO 4217, upper-case
    page_url: str | None = None
    page_referrer: str | None = None
    limited_data_use: bool | None = None  # the merchant's choice for this purchase, if it made one

    @property
    def value(self) -> Decimal | None:
        if self.amount is None or not self.currency:
            return None
        return to_decimal_amount(self.amount, self.currency)

    def to_json(self) -> str:
        data = asdict(self)
        data["buyer"] = _present(data["buyer"])
        return json.dumps(_present(data), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "Purchase":
        data = json.loads(text)
        buyer_fields = {field.name for field in fields(Buyer)}
        buyer = Buyer(**{key: value for key, value in data.pop("buyer", {}).items() if key in buyer_fields})
        known = {field.name for field in fields(cls)}
        return cls(buyer=buyer, **{key: value for key, value in data.items() if key in known})


@dataclass(frozen=True)
class Content:
    """One line item of the purchase (read from Stripe's API at send time, never stored)."""

    content_id: str | None
    content_name: str | None
    quantity: int
    unit_amount: int | None  # minor units of `currency`
    currency: str | None


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}
