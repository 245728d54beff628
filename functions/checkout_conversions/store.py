"""DynamoDB: the only module that talks to it, one named method per operation.

Two tables. Sessions holds one item per checkout session, the marker that it was provisioned,
and one delivery item per destination (`<session id>#tiktok`, `<session id>#meta`: the outbox;
the Sessions table's stream carries each new pending delivery to the sender). Customers holds
the durable customer records. A session is provisioned by one transaction that writes them all,
so a session is either fully provisioned, marked and its deliveries started, or not at all: a
retry can never skip a session that was not provisioned, and never provision one twice.

The delivery operations take the delivery item's key (`session_id`, the table's key attribute)
and, where the redrive index is involved, the destination's partition of it (`queue`).

Every conditional write answers None (or False) when its condition does not hold: someone else
holds or has finished the delivery. DynamoDB errors raise StoreError.
"""

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

REDRIVE_INDEX = "RedriveIndex"
_CONFLICT_ATTEMPTS = 3

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

_UNCLAIMED = "(attribute_not_exists(claim_expires_at) OR claim_expires_at < :now)"
# `tiktok_event`: a delivery stored before the outbox kept the platform-neutral `purchase`.
_STORED = "(attribute_exists(purchase) OR attribute_exists(tiktok_event))"
_HELD = "claim_token = :claim_token"
# What a delivery's last attempt left on its item; cleared when a new outcome has none of it.
OUTCOME_FIELDS = (
    "delivery_note",
    "delivery_code",
    "delivery_message",
    "delivery_request_id",
    "delivery_http_status",
)


class StoreError(Exception):
    """DynamoDB refused or could not be reached."""


class ConcurrentUpdate(StoreError):
    """Another request is writing the same session right now: try again later."""


@dataclass(frozen=True)
class ProvisionResult:
    created: bool
    existing: dict[str, Any] | None = None


@dataclass(frozen=True)
class SubscriptionWrite:
    applied: bool  # False: a state as new or newer was already recorded
    item: dict[str, Any] | None  # the subscription record as it is now

    @property
    def known_customer(self) -> bool:
        """The subscription started in a Checkout this function provisioned."""
        return bool(self.item and self.item.get("checkout_session"))


def subscription_key(customer_id: str, subscription_id: str) -> dict[str, Any]:
    """A customer's subscription record sits beside their checkout records in Customers."""
    return to_item({"customer_id": customer_id, "checkout_session_id": f"subscription#{subscription_id}"})


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in values.items() if value is not None}


