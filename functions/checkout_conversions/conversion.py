"""The one mapping between the two worlds: a paid checkout session to a customer record and to a
platform-neutral purchase (purchase.py), which each ad platform's sender turns into its event.

The buyer's details (email, phone, name, billing address) come from Stripe's `customer_details`;
the browser signals (ttclid, _ttp cookie, IP, User-Agent, page URL) and the buyer's ad choices
(consent, limited data use, locale) from the session's `metadata`, filled by the merchant's
backend when it created the session. The webhook request's own IP and User-Agent are Stripe's
servers', never the buyer's, so they are never used.
"""

import re
from datetime import UTC, datetime
from typing import Any

from checkout_conversions.purchase import Buyer, Purchase

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
_METADATA_VALUE_LIMIT = 500  # Stripe's own limit for a metadata value
_ADDRESS_LIMIT = 200
_BCP47 = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,3}$")


_ID_LIMIT = 255
_NAME_LIMIT = 500
_MAX_AMOUNT = 10**12  # far above any Stripe amount; keeps hostile numbers out of DynamoDB


def _text(value: Any, limit: int = _ID_LIMIT) -> str | None:
    """A non-empty string no longer than `limit`, else None (ids and keys are never truncated)."""
    if isinstance(value, str) and value.strip() and len(value.strip()) <= limit:
        return value.strip()
    return None


def _truncated(value: Any, limit: int) -> str | None:
    return _text(value[:limit] if isinstance(value, str) else value, limit)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _amount(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_AMOUNT:
        return value
    return None


def _currency(value: Any) -> str | None:
    code = _text(value)
    return code.upper() if code and len(code) == 3 and code.isascii() and code.isalpha() else None


def customer_details(session: dict[str, Any]) -> dict[str, Any]:
    return _mapping(session.get("customer_details"))


def stripe_customer_id(session: dict[str, Any]) -> str | None:
    customer = session.get("customer")
    if isinstance(customer, dict):  # expanded
        customer = customer.get("id")
    return _text(customer)


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
        "name": _truncated(details.get("name"), _NAME_LIMIT),
        "subscription_id": _text(subscription),
        "client_reference_id": _text(session.get("client_reference_id")),
        "mode": _text(session.get("mode")),
        "amount_total": _amount(session.get("amount_total")),
        "currency": _currency(session.get("currency")),
        "livemode": bool(event.get("livemode", session.get("livemode", False))),
        "stripe_event_id": event["id"],
        "provisioned_at": now.astimezone(UTC).isoformat(timespec="milliseconds"),
    }
    return {key: value for key, value in record.items() if value is not None}


def purchase(session: dict[str, Any], event: dict[str, Any]) -> Purchase:
    """The platform-neutral purchase of a paid session, as Stripe and the metadata give it."""
    details = customer_details(session)
    address = _mapping(details.get("address"))
    metadata = _metadata(session)
    first_name, last_name = person_names(details)
    return Purchase(
        event_id=session["id"],
        event_time=event["created"],
        order_id=session["id"],
        amount=_amount(session.get("amount_total")),
        currency=_currency(session.get("currency")),
        buyer=Buyer(
            email=buyer_email(session),
            phone=_text(details.get("phone"), _NAME_LIMIT),
            first_name=first_name,
            last_name=last_name,
            zip_code=_text(address.get("postal_code"), _ADDRESS_LIMIT),
            city=_text(address.get("city"), _ADDRESS_LIMIT),
            state=_text(address.get("state"), _ADDRESS_LIMIT),
            country=_country(address.get("country")),
            external_id=_text(session.get("client_reference_id")) or stripe_customer_id(session),
            ttclid=metadata.get("ttclid"),
            ttp=metadata.get("ttp"),
            ip=metadata.get("client_ip"),
            user_agent=metadata.get("user_agent"),
            locale=_locale(metadata.get("locale")),
            fbp=metadata.get("fbp"),
            fbc=metadata.get("fbc")
            or meta_click_id(metadata.get("fbclid"), session.get("created"), event["created"]),
        ),
        page_url=metadata.get("page_url"),
        page_referrer=metadata.get("page_referrer"),
        limited_data_use=_flag(metadata.get("limited_data_use")),
    )


