"""The ledger's contract: MemoryLedger (tests/memory_store.py, the fake the outbox's unit tests run
on) does exactly what DynamoDeliveries does on DynamoDB, so the fake cannot drift from it.

Each case is one sequence of Ledger operations. It runs twice, on a fresh MemoryLedger and on
DynamoDeliveries over fresh tables made from template.yaml (moto, or DynamoDB Local with
tests/run-against-dynamodb-local.sh), and both runs must answer the same and leave the same item
after every operation (the whole item, as DynamoDeliveries.get_item reads it). The cases also say
what the answer is, so both cannot agree on something wrong. Between them they take every
condition of store/deliveries.py both ways.
"""

import dataclasses
import json
import os
from collections.abc import Callable
from typing import Any

import pytest

from checkout_conversions.destinations.base import Answer, Prepared, Verdict
from checkout_conversions.outbox.model import Delivery, DeliveryStatus, DueEntry, Ledger, Outcome
from checkout_conversions.purchase import Consent
from checkout_conversions.store.deliveries import DynamoDeliveries
from checkout_conversions.store.items import to_item
from tests.memory_store import MemoryLedger, a_delivery, settings_for_tests

# In the future: DynamoDB Local applies the table's TTL (expires_at, 35 days after T0 here) and
# would delete items mid-case; MemoryLedger, like moto, has no TTL.
T0 = 2_000_000_000
GRACE = 120  # REDRIVE_GRACE_SECONDS of settings_for_tests
HOLD = 90
ON_MOTO = not os.environ.get("DYNAMODB_TEST_ENDPOINT")
SETTINGS = settings_for_tests(META_PIXEL_ID="1234567890123456", META_TEST_EVENT_CODE="TEST_META_1")

SENT = Outcome(
    Answer(Verdict.ACCEPTED, code=0, message="OK", request_id="req-1", http_status=200),
    Prepared({}, ("email", "external_id")),
)
SENT_BARE = Outcome(Answer(Verdict.ACCEPTED))  # no outcome field, no match key
RETRY = Outcome(Answer.failure("timed out"))
REFUSED = Outcome(
    Answer(Verdict.REFUSED, code=40002, message="invalid field", request_id="req-2", http_status=200),
    Prepared({}, ("email",), note="no phone number"),
)
TOKEN_REFUSED = Outcome(
    Answer(Verdict.UNAUTHORIZED, code=40105, message="token expired", request_id="req-3", http_status=200),
    Prepared({}, ("email",)),
)
PAUSED_REASON = "TikTok refused TIKTOK_ACCESS_TOKEN, read again from its store: paused"


class Observed:
    """A ledger whose every operation is written down: its answer, and the item it concerns as
    it is stored afterwards."""

    def __init__(self, name: str, ledger: Any, plant: Callable[[dict[str, Any]], None]):
        self.name = name
        self.ledger = ledger
        self.plant = plant  # store an item as it is (an older version's shape, a marker)
        self.lines: list[tuple[str, Any, Any]] = []

    def __getattr__(self, operation: str) -> Callable[..., Any]:
        method = getattr(self.ledger, operation)

        def call(*args: Any) -> Any:
            result = method(*args)
            if operation in ("start", "reopen"):
                key = args[0].key
            elif operation in ("due", "announced"):
                key = None
            else:
                key = args[0]
            self.lines.append((operation, result, self.ledger.get_item(key) if key else None))
            return result

        return call

    def item(self, key: str) -> dict[str, Any]:
        found = self.ledger.get_item(key)
        assert found is not None, key
        return found


CASES: list[Callable[[Observed], None]] = []


def case(function: Callable[[Observed], None]) -> Callable[[Observed], None]:
    CASES.append(function)
    return function


def started(store: Observed, event_id: str = "cs_1", at: int = T0, **changes: Any) -> Delivery:
    """A new delivery (outbox.start.new_delivery) recorded; `changes` alter it first."""
    destination = changes.pop("destination", "tiktok")
    consent = changes.pop("consent", Consent.UNKNOWN)
    delivery = a_delivery(SETTINGS, event_id, at, destination=destination, consent=consent)
    delivery = dataclasses.replace(delivery, **changes)
    assert store.start(delivery) is None
    return delivery


def legacy(store: Observed, event_id: str = "cs_legacy", **values: Any) -> str:
    """TikTok's item as an older version stored it: the bare session id, the built event."""
    store.plant(
        {
            "session_id": event_id,
            "delivery_status": "pending",
            "delivery_attempts": 0,
            "tiktok_event": json.dumps({"event_id": event_id}),
            "redrive_queue": "tiktok",
            "next_attempt_at": T0,
            **values,
        }
    )
    return event_id


