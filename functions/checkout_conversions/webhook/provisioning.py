"""A paid checkout, provisioned: the customer record, the session marker and one delivery per
configured destination, in one transaction (the outbox)."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from checkout_conversions.outbox.model import Delivery, ReportFacts
from checkout_conversions.outbox.start import Provenance, new_delivery
from checkout_conversions.purchase import PurchaseKind
from checkout_conversions.settings import Settings
from checkout_conversions.store.provisioning import (
    DynamoProvisioning,
    Provisioning,
    ProvisionResult,
    SubscriptionLink,
)
from checkout_conversions.stripe_side.checkout import Checkout, read_checkout
from checkout_conversions.stripe_side.events import CheckoutPaid


@dataclass(frozen=True)
class Provisioned:
    checkout: Checkout
    deliveries: tuple[Delivery, ...]
    result: ProvisionResult


def provision_checkout(
    paid: CheckoutPaid, settings: Settings, store: DynamoProvisioning, now: datetime
) -> Provisioned:
    """Provision the session and start its deliveries; StoreError (ConcurrentUpdate when another
    delivery of the session is writing it right now) when the store fails."""
    checkout = read_checkout(paid, now)
    deliveries = _deliveries(paid, checkout, settings, now)
    expires_at = int(now.timestamp()) + settings.record_retention_days * 86400
    marker = {
        "session_id": checkout.session_id,
        "customer_id": checkout.customer["customer_id"],
        "stripe_event_id": paid.facts.id,
        "event_type": paid.facts.type,
        "event_time": paid.facts.created,
        "livemode": paid.facts.livemode,
        "provisioned_at": checkout.customer["provisioned_at"],
        "expires_at": expires_at,
        "destinations": [delivery.destination for delivery in deliveries] or None,
    }
    provisioning = Provisioning(
        session_id=checkout.session_id,
        provisioning_id=uuid.uuid4().hex,
        marker=marker,
        customer=checkout.customer,
        deliveries=deliveries,
        subscription=_subscription_link(checkout),
    )
    return Provisioned(checkout, deliveries, store.provision(provisioning))


def checkout_deliveries(paid: CheckoutPaid, settings: Settings, now: datetime) -> tuple[Delivery, ...]:
    """The deliveries provisioning this checkout records now, one per configured destination,
    as the webhook records them (a replay compares them with what is recorded)."""
    return _deliveries(paid, read_checkout(paid, now), settings, now)


def subscription_link(paid: CheckoutPaid, now: datetime) -> SubscriptionLink | None:
    """What provisioning this checkout writes on its subscription's record (None: no subscription)."""
    return _subscription_link(read_checkout(paid, now))


def _deliveries(
    paid: CheckoutPaid, checkout: Checkout, settings: Settings, now: datetime
) -> tuple[Delivery, ...]:
    epoch = int(now.timestamp())
    facts = ReportFacts(PurchaseKind.CHECKOUT, paid.facts.livemode, paid.facts.created, checkout.consent)
    provenance = Provenance(
        stripe_event_id=paid.facts.id,
        event_type=paid.facts.type,
        provisioned_at=checkout.customer["provisioned_at"],
        expires_at=epoch + settings.record_retention_days * 86400,
    )
    return tuple(
        new_delivery(destination, checkout.purchase, facts, provenance, settings, epoch)
        for destination in settings.configured_destinations
    )


def _subscription_link(checkout: Checkout) -> SubscriptionLink | None:
    if checkout.subscription_id is None or checkout.stripe_customer_id is None:
        return None
    return SubscriptionLink(
        customer_id=checkout.customer["customer_id"],
        subscription_id=checkout.subscription_id,
        session_id=checkout.session_id,
        external_id=checkout.purchase.buyer.external_id or checkout.stripe_customer_id,
        consent=checkout.consent,
        limited_data_use=checkout.purchase.limited_data_use,
    )
