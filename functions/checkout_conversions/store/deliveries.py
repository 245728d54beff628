"""The delivery ledger in the Sessions table: the outbox's operations (outbox.model.Ledger) as
conditional UpdateItems, and the redrive's reads of the sparse RedriveIndex."""

from typing import Any

from checkout_conversions.outbox.model import Delivery, DeliveryStatus, DueEntry, Outcome
from checkout_conversions.store import items
from checkout_conversions.store.dynamodb import ConditionFailed, translated_errors, write
from checkout_conversions.store.items import (
    KEY,
    LEGACY_EVENT,
    OUTCOME_FIELDS,
    expression_values,
    from_item,
    key_of,
)
from checkout_conversions.values import iso

REDRIVE_INDEX = "RedriveIndex"
_UNCLAIMED = "(attribute_not_exists(claim_expires_at) OR claim_expires_at < :now)"
_STORED = f"(attribute_exists(purchase) OR attribute_exists({LEGACY_EVENT}))"
_HELD = "claim_token = :claim_token"
_CLAIM = "SET claim_token = :claim_token, claim_expires_at = :hold_until ADD delivery_attempts :one"
_OUT_OF_QUEUE = ("redrive_queue", "next_attempt_at")
_CLAIM_FIELDS = ("claim_token", "claim_expires_at")