def marker(store: Observed, key: str = "cs_marker") -> str:
    store.plant({"session_id": key, "provisioned_at": "2025-06-15T00:00:00+00:00", "customer_id": "cus_1"})
    return key


def claimed(store: Observed, key: str, holder: str = "tok-1", at: int = T0) -> Delivery:
    taken = store.claim_new(key, holder, at, at + HOLD)
    assert taken is not None and taken.claim_token == holder
    return taken


# ---------------------------------------------------------------------- start, get


@case
def start_records_a_new_delivery_as_given(store: Observed) -> None:
    delivery = started(store)
    assert store.get(delivery.key) == delivery
    item = store.item(delivery.key)
    assert item["redrive_queue"] == "tiktok" and item["next_attempt_at"] == T0 + GRACE
    assert "claim_token" not in item and "claim_expires_at" not in item


@case
def start_keeps_the_delivery_already_recorded(store: Observed) -> None:
    first = started(store)
    again = a_delivery(SETTINGS, "cs_1", T0 + 50)
    assert store.start(again) == first
    assert store.get(first.key) == first
    # An item under the key that is no delivery stays as it is; the answer is the delivery given.
    taken = marker(store, "cs_2#tiktok")
    other = a_delivery(SETTINGS, "cs_2", T0)
    assert store.start(other) == other
    assert store.get(taken) is None and "purchase" not in store.item(taken)


@case
def start_records_a_skipped_delivery_out_of_the_queue(store: Observed) -> None:
    skipped = started(store, consent=Consent.DENIED)
    assert skipped.status is DeliveryStatus.SKIPPED and skipped.purchase_json is None
    assert store.get(skipped.key) == skipped
    assert "redrive_queue" not in store.item(skipped.key)
    assert store.due("tiktok", T0 + 10**6, 10, None) == ([], None)
    assert store.claim_new(skipped.key, "tok-1", T0, T0 + HOLD) is None
    assert store.claim_due(skipped.key, "tiktok", "tok-1", T0 + 10**6, T0 + 10**6 + HOLD) is None


@case
def get_answers_none_for_no_item_and_for_an_item_that_is_no_delivery(store: Observed) -> None:
    assert store.get("cs_nothing#tiktok") is None
    assert store.get(marker(store)) is None


# ---------------------------------------------------------------------- claim_new


@case
def claim_new_takes_a_pending_delivery_for_one_attempt(store: Observed) -> None:
    delivery = started(store)
    taken = store.claim_new(delivery.key, "tok-1", T0, T0 + HOLD)
    assert taken == dataclasses.replace(delivery, claim_token="tok-1", attempts=1)
    assert store.item(delivery.key)["claim_expires_at"] == T0 + HOLD
    assert store.get(delivery.key) == taken


@case
def claim_new_finds_a_held_delivery_taken_until_its_claim_expires(store: Observed) -> None:
    key = started(store).key
    claimed(store, key, "tok-1")
    assert store.claim_new(key, "tok-2", T0 + 1, T0 + 1 + HOLD) is None
    assert store.claim_new(key, "tok-2", T0 + HOLD, T0 + 2 * HOLD) is None  # expires after, not at
    taken = store.claim_new(key, "tok-2", T0 + HOLD + 1, T0 + 2 * HOLD)
    assert taken is not None and taken.claim_token == "tok-2" and taken.attempts == 2


@case
def claim_new_retried_with_its_own_token_answers_the_claim_already_taken(store: Observed) -> None:
    """The SDK's retry of a claim that was applied but whose answer was lost."""
    key = started(store).key
    first = claimed(store, key, "tok-1")
    assert store.claim_new(key, "tok-1", T0 + 1, T0 + 1 + HOLD) == first  # no second attempt counted
    assert store.item(key)["claim_expires_at"] == T0 + HOLD
    again = store.claim_new(key, "tok-1", T0 + HOLD + 1, T0 + 2 * HOLD)  # expired: a new claim
    assert again is not None and again.attempts == 2


@case
def claim_new_takes_only_pending_deliveries(store: Observed) -> None:
    failed = started(store, "cs_failed").key
    claimed(store, failed)
    assert store.record_failure(failed, "tok-1", RETRY, T0 + 1, T0 + 60)
    sent = started(store, "cs_sent").key
    claimed(store, sent)
    assert store.record_sent(sent, "tok-1", SENT, T0 + 1)
    expired = started(store, "cs_expired").key
    assert store.settle(expired, DeliveryStatus.EXPIRED, "too old", T0 + 1, None, "tiktok")
    for key in (failed, sent, expired):
        assert store.claim_new(key, "tok-2", T0 + 1000, T0 + 1000 + HOLD) is None


