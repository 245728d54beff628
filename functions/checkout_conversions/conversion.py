"""The one mapping between the two worlds: a paid checkout session to a customer record and to a
TikTok purchase.

The buyer's browser signals (ttclid, _ttp cookie, IP, User-Agent, page URL) come from the session's
`metadata`, filled by the merchant's backend when it created the session. The webhook request's own
IP and User-Agent are Stripe's servers', never the buyer's, so they are never used.
"""

from datetime import UTC, datetime
from typing import Any

from checkout_conversions.currency import to_decimal_amount
from checkout_conversions.match_keys import (
    hashed,
    hashed_external_id,
    hashed_phone,
    normalise_email,
)
from checkout_conversions.tiktok_payload import Purchase, User

# metadata key on the Checkout Session -> TikTok field
METADATA_KEYS = {
    "ttclid": "ttclid",
    "ttp": "ttp",
    "client_ip": "ip",
    "user_agent": "user_agent",
    "page_url": "page_url",
    "page_referrer": "page_referrer",
}
_METADATA_VALUE_LIMIT = 500  # Stripe's own limit for a metadata value


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


def purchase(session: dict[str, Any], event: dict[str, Any], default_phone_country: str) -> Purchase:
    details = customer_details(session)
    raw_metadata = _mapping(session.get("metadata"))
    metadata = {
        field: _text(raw_metadata.get(key), _METADATA_VALUE_LIMIT) for key, field in METADATA_KEYS.items()
    }
    amount = _amount(session.get("amount_total"))
    currency = _currency(session.get("currency"))
    return Purchase(
        event_id=session["id"],
        event_time=event["created"],
        order_id=session["id"],
        value=to_decimal_amount(amount, currency) if amount is not None and currency else None,
        currency=currency,
        user=User(
            email=hashed(buyer_email(session)),
            phone=hashed_phone(details.get("phone"), default_phone_country),
            external_id=hashed_external_id(
                _text(session.get("client_reference_id")) or stripe_customer_id(session)
            ),
            ttclid=metadata["ttclid"],
            ttp=metadata["ttp"],
            ip=metadata["ip"],
            user_agent=metadata["user_agent"],
        ),
        page_url=metadata["page_url"],
        page_referrer=metadata["page_referrer"],
    )
