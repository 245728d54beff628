"""The platform-neutral purchase: what was paid, what is known of the buyer, and their ad choices."""

# Built from Stripe's objects by the Stripe side, stored on each delivery item in the provisioning
# transaction (the outbox), and turned into each platform's own event at send time. Values are kept
# as Stripe and the merchant's metadata give them, trimmed and bounded, never hashed here.

import json
from dataclasses import asdict, dataclass, fields
from decimal import Decimal
from enum import StrEnum
from typing import Any

from checkout_conversions.values import to_decimal_amount

CONTENT_ID_SOURCES = "price, product or metadata:<key>"


class Consent(StrEnum):
    """The buyer's choice from the merchant's consent banner (`ad_consent` metadata)."""

    GRANTED = "granted"
    DENIED = "denied"
    UNKNOWN = "unknown"  # the merchant passed none, or something else

    @classmethod
    def parse(cls, raw: object) -> "Consent":
        value = raw.strip().lower() if isinstance(raw, str) else ""
        return cls(value) if value in (cls.GRANTED, cls.DENIED) else cls.UNKNOWN


class PurchaseKind(StrEnum):
    """What a delivery reports: a checkout, or a subscription's renewal invoice."""

    CHECKOUT = "checkout"
    RENEWAL = "renewal"


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


class ContentIdKind(StrEnum):
    PRICE = "price"
    PRODUCT = "product"
    METADATA = "metadata"


@dataclass(frozen=True)
class ContentIdSource:
    """What identifies a line item in the merchant's catalogue: the price id, the product id, or a
    product metadata key (`metadata:sku`)."""

    kind: ContentIdKind = ContentIdKind.PRICE
    metadata_key: str = ""

    @classmethod
    def parse(cls, setting: str) -> "ContentIdSource":
        kind, colon, key = setting.partition(":")
        kind, key = kind.strip().lower(), key.strip()  # a metadata key keeps its case: Stripe's do
        if kind in (ContentIdKind.PRICE, ContentIdKind.PRODUCT) and not colon:
            return cls(ContentIdKind(kind))
        if kind == ContentIdKind.METADATA and key:
            return cls(ContentIdKind.METADATA, key)
        raise ValueError(f"{setting!r} is not {CONTENT_ID_SOURCES}")


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