@case
def claim_new_takes_only_a_delivery_with_something_to_send(store: Observed) -> None:
    empty = started(store, "cs_empty", purchase_json=None).key
    assert store.claim_new(empty, "tok-1", T0, T0 + HOLD) is None
    old = legacy(store)
    taken = store.claim_new(old, "tok-1", T0, T0 + HOLD)
    assert taken is not None and taken.stored_event and taken.destination == "tiktok"
    assert taken.event_id == "cs_legacy" and taken.attempts == 1


@case
def claim_new_finds_nothing_without_a_delivery(store: Observed) -> None:
    assert store.claim_new("cs_nothing#tiktok", "tok-1", T0, T0 + HOLD) is None
    assert store.claim_new(marker(store), "tok-1", T0, T0 + HOLD) is None


# ---------------------------------------------------------------------- claim_due


@case
def claim_due_takes_a_delivery_once_it_is_due(store: Observed) -> None:
    key = started(store).key
    due_at = T0 + GRACE
    assert store.claim_due(key, "tiktok", "tok-1", due_at - 1, due_at - 1 + HOLD) is None
    taken = store.claim_due(key, "tiktok", "tok-1", due_at, due_at + HOLD)  # due at, not after
    assert taken is not None and taken.claim_token == "tok-1" and taken.attempts == 1
    assert taken.status is DeliveryStatus.PENDING and taken.next_attempt_at == due_at
    assert store.claim_due(key, "tiktok", "tok-2", due_at + 1, due_at + 1 + HOLD) is None
    assert store.claim_new(key, "tok-2", due_at + 1, due_at + 1 + HOLD) is None
    assert store.claim_due(key, "tiktok", "tok-1", due_at + 1, due_at + 1 + HOLD) == taken
    retaken = store.claim_due(key, "tiktok", "tok-2", due_at + HOLD + 1, due_at + 2 * HOLD)
    assert retaken is not None and retaken.claim_token == "tok-2" and retaken.attempts == 2


@case
def claim_due_takes_only_from_its_own_queue(store: Observed) -> None:
    meta = started(store, "cs_1", destination="meta").key
    assert store.claim_due(meta, "tiktok", "tok-1", T0 + 1000, T0 + 1000 + HOLD) is None
    assert store.claim_due(meta, "meta", "tok-1", T0 + 1000, T0 + 1000 + HOLD) is not None


@case
def claim_due_takes_nothing_out_of_the_queue(store: Observed) -> None:
    unqueued = started(store, "cs_unqueued", next_attempt_at=None).key
    assert "redrive_queue" not in store.item(unqueued)
    assert store.claim_due(unqueued, "tiktok", "tok-1", T0 + 1000, T0 + 1000 + HOLD) is None
    # A retry time on an item out of the queue is not in the queue: the index needs both keys.
    claimed(store, unqueued, "tok-1")
    assert store.record_failure(unqueued, "tok-1", RETRY, T0 + 1, T0 + 60)
    assert store.claim_due(unqueued, "tiktok", "tok-2", T0 + 1000, T0 + 1000 + HOLD) is None
    assert store.due("tiktok", T0 + 1000, 10, None) == ([], None)
    refused = started(store, "cs_refused").key
    claimed(store, refused)
    assert store.record_failure(refused, "tok-1", REFUSED, T0 + 1, None)
    assert store.claim_due(refused, "tiktok", "tok-2", T0 + 1000, T0 + 1000 + HOLD) is None
    assert store.claim_due("cs_nothing#tiktok", "tiktok", "tok-2", T0 + 1000, T0 + 1000 + HOLD) is None


@case
def claim_due_takes_a_failed_delivery_when_its_retry_is_due(store: Observed) -> None:
    key = started(store).key
    claimed(store, key)
    assert store.record_failure(key, "tok-1", RETRY, T0 + 1, T0 + 61)
    assert store.claim_due(key, "tiktok", "tok-2", T0 + 60, T0 + 60 + HOLD) is None
    taken = store.claim_due(key, "tiktok", "tok-2", T0 + 61, T0 + 61 + HOLD)
    assert taken is not None and taken.status is DeliveryStatus.FAILED and taken.attempts == 2


@case
def claim_due_takes_a_legacy_delivery(store: Observed) -> None:
    key = legacy(store)
    taken = store.claim_due(key, "tiktok", "tok-1", T0, T0 + HOLD)
    assert taken is not None and taken.key == "cs_legacy" and taken.attempts == 1


# ---------------------------------------------------------------------- record_sent


