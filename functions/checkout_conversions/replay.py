"""A replay of Stripe's record: what this deployment makes of each paid event Stripe kept,
decided by the webhook's and the sender's own code, and, when asked, done exactly once."""

# Per event and destination, one of:
# - provision: the session was never provisioned here (the endpoint was down past Stripe's retries,
#   or installed after the sale): the webhook's own work (webhook.answer_event), its transaction
#   making a webhook delivery racing it a duplicate;
# - record: provisioned, but this destination has no delivery (a renewal not recorded, a destination
#   added since): the webhook's delivery, started with a conditional write;
# - requeue: the delivery was never sent (skipped while switched off or paused, expired, failed for
#   good) and the policy would send it now: pending again with its original event_id, the purchase
#   rebuilt from Stripe's event, due at the redrive's next run;
# - nothing, and why (sent, waiting for the sender or the redrive, the policy's reason).
# Every write is conditional, so a replay run twice, two at once, or stopped and run again does
# each thing once.

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from checkout_conversions.destinations.base import DestinationSettings
from checkout_conversions.outbox import policy
from checkout_conversions.outbox.model import Delivery, DeliveryStatus, Ledger, SkipReason
from checkout_conversions.settings import Settings
from checkout_conversions.store.provisioning import DynamoProvisioning
from checkout_conversions.store.subscriptions import DynamoSubscriptions
from checkout_conversions.stripe_side import invoices
from checkout_conversions.stripe_side.events import CheckoutPaid, Ignored, InvoicePaid, StripeEvent, classify
from checkout_conversions.stripe_side.signature import MalformedEvent
from checkout_conversions.webhook import answer_event
from checkout_conversions.webhook.provisioning import checkout_deliveries, subscription_link
from checkout_conversions.webhook.subscriptions import renewal_deliveries

WHOLE_EVENT = "-"  # a step that is no destination's: the event itself is not replayed
BUSY_RETRIES = 3  # the webhook is writing the same session right now (409): wait, try again


class Action(StrEnum):
    PROVISION = "provision"
    RECORD = "record"
    REQUEUE = "requeue"
    NOTHING = "nothing"


class ReplayFailed(Exception):
    """The store refused a write; running the replay again finishes the work."""


@dataclass(frozen=True)
class Switch:
    """A destination's secrets as the sender reads them now: its token ("": switched off) and
    its test event code ("": none)."""

    access_token: str
    test_event_code: str


TO_SEND = "to send"


@dataclass(frozen=True)
class Step:
    destination: str
    action: Action
    reason: str
    delivery: Delivery | None = None  # what a record or a requeue writes

    @property
    def sends(self) -> bool:
        """It ends in a delivery the sender or the redrive sends."""
        if self.action is Action.PROVISION:
            return self.reason == TO_SEND
        return self.action in (Action.RECORD, Action.REQUEUE)


@dataclass(frozen=True)
class EventPlan:
    event_id: str
    event_type: str
    created: int
    subject_id: str  # the checkout session or the invoice
    steps: tuple[Step, ...]
    event: StripeEvent | None = None

    def acts(self) -> bool:
        return any(step.action is not Action.NOTHING for step in self.steps)


