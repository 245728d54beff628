"""A subscription's life after its Checkout: its record follows its invoices and status changes,
and each renewal (RENEWAL_EVENT_NAME set) starts its own delivery, decided by the same policy as
the checkout with the buyer's choices the checkout recorded."""

# A renewal's delivery is a pending item keyed `<invoice id>#<destination>`, so the stream's sender
# delivers it like a purchase, exactly once. Renewals go only to platforms that take them (TikTok).

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from checkout_conversions.outbox.model import Delivery, DeliveryStatus, Ledger, ReportFacts
from checkout_conversions.outbox.start import Provenance, new_delivery
from checkout_conversions.purchase import Consent, PurchaseKind
from checkout_conversions.settings import Settings
from checkout_conversions.store.subscriptions import (
    Aspect,
    DynamoSubscriptions,
    EventOrder,
    SubscriptionWrite,
)
from checkout_conversions.stripe_side import invoices
from checkout_conversions.stripe_side.events import FINAL_STATUSES, InvoicePaid, SubscriptionChanged
from checkout_conversions.values import iso


@dataclass(frozen=True)
class RenewalState:
    status: DeliveryStatus
    reason: str | None = None
    duplicate: bool = False


@dataclass(frozen=True)
class PaymentRecorded:
    written: SubscriptionWrite
    renewal: RenewalState | None  # None: the invoice is no renewal


def record_payment(
    paid: InvoicePaid, settings: Settings, subscriptions: DynamoSubscriptions, ledger: Ledger
) -> PaymentRecorded:
    """What the invoice paid, and a renewal's delivery; StoreError when the store fails."""
    invoice = paid.invoice
    paid_through = invoices.paid_through(invoice)
    fields = {
        "subscription_id": paid.subscription_id,
        "paid_through": paid_through,
        "last_paid_invoice": invoice["id"],
        "last_paid_at": iso(invoices.paid_at(invoice, paid.facts.created)),
    }
    # Two payments of one second: the one that pays the later period is the later.
    order = EventOrder(paid.facts.created, tiebreak=(paid_through,))
    written = subscriptions.record(
        Aspect.PAYMENT, paid.customer_id, paid.subscription_id, fields, order, paid.facts.id
    )
    renewal = _start_renewal(paid, written, settings, ledger) if invoices.is_renewal(invoice) else None
    return PaymentRecorded(written, renewal)


def record_status(changed: SubscriptionChanged, subscriptions: DynamoSubscriptions) -> SubscriptionWrite:
    """The status, unless a later one is recorded: a final status (canceled, incomplete_expired)
    is never undone; of two events of one second, the one whose subscription has ended, was
    cancelled or is in its period later is the later."""
    fields = {
        "subscription_id": changed.subscription["id"],
        "status": changed.status,
        "status_changed_at": iso(changed.facts.created),
    }
    progress = changed.progress
    order = EventOrder(
        changed.facts.created,
        tiebreak=(progress.ended_at, progress.canceled_at, progress.current_period_end),
        final=progress.final,
        finals=tuple(sorted(FINAL_STATUSES)),
    )
    return subscriptions.record(
        Aspect.STATUS, changed.customer_id, changed.subscription["id"], fields, order, changed.facts.id
    )


def _start_renewal(
    paid: InvoicePaid, written: SubscriptionWrite, settings: Settings, ledger: Ledger
) -> RenewalState | None:
    """The renewal's own delivery, once per invoice and destination that takes renewals; the
    state of the first such destination for the answer."""
    now = int(datetime.now(UTC).timestamp())
    states = [
        _start_one(delivery, written, ledger)
        for delivery in renewal_deliveries(paid, written.item or {}, settings, now)
    ]
    return states[0] if states else None


def renewal_deliveries(
    paid: InvoicePaid, subscription: dict[str, Any], settings: Settings, now: int
) -> list[Delivery]:
    """A renewal's deliveries, one per destination that takes renewals, with the buyer's choices
    the checkout recorded on the subscription's record (`subscription`: {} when unknown)."""
    invoice = paid.invoice
    event_time = invoices.paid_at(invoice, paid.facts.created)
    facts = ReportFacts(
        PurchaseKind.RENEWAL, paid.facts.livemode, event_time, Consent.parse(subscription.get("ad_consent"))
    )
    limited_data_use = subscription.get("limited_data_use")
    purchase = replace(
        invoices.renewal_purchase(invoice, event_time, subscription.get("external_id")),
        limited_data_use=limited_data_use if isinstance(limited_data_use, bool) else None,
    )
    provenance = Provenance(
        stripe_event_id=paid.facts.id,
        event_type=paid.facts.type,
        provisioned_at=iso(now),
        expires_at=now + settings.record_retention_days * 86400,
        customer_id=paid.customer_id,
    )
    return [
        new_delivery(destination, purchase, facts, provenance, settings, now)
        for destination in settings.destinations
        if destination.reports_renewals
    ]


def _start_one(delivery: Delivery, written: SubscriptionWrite, ledger: Ledger) -> RenewalState:
    if delivery.status is DeliveryStatus.SKIPPED:
        return RenewalState(delivery.status, delivery.reason)  # nothing recorded, nothing kept
    if not written.applied:
        # A redelivery: its renewal may have been started before deliveries were keyed by
        # destination, under the bare invoice id (items expire after RECORD_RETENTION_DAYS).
        legacy = ledger.get(delivery.event_id)
        if legacy is not None:
            return RenewalState(legacy.status, duplicate=True)
    existing = ledger.start(delivery)
    if existing is not None:
        return RenewalState(existing.status, duplicate=True)
    return RenewalState(DeliveryStatus.PENDING)