@case
def record_sent_finishes_the_delivery_held_by_this_claim(store: Observed) -> None:
    key = started(store).key
    claimed(store, key)
    assert store.record_sent(key, "tok-1", SENT, T0 + 2)
    item = store.item(key)
    assert item["delivery_status"] == "sent" and item["delivery_match_keys"] == ["email", "external_id"]
    assert item["delivery_code"] == 0 and item["delivery_request_id"] == "req-1"
    assert item["delivery_sent_at"] == item["delivery_updated_at"]
    for gone in ("purchase", "redrive_queue", "next_attempt_at", "claim_token", "claim_expires_at"):
        assert gone not in item
    assert not store.record_sent(key, "tok-1", SENT, T0 + 3)  # the claim went with it
    assert store.claim_new(key, "tok-2", T0 + 10**6, T0 + 10**6 + HOLD) is None
    assert store.claim_due(key, "tiktok", "tok-2", T0 + 10**6, T0 + 10**6 + HOLD) is None


@case
def record_sent_needs_this_very_claim(store: Observed) -> None:
    key = started(store).key
    assert not store.record_sent(key, "tok-1", SENT, T0)  # never claimed
    assert not store.record_sent(key, "", SENT, T0)
    claimed(store, key, "tok-1")
    assert not store.record_sent(key, "tok-2", SENT, T0 + 1)
    assert not store.record_sent("cs_nothing#tiktok", "tok-1", SENT, T0 + 1)
    # A claim past its time that nobody took over is still this claim's.
    assert store.record_sent(key, "tok-1", SENT_BARE, T0 + 10 * HOLD)


@case
def record_sent_clears_what_earlier_attempts_left(store: Observed) -> None:
    key = started(store).key
    claimed(store, key)
    assert store.record_failure(key, "tok-1", REFUSED, T0 + 1, T0 + 61)
    assert store.item(key)["delivery_note"] == "no phone number"
    assert store.claim_due(key, "tiktok", "tok-2", T0 + 61, T0 + 61 + HOLD) is not None
    assert store.record_sent(key, "tok-2", SENT_BARE, T0 + 62)
    item = store.item(key)
    for gone in ("delivery_note", "delivery_code", "delivery_message", "delivery_request_id"):
        assert gone not in item
    assert "delivery_http_status" not in item and "delivery_retryable" not in item
    assert "delivery_match_keys" not in item


@case
def record_sent_of_a_legacy_delivery_deletes_its_stored_event(store: Observed) -> None:
    key = legacy(store)
    claimed(store, key)
    assert store.record_sent(key, "tok-1", SENT, T0 + 1)
    assert "tiktok_event" not in store.item(key)


# ---------------------------------------------------------------------- record_failure


@case
def record_failure_retryable_stays_in_the_queue_until_its_retry(store: Observed) -> None:
    delivery = started(store)
    claimed(store, delivery.key)
    assert store.record_failure(delivery.key, "tok-1", RETRY, T0 + 1, T0 + 61)
    item = store.item(delivery.key)
    assert item["delivery_status"] == "failed" and item["delivery_retryable"] is True
    assert item["redrive_queue"] == "tiktok" and item["next_attempt_at"] == T0 + 61
    assert item["delivery_message"] == "timed out" and item["purchase"] == delivery.purchase_json
    assert "claim_token" not in item and "claim_expires_at" not in item
    assert not store.record_failure(delivery.key, "tok-1", RETRY, T0 + 2, T0 + 62)  # claim gone


@case
def record_failure_permanent_leaves_the_queue_and_keeps_the_purchase(store: Observed) -> None:
    delivery = started(store)
    claimed(store, delivery.key)
    assert store.record_failure(delivery.key, "tok-1", REFUSED, T0 + 1, None)
    item = store.item(delivery.key)
    assert item["delivery_status"] == "failed" and item["delivery_retryable"] is False
    assert "redrive_queue" not in item and "next_attempt_at" not in item
    assert item["purchase"] == delivery.purchase_json and item["delivery_code"] == 40002
    assert store.due("tiktok", T0 + 10**6, 10, None) == ([], None)


@case
def record_failure_needs_this_very_claim(store: Observed) -> None:
    key = started(store).key
    assert not store.record_failure(key, "tok-1", RETRY, T0, T0 + 60)
    claimed(store, key, "tok-1")
    assert not store.record_failure(key, "tok-2", RETRY, T0 + 1, T0 + 61)
    assert not store.record_failure("cs_nothing#tiktok", "tok-1", RETRY, T0 + 1, None)
    assert store.item(key)["delivery_status"] == "pending"


# ---------------------------------------------------------------------- record_paused


