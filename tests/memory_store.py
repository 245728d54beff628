"""The outbox's ledger in memory, for fast tests of its state machine, and the other small fakes
those tests need: a platform answering as scripted, a clock, settings and a delivery.

`MemoryLedger` holds each delivery as the plain item DynamoDeliveries would store (the values
`store.items.from_item` reads) and applies DynamoDeliveries' conditions and updates to it, one
for one: tests/integration/test_ledger_contract.py runs the same operations against both (moto
and DynamoDB Local) and compares what they answer and what they leave stored.
"""

import copy
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from checkout_conversions.destinations.base import Answer, DestinationSettings, Prepared, Verdict
from checkout_conversions.outbox.model import (
    Delivery,
    DeliveryStatus,
    DueEntry,
    Outcome,
    ReportFacts,
    StoreError,
)
from checkout_conversions.outbox.sending import Sending
from checkout_conversions.outbox.start import Provenance, new_delivery
from checkout_conversions.purchase import Buyer, Consent, Content, Purchase, PurchaseKind
from checkout_conversions.settings import Settings, load_settings
from checkout_conversions.store import items
from checkout_conversions.store.items import KEY, LEGACY_EVENT, OUTCOME_FIELDS
from checkout_conversions.values import iso

Item = dict[str, Any]

_QUEUE = ("redrive_queue", "next_attempt_at")
_CLAIM = ("claim_token", "claim_expires_at")


@dataclass
class _Fault:
    applied: bool  # the write took effect, and then its answer was lost