def from_item(item: dict[str, Any] | None) -> dict[str, Any] | None:
    if item is None:
        return None
    return {key: _plain(_deserializer.deserialize(value)) for key, value in item.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _values(**values: Any) -> dict[str, Any]:
    return {f":{key}": _serializer.serialize(value) for key, value in values.items()}


class Store:
    def __init__(self, client: Any, sessions_table: str, customers_table: str):
        self._client = client
        self.sessions_table = sessions_table
        self.customers_table = customers_table

    # ------------------------------------------------------------------ provisioning (webhook)

    def provision(
        self,
        customer: dict[str, Any],
        session: dict[str, Any],
        deliveries: list[dict[str, Any]] = (),
        subscription: dict[str, Any] | None = None,
    ) -> ProvisionResult:
        """Write the customer record, the session marker and its delivery items atomically, unless
        the session exists; for a subscription, link its subscription record to this checkout in
        the same transaction."""
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.sessions_table,
                    "Item": to_item(session),
                    "ConditionExpression": "attribute_not_exists(session_id)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {"Put": {"TableName": self.customers_table, "Item": to_item(customer)}},
        ]
        items += [{"Put": {"TableName": self.sessions_table, "Item": to_item(item)}} for item in deliveries]
        if subscription is not None:
            items.append(
                {
                    "Update": {
                        "TableName": self.customers_table,
                        "Key": subscription_key(customer["customer_id"], subscription["subscription_id"]),
                        "UpdateExpression": "SET checkout_session = :session, external_id = :external_id, "
                        "subscription_id = :subscription_id",
                        "ExpressionAttributeValues": _values(
                            session=session["session_id"],
                            external_id=subscription["external_id"],
                            subscription_id=subscription["subscription_id"],
                        ),
                    }
                }
            )
        try:
            self._client.transact_write_items(TransactItems=items)
            return ProvisionResult(created=True)
        except ClientError as error:
            if _error_code(error) != "TransactionCanceledException":
                raise StoreError(_error_code(error)) from error
            reasons = error.response.get("CancellationReasons") or []
            codes = [reason.get("Code") for reason in reasons]
            if codes and codes[0] == "ConditionalCheckFailed":
                existing = from_item(reasons[0].get("Item")) or {}
                # botocore retried a transaction whose first attempt committed but whose answer was
                # lost. DynamoDB itself recognises the retry by its ClientRequestToken; emulators
                # (moto) may not, and answer that the item exists: it is this request's own write.
                own_id = session.get("provisioning_id")
                if own_id is not None and existing.get("provisioning_id") == own_id:
                    return ProvisionResult(created=True)
                return ProvisionResult(created=False, existing=existing)
            if "TransactionConflict" in codes:
                raise ConcurrentUpdate("TransactionConflict") from error
            raise StoreError(f"transaction cancelled: {codes}") from error
        except BotoCoreError as error:
            raise StoreError(type(error).__name__) from error
        except (TypeError, ValueError, ArithmeticError) as error:  # a value DynamoDB cannot hold
            raise StoreError(f"unstorable value: {type(error).__name__}") from error

    # ------------------------------------------------------------------ subscriptions (webhook)

    def record_subscription_payment(
        self, customer_id: str, subscription_id: str, fields: dict[str, Any], created: int, event_id: str
    ) -> SubscriptionWrite:
        """What an invoice paid, unless a payment event as new or newer is recorded."""
        return self._record_subscription("payment", customer_id, subscription_id, fields, created, event_id)

    def record_subscription_status(
        self, customer_id: str, subscription_id: str, fields: dict[str, Any], created: int, event_id: str
    ) -> SubscriptionWrite:
        """A subscription's status, unless a status event as new or newer is recorded."""
        return self._record_subscription("status", customer_id, subscription_id, fields, created, event_id)

    def _record_subscription(
        self,
        what: str,
        customer_id: str,
        subscription_id: str,
        fields: dict[str, Any],
        created: int,
        event_id: str,
    ) -> SubscriptionWrite:
        present = {name: value for name, value in fields.items() if value is not None}
        present[f"{what}_event_created"] = created
        present[f"{what}_event_id"] = event_id
        names = {f"#{name}": name for name in present}  # `status` is a reserved word
        newer = (
            f"attribute_not_exists(#{what}_event_created) OR #{what}_event_created < :{what}_event_created "
            f"OR (#{what}_event_created = :{what}_event_created AND #{what}_event_id < :{what}_event_id)"
        )
        for attempt in range(1, _CONFLICT_ATTEMPTS + 1):
            try:
                answer = self._client.update_item(
                    TableName=self.customers_table,
                    Key=subscription_key(customer_id, subscription_id),
                    UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in present),
                    ConditionExpression=newer,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=_values(**present),
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return SubscriptionWrite(True, from_item(answer.get("Attributes")))
            except ClientError as error:
                code = _error_code(error)
                if code == "ConditionalCheckFailedException":
                    return SubscriptionWrite(False, from_item(error.response.get("Item")))
                # The checkout's provisioning transaction may be writing this record right now.
                if code == "TransactionConflictException" and attempt < _CONFLICT_ATTEMPTS:
                    time.sleep(0.05 * attempt)
                    continue
                raise StoreError(code) from error
            except BotoCoreError as error:
                raise StoreError(type(error).__name__) from error
        raise AssertionError("unreachable")

    def start_delivery(self, item: dict[str, Any]) -> dict[str, Any] | None:
        """Put a new pending delivery (a renewal's), unless one exists for its key: then that one."""
        try:
            self._client.put_item(
                TableName=self.sessions_table,
                Item=to_item(item),
                ConditionExpression="attribute_not_exists(session_id)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return None
        except ClientError as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                return from_item(error.response.get("Item")) or {}
            raise StoreError(_error_code(error)) from error
        except BotoCoreError as error:
            raise StoreError(type(error).__name__) from error

    # ------------------------------------------------------------------ claims (sender, redrive)

    def claim_new_delivery(
        self, session_id: str, claim_token: str, now: int, hold_until: int
    ) -> dict[str, Any] | None:
        """Take a pending delivery that nobody holds, for one attempt; the item as it is now.

        Only `pending` qualifies: a delivery the redrive already tried (failed), or that was sent,
        skipped or expired, is never taken from the stream again."""
        return self._update_session(
            session_id,
            "SET claim_token = :claim_token, claim_expires_at = :hold_until ADD delivery_attempts :one",
            f"delivery_status = :pending AND {_STORED} AND {_UNCLAIMED}",
            _values(claim_token=claim_token, hold_until=hold_until, one=1, pending="pending", now=now),
            return_new=True,
            claim_token=claim_token,
        )

    def claim_due_delivery(
        self, session_id: str, queue: str, claim_token: str, now: int, hold_until: int
    ) -> dict[str, Any] | None:
        """Take a delivery whose (re)try is due and that nobody holds, for one attempt.

        Checked on the table itself, not on the eventually consistent index: a delivery sent a
        moment ago, or held by the stream sender, is never taken."""
        return self._update_session(
            session_id,
            "SET claim_token = :claim_token, claim_expires_at = :hold_until ADD delivery_attempts :one",
            f"redrive_queue = :queue AND next_attempt_at <= :now AND {_UNCLAIMED}",
            _values(claim_token=claim_token, hold_until=hold_until, one=1, queue=queue, now=now),
            return_new=True,
            claim_token=claim_token,
        )

    # ------------------------------------------------------------------ outcomes (under a claim)

    def record_sent(
        self, session_id: str, claim_token: str, outcome: dict[str, Any], at: str, match_keys: tuple[str, ...]
    ) -> bool:
        """The platform has the event: sent for good, out of the queue, the match keys it carried
        (names) kept, and the stored purchase (the buyer's details, IP, click id) deleted."""
        present, absent = _split(outcome)
        sets = ["delivery_status = :sent", "delivery_sent_at = :at", "delivery_updated_at = :at"]
        sets += [f"{name} = :{name}" for name in present]
        values = _values(sent="sent", at=at, **present)
        if match_keys:
            sets.append("delivery_match_keys = :match_keys")
            values.update(_values(match_keys=list(match_keys)))
        removes = [
            "claim_token",
            "claim_expires_at",
            "redrive_queue",
            "next_attempt_at",
            "delivery_retryable",
            "delivery_reason",
            "purchase",
            "tiktok_event",
            *absent,
        ]
        return self._held_update(
            session_id,
            f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
            claim_token,
            values,
        )

    def record_failure(
        self,
        session_id: str,
        claim_token: str,
        outcome: dict[str, Any],
        at: str,
        next_attempt_at: int | None,
    ) -> bool:
        """A failed attempt: retried at `next_attempt_at`, or out of the queue when None
        (permanent: the stored event stays so that an operator can requeue it)."""
        present, absent = _split(outcome)
        retryable = next_attempt_at is not None
        sets = ["delivery_status = :failed", "delivery_retryable = :retryable", "delivery_updated_at = :at"]
        sets += [f"{name} = :{name}" for name in present]
        removes = ["claim_token", "claim_expires_at", *absent]
        values = _values(failed="failed", retryable=retryable, at=at, **present)
        if retryable:
            sets.append("next_attempt_at = :next_attempt_at")
            values.update(_values(next_attempt_at=next_attempt_at))
        else:
            removes += ["redrive_queue", "next_attempt_at"]
        return self._held_update(
            session_id, f"SET {', '.join(sets)} REMOVE {', '.join(removes)}", claim_token, values
        )

    def settle_delivery(
        self,
        session_id: str,
        status: str,
        reason: str,
        at: str,
        now: int,
        claim_token: str | None = None,
        queue: str | None = None,
    ) -> bool:
        """Take a delivery out of the queue for good (skipped or expired), if this caller holds it
        or, without `claim_token`, nobody does. Its stored event goes."""
        update = (
            "SET delivery_status = :status, delivery_reason = :reason, delivery_updated_at = :at "
            "REMOVE redrive_queue, next_attempt_at, claim_token, claim_expires_at, purchase, tiktok_event"
        )
        if claim_token:
            return self._held_update(
                session_id, update, claim_token, _values(status=status, reason=reason, at=at)
            )
        return (
            self._update_session(
                session_id,
                update,
                f"redrive_queue = :queue AND {_UNCLAIMED}",
                _values(status=status, reason=reason, at=at, queue=queue, now=now),
            )
            is not None
        )

    def requeue_delivery(self, session_id: str, queue: str, at: str, now: int) -> dict[str, Any] | None:
        """Pending again and due now, attempts from zero (an operator's replay), unless the
        platform already has it or there is no stored event to send."""
        return self._update_session(
            session_id,
            "SET delivery_status = :pending, delivery_attempts = :zero, redrive_queue = :queue, "
            "next_attempt_at = :now, delivery_updated_at = :at REMOVE delivery_retryable, delivery_reason",
            f"{_STORED} AND delivery_status <> :sent",
            _values(pending="pending", zero=0, queue=queue, now=now, at=at, sent="sent"),
            return_new=True,
        )

    # ------------------------------------------------------------------ reads

    def get_session(self, session_id: str) -> dict[str, Any] | None:
        try:
            answer = self._client.get_item(
                TableName=self.sessions_table,
                Key=to_item({"session_id": session_id}),
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as error:
            raise StoreError(type(error).__name__) from error
        return from_item(answer.get("Item"))

    def due_deliveries(
        self, queue: str, now: int, limit: int, after: dict[str, Any] | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of a destination's deliveries whose (re)try is due, oldest first, from the
        sparse index, and where the next page starts (None after the last)."""
        request: dict[str, Any] = {
            "TableName": self.sessions_table,
            "IndexName": REDRIVE_INDEX,
            "KeyConditionExpression": "redrive_queue = :queue AND next_attempt_at <= :now",
            "ExpressionAttributeValues": _values(queue=queue, now=now),
            "Limit": limit,
        }
        if after:
            request["ExclusiveStartKey"] = after
        try:
            answer = self._client.query(**request)
        except (ClientError, BotoCoreError) as error:
            raise StoreError(type(error).__name__) from error
        return [from_item(item) for item in answer.get("Items", [])], answer.get("LastEvaluatedKey")

    # ------------------------------------------------------------------ the one UpdateItem

    def _held_update(self, session_id: str, update: str, claim_token: str, values: dict[str, Any]) -> bool:
        values.update(_values(claim_token=claim_token))
        return self._update_session(session_id, update, _HELD, values) is not None

    def _update_session(
        self,
        session_id: str,
        update: str,
        condition: str,
        values: dict[str, Any],
        return_new: bool = False,
        claim_token: str | None = None,
    ) -> dict[str, Any] | None:
        """None when the condition fails. Taking a claim (`claim_token`): when the condition fails
        because this very claim is in place, the SDK retried a write that was applied but whose
        answer was lost, and the claimed item is returned as if the first answer had arrived."""
        request = {
            "TableName": self.sessions_table,
            "Key": to_item({"session_id": session_id}),
            "UpdateExpression": update,
            "ConditionExpression": f"attribute_exists(session_id) AND ({condition})",
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW" if return_new else "NONE",
        }
        if claim_token:
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        for attempt in range(1, _CONFLICT_ATTEMPTS + 1):
            try:
                answer = self._client.update_item(**request)
                return from_item(answer.get("Attributes")) or {}
            except ClientError as error:
                code = _error_code(error)
                if code == "ConditionalCheckFailedException":
                    current = from_item(error.response.get("Item")) if claim_token else None
                    if current and current.get("claim_token") == claim_token:
                        return current
                    return None
                # DynamoDB refuses a write to an item that a transaction (a duplicate delivery
                # being checked) is using at that instant; botocore does not retry that.
                if code == "TransactionConflictException" and attempt < _CONFLICT_ATTEMPTS:
                    time.sleep(0.05 * attempt)
                    continue
                raise StoreError(code) from error
            except BotoCoreError as error:
                raise StoreError(type(error).__name__) from error
        raise AssertionError("unreachable")


def _split(outcome: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The outcome fields to SET (present) and to REMOVE (absent: an earlier attempt's values)."""
    present = {name: outcome[name] for name in OUTCOME_FIELDS if outcome.get(name) not in (None, "")}
    return present, [name for name in OUTCOME_FIELDS if name not in present]


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "ClientError"))
