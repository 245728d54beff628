"""A paid checkout session, mapped to the customer record and the platform-neutral purchase."""

# The buyer's details (email, phone, name, billing address) come from Stripe's `customer_details`;
# the browser signals (ttclid, _ttp cookie, IP, User-Agent, page URL) and the buyer's ad choices
# (consent, limited data use, locale) from the session's `metadata`, filled by the merchant's
# backend when it created the session. The webhook request's own IP and User-Agent are Stripe's
# servers', never the buyer's, so they are never used.

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from checkout_conversions.purchase import Buyer, Consent, Purchase
from checkout_conversions.stripe_side.events import CheckoutPaid
from checkout_conversions.values import flag, is_stripe_id, mapping, text, truncated, whole_number

# The metadata keys the merchant's backend puts on the Checkout Session (docs/configuration.md:
# "Checkout Session metadata"): the buyer's browser signals, and their choices about ad measurement.
METADATA_KEYS = (
    "ttclid",
    "ttp",
    "client_ip",
    "user_agent",
    "page_url",
    "page_referrer",
    "locale",
    "ad_consent",
    "limited_data_use",
    "fbp",
    "fbc",
    "fbclid",
)
METADATA_VALUE_LIMIT = 500  # Stripe's own limit for a metadata value
ADDRESS_LIMIT = 200
NAME_LIMIT = 500
MAX_AMOUNT = 10**12  # far above any Stripe amount; keeps hostile numbers out of DynamoDB
_BCP47 = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,3}$")


@dataclass(frozen=True)
class Checkout:
    """What provisioning writes for one paid session: the customer record, the purchase to report
    and the buyer's ad consent."""

    session_id: str
    customer: dict[str, Any]
    purchase: Purchase
    consent: Consent
    subscription_id: str | None  # the subscription it started, with a Stripe customer to own it
    stripe_customer_id: str | None


def read_checkout(paid: CheckoutPaid, now: datetime) -> Checkout:
    session = paid.session
    customer = customer_record(session, paid.event, now)
    subscription_id = customer.get("subscription_id")
    stripe_customer = customer.get("stripe_customer_id")
    starts_subscription = (
        session.get("mode") == "subscription"
        and is_stripe_id(subscription_id, "sub_")
        and is_stripe_id(stripe_customer, "cus_")
    )
    return Checkout(
        session_id=session["id"],
        customer=customer,
        purchase=purchase(session, paid.event),
        consent=ad_consent(session),
        subscription_id=subscription_id if starts_subscription else None,
        stripe_customer_id=stripe_customer_id(session),
    )


def customer_details(session: dict[str, Any]) -> dict[str, Any]:
    return mapping(session.get("customer_details"))


def stripe_customer_id(session: dict[str, Any]) -> str | None:
    customer = session.get("customer")
    if isinstance(customer, dict):  # expanded
        customer = customer.get("id")
    return text(customer)


def normalise_email(raw: object) -> str | None:
    """Trimmed and lower-cased, or None when it is not an address."""
    if not isinstance(raw, str):
        return None
    email = raw.strip().lower()
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain or len(email) > 254 or any(c.isspace() for c in email):
        return None
    return email


def buyer_email(session: dict[str, Any]) -> str | None:
    return normalise_email(customer_details(session).get("email")) or normalise_email(
        session.get("customer_email")
    )


def customer_key(session: dict[str, Any]) -> str:
    """Stripe's customer id; guest checkouts have none and are keyed by normalised email."""
    customer_id = stripe_customer_id(session)
    if customer_id:
        return customer_id
    email = buyer_email(session)
    if email:
        return f"email#{email}"
    return f"session#{session['id']}"


def customer_record(session: dict[str, Any], event: dict[str, Any], now: datetime) -> dict[str, Any]:
    details = customer_details(session)
    subscription = session.get("subscription")
    if isinstance(subscription, dict):
        subscription = subscription.get("id")
    record = {
        "customer_id": customer_key(session),
        "checkout_session_id": session["id"],
        "stripe_customer_id": stripe_customer_id(session),
        "email": buyer_email(session),
        "name": truncated(details.get("name"), NAME_LIMIT),
        "subscription_id": text(subscription),
        "client_reference_id": text(session.get("client_reference_id")),
        "mode": text(session.get("mode")),
        "amount_total": whole_number(session.get("amount_total"), MAX_AMOUNT),
        "currency": currency(session.get("currency")),
        "livemode": bool(event.get("livemode", session.get("livemode", False))),
        "stripe_event_id": event["id"],
        "provisioned_at": now.astimezone(UTC).isoformat(timespec="milliseconds"),
    }
    return {key: value for key, value in record.items() if value is not None}


