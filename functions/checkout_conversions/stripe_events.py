"""Stripe's side: verifying a webhook and deciding what an event asks of us.

Checkout events provision; a subscription's invoices and status changes keep the customer's
subscription record true (and a renewal may be reported). Knows nothing of TikTok or DynamoDB.
"""

import json
from dataclasses import dataclass
from typing import Any

import stripe

from checkout_conversions.config import SIGNATURE_TOLERANCE_SECONDS

PROVISIONING_PAYMENT_STATUSES = frozenset({"paid", "no_payment_required"})
COMPLETED = "checkout.session.completed"
ASYNC_SUCCEEDED = "checkout.session.async_payment_succeeded"
ASYNC_FAILED = "checkout.session.async_payment_failed"
INVOICE_PAID = "invoice.paid"
SUBSCRIPTION_UPDATED = "customer.subscription.updated"
SUBSCRIPTION_DELETED = "customer.subscription.deleted"
# What Stripe calls a subscription's status (customer.subscription.* events).
SUBSCRIPTION_STATUSES = frozenset(
    {"active", "trialing", "past_due", "unpaid", "canceled", "incomplete", "incomplete_expired", "paused"}
)
_YEAR_3000 = 32503680000


class InvalidSignature(Exception):
    pass


class MalformedEvent(Exception):
    pass


def verify_event(payload: bytes, signature_header: str | None, secrets: list[str]) -> dict[str, Any]:
    """The event as plain JSON data, once any one of `secrets` signed these exact bytes recently."""
    if not signature_header:
        raise InvalidSignature("missing Stripe-Signature header")
    last_error = None
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(
                payload, signature_header, secret, tolerance=SIGNATURE_TOLERANCE_SECONDS
            )
            break
        except stripe.SignatureVerificationError as error:
            # One secret matching a stale timestamp explains more than another not matching.
            if last_error is None or "tolerance" not in str(last_error):
                last_error = error
        except UnicodeDecodeError:
            raise MalformedEvent("body is not UTF-8") from None
    else:
        raise InvalidSignature(_describe(last_error))

    try:
        event = json.loads(payload)
        # JSON may escape lone UTF-16 surrogates ("\ud800") that no UTF-8 store or log can hold.
        json.dumps(event, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):
        raise MalformedEvent("body is not JSON") from None
    if (
        not isinstance(event, dict)
        or not isinstance(event.get("id"), str)
        or not isinstance(event.get("type"), str)
    ):
        raise MalformedEvent("not a Stripe event")
    return event


def _describe(error: stripe.SignatureVerificationError | None) -> str:
    message = str(error or "")
    if "tolerance" in message:
        return "signature timestamp too old"
    if "extract" in message or "scheme" in message:
        return "malformed Stripe-Signature header"
    return "signature does not match"


@dataclass(frozen=True)
class Decision:
    provision: bool
    reason: str
    session: dict[str, Any] | None = None
    invoice: dict[str, Any] | None = None  # an invoice.paid that pays a subscription
    subscription: dict[str, Any] | None = None  # a customer.subscription.* status change


def decide(event: dict[str, Any]) -> Decision:
    """What this event asks of us (provision a session, record a subscription's payment or
    status, or nothing), and why."""
    event_type = event["type"]
    if event_type == ASYNC_FAILED:
        return Decision(False, "async payment failed: nothing to fulfil")
    if event_type == INVOICE_PAID:
        return _decide_invoice(event)
    if event_type in (SUBSCRIPTION_UPDATED, SUBSCRIPTION_DELETED):
        return _decide_subscription(event)
    if event_type not in (COMPLETED, ASYNC_SUCCEEDED):
        return Decision(False, f"event type {event_type} is not handled")

    data = event.get("data")
    session = data.get("object") if isinstance(data, dict) else None
    if not isinstance(session, dict) or not _is_checkout_session_id(session.get("id")):
        raise MalformedEvent("event carries no checkout session")
    created = event.get("created")
    if not isinstance(created, int) or isinstance(created, bool) or not 0 < created < _YEAR_3000:
        raise MalformedEvent("event has no valid created time")

    mode = session.get("mode")
    if mode == "setup":
        return Decision(False, "setup mode sessions collect no payment", session)
    payment_status = session.get("payment_status")
    if event_type == COMPLETED and (
        not isinstance(payment_status, str) or payment_status not in PROVISIONING_PAYMENT_STATUSES
    ):
        return Decision(False, f"payment_status is {payment_status}: waiting for async payment", session)
    return Decision(True, "paid", session)


def _decide_invoice(event: dict[str, Any]) -> Decision:
    invoice = _object(event, "in_", "invoice")
    _created(event)
    if subscription_of(invoice) is None:
        return Decision(False, "the invoice pays no subscription")
    if not is_stripe_id(invoice.get("customer"), "cus_"):
        raise MalformedEvent("invoice has no customer")
    return Decision(False, "a subscription's invoice was paid", invoice=invoice)


def _decide_subscription(event: dict[str, Any]) -> Decision:
    subscription = _object(event, "sub_", "subscription")
    _created(event)
    if not is_stripe_id(subscription.get("customer"), "cus_"):
        raise MalformedEvent("subscription has no customer")
    status = subscription.get("status")
    if not isinstance(status, str) or status not in SUBSCRIPTION_STATUSES:
        raise MalformedEvent("subscription has no known status")
    return Decision(False, "a subscription's status changed", subscription=subscription)


def subscription_of(invoice: dict[str, Any]) -> str | None:
    """The subscription an invoice pays: `parent.subscription_details.subscription` since API
    version 2025-03-31, `subscription` before."""
    parent = invoice.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, dict) else None
    subscription = details.get("subscription") if isinstance(details, dict) else invoice.get("subscription")
    if isinstance(subscription, dict):  # expanded
        subscription = subscription.get("id")
    return subscription if is_stripe_id(subscription, "sub_") else None


def _object(event: dict[str, Any], prefix: str, name: str) -> dict[str, Any]:
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict) or not is_stripe_id(obj.get("id"), prefix):
        raise MalformedEvent(f"event carries no {name}")
    return obj


def _created(event: dict[str, Any]) -> int:
    created = event.get("created")
    if not isinstance(created, int) or isinstance(created, bool) or not 0 < created < _YEAR_3000:
        raise MalformedEvent("event has no valid created time")
    return created


def is_stripe_id(value: Any, prefix: str) -> bool:
    return isinstance(value, str) and value.startswith(prefix) and len(prefix) < len(value) <= 255


def _is_checkout_session_id(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("cs_") and 3 < len(value) <= 255