@case
def record_paused_keeps_the_delivery_and_its_purchase_in_the_queue_due_again(store: Observed) -> None:
    delivery = started(store)
    claimed(store, delivery.key)
    assert store.record_paused(delivery.key, "tok-1", TOKEN_REFUSED, PAUSED_REASON, T0 + 1, T0 + 1)
    item = store.item(delivery.key)
    assert item["delivery_status"] == "paused" and item["delivery_reason"] == PAUSED_REASON
    assert item["redrive_queue"] == "tiktok" and item["next_attempt_at"] == T0 + 1
    assert item["purchase"] == delivery.purchase_json and item["delivery_attempts"] == 1
    assert item["delivery_code"] == 40105 and item["delivery_request_id"] == "req-3"
    assert item["delivery_updated_at"] == "2033-05-18T03:33:21+00:00"
    for gone in ("claim_token", "claim_expires_at", "delivery_retryable", "delivery_match_keys"):
        assert gone not in item
    assert not store.record_paused(delivery.key, "tok-1", TOKEN_REFUSED, PAUSED_REASON, T0 + 2, T0 + 2)
    # Due at once for the redrive; never again a new delivery for the stream.
    assert store.due("tiktok", T0 + 1, 10, None) == ([DueEntry(delivery.key, T0)], None)
    assert store.claim_new(delivery.key, "tok-2", T0 + 10**3, T0 + 10**3 + HOLD) is None
    taken = store.claim_due(delivery.key, "tiktok", "tok-2", T0 + 1, T0 + 1 + HOLD)
    assert taken is not None and taken.status is DeliveryStatus.PAUSED and taken.reason == PAUSED_REASON
    assert taken.attempts == 2


@case
def record_paused_needs_this_very_claim(store: Observed) -> None:
    key = started(store).key
    assert not store.record_paused(key, "tok-1", TOKEN_REFUSED, PAUSED_REASON, T0, T0)  # never claimed
    claimed(store, key, "tok-1")
    assert not store.record_paused(key, "tok-2", TOKEN_REFUSED, PAUSED_REASON, T0 + 1, T0 + 1)
    assert not store.record_paused("cs_nothing#tiktok", "tok-1", TOKEN_REFUSED, PAUSED_REASON, T0, T0)
    assert store.item(key)["delivery_status"] == "pending"


@case
def record_paused_then_another_outcome_clears_the_pause(store: Observed) -> None:
    """A failed delivery paused loses `delivery_retryable`; paused then failed or sent, its reason."""
    key = started(store).key
    claimed(store, key)
    assert store.record_failure(key, "tok-1", RETRY, T0 + 1, T0 + 61)
    assert store.claim_due(key, "tiktok", "tok-2", T0 + 61, T0 + 61 + HOLD) is not None
    assert store.record_paused(key, "tok-2", TOKEN_REFUSED, PAUSED_REASON, T0 + 62, T0 + 62)
    assert "delivery_retryable" not in store.item(key)
    assert store.claim_due(key, "tiktok", "tok-3", T0 + 362, T0 + 362 + HOLD) is not None
    assert store.record_failure(key, "tok-3", RETRY, T0 + 363, T0 + 423)
    item = store.item(key)
    assert item["delivery_status"] == "failed" and "delivery_reason" not in item
    assert item["delivery_message"] == "timed out" and "delivery_code" not in item
    assert store.claim_due(key, "tiktok", "tok-4", T0 + 423, T0 + 423 + HOLD) is not None
    assert store.record_paused(key, "tok-4", TOKEN_REFUSED, PAUSED_REASON, T0 + 424, T0 + 424)
    assert store.claim_due(key, "tiktok", "tok-5", T0 + 724, T0 + 724 + HOLD) is not None
    assert store.record_sent(key, "tok-5", SENT, T0 + 725)
    item = store.item(key)
    assert item["delivery_status"] == "sent" and "delivery_reason" not in item and "purchase" not in item


@case
def record_paused_of_a_delivery_out_of_the_queue_leaves_it_out(store: Observed) -> None:
    key = started(store, "cs_unqueued", next_attempt_at=None).key
    claimed(store, key)
    assert store.record_paused(key, "tok-1", TOKEN_REFUSED, PAUSED_REASON, T0 + 1, T0 + 1)
    assert "redrive_queue" not in store.item(key)
    assert store.due("tiktok", T0 + 1000, 10, None) == ([], None)


@case
def requeue_puts_a_paused_delivery_back_as_pending(store: Observed) -> None:
    key = started(store).key
    claimed(store, key)
    assert store.record_paused(key, "tok-1", TOKEN_REFUSED, PAUSED_REASON, T0 + 1, T0 + 1)
    again = store.requeue(key, "tiktok", T0 + 5)
    assert again is not None and again.status is DeliveryStatus.PENDING and again.reason is None
    assert again.next_attempt_at == T0 + 5 and again.attempts == 0


