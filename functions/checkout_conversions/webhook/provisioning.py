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
    epoch = int(now.timestamp())
    facts = ReportFacts(PurchaseKind.CHECKOUT, paid.facts.livemode, paid.facts.created, checkout.consent)
    provenance = Provenance(
        stripe_event_id=paid.facts.id,
        event_type=paid.facts.type,
        provisioned_at=checkout.customer["provisioned_at"],
        expires_at=epoch + settings.record_retention_days * 86400,
    )
    deliveries = tuple(
        new_delivery(destination, checkout.purchase, facts, provenance, settings, epoch)
        for destination in settings.configured_destinations
    )
    marker = {
        "session_id": checkout.session_id,
        "customer_id": checkout.customer["customer_id"],
        "stripe_event_id": provenance.stripe_event_id,
        "event_type": provenance.event_type,
        "event_time": paid.facts.created,
        "livemode": paid.facts.livemode,
        "provisioned_at": provenance.provisioned_at,
        "expires_at": provenance.expires_at,
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