def purchase(session: dict[str, Any], event: dict[str, Any]) -> Purchase:
    """The platform-neutral purchase of a paid session, as Stripe and the metadata give it."""
    event_created: int = event["created"]
    details = customer_details(session)
    address = mapping(details.get("address"))
    metadata = _metadata(session)
    first_name, last_name = person_names(details)
    return Purchase(
        event_id=session["id"],
        event_time=event_created,
        order_id=session["id"],
        amount=whole_number(session.get("amount_total"), MAX_AMOUNT),
        currency=currency(session.get("currency")),
        buyer=Buyer(
            email=buyer_email(session),
            phone=text(details.get("phone"), NAME_LIMIT),
            first_name=first_name,
            last_name=last_name,
            zip_code=text(address.get("postal_code"), ADDRESS_LIMIT),
            city=text(address.get("city"), ADDRESS_LIMIT),
            state=text(address.get("state"), ADDRESS_LIMIT),
            country=country(address.get("country")),
            external_id=text(session.get("client_reference_id")) or stripe_customer_id(session),
            ttclid=metadata.get("ttclid"),
            ttp=metadata.get("ttp"),
            ip=metadata.get("client_ip"),
            user_agent=metadata.get("user_agent"),
            locale=_locale(metadata.get("locale")),
            fbp=metadata.get("fbp"),
            fbc=metadata.get("fbc")
            or meta_click_id(metadata.get("fbclid"), session.get("created"), event_created),
        ),
        page_url=metadata.get("page_url"),
        page_referrer=metadata.get("page_referrer"),
        limited_data_use=flag(metadata.get("limited_data_use")),
    )


def meta_click_id(fbclid: str | None, session_created: object, event_created: int) -> str | None:
    """Meta's `fbc` from a landing page's fbclid, as its Pixel would have written the _fbc cookie:
    fb.1.<when the fbclid was first seen, in ms>.<fbclid, case kept>. The merchant's backend saw it
    when it created the session, so the session's creation time stands in for the first sight
    (the event's, when the session has none)."""
    if not fbclid:
        return None
    seen_at = whole_number(session_created, MAX_AMOUNT) or event_created
    return f"fb.1.{int(seen_at) * 1000}.{fbclid}"


def person_names(details: dict[str, Any]) -> tuple[str | None, str | None]:
    """(first name, last name) of the buyer, never of a business.

    Stripe's `individual_name` when present (newer API versions); otherwise, unless the session
    names a business (`business_name`, whose `name` may then be the business's), the first and the
    last word of `name`. One word is a first name only."""
    name = text(details.get("individual_name"), NAME_LIMIT)
    if name is None:
        if text(details.get("business_name"), NAME_LIMIT):
            return None, None
        name = text(details.get("name"), NAME_LIMIT)
    words = name.split() if name else []
    if not words:
        return None, None
    return words[0], (words[-1] if len(words) > 1 else None)


def ad_consent(session: dict[str, Any]) -> Consent:
    """The buyer's choice from the merchant's consent banner (`ad_consent` metadata)."""
    return Consent.parse(_metadata(session).get("ad_consent"))


def currency(value: object) -> str | None:
    code = text(value)
    return code.upper() if code and len(code) == 3 and code.isascii() and code.isalpha() else None


def country(value: object) -> str | None:
    code = text(value)
    return code.upper() if code and len(code) == 2 and code.isascii() and code.isalpha() else None


def _metadata(session: dict[str, Any]) -> dict[str, str]:
    raw = mapping(session.get("metadata"))
    values = {key: text(raw.get(key), METADATA_VALUE_LIMIT) for key in METADATA_KEYS}
    return {key: value for key, value in values.items() if value is not None}


def _locale(value: str | None) -> str | None:
    """A BCP 47 tag, `pt_BR` written the BCP 47 way (`pt-BR`)."""
    return value.replace("_", "-") if value and _BCP47.match(value) else None