# ---------------------------------------------------------------------- settle


@case
def settle_under_a_claim_needs_that_claim(store: Observed) -> None:
    key = started(store).key
    claimed(store, key, "tok-1")
    assert not store.settle(key, DeliveryStatus.SKIPPED, "switched off", T0 + 1, "tok-2", None)
    assert store.settle(key, DeliveryStatus.SKIPPED, "switched off", T0 + 1, "tok-1", None)
    item = store.item(key)
    assert item["delivery_status"] == "skipped" and item["delivery_reason"] == "switched off"
    for gone in ("purchase", "redrive_queue", "next_attempt_at", "claim_token", "claim_expires_at"):
        assert gone not in item
    assert not store.settle(key, DeliveryStatus.SKIPPED, "again", T0 + 2, "tok-1", None)
    assert not store.settle("cs_nothing#tiktok", DeliveryStatus.SKIPPED, "x", T0, "tok-1", None)


@case
def settle_without_a_claim_takes_an_unclaimed_delivery_of_the_queue(store: Observed) -> None:
    key = started(store).key
    expired = DeliveryStatus.EXPIRED
    assert not store.settle(key, expired, "too old", T0, None, "meta")  # another queue
    assert not store.settle(key, expired, "too old", T0, None, None)
    claimed(store, key, "tok-1")
    assert not store.settle(key, expired, "too old", T0 + 1, None, "tiktok")  # held
    assert not store.settle(key, expired, "too old", T0 + HOLD, None, "tiktok")
    # Not due yet does not matter; a claim past its time does not hold it.
    assert store.settle(key, expired, "too old", T0 + HOLD + 1, "", "tiktok")
    item = store.item(key)
    assert item["delivery_status"] == "expired" and "claim_token" not in item and "purchase" not in item
    assert not store.settle(key, expired, "too old", T0 + HOLD + 2, None, "tiktok")  # out of the queue
    assert not store.settle("cs_nothing#tiktok", expired, "too old", T0, None, "tiktok")


@case
def settle_of_a_legacy_delivery_deletes_its_stored_event(store: Observed) -> None:
    key = legacy(store)
    assert store.settle(key, DeliveryStatus.EXPIRED, "too old", T0 + 1, None, "tiktok")
    assert "tiktok_event" not in store.item(key)


# ---------------------------------------------------------------------- requeue


@case
def requeue_puts_a_failed_delivery_back_in_the_queue(store: Observed) -> None:
    delivery = started(store)
    claimed(store, delivery.key)
    assert store.record_failure(delivery.key, "tok-1", REFUSED, T0 + 1, None)
    again = store.requeue(delivery.key, "tiktok", T0 + 500)
    assert again == dataclasses.replace(delivery, attempts=0, next_attempt_at=T0 + 500)
    item = store.item(delivery.key)
    assert item["redrive_queue"] == "tiktok" and "delivery_retryable" not in item
    assert item["delivery_code"] == 40002  # the last attempt's outcome stays until the next
    assert store.due("tiktok", T0 + 500, 10, None) == ([DueEntry(delivery.key, T0)], None)


@case
def requeue_of_a_held_delivery_keeps_the_claim(store: Observed) -> None:
    key = started(store).key
    claimed(store, key, "tok-1")
    again = store.requeue(key, "tiktok", T0 + 1)
    assert again is not None and again.claim_token == "tok-1" and again.attempts == 0
    assert store.claim_due(key, "tiktok", "tok-2", T0 + 2, T0 + 2 + HOLD) is None
    assert store.record_sent(key, "tok-1", SENT, T0 + 3)


@case
def requeue_refuses_a_sent_delivery_and_one_with_nothing_stored(store: Observed) -> None:
    sent = started(store, "cs_sent").key
    claimed(store, sent)
    assert store.record_sent(sent, "tok-1", SENT, T0 + 1)
    skipped = started(store, "cs_skipped", consent=Consent.DENIED).key
    expired = started(store, "cs_expired").key
    assert store.settle(expired, DeliveryStatus.EXPIRED, "too old", T0 + 1, None, "tiktok")
    for key in (sent, skipped, expired, marker(store), "cs_nothing#tiktok"):
        assert store.requeue(key, "tiktok", T0 + 2) is None
    assert store.requeue(legacy(store), "tiktok", T0 + 2) is not None


# ---------------------------------------------------------------------- release (no time to send)


