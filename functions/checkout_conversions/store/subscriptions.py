"""Subscription records in the Customers table, beside the customer's checkout records (key
`customer_id` = the Stripe customer id, `checkout_session_id` = `subscription#<id>`).

Stripe delivers events out of order and at least once: each write is conditional on the event's
`created` (and, for equal times, its id), payments and statuses apart, so an older event never
overwrites a newer state and a redelivery changes nothing. One UpdateItem per event.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from checkout_conversions.store.dynamodb import ConditionFailed, write
from checkout_conversions.store.items import expression_values, from_item, to_item


class Aspect(StrEnum):
    """What an event tells of a subscription; each is ordered by its own events."""

    PAYMENT = "payment"
    STATUS = "status"


@dataclass(frozen=True)
class SubscriptionWrite:
    applied: bool  # False: a state as new or newer was already recorded
    item: dict[str, Any] | None  # the subscription record as it is now

    @property
    def known_customer(self) -> bool:
        """The subscription started in a Checkout this function provisioned."""
        return bool(self.item and self.item.get("checkout_session"))


def subscription_key(customer_id: str, subscription_id: str) -> dict[str, Any]:
    return to_item({"customer_id": customer_id, "checkout_session_id": f"subscription#{subscription_id}"})


class DynamoSubscriptions:
    def __init__(self, client: Any, customers_table: str):
        self._client = client
        self.table = customers_table

    def record(
        self,
        aspect: Aspect,
        customer_id: str,
        subscription_id: str,
        fields: dict[str, Any],
        created: int,
        event_id: str,
    ) -> SubscriptionWrite:
        """What an event says of one aspect, unless an event as new or newer is recorded."""
        present = {name: value for name, value in fields.items() if value is not None}
        created_at, event = f"{aspect}_event_created", f"{aspect}_event_id"
        present[created_at] = created
        present[event] = event_id
        newer = (
            f"attribute_not_exists(#{created_at}) OR #{created_at} < :{created_at} "
            f"OR (#{created_at} = :{created_at} AND #{event} < :{event})"
        )
        request = {
            "TableName": self.table,
            "Key": subscription_key(customer_id, subscription_id),
            "UpdateExpression": "SET " + ", ".join(f"#{name} = :{name}" for name in present),
            "ConditionExpression": newer,
            "ExpressionAttributeNames": {f"#{name}": name for name in present},  # `status` is reserved
            "ExpressionAttributeValues": expression_values(**present),
            "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        try:
            answer = write(lambda: self._client.update_item(**request))
        except ConditionFailed as failed:
            return SubscriptionWrite(False, failed.item)
        return SubscriptionWrite(True, from_item(answer.get("Attributes")))