def renewal_purchase(invoice: dict[str, Any], event_time: int, external_id: str | None) -> Purchase:
    """A paid renewal invoice as a platform-neutral purchase: the buyer as the invoice names them,
    and the external id of the original purchase (kept on the subscription record), so that the
    ad platform joins the two."""
    address = _mapping(invoice.get("customer_address"))
    first_name, last_name = person_names({"name": invoice.get("customer_name")})
    return Purchase(
        event_id=invoice["id"],
        event_time=event_time,
        order_id=invoice["id"],
        amount=_amount(invoice.get("amount_paid")),
        currency=_currency(invoice.get("currency")),
        buyer=Buyer(
            email=normalise_email(invoice.get("customer_email")),
            phone=_text(invoice.get("customer_phone"), _NAME_LIMIT),
            first_name=first_name,
            last_name=last_name,
            zip_code=_text(address.get("postal_code"), _ADDRESS_LIMIT),
            city=_text(address.get("city"), _ADDRESS_LIMIT),
            state=_text(address.get("state"), _ADDRESS_LIMIT),
            country=_country(address.get("country")),
            external_id=_text(external_id) or _text(invoice.get("customer")),
        ),
    )


def meta_click_id(fbclid: str | None, session_created: Any, event_created: int) -> str | None:
    """Meta's `fbc` from a landing page's fbclid, as its Pixel would have written the _fbc cookie:
    fb.1.<when the fbclid was first seen, in ms>.<fbclid, case kept>. The merchant's backend saw it
    when it created the session, so the session's creation time stands in for the first sight
    (the event's, when the session has none)."""
    if not fbclid:
        return None
    seen_at = session_created if _amount(session_created) else event_created
    return f"fb.1.{int(seen_at) * 1000}.{fbclid}"


def person_names(details: dict[str, Any]) -> tuple[str | None, str | None]:
    """(first name, last name) of the buyer, never of a business.

    Stripe's `individual_name` when present (newer API versions); otherwise, unless the session
    names a business (`business_name`, whose `name` may then be the business's), the first and the
    last word of `name`. One word is a first name only."""
    name = _text(details.get("individual_name"), _NAME_LIMIT)
    if name is None:
        if _text(details.get("business_name"), _NAME_LIMIT):
            return None, None
        name = _text(details.get("name"), _NAME_LIMIT)
    words = name.split() if name else []
    if not words:
        return None, None
    return words[0], (words[-1] if len(words) > 1 else None)


def ad_consent(session: dict[str, Any]) -> str | None:
    """The buyer's choice from the merchant's consent banner (`ad_consent` metadata): granted,
    denied, or None when the merchant passed none (or something else)."""
    value = (_metadata(session).get("ad_consent") or "").lower()
    return value if value in ("granted", "denied") else None


def _metadata(session: dict[str, Any]) -> dict[str, str]:
    raw = _mapping(session.get("metadata"))
    values = {key: _text(raw.get(key), _METADATA_VALUE_LIMIT) for key in METADATA_KEYS}
    return {key: value for key, value in values.items() if value is not None}


def _country(value: Any) -> str | None:
    code = _text(value)
    return code.upper() if code and len(code) == 2 and code.isascii() and code.isalpha() else None


def _locale(value: str | None) -> str | None:
    """A BCP 47 tag, `pt_BR` written the BCP 47 way (`pt-BR`)."""
    return value.replace("_", "-") if value and _BCP47.match(value) else None


_FLAGS = {"true": True, "1": True, "yes": True, "on": True}
_FLAGS.update(dict.fromkeys(("false", "0", "no", "off"), False))


def _flag(value: str | None) -> bool | None:
    return _FLAGS.get(value.lower()) if value is not None else None