@case
def release_gives_the_claim_back_due_now_without_counting_the_attempt(store: Observed) -> None:
    key = started(store).key
    claimed(store, key, "tok-1")
    assert not store.release(key, "tok-2", T0 + 5)
    assert store.release(key, "tok-1", T0 + 5)
    item = store.item(key)
    assert item["delivery_status"] == "pending" and item["delivery_attempts"] == 0
    assert item["next_attempt_at"] == T0 + 5 and "claim_token" not in item
    assert not store.release(key, "tok-1", T0 + 6)  # the claim is gone
    failed = started(store, "cs_failed").key
    claimed(store, failed, "tok-1")
    assert store.record_failure(failed, "tok-1", RETRY, T0 + 1, T0 + 60)
    taken = store.claim_due(failed, "tiktok", "tok-3", T0 + 60, T0 + 60 + HOLD)
    assert taken is not None and taken.attempts == 2
    assert store.release(failed, "tok-3", T0 + 61)
    assert store.item(failed)["delivery_status"] == "failed" and store.item(failed)["delivery_attempts"] == 1


# ---------------------------------------------------------------------- reopen (a replay)


def rebuilt(event_id: str, at: int = T0) -> Delivery:
    """The delivery a replay rebuilds from Stripe's event: pending, with the purchase."""
    return a_delivery(SETTINGS, event_id, at)


@case
def reopen_puts_a_skipped_delivery_back_with_the_rebuilt_purchase(store: Observed) -> None:
    skipped = started(store, "cs_skipped", consent=Consent.DENIED)
    assert "purchase" not in store.item(skipped.key)
    again = store.reopen(rebuilt("cs_skipped"), T0 + 50)
    assert again is not None and again.status is DeliveryStatus.PENDING and again.reason is None
    assert again.purchase_json == rebuilt("cs_skipped").purchase_json
    assert again.facts.consent is Consent.UNKNOWN and again.attempts == 0
    item = store.item(skipped.key)
    assert item["redrive_queue"] == "tiktok" and item["next_attempt_at"] == T0 + 50
    assert store.due("tiktok", T0 + 50, 10, None) == ([DueEntry(skipped.key, T0)], None)
    assert store.reopen(rebuilt("cs_skipped"), T0 + 51) is None  # pending now: a second replay leaves it


@case
def reopen_puts_expired_and_failed_for_good_deliveries_back(store: Observed) -> None:
    expired = started(store, "cs_expired").key
    assert store.settle(expired, DeliveryStatus.EXPIRED, "too old", T0 + 1, None, "tiktok")
    failed = started(store, "cs_failed").key
    claimed(store, failed)
    assert store.record_failure(failed, "tok-1", REFUSED, T0 + 1, None)
    for event_id, key in (("cs_expired", expired), ("cs_failed", failed)):
        again = store.reopen(rebuilt(event_id), T0 + 9)
        assert (
            again is not None and again.status is DeliveryStatus.PENDING and again.next_attempt_at == T0 + 9
        )
        assert "delivery_retryable" not in store.item(key) and "delivery_reason" not in store.item(key)


@case
def reopen_refuses_what_is_sent_waiting_or_missing(store: Observed) -> None:
    sent = started(store, "cs_sent").key
    claimed(store, sent)
    assert store.record_sent(sent, "tok-1", SENT, T0 + 1)
    started(store, "cs_pending")
    retrying = started(store, "cs_retrying").key
    claimed(store, retrying)
    assert store.record_failure(retrying, "tok-1", RETRY, T0 + 1, T0 + 60)
    paused = started(store, "cs_paused").key
    claimed(store, paused)
    assert store.record_paused(paused, "tok-1", TOKEN_REFUSED, PAUSED_REASON, T0 + 1, T0 + 1)
    for event_id in ("cs_sent", "cs_pending", "cs_retrying", "cs_paused", "cs_nothing"):
        assert store.reopen(rebuilt(event_id), T0 + 2) is None
    assert store.item(sent)["delivery_status"] == "sent"


# ---------------------------------------------------------------------- due


@case
def due_answers_the_queue_due_now_oldest_first(store: Observed) -> None:
    third, first, second = (started(store, f"cs_{n}", at=T0 + 10 * n).key for n in (3, 1, 2))
    started(store, "cs_later", at=T0 + 1000)
    started(store, "cs_meta", destination="meta")
    started(store, "cs_unqueued", next_attempt_at=None)
    started(store, "cs_denied", consent=Consent.DENIED)
    refused = started(store, "cs_refused").key
    claimed(store, refused)
    assert store.record_failure(refused, "tok-1", REFUSED, T0 + 1, None)
    held = started(store, "cs_held", at=T0 + 5).key
    claimed(store, held)  # held or not, it is due: claiming is checked on the table
    now = T0 + 30 + GRACE
    assert store.due("tiktok", now, 10, None) == (
        [
            DueEntry(held, T0 + 5),
            DueEntry(first, T0 + 10),
            DueEntry(second, T0 + 20),
            DueEntry(third, T0 + 30),
        ],
        None,
    )
    assert store.due("meta", now, 10, None) == ([DueEntry("cs_meta#meta", T0)], None)
    assert store.due("tiktok", T0 + GRACE - 1, 10, None) == ([], None)