class MemoryLedger:
    """outbox.model.Ledger in memory, with DynamoDeliveries' semantics (store/deliveries.py)."""

    def __init__(self) -> None:
        self.items: dict[str, Item] = {}
        self.calls: list[str] = []  # the Ledger operations called, in order
        self._faults: dict[str, _Fault] = {}
        self._lock = threading.Lock()  # each operation is atomic, as one DynamoDB request is

    # ------------------------------------------------------------------ test controls

    def fail_next(self, operation: str, applied: bool = False) -> None:
        """The next call of `operation` raises StoreError: the store unreachable (`applied`
        False: nothing written), or its answer lost after the write took effect (True)."""
        self._faults[operation] = _Fault(applied)

    def put_item(self, values: Item) -> None:
        """Store an item as it is (an older version's shape, a provisioning marker)."""
        self.items[values[KEY]] = _present(values)

    def get_item(self, key: str) -> Item | None:
        with self._lock:
            item = self.items.get(key)
            return copy.deepcopy(item) if item is not None else None

    # ------------------------------------------------------------------ the Ledger

    def start(self, delivery: Delivery) -> Delivery | None:
        def put(item: Item | None) -> Delivery | None:
            if item is not None:
                return items.delivery_from(copy.deepcopy(item)) or delivery
            self.items[delivery.key] = _present(items.delivery_item(delivery))
            return None

        return self._operation("start", delivery.key, put)

    def get(self, key: str) -> Delivery | None:
        return items.delivery_from(self.get_item(key))

    def claim_new(self, key: str, claim_token: str, now: int, hold_until: int) -> Delivery | None:
        def takeable(item: Item) -> bool:
            pending = item.get("delivery_status") == DeliveryStatus.PENDING.value
            return pending and _stored(item) and _unclaimed(item, now)

        return self._claim("claim_new", key, claim_token, hold_until, takeable)

    def claim_due(self, key: str, queue: str, claim_token: str, now: int, hold_until: int) -> Delivery | None:
        def takeable(item: Item) -> bool:
            return _in_queue(item, queue) and item["next_attempt_at"] <= now and _unclaimed(item, now)

        return self._claim("claim_due", key, claim_token, hold_until, takeable)

    def record_sent(self, key: str, claim_token: str, outcome: Outcome, now: int) -> bool:
        sets: Item = {"delivery_status": DeliveryStatus.SENT.value, "delivery_sent_at": iso(now)}
        if outcome.match_keys:
            sets["delivery_match_keys"] = list(outcome.match_keys)
        removes = (*_CLAIM, *_QUEUE, "delivery_retryable", "delivery_reason", "purchase", LEGACY_EVENT)
        return self._held("record_sent", key, claim_token, now, sets, removes, outcome)

    def record_failure(
        self, key: str, claim_token: str, outcome: Outcome, now: int, retry_at: int | None
    ) -> bool:
        sets: Item = {
            "delivery_status": DeliveryStatus.FAILED.value,
            "delivery_retryable": retry_at is not None,
        }
        removes: tuple[str, ...] = (*_CLAIM, "delivery_reason")
        if retry_at is not None:
            sets["next_attempt_at"] = retry_at
        else:
            removes += _QUEUE
        return self._held("record_failure", key, claim_token, now, sets, removes, outcome)

    def record_paused(
        self, key: str, claim_token: str, outcome: Outcome, reason: str, now: int, retry_at: int
    ) -> bool:
        sets: Item = {
            "delivery_status": DeliveryStatus.PAUSED.value,
            "delivery_reason": reason,
            "next_attempt_at": retry_at,
        }
        removes = (*_CLAIM, "delivery_retryable")
        return self._held("record_paused", key, claim_token, now, sets, removes, outcome)

    def release(self, key: str, claim_token: str, now: int) -> bool:
        def release(item: Item | None) -> bool:
            if item is None or item.get("claim_token") != claim_token or "redrive_queue" not in item:
                return False
            attempts = int(item.get("delivery_attempts", 0)) - 1
            sets = {"next_attempt_at": now, "delivery_updated_at": iso(now), "delivery_attempts": attempts}
            _update(item, sets, _CLAIM)
            return True

        return self._operation("release", key, release)

    def settle(
        self,
        key: str,
        status: DeliveryStatus,
        reason: str,
        now: int,
        claim_token: str | None,
        queue: str | None,
    ) -> bool:
        sets: Item = {"delivery_status": status.value, "delivery_reason": reason}
        removes = (*_QUEUE, *_CLAIM, "purchase", LEGACY_EVENT)
        if claim_token:
            return self._held("settle", key, claim_token, now, sets, removes)

        def settle(item: Item | None) -> bool:
            if item is None or not (queue is not None and _in_queue(item, queue) and _unclaimed(item, now)):
                return False
            _update(item, {**sets, "delivery_updated_at": iso(now)}, removes)
            return True

        return self._operation("settle", key, settle)

    def requeue(self, key: str, queue: str, now: int) -> Delivery | None:
        def requeue(item: Item | None) -> Delivery | None:
            if item is None or not _stored(item) or item.get("delivery_status") == DeliveryStatus.SENT.value:
                return None
            sets = {
                "delivery_status": DeliveryStatus.PENDING.value,
                "delivery_attempts": 0,
                "redrive_queue": queue,
                "next_attempt_at": now,
                "delivery_updated_at": iso(now),
            }
            _update(item, sets, ("delivery_retryable", "delivery_reason"))
            return items.delivery_from(copy.deepcopy(item))

        return self._operation("requeue", key, requeue)

    def reopen(self, rebuilt: Delivery, now: int) -> Delivery | None:
        def reopen(item: Item | None) -> Delivery | None:
            reopenable = (
                DeliveryStatus.SKIPPED.value,
                DeliveryStatus.EXPIRED.value,
                DeliveryStatus.FAILED.value,
            )
            if (
                item is None
                or item.get("delivery_status") not in reopenable
                or "next_attempt_at" in item
                or not _unclaimed(item, now)
            ):
                return None
            sets, removes = items.reopened_fields(rebuilt, now)
            _update(item, sets, tuple(removes))
            return items.delivery_from(copy.deepcopy(item))

        return self._operation("reopen", rebuilt.key, reopen)

    def due(
        self, queue: str, now: int, limit: int, after: dict[str, object] | None
    ) -> tuple[list[DueEntry], dict[str, object] | None]:
        """The sparse RedriveIndex: only items with both of its keys, ordered by next_attempt_at
        (then by key, as moto orders equal ones); a full page answers where the next one starts,
        as DynamoDB does (even when nothing follows it)."""

        def query(_: None) -> tuple[list[DueEntry], dict[str, object] | None]:
            indexed = sorted(
                (item["next_attempt_at"], key)
                for key, item in self.items.items()
                if _in_queue(item, queue) and item["next_attempt_at"] <= now
            )
            if after:
                start = items.from_item(after) or {}
                indexed = [entry for entry in indexed if entry > (start["next_attempt_at"], start[KEY])]
            page = indexed[:limit]
            entries = [DueEntry(key, _event_time(self.items[key])) for _, key in page]
            if len(page) < limit:
                return entries, None
            last_time, last_key = page[-1]
            last = {KEY: last_key, "redrive_queue": queue, "next_attempt_at": last_time}
            return entries, items.to_item(last)

        return self._operation("due", None, query)

    def announced(self, stream_record: object) -> tuple[str, str] | None:
        return items.announced(stream_record)

    # ------------------------------------------------------------------ the conditional writes

    def _claim(
        self, name: str, key: str, claim_token: str, hold_until: int, takeable: Callable[[Item], bool]
    ) -> Delivery | None:
        def claim(item: Item | None) -> Delivery | None:
            if item is None:
                return None
            if not takeable(item):
                # The SDK's retry of a claim that was applied but whose answer was lost: the claim.
                held_by_me = claim_token and item.get("claim_token") == claim_token
                return items.delivery_from(copy.deepcopy(item)) if held_by_me else None
            sets = {
                "claim_token": claim_token,
                "claim_expires_at": hold_until,
                "delivery_attempts": item.get("delivery_attempts", 0) + 1,
            }
            _update(item, sets, ())
            return items.delivery_from(copy.deepcopy(item))

        return self._operation(name, key, claim)

    def _held(
        self,
        name: str,
        key: str,
        claim_token: str,
        now: int,
        sets: Item,
        removes: tuple[str, ...],
        outcome: Outcome | None = None,
    ) -> bool:
        """An update made only under this claim (`claim_token = :claim_token`)."""

        def update(item: Item | None) -> bool:
            if item is None or "claim_token" not in item or item["claim_token"] != claim_token:
                return False
            if outcome is not None:  # an earlier attempt's outcome fields go unless set again
                _update(item, _outcome_fields(outcome), OUTCOME_FIELDS)
            _update(item, {**sets, "delivery_updated_at": iso(now)}, removes)
            return True

        return self._operation(name, key, update)

    def _operation(self, name: str, key: str | None, apply: Callable[[Any], Any]) -> Any:
        with self._lock:
            self.calls.append(name)
            fault = self._faults.pop(name, None)
            if fault is None or fault.applied:
                result = apply(self.items.get(key) if key is not None else None)
            if fault is not None:
                raise StoreError(f"simulated: {name} " + ("answer lost" if fault.applied else "unreachable"))
            return result


