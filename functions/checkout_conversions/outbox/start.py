"""A purchase's deliveries as they are recorded: one per destination, pending with the purchase to
send, or skipped with the policy's reason and nothing of the buyer's stored."""

from dataclasses import dataclass

from checkout_conversions.destinations.base import DestinationSettings
from checkout_conversions.outbox import policy
from checkout_conversions.outbox.model import Delivery, DeliveryStatus, ReportFacts
from checkout_conversions.purchase import Purchase
from checkout_conversions.settings import Settings


@dataclass(frozen=True)
class Provenance:
    """What the webhook records of the Stripe event a delivery comes from."""

    stripe_event_id: str
    event_type: str
    provisioned_at: str
    expires_at: int
    customer_id: str | None = None


def new_delivery(
    destination: DestinationSettings,
    purchase: Purchase,
    facts: ReportFacts,
    provenance: Provenance,
    settings: Settings,
    now: int,
) -> Delivery:
    """Pending and due in the redrive index after the grace period, unless the policy says no.
    The webhook reads neither the token nor the test event code: the sender judges those."""
    skip = policy.skip_reason(destination, facts, settings.require_ad_consent, now)
    pending = skip is None
    return Delivery(
        key=destination.delivery_key(purchase.event_id),
        event_id=purchase.event_id,
        destination=destination.name,
        status=DeliveryStatus.PENDING if pending else DeliveryStatus.SKIPPED,
        facts=facts,
        purchase_json=purchase.to_json() if pending else None,
        reason=skip.describe(destination) if skip else None,
        next_attempt_at=now + settings.redrive.grace_seconds if pending else None,
        stripe_event_id=provenance.stripe_event_id,
        event_type=provenance.event_type,
        customer_id=provenance.customer_id,
        provisioned_at=provenance.provisioned_at,
        expires_at=provenance.expires_at,
    )
