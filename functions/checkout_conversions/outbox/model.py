"""The ledger's types: a delivery, its states, why one is not sent, what an attempt came to, and
the small Protocol the store implements for the outbox."""

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from checkout_conversions.destinations.base import Answer, DestinationSettings, Prepared
from checkout_conversions.purchase import Consent, Purchase, PurchaseKind


class StoreError(Exception):
    """The ledger's store refused or could not be reached."""


class ConcurrentUpdate(StoreError):
    """Another request is writing the same item right now: try again later."""


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # to be sent; in the redrive index from the moment it is recorded
    SENT = "sent"  # the platform accepted it; never sent again
    FAILED = "failed"  # `retryable` says whether the redrive tries again
    # The platform refused the destination's token, read again: waits in the redrive queue, due at
    # each run (reason recorded), until a token it accepts is in the store. Nothing is lost.
    PAUSED = "paused"
    SKIPPED = "skipped"  # never to be sent (reason recorded); nothing of the buyer's kept
    EXPIRED = "expired"  # given up after the maximum age


class SkipReason(StrEnum):
    """Why a delivery is not sent; each is a sentence for the record, the log and the answer."""

    CONSENT_DENIED = "the buyer denied ad measurement (ad_consent=denied)"
    CONSENT_MISSING = "no ad consent given (REQUIRE_AD_CONSENT is true, ad_consent is not granted)"
    NO_PIXEL = "{label} is switched off: {prefix}_PIXEL_ID is not set"
    NO_TOKEN = "{label} is switched off: {prefix}_ACCESS_TOKEN is empty"  # noqa: S105 - a sentence
    TEST_MODE = "test-mode event and no {prefix}_TEST_EVENT_CODE"
    TOO_OLD = "payment older than {days} days"
    RENEWALS_OFF = "renewals are not reported: RENEWAL_EVENT_NAME is empty"
    NOTHING_STORED = "no stored purchase"
    NOT_SENT_IN_TIME = "not sent within {days} days"  # an expiry's reason
    ACCESS_REFUSED = (  # a pause's reason
        "{label} refused {prefix}_ACCESS_TOKEN, read again from its store: paused until a token "
        "{label} accepts is written there"
    )

    def describe(self, destination: DestinationSettings) -> str:
        return self.value.format(
            label=destination.label, prefix=destination.variable_prefix, days=destination.max_age_days
        )


class AttemptResult(StrEnum):
    """How the handling of one delivery by the sender or the redrive ended (their tallies)."""

    SENT = "sent"
    FAILED_RETRYABLE = "failed_retryable"
    FAILED_PERMANENT = "failed_permanent"
    PAUSED = "paused"  # the token refused, read again, refused again: waits for a good one
    SKIPPED = "skipped"
    EXPIRED = "expired"
    NOT_CLAIMED = "not_claimed"  # someone else holds it, or it is finished
    RELEASED = "released"  # claimed, then left due at once: too little time was left to send it
    RETRY_LATER = "retry_later"  # not done: Lambda delivers the record again
    IGNORED = "ignored"  # a stream record that is no new pending delivery
    ERROR = "error"  # an unexpected error; the delivery stays due


def event_of(key: str) -> str:
    """The event id of a delivery key (`<event id>#<destination>`; a bare id from before)."""
    return key.rpartition("#")[0] or key


@dataclass(frozen=True)
class ReportFacts:
    """What the delivery policy needs to know of one purchase."""

    kind: PurchaseKind
    livemode: bool
    event_time: int
    consent: Consent


@dataclass(frozen=True)
class Delivery:
    """One destination's delivery of one purchase (or renewal), as the ledger holds it."""

    key: str  # "<event id>#<destination>"
    event_id: str
    destination: str
    status: DeliveryStatus
    facts: ReportFacts
    attempts: int = 0
    purchase_json: str | None = None  # the Purchase to send; deleted once the delivery is settled
    stored_event: str | None = None  # an event stored whole by an older version (TikTok's)
    reason: str | None = None
    claim_token: str | None = None
    next_attempt_at: int | None = None
    # What the webhook records of the Stripe event it came from, for operators.
    stripe_event_id: str | None = None
    event_type: str | None = None
    customer_id: str | None = None  # a renewal's Stripe customer
    provisioned_at: str | None = None
    expires_at: int | None = None
    replayed_at: str | None = None  # when a replay last put it back in the queue

    @property
    def has_payload(self) -> bool:
        return self.purchase_json is not None or self.stored_event is not None

    def purchase(self) -> Purchase:
        """The stored purchase, read at send time (ValueError when none is stored)."""
        if self.purchase_json is None:
            raise ValueError(f"{self.key} stores no purchase")
        return Purchase.from_json(self.purchase_json)


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to, as the ledger records it."""

    answer: Answer
    prepared: Prepared | None = None

    @property
    def match_keys(self) -> tuple[str, ...]:
        return self.prepared.match_keys if self.prepared and self.answer.accepted else ()

    @property
    def note(self) -> str | None:
        return self.prepared.note if self.prepared else None


@dataclass(frozen=True)
class DueEntry:
    """A delivery the redrive index says is due (eventually consistent: claimed on the table)."""

    key: str
    event_time: int | None


class Ledger(Protocol):
    """The delivery operations the outbox needs; the store implements them. Every conditional
    write answers None (or False) when its condition does not hold: someone else holds or has
    finished the delivery. Errors of the store itself raise StoreError."""

    def start(self, delivery: Delivery) -> Delivery | None:
        """Record a new delivery unless one exists for its key: then that one."""
        ...

    def get(self, key: str) -> Delivery | None: ...

    def claim_new(self, key: str, claim_token: str, now: int, hold_until: int) -> Delivery | None:
        """A pending delivery nobody holds, never tried by the redrive, taken for one attempt."""
        ...

    def claim_due(self, key: str, queue: str, claim_token: str, now: int, hold_until: int) -> Delivery | None:
        """A delivery whose (re)try is due and nobody holds, taken for one attempt."""
        ...

    def record_sent(self, key: str, claim_token: str, outcome: Outcome, now: int) -> bool: ...

    def record_failure(
        self, key: str, claim_token: str, outcome: Outcome, now: int, retry_at: int | None
    ) -> bool: ...

    def record_paused(
        self, key: str, claim_token: str, outcome: Outcome, reason: str, now: int, retry_at: int
    ) -> bool:
        """The token was refused: paused with the reason, the purchase kept, due again at `retry_at`."""
        ...

    def release(self, key: str, claim_token: str, now: int) -> bool:
        """Give the claim back unsent: as it was, due at `now`, the claim's attempt not counted."""
        ...

    def settle(
        self,
        key: str,
        status: DeliveryStatus,
        reason: str,
        now: int,
        claim_token: str | None,
        queue: str | None,
    ) -> bool:
        """Out of the queue for good (skipped, expired), held by this claim or, without one, by nobody."""
        ...

    def requeue(self, key: str, queue: str, now: int) -> Delivery | None: ...

    def reopen(self, rebuilt: Delivery, now: int) -> Delivery | None:
        """Skipped, expired or failed for good: pending again and due now with `rebuilt`'s purchase."""
        ...

    def due(
        self, queue: str, now: int, limit: int, after: dict[str, object] | None
    ) -> tuple[list[DueEntry], dict[str, object] | None]: ...

    def announced(self, stream_record: object) -> tuple[str, str] | None:
        """The key and destination of the new pending delivery a stream record announces, or None."""
        ...