def _present(values: Item) -> Item:
    """What DynamoDB keeps of an item: no None values (store.items.to_item leaves them out)."""
    return {name: copy.deepcopy(value) for name, value in values.items() if value is not None}


def _update(item: Item, sets: Item, removes: tuple[str, ...]) -> None:
    for name in removes:
        if name not in sets:
            item.pop(name, None)
    item.update(copy.deepcopy(sets))


def _stored(item: Item) -> bool:
    return "purchase" in item or LEGACY_EVENT in item


def _unclaimed(item: Item, now: int) -> bool:
    return "claim_expires_at" not in item or item["claim_expires_at"] < now


def _in_queue(item: Item, queue: str) -> bool:
    """In the sparse index's partition `queue`: both of the index's keys present."""
    return item.get("redrive_queue") == queue and isinstance(item.get("next_attempt_at"), int)


def _event_time(item: Item) -> int | None:
    value = item.get("event_time")
    return value if isinstance(value, int) else None


def _outcome_fields(outcome: Outcome) -> Item:
    answer = outcome.answer
    fields = {
        "delivery_note": outcome.note,
        "delivery_code": answer.code,
        "delivery_message": answer.message,
        "delivery_request_id": answer.request_id,
        "delivery_http_status": answer.http_status,
    }
    return {name: value for name, value in fields.items() if value not in (None, "")}


# ---------------------------------------------------------------------- the other fakes

ACCEPTED = Answer(Verdict.ACCEPTED, code=0, message="OK", request_id="req-ok")
TOKEN_REFUSED = Answer(Verdict.UNAUTHORIZED, code=40105, message="access token expired", request_id="req-401")