@case
def due_pages_on_from_where_the_last_page_ended(store: Observed) -> None:
    keys = [started(store, f"cs_{n}", at=T0 + n).key for n in range(5)]
    started(store, "cs_later", at=T0 + 1000)
    now = T0 + 10 + GRACE
    first, after = store.due("tiktok", now, 2, None)
    assert [entry.key for entry in first] == keys[:2] and after is not None
    # The page key is a position: an item of the last page that moved does not move it.
    claimed(store, keys[1])
    assert store.record_failure(keys[1], "tok-1", RETRY, now, now + 60)
    second, after = store.due("tiktok", now, 2, after)
    assert [entry.key for entry in second] == keys[2:4] and after is not None
    third, after = store.due("tiktok", now, 2, after)
    assert [entry.key for entry in third] == keys[4:] and after is None
    # A page as full as the limit says where to go on; what follows it is not due.
    full, after = store.due("tiktok", now, 4, None)
    assert [entry.key for entry in full] == [keys[0], *keys[2:]] and after is not None
    assert store.due("tiktok", now, 4, after) == ([], None)


@case
def due_a_page_as_full_as_the_limit_says_where_to_go_on(store: Observed) -> None:
    """DynamoDB (and DynamoDB Local) answer a page key whenever a page is as full as the limit,
    even when nothing follows; moto only when something does. Either way the next page is empty
    and the last: that key is compared only against a real DynamoDB."""
    keys = [started(store, f"cs_{n}", at=T0 + n).key for n in range(2)]
    now = T0 + 10 + GRACE
    entries, after = store.ledger.due("tiktok", now, 2, None)
    assert [entry.key for entry in entries] == keys
    if isinstance(store.ledger, MemoryLedger) or not ON_MOTO:
        assert after is not None
    store.lines.append(("due", entries, None if ON_MOTO else after))
    rest = store.ledger.due("tiktok", now, 2, after) if after is not None else ([], None)
    store.lines.append(("due", *rest))
    assert rest == ([], None)


@case
def due_reads_no_event_time_that_is_not_stored(store: Observed) -> None:
    key = legacy(store)
    assert store.due("tiktok", T0, 10, None) == ([DueEntry(key, None)], None)


# ---------------------------------------------------------------------- announced


@case
def announced_names_only_a_new_pending_delivery(store: Observed) -> None:
    def record(event_name: str, status: str) -> dict[str, Any]:
        image = {
            "session_id": {"S": "cs_1#meta"},
            "destination": {"S": "meta"},
            "delivery_status": {"S": status},
        }
        return {"eventName": event_name, "dynamodb": {"NewImage": image}}

    assert store.announced(record("INSERT", "pending")) == ("cs_1#meta", "meta")
    assert store.announced(record("MODIFY", "pending")) is None
    assert store.announced(record("INSERT", "skipped")) is None
    assert store.announced({"eventName": "INSERT"}) is None
    assert store.announced("not a record") is None


# ---------------------------------------------------------------------- running them


@pytest.fixture
def dynamo(dynamodb, tables):
    table = tables["SESSIONS_TABLE_NAME"]
    return Observed(
        "DynamoDeliveries",
        DynamoDeliveries(dynamodb, table),
        lambda values: dynamodb.put_item(TableName=table, Item=to_item(values)),
    )


def run(case: Callable[[Observed], None], store: Observed) -> list[tuple[str, Any, Any]]:
    try:
        case(store)
    except AssertionError as error:
        raise AssertionError(f"on {store.name}: {error}") from error
    return store.lines


@pytest.mark.parametrize("contract_case", CASES, ids=[function.__name__ for function in CASES])
def test_the_memory_ledger_does_what_dynamodb_does(contract_case, dynamo):
    memory_ledger = MemoryLedger()
    memory = Observed("MemoryLedger", memory_ledger, memory_ledger.put_item)
    assert run(contract_case, memory) == run(contract_case, dynamo)


def test_every_ledger_operation_is_in_the_contract():
    operations = {name for name in vars(Ledger) if not name.startswith("_")}
    called = set()
    for contract_case in CASES:
        memory_ledger = MemoryLedger()
        memory = Observed("MemoryLedger", memory_ledger, memory_ledger.put_item)
        contract_case(memory)
        called |= {line[0] for line in memory.lines}
    assert called == operations
