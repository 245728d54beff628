"""What every destination is: its settings, the request it prepares, and the platform's answer."""

# The outbox speaks to a destination only through these types; a platform's folder implements them
# and knows nothing of the ledger or the store.

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from checkout_conversions.purchase import Content, Purchase, PurchaseKind
from checkout_conversions.secrets import SecretRef

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True)
class DestinationSettings:
    """One configured destination: a platform's pixel (or dataset) and how to reach it."""

    name: str  # "tiktok": the delivery key's suffix and its RedriveIndex partition
    label: str  # "TikTok": its metrics (TikTokSent, TikTokFailed ...) and log lines
    pixel_id: str
    test_event_code: SecretRef  # read at send time, like the token: "" (or `disabled`) is none
    access_token: SecretRef
    event_name: str
    timeout_seconds: float
    max_age_days: int  # the platform's own limit on an event's age, within DELIVERY_MAX_AGE_DAYS
    reports_renewals: bool = False  # the platform takes a subscription's renewals
    renewal_event_name: str = ""  # empty: renewals switched off

    @property
    def variable_prefix(self) -> str:
        return self.name.upper()

    @property
    def configured(self) -> bool:
        """Part of this deployment: its pixel is set (its token is checked at send time)."""
        return bool(self.pixel_id)

    @property
    def max_age_seconds(self) -> int:
        return self.max_age_days * 86400

    def delivery_key(self, event_id: str) -> str:
        return f"{event_id}#{self.name}"


class Verdict(StrEnum):
    """What a platform's answer to one request means for the delivery."""

    ACCEPTED = "accepted"
    # Some events of a request of several were refused, and the answer does not say which (TikTok's
    # 20001): the request is split and its parts sent again (outbox/batch.py); for a single
    # event it counts as accepted.
    PARTIAL = "partial"
    RETRY = "retry"  # transient: the redrive tries again later
    REFUSED = "refused"  # permanent: retrying cannot help until someone fixes something
    # The platform refused the access token (expired, revoked, no rights on the pixel): the token
    # is read again from its store; refused again, the destination's deliveries wait for a good one.
    UNAUTHORIZED = "unauthorized"


@dataclass(frozen=True)
class Answer:
    verdict: Verdict
    code: int | None = None
    message: str = ""
    request_id: str | None = None
    http_status: int | None = None
    received: int | None = None  # how many of the request's events the platform says it took

    @property
    def accepted(self) -> bool:
        return self.verdict in (Verdict.ACCEPTED, Verdict.PARTIAL)

    def refused_in_part(self, events: int) -> bool:
        """Not every one of the request's `events` was taken: split it to find the ones refused."""
        fewer = self.accepted and self.received is not None and self.received < events
        return fewer or self.verdict in (Verdict.REFUSED, Verdict.PARTIAL)

    @property
    def retryable(self) -> bool:
        return self.verdict is Verdict.RETRY

    @property
    def unauthorized(self) -> bool:
        return self.verdict is Verdict.UNAUTHORIZED

    @classmethod
    def failure(
        cls,
        message: str,
        retryable: bool = True,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> "Answer":
        verdict = Verdict.RETRY if retryable else Verdict.REFUSED
        return cls(verdict, message=message, http_status=http_status, request_id=request_id)


@dataclass(frozen=True)
class Prepared:
    """One delivery's event, ready to go into a request (`Platform.body`) with others."""

    event: dict[str, Any]
    match_keys: tuple[str, ...]  # the user keys the event carries (names, never values)
    note: str | None = None  # why the event will match poorly, recorded with the outcome


class Platform(Protocol):
    """A platform's send side: built by its folder's factory, used by the outbox only."""

    # Events in one request: both platforms take up to 1,000; half of that keeps a request of
    # events with many line items well inside the request sizes they accept.
    max_events_per_request: int

    def prepare(self, purchase: Purchase, contents: list[Content] | None, kind: PurchaseKind) -> Prepared: ...

    def prepare_stored(self, event_json: str) -> Prepared:
        """An event stored whole by an older version (TikTok's, before the outbox)."""
        ...

    def body(self, events: Sequence[Prepared]) -> bytes:
        """One request carrying these events (without the access token)."""
        ...

    def post(self, http: "httpx.Client", access_token: str, body: bytes) -> Answer: ...
