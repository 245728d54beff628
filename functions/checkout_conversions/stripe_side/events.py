"""What a verified Stripe event asks of us, as one type per answer (a tagged union): provision a
paid checkout, record a subscription's payment or status change, or nothing, and why."""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from checkout_conversions.stripe_side.signature import MalformedEvent
from checkout_conversions.values import epoch, is_stripe_id, mapping

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
# The statuses a subscription never leaves: Stripe cannot reactivate it, only a new one can start.
FINAL_STATUSES = frozenset({"canceled", "incomplete_expired"})


@dataclass(frozen=True)
class EventFacts:
    """What every handled event carries: its id, type, time and mode."""

    id: str
    type: str
    created: int
    livemode: bool


class IgnoreReason(StrEnum):
    ASYNC_PAYMENT_FAILED = "async payment failed: nothing to fulfil"
    NOT_HANDLED = "event type {event_type} is not handled"
    SETUP_MODE = "setup mode sessions collect no payment"
    AWAITING_PAYMENT = "payment_status is {payment_status}: waiting for async payment"
    NO_SUBSCRIPTION = "the invoice pays no subscription"


@dataclass(frozen=True)
class Ignored:
    event_id: str
    event_type: str
    reason: IgnoreReason
    session_id: str | None = None
    payment_status: object = None

    def describe(self) -> str:
        return self.reason.value.format(event_type=self.event_type, payment_status=self.payment_status)


@dataclass(frozen=True)
class CheckoutPaid:
    facts: EventFacts
    session: dict[str, Any]
    event: dict[str, Any]  # as Stripe sent it


@dataclass(frozen=True)
class InvoicePaid:
    facts: EventFacts
    invoice: dict[str, Any]
    subscription_id: str
    customer_id: str


@dataclass(frozen=True)
class SubscriptionFacts:
    """How far a subscription had come when Stripe wrote the event, read from the object itself:
    what orders two of its events of the same second (Stripe's event ids are random). Epoch
    seconds, None when the object does not say."""

    final: bool  # canceled or incomplete_expired: no other event undoes it
    ended_at: int | None
    canceled_at: int | None
    current_period_end: int | None  # the latest end among the subscription's and its items'


@dataclass(frozen=True)
class SubscriptionChanged:
    facts: EventFacts
    subscription: dict[str, Any]
    customer_id: str
    status: str
    progress: SubscriptionFacts


StripeEvent = CheckoutPaid | InvoicePaid | SubscriptionChanged | Ignored


def classify(event: dict[str, Any]) -> StripeEvent:
    """What this event asks of us; MalformedEvent when a handled type lacks what it must carry."""
    event_type: str = event["type"]
    if event_type == ASYNC_FAILED:
        return Ignored(event["id"], event_type, IgnoreReason.ASYNC_PAYMENT_FAILED)
    if event_type == INVOICE_PAID:
        return _invoice(event)
    if event_type in (SUBSCRIPTION_UPDATED, SUBSCRIPTION_DELETED):
        return _subscription(event)
    if event_type in (COMPLETED, ASYNC_SUCCEEDED):
        return _checkout(event)
    return Ignored(event["id"], event_type, IgnoreReason.NOT_HANDLED)


def _checkout(event: dict[str, Any]) -> StripeEvent:
    session = _object(event, "cs_", "checkout session")
    facts = _facts(event)
    if session.get("mode") == "setup":
        return Ignored(facts.id, facts.type, IgnoreReason.SETUP_MODE, session["id"])
    payment_status = session.get("payment_status")
    if facts.type == COMPLETED and not (
        isinstance(payment_status, str) and payment_status in PROVISIONING_PAYMENT_STATUSES
    ):
        return Ignored(facts.id, facts.type, IgnoreReason.AWAITING_PAYMENT, session["id"], payment_status)
    return CheckoutPaid(facts, session, event)


def _invoice(event: dict[str, Any]) -> StripeEvent:
    invoice = _object(event, "in_", "invoice")
    facts = _facts(event)
    subscription_id = subscription_of(invoice)
    if subscription_id is None:
        return Ignored(facts.id, facts.type, IgnoreReason.NO_SUBSCRIPTION)
    customer = invoice.get("customer")
    if not is_stripe_id(customer, "cus_"):
        raise MalformedEvent("invoice has no customer")
    return InvoicePaid(facts, invoice, subscription_id, str(customer))


def _subscription(event: dict[str, Any]) -> StripeEvent:
    subscription = _object(event, "sub_", "subscription")
    facts = _facts(event)
    customer = subscription.get("customer")
    if not is_stripe_id(customer, "cus_"):
        raise MalformedEvent("subscription has no customer")
    status = subscription.get("status")
    if not isinstance(status, str) or status not in SUBSCRIPTION_STATUSES:
        raise MalformedEvent("subscription has no known status")
    return SubscriptionChanged(facts, subscription, str(customer), status, subscription_facts(subscription))


def subscription_facts(subscription: dict[str, Any]) -> SubscriptionFacts:
    """The object's own facts, each read as a plausible epoch or None. The current period ends at
    `current_period_end` on the subscription before API version 2025-03-31, and on each of its
    items (`items.data[].current_period_end`) since: both are read, the latest wins."""
    status = subscription.get("status")
    items = mapping(subscription.get("items")).get("data")
    ends = [
        end
        for source in [subscription, *(items if isinstance(items, list) else [])]
        if (end := epoch(mapping(source).get("current_period_end"))) is not None
    ]
    return SubscriptionFacts(
        final=isinstance(status, str) and status in FINAL_STATUSES,
        ended_at=epoch(subscription.get("ended_at")),
        canceled_at=epoch(subscription.get("canceled_at")),
        current_period_end=max(ends) if ends else None,
    )


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
    obj = mapping(event.get("data")).get("object")
    if not isinstance(obj, dict) or not is_stripe_id(obj.get("id"), prefix):
        raise MalformedEvent(f"event carries no {name}")
    return obj


def _facts(event: dict[str, Any]) -> EventFacts:
    created = epoch(event.get("created"))
    if created is None:
        raise MalformedEvent("event has no valid created time")
    return EventFacts(event["id"], event["type"], created, event.get("livemode") is True)