class DynamoDeliveries:
    """outbox.model.Ledger on DynamoDB."""

    def __init__(self, client: Any, sessions_table: str):
        self._client = client
        self.table = sessions_table

    def start(self, delivery: Delivery) -> Delivery | None:
        try:
            write(
                lambda: self._client.put_item(
                    TableName=self.table,
                    Item=items.to_item(items.delivery_item(delivery)),
                    ConditionExpression=f"attribute_not_exists({KEY})",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            )
        except ConditionFailed as failed:
            return items.delivery_from(failed.item) or delivery
        return None

    def get(self, key: str) -> Delivery | None:
        return items.delivery_from(self.get_item(key))

    def get_item(self, key: str) -> dict[str, Any] | None:
        with translated_errors():
            answer = self._client.get_item(TableName=self.table, Key=key_of(key), ConsistentRead=True)
        return from_item(answer.get("Item"))

    def claim_new(self, key: str, claim_token: str, now: int, hold_until: int) -> Delivery | None:
        # Only `pending`: a delivery the redrive already tried (failed), or that was sent, skipped
        # or expired, is never taken from the stream again.
        condition = f"delivery_status = :pending AND {_STORED} AND {_UNCLAIMED}"
        values = expression_values(
            claim_token=claim_token,
            hold_until=hold_until,
            one=1,
            pending=DeliveryStatus.PENDING.value,
            now=now,
        )
        return self._claim(key, condition, values, claim_token)

    def claim_due(self, key: str, queue: str, claim_token: str, now: int, hold_until: int) -> Delivery | None:
        # Checked on the table itself, not on the eventually consistent index: a delivery sent a
        # moment ago, or held by the stream sender, is never taken.
        condition = f"redrive_queue = :queue AND next_attempt_at <= :now AND {_UNCLAIMED}"
        values = expression_values(
            claim_token=claim_token, hold_until=hold_until, one=1, queue=queue, now=now
        )
        return self._claim(key, condition, values, claim_token)

    def record_sent(self, key: str, claim_token: str, outcome: Outcome, now: int) -> bool:
        """Sent for good, out of the queue, the match keys it carried (names) kept, and the stored
        purchase (the buyer's details, IP, click id) deleted."""
        present, absent = _outcome_fields(outcome)
        at = iso(now)
        sets: dict[str, Any] = {
            "delivery_status": DeliveryStatus.SENT.value,
            "delivery_sent_at": at,
            "delivery_updated_at": at,
        }
        if outcome.match_keys:
            sets["delivery_match_keys"] = list(outcome.match_keys)
        removes = [
            *_CLAIM_FIELDS,
            *_OUT_OF_QUEUE,
            "delivery_retryable",
            "delivery_reason",
            "purchase",
            LEGACY_EVENT,
        ]
        return self._held(key, claim_token, {**sets, **present}, [*removes, *absent])

    def record_failure(
        self, key: str, claim_token: str, outcome: Outcome, now: int, retry_at: int | None
    ) -> bool:
        """A failed attempt: retried at `retry_at`, or out of the queue when None (permanent: the
        stored purchase stays so that an operator can requeue it). A pause's reason goes."""
        present, absent = _outcome_fields(outcome)
        sets: dict[str, Any] = {
            "delivery_status": DeliveryStatus.FAILED.value,
            "delivery_retryable": retry_at is not None,
            "delivery_updated_at": iso(now),
            **present,
        }
        removes = [*_CLAIM_FIELDS, *absent, "delivery_reason"]
        if retry_at is not None:
            sets["next_attempt_at"] = retry_at
        else:
            removes += _OUT_OF_QUEUE
        return self._held(key, claim_token, sets, removes)

    def record_paused(
        self, key: str, claim_token: str, outcome: Outcome, reason: str, now: int, retry_at: int
    ) -> bool:
        """The platform refused the token, read again: paused with the reason and the platform's
        answer, the stored purchase kept, due again at `retry_at` (where it is in the queue)."""
        present, absent = _outcome_fields(outcome)
        sets: dict[str, Any] = {
            "delivery_status": DeliveryStatus.PAUSED.value,
            "delivery_reason": reason,
            "next_attempt_at": retry_at,
            "delivery_updated_at": iso(now),
            **present,
        }
        return self._held(key, claim_token, sets, [*_CLAIM_FIELDS, *absent, "delivery_retryable"])

    def release(self, key: str, claim_token: str, now: int) -> bool:
        """Nothing was sent (too little time was left): the claim given back, the delivery as it
        was and due now, the attempt its claim counted taken back."""
        sets = "SET next_attempt_at = :now, delivery_updated_at = :updated"
        update = f"{sets} REMOVE {', '.join(_CLAIM_FIELDS)} ADD delivery_attempts :minus_one"
        values = expression_values(now=now, updated=iso(now), minus_one=-1, claim_token=claim_token)
        return self._update(key, update, f"{_HELD} AND attribute_exists(redrive_queue)", values) is not None

    def settle(
        self,
        key: str,
        status: DeliveryStatus,
        reason: str,
        now: int,
        claim_token: str | None,
        queue: str | None,
    ) -> bool:
        sets = {"delivery_status": status.value, "delivery_reason": reason, "delivery_updated_at": iso(now)}
        removes = [*_OUT_OF_QUEUE, *_CLAIM_FIELDS, "purchase", LEGACY_EVENT]
        if claim_token:
            return self._held(key, claim_token, sets, removes)
        update, values = _set_remove(sets, removes)
        values.update(expression_values(queue=queue, now=now))
        return self._update(key, update, f"redrive_queue = :queue AND {_UNCLAIMED}", values) is not None

    def requeue(self, key: str, queue: str, now: int) -> Delivery | None:
        """Pending again and due now, attempts from zero (an operator's replay), unless the
        platform already has it or there is no stored purchase to send."""
        sets = {
            "delivery_status": DeliveryStatus.PENDING.value,
            "delivery_attempts": 0,
            "redrive_queue": queue,
            "next_attempt_at": now,
            "delivery_updated_at": iso(now),
        }
        update, values = _set_remove(sets, ["delivery_retryable", "delivery_reason"])
        values.update(expression_values(sent=DeliveryStatus.SENT.value))
        item = self._update(key, update, f"{_STORED} AND delivery_status <> :sent", values, return_new=True)
        return items.delivery_from(item)

    def reopen(self, rebuilt: Delivery, now: int) -> Delivery | None:
        """A delivery that was never sent and never will be as it stands (skipped, expired, failed
        for good) pending again and due now, with the purchase and facts rebuilt from Stripe's
        record (an operator's replay); None when it is no such delivery (sent, waiting, held)."""
        sets, removes = items.reopened_fields(rebuilt, now)
        update, values = _set_remove(sets, removes)
        values.update(
            expression_values(
                skipped=DeliveryStatus.SKIPPED.value,
                expired=DeliveryStatus.EXPIRED.value,
                failed=DeliveryStatus.FAILED.value,
                now=now,
            )
        )
        # Out of the queue (a failure still retried, or a pause, is in it) and held by nobody.
        condition = (
            "delivery_status IN (:skipped, :expired, :failed) "
            f"AND attribute_not_exists(next_attempt_at) AND {_UNCLAIMED}"
        )
        return items.delivery_from(self._update(rebuilt.key, update, condition, values, return_new=True))

    def due(
        self, queue: str, now: int, limit: int, after: dict[str, object] | None
    ) -> tuple[list[DueEntry], dict[str, object] | None]:
        """One page of a destination's deliveries whose (re)try is due, oldest first, from the
        sparse index, and where the next page starts (None after the last)."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": REDRIVE_INDEX,
            "KeyConditionExpression": "redrive_queue = :queue AND next_attempt_at <= :now",
            "ExpressionAttributeValues": expression_values(queue=queue, now=now),
            "Limit": limit,
        }
        if after:
            request["ExclusiveStartKey"] = after
        with translated_errors():
            answer = self._client.query(**request)
        entries = []
        for raw in answer.get("Items", []):
            values = from_item(raw) or {}
            event_time = values.get("event_time")
            entries.append(DueEntry(str(values[KEY]), event_time if isinstance(event_time, int) else None))
        return entries, answer.get("LastEvaluatedKey")

    def announced(self, stream_record: object) -> tuple[str, str] | None:
        return items.announced(stream_record)

    # ------------------------------------------------------------------ the one UpdateItem

    def _claim(self, key: str, condition: str, values: dict[str, Any], claim_token: str) -> Delivery | None:
        """When the condition fails because this very claim is in place, the SDK retried a write
        that was applied but whose answer was lost: the claimed item, as if that answer had come."""
        item = self._update(key, _CLAIM, condition, values, return_new=True, claim_token=claim_token)
        return items.delivery_from(item)

    def _held(self, key: str, claim_token: str, sets: dict[str, Any], removes: list[str]) -> bool:
        update, values = _set_remove(sets, removes)
        values.update(expression_values(claim_token=claim_token))
        return self._update(key, update, _HELD, values) is not None

    def _update(
        self,
        key: str,
        update: str,
        condition: str,
        values: dict[str, Any],
        return_new: bool = False,
        claim_token: str | None = None,
    ) -> dict[str, Any] | None:
        """The item after the update ({} unless `return_new`), or None when the condition fails."""
        request = {
            "TableName": self.table,
            "Key": key_of(key),
            "UpdateExpression": update,
            "ConditionExpression": f"attribute_exists({KEY}) AND ({condition})",
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW" if return_new else "NONE",
        }
        if claim_token:
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            answer = write(lambda: self._client.update_item(**request))
        except ConditionFailed as failed:
            if claim_token and failed.item and failed.item.get("claim_token") == claim_token:
                return failed.item
            return None
        return from_item(answer.get("Attributes")) or {}


def _outcome_fields(outcome: Outcome) -> tuple[dict[str, Any], list[str]]:
    """The outcome fields to SET (present) and to REMOVE (absent: an earlier attempt's values)."""
    answer = outcome.answer
    fields = {
        "delivery_note": outcome.note,
        "delivery_code": answer.code,
        "delivery_message": answer.message,
        "delivery_request_id": answer.request_id,
        "delivery_http_status": answer.http_status,
    }
    present = {name: value for name, value in fields.items() if value not in (None, "")}
    return present, [name for name in OUTCOME_FIELDS if name not in present]


def _set_remove(sets: dict[str, Any], removes: list[str]) -> tuple[str, dict[str, Any]]:
    assignments = ", ".join(f"{name} = :{name}" for name in sets)
    update = f"SET {assignments}" + (f" REMOVE {', '.join(removes)}" if removes else "")
    return update, expression_values(**sets)