@dataclass
class Replay:
    settings: Settings
    dynamodb: Any
    ledger: Ledger
    provisioning: DynamoProvisioning
    subscriptions: DynamoSubscriptions
    destinations: tuple[DestinationSettings, ...]  # the ones replayed (DESTINATION=)
    switches: dict[str, Switch]
    now: int
    sleep: Callable[[float], None] = time.sleep
    # What the checkouts this run provisions (or, in a dry run, would) write on their
    # subscriptions' records: the buyer's choices their renewals are decided with.
    links: dict[str, dict[str, Any]] = field(default_factory=dict)

    def plan(self, raw: dict[str, Any]) -> EventPlan:
        """What replaying this event would do; reads the store, writes nothing."""
        try:
            event = classify(raw)
        except (MalformedEvent, KeyError) as error:
            return _whole(raw, "", f"malformed event: {error}")
        match event:
            case CheckoutPaid():
                return self._checkout(raw, event)
            case InvoicePaid():
                return self._renewal(raw, event)
            case Ignored():
                return _whole(raw, event.session_id or "", event.describe())
            case _:
                return _whole(raw, "", "not a payment")

    def apply(self, plan: EventPlan) -> tuple[str, ...]:
        """Do what the plan says; each step's result, in order. ReplayFailed when the store fails."""
        provisioned = self._provision(plan) if _has(plan, Action.PROVISION) else ""
        return tuple(self._apply_step(plan, step, provisioned) for step in plan.steps)

    # ------------------------------------------------------------------ deciding

    def _checkout(self, raw: dict[str, Any], paid: CheckoutPaid) -> EventPlan:
        session_id = paid.session["id"]
        at = datetime.fromtimestamp(self.now, UTC)
        wanted = checkout_deliveries(paid, self.settings, at)
        if not self.provisioning.provisioned(session_id):
            link = subscription_link(paid, at)
            if link is not None:
                self.links[link.subscription_id] = link.record()
            # Provisioned whole, as the webhook does: every configured destination's delivery.
            steps = [self._provisioned(delivery) for delivery in wanted]
            return _plan(raw, session_id, steps, paid)
        steps = []
        for destination in self.destinations:
            delivery = next((item for item in wanted if item.destination == destination.name), None)
            if delivery is None:
                steps.append(
                    Step(destination.name, Action.NOTHING, SkipReason.NO_PIXEL.describe(destination))
                )
            else:
                steps.append(self._recorded(destination, delivery, session_id))
        return _plan(raw, session_id, steps, paid)

    def _provisioned(self, delivery: Delivery) -> Step:
        destination = self.settings.destination(delivery.destination)
        judged = self._judged(destination, delivery)
        return Step(destination.name, Action.PROVISION, f"not to send: {judged}" if judged else TO_SEND)

    def _renewal(self, raw: dict[str, Any], paid: InvoicePaid) -> EventPlan:
        invoice_id = paid.invoice["id"]
        if not invoices.is_renewal(paid.invoice):
            return _whole(raw, invoice_id, "not a renewal: its checkout is the conversion")
        stored = self.subscriptions.get(paid.customer_id, paid.subscription_id) or {}
        record = {**self.links.get(paid.subscription_id, {}), **stored}
        wanted = renewal_deliveries(paid, record, self.settings, self.now)
        steps = []
        for destination in self.destinations:
            delivery = next((item for item in wanted if item.destination == destination.name), None)
            if delivery is None:
                steps.append(Step(destination.name, Action.NOTHING, f"{destination.label} takes no renewals"))
            else:
                steps.append(self._recorded(destination, delivery, invoice_id))
        return _plan(raw, invoice_id, steps, paid)

    def _recorded(self, destination: DestinationSettings, wanted: Delivery, event_id: str) -> Step:
        """A provisioned purchase: what its delivery to this destination needs now."""
        name = destination.name
        existing = self.ledger.get(wanted.key)
        if existing is None and name == "tiktok":
            existing = self.ledger.get(event_id)  # recorded before deliveries named their destination
        judged = self._judged(destination, wanted)
        if existing is None:
            if judged:
                return Step(name, Action.NOTHING, judged)
            return Step(name, Action.RECORD, "no delivery recorded", wanted)
        if existing.status is DeliveryStatus.SENT:
            return Step(name, Action.NOTHING, "already sent")
        if existing.next_attempt_at is not None or existing.status is DeliveryStatus.PENDING:
            return Step(name, Action.NOTHING, f"{_described(existing)}: the sender or the redrive sends it")
        if existing.replayed_at:
            # Requeued by a replay before and not sent since: replaying again would repeat it.
            why = f"{_described(existing)} after a replay's requeue at {existing.replayed_at}"
            return Step(name, Action.NOTHING, f"{why}: `make deliveries REQUEUE=` sends it again")
        if judged:
            return Step(name, Action.NOTHING, judged)
        return Step(name, Action.REQUEUE, _described(existing), replace(wanted, key=existing.key))

    def _judged(self, destination: DestinationSettings, delivery: Delivery) -> str | None:
        """Why the policy would not report it now, at recording or at send time; None: report."""
        if delivery.status is DeliveryStatus.SKIPPED:
            return delivery.reason
        switch = self.switches.get(destination.name)  # None: its secrets unread, judged without them
        skip = policy.skip_reason(
            destination,
            delivery.facts,
            self.settings.require_ad_consent,
            self.now,
            switch.access_token if switch else policy.TOKEN_NOT_READ,
            switch.test_event_code if switch else policy.TEST_CODE_NOT_READ,
        )
        return skip.describe(destination) if skip else None

    # ------------------------------------------------------------------ doing

    def _provision(self, plan: EventPlan) -> str:
        """The webhook's own work on the event: provisioned now, or already (by a webhook
        delivery racing this replay, or another replay)."""
        assert plan.event is not None
        for attempt in range(BUSY_RETRIES + 1):
            answer = answer_event(plan.event, self.settings, self.dynamodb)
            if answer.status != 409:
                break
            self.sleep(1.0 + attempt)
        body = answer.body
        if answer.status != 200:
            raise ReplayFailed(f"{plan.subject_id}: {body.get('error', f'HTTP {answer.status}')}")
        return "provisioned meanwhile" if body.get("duplicate") else "provisioned"

    def _apply_step(self, plan: EventPlan, step: Step, provisioned: str) -> str:
        if step.action is Action.PROVISION:
            return f"{provisioned}, {step.reason}"
        if step.action is Action.NOTHING or step.delivery is None:
            return step.reason
        if step.action is Action.RECORD:
            return self._record(plan, step.delivery)
        reopened = self.ledger.reopen(step.delivery, self.now)
        return "requeued" if reopened is not None else "changed meanwhile: not requeued"

    def _record(self, plan: EventPlan, delivery: Delivery) -> str:
        """A missing delivery: a renewal's through the webhook's own work (the payment with it),
        a checkout's written unless one exists."""
        if isinstance(plan.event, InvoicePaid):
            answer = answer_event(plan.event, self.settings, self.dynamodb)
            if answer.status != 200:
                raise ReplayFailed(f"{plan.subject_id}: {answer.body.get('error')}")
            return "recorded" if self.ledger.get(delivery.key) is not None else "not recorded"
        return "recorded" if self.ledger.start(delivery) is None else "recorded meanwhile"


def _has(plan: EventPlan, action: Action) -> bool:
    return any(step.action is action for step in plan.steps)


def _described(delivery: Delivery) -> str:
    if delivery.status is DeliveryStatus.FAILED:
        return "failed (retrying)" if delivery.next_attempt_at is not None else "failed for good"
    return delivery.status.value


def _plan(raw: dict[str, Any], subject_id: str, steps: list[Step], event: StripeEvent) -> EventPlan:
    return EventPlan(str(raw.get("id")), str(raw.get("type")), _created(raw), subject_id, tuple(steps), event)


def _whole(raw: dict[str, Any], subject_id: str, reason: str) -> EventPlan:
    step = Step(WHOLE_EVENT, Action.NOTHING, reason)
    return EventPlan(str(raw.get("id")), str(raw.get("type")), _created(raw), subject_id, (step,))


def _created(raw: dict[str, Any]) -> int:
    created = raw.get("created")
    return created if isinstance(created, int) else 0