class FakePlatform:
    """A platform whose events are the purchase's event id, answered from a script: `answers` in
    order (one per request), then ACCEPTED; or, when given, `answer_for(event_id)` for each event,
    a request of several refused whole as soon as one of its events is (as Meta does), or
    `answer_request(event_ids)` for the whole request (a partial answer). With
    `accepts_token`, a request carrying any other token is refused (TOKEN_REFUSED) first."""

    max_events_per_request = 500

    def __init__(
        self,
        *answers: Answer,
        answer_for: Callable[[str], Answer] | None = None,
        accepts_token: str | None = None,
        answer_request: Callable[[list[str]], Answer] | None = None,
    ):
        self._answers = list(answers)
        self._answer_for = answer_for
        self._answer_request = answer_request
        self.accepts_token = accepts_token
        self.posted: list[str] = []  # the event ids POSTed, in order, one per event of each request
        self.requests: list[list[str]] = []  # the event ids of each request
        self.tokens: list[str] = []  # the token of each request, in order

    def prepare(self, purchase: Purchase, contents: list[Content] | None, kind: PurchaseKind) -> Prepared:
        note = None if purchase.buyer.email else "no email"
        return Prepared({"event_id": purchase.event_id}, ("email",) if purchase.buyer.email else (), note)

    def prepare_stored(self, event_json: str) -> Prepared:
        return Prepared({"event_id": event_json}, ())

    def body(self, events: Sequence[Prepared]) -> bytes:
        return json.dumps([prepared.event["event_id"] for prepared in events]).encode()

    def post(self, http: object, access_token: str, body: bytes) -> Answer:
        event_ids: list[str] = json.loads(body)
        self.posted += event_ids
        self.requests.append(event_ids)
        self.tokens.append(access_token)
        if self.accepts_token is not None and access_token != self.accepts_token:
            return TOKEN_REFUSED
        if self._answer_request is not None:
            return self._answer_request(event_ids)
        if self._answer_for is not None:
            answers = [self._answer_for(event_id) for event_id in event_ids]
            return next((answer for answer in answers if not answer.accepted), ACCEPTED)
        return self._answers.pop(0) if self._answers else ACCEPTED


class Clock:
    """A clock that moves only when told to."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# ---------------------------------------------------------------------- settings and deliveries

TEST_ENVIRONMENT = {
    "SESSIONS_TABLE_NAME": "sessions",
    "CUSTOMERS_TABLE_NAME": "customers",
    "TIKTOK_PIXEL_ID": "CTESTPIXEL0001",
    "TIKTOK_ACCESS_TOKEN": "tiktok-test-token",
    "TIKTOK_TEST_EVENT_CODE": "TEST12345",
    "REDRIVE_GRACE_SECONDS": "120",
    "REDRIVE_BACKOFF_BASE_SECONDS": "60",
    "REDRIVE_BACKOFF_CAP_SECONDS": "3600",
}


def settings_for_tests(**environment: str) -> Settings:
    """Settings read from TEST_ENVIRONMENT with these variables changed ("" unsets one)."""
    merged = {**TEST_ENVIRONMENT, **environment}
    return load_settings({name: value for name, value in merged.items() if value != ""})


def sending(
    settings: Settings,
    destination: str | DestinationSettings = "tiktok",
    platform: FakePlatform | None = None,
    access_token: str = TEST_ENVIRONMENT["TIKTOK_ACCESS_TOKEN"],
    reread_token: Callable[[], str] | None = None,
    test_event_code: str = TEST_ENVIRONMENT["TIKTOK_TEST_EVENT_CODE"],
) -> Sending:
    """What the sender or the redrive opens for one destination, with a fake platform and no
    Stripe API key (contents are not read); `reread_token` reads the token from its store again;
    the test event code is read with the token ("": none)."""
    chosen = settings.destination(destination) if isinstance(destination, str) else destination
    fake = platform or FakePlatform()
    return Sending(chosen, fake, access_token, None, None, settings, reread_token, test_event_code)  # type: ignore[arg-type]


def a_delivery(
    settings: Settings,
    event_id: str,
    now: int,
    destination: str = "tiktok",
    consent: Consent = Consent.UNKNOWN,
    kind: PurchaseKind = PurchaseKind.CHECKOUT,
    email: str | None = "jane.doe@example.com",
) -> Delivery:
    """A purchase paid at `now`, recorded at `now` for `destination` (outbox.start.new_delivery)."""
    purchase = Purchase(
        event_id=event_id,
        event_time=now,
        order_id=event_id,
        buyer=Buyer(email=email, external_id="user-42"),
        amount=1999,
        currency="USD",
    )
    facts = ReportFacts(kind=kind, livemode=False, event_time=now, consent=consent)
    provenance = Provenance(
        stripe_event_id=f"evt_{event_id}",
        event_type="checkout.session.completed",
        provisioned_at=iso(now),
        expires_at=now + 35 * 86400,
    )
    return new_delivery(settings.destination(destination), purchase, facts, provenance, settings, now)
