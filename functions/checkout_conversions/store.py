"""DynamoDB: the only module that talks to it.

Two tables. Sessions holds one item per checkout session: the marker that it was provisioned and
the state of its TikTok delivery. Customers holds the durable customer records. A session is
provisioned by one transaction that writes both, so a session is either fully provisioned and
marked, or not at all: a retry can never skip a session that was not provisioned, and never
provision one twice.
"""

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

REDRIVE_INDEX = "RedriveIndex"
REDRIVE_QUEUE = "tiktok"
_CONFLICT_ATTEMPTS = 3

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class StoreError(Exception):
    """DynamoDB refused or could not be reached."""


class ConcurrentUpdate(StoreError):
    """Another request is writing the same session right now: try again later."""


@dataclass(frozen=True)
class ProvisionResult:
    created: bool
    existing: dict[str, Any] | None = None


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

    def provision(self, customer: dict[str, Any], session: dict[str, Any]) -> ProvisionResult:
        """Write the customer record and the session marker atomically, unless the session exists."""
        try:
            self._client.transact_write_items(
                TransactItems=[
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
            )
            return ProvisionResult(created=True)
        except ClientError as error:
            if _error_code(error) != "TransactionCanceledException":
                raise StoreError(_error_code(error)) from error
            reasons = error.response.get("CancellationReasons") or []
            codes = [reason.get("Code") for reason in reasons]
            if codes and codes[0] == "ConditionalCheckFailed":
                return ProvisionResult(created=False, existing=from_item(reasons[0].get("Item")) or {})
            if "TransactionConflict" in codes:
                raise ConcurrentUpdate("TransactionConflict") from error
            raise StoreError(f"transaction cancelled: {codes}") from error
        except BotoCoreError as error:
            raise StoreError(type(error).__name__) from error
        except (TypeError, ValueError, ArithmeticError) as error:  # a value DynamoDB cannot hold
            raise StoreError(f"unstorable value: {type(error).__name__}") from error

    def update_session(
        self,
        session_id: str,
        set_values: dict[str, Any],
        remove: tuple[str, ...] = (),
        condition: str | None = None,
        condition_values: dict[str, Any] | None = None,
        return_new: bool = False,
        increment: str | None = None,
    ) -> dict[str, Any] | None:
        """SET `set_values`, REMOVE `remove`, ADD 1 to `increment`, if the item exists and
        `condition` holds; None when it did not (someone else owns the item)."""
        names = {f"#{key}": key for key in (*set_values, *remove, *([increment] if increment else []))}
        expression = ""
        if set_values:
            # ":set_" keeps these placeholders apart from the caller's condition placeholders.
            expression += "SET " + ", ".join(f"#{key} = :set_{key}" for key in set_values)
        if remove:
            expression += " REMOVE " + ", ".join(f"#{key}" for key in remove)
        if increment:
            expression += f" ADD #{increment} :increment_by_one"
        values = _values(**{f"set_{key}": value for key, value in set_values.items()})
        if increment:
            values.update(_values(increment_by_one=1))
        request: dict[str, Any] = {
            "TableName": self.sessions_table,
            "Key": to_item({"session_id": session_id}),
            "UpdateExpression": expression.strip(),
            "ExpressionAttributeNames": names,
            "ConditionExpression": "attribute_exists(session_id)"
            + (f" AND ({condition})" if condition else ""),
            "ReturnValues": "ALL_NEW" if return_new else "NONE",
        }
        if condition_values:
            values.update(_values(**condition_values))
        if values:
            request["ExpressionAttributeValues"] = values
        for attempt in range(1, _CONFLICT_ATTEMPTS + 1):
            try:
                answer = self._client.update_item(**request)
                return from_item(answer.get("Attributes")) or {}
            except ClientError as error:
                code = _error_code(error)
                if code == "ConditionalCheckFailedException":
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
        self, now: int, limit: int, after: dict[str, Any] | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of the deliveries whose (re)try is due, oldest first, from the sparse index,
        and where the next page starts (None after the last)."""
        request: dict[str, Any] = {
            "TableName": self.sessions_table,
            "IndexName": REDRIVE_INDEX,
            "KeyConditionExpression": "redrive_queue = :queue AND next_attempt_at <= :now",
            "ExpressionAttributeValues": _values(queue=REDRIVE_QUEUE, now=now),
            "Limit": limit,
        }
        if after:
            request["ExclusiveStartKey"] = after
        try:
            answer = self._client.query(**request)
        except (ClientError, BotoCoreError) as error:
            raise StoreError(type(error).__name__) from error
        return [from_item(item) for item in answer.get("Items", [])], answer.get("LastEvaluatedKey")


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "ClientError"))
