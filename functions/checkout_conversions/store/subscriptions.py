"""Subscription records in the Customers table, beside the customer's checkout records (key
`customer_id` = the Stripe customer id, `checkout_session_id` = `subscription#<id>`)."""

# Stripe delivers events out of order and at least once, and stamps them to the second. Each write
# is conditional on where its event stands among the recorded events of the same aspect (payments
# and statuses apart), its EventOrder: a final state (canceled, incomplete_expired) after any other
# whatever its time, then the event's `created`, then, within one second, the object's own facts;
# never the event's id (Stripe's ids are random). An event that does not stand after the recorded
# one changes nothing, a redelivery included. One UpdateItem per event.

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from checkout_conversions.store.dynamodb import ConditionFailed, translated_errors, write
from checkout_conversions.store.items import expression_values, from_item, to_item


class Aspect(StrEnum):
    """What an event tells of a subscription; each is ordered by its own events."""

    PAYMENT = "payment"
    STATUS = "status"


ORDER_DIGITS = 12  # each number of an order's key, zero-padded: epochs before the year 3000 take 11


@dataclass(frozen=True)
class EventOrder:
    """Where an event stands among the events of one aspect of a subscription; only an event after
    the recorded one is written. Compared in this order: `final` (a state no later event undoes),
    the event's `created` second, then `tiebreak`: the object's own facts for events of the same
    second, epoch seconds (None: before any), the same ones in the same order for one aspect."""

    created: int
    tiebreak: tuple[int | None, ...] = ()
    final: bool = False
    # The aspect's final values (a status's): what a record written before orders were kept is
    # final in, since it holds no order to compare.
    finals: tuple[str, ...] = ()

    def key(self) -> str:
        """The order as a string that DynamoDB compares exactly as the order compares."""
        numbers = (self.created, *(value or 0 for value in self.tiebreak))
        if not all(0 <= number < 10**ORDER_DIGITS for number in numbers):
            raise ValueError(f"an event order holds epochs of at most {ORDER_DIGITS} digits: {numbers}")
        return ".".join([str(int(self.final)), *(f"{number:0{ORDER_DIGITS}d}" for number in numbers)])


@dataclass(frozen=True)
class SubscriptionWrite:
    applied: bool  # False: an event as late or later was already recorded
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

    def get(self, customer_id: str, subscription_id: str) -> dict[str, Any] | None:
        """The subscription's record (plain values), or None when none is kept."""
        with translated_errors():
            answer = self._client.get_item(
                TableName=self.table, Key=subscription_key(customer_id, subscription_id), ConsistentRead=True
            )
        return from_item(answer.get("Item"))

    def record(
        self,
        aspect: Aspect,
        customer_id: str,
        subscription_id: str,
        fields: dict[str, Any],
        order: EventOrder,
        event_id: str,
    ) -> SubscriptionWrite:
        """What an event says of one aspect, unless an event as late or later is recorded."""
        present = {name: value for name, value in fields.items() if value is not None}
        present[f"{aspect}_event_created"] = order.created
        present[f"{aspect}_event_id"] = event_id
        present[f"{aspect}_event_order"] = order.key()
        condition, finals = _after_the_recorded(aspect, order)
        names = [*present, *([Aspect.STATUS.value] if finals else [])]
        request = {
            "TableName": self.table,
            "Key": subscription_key(customer_id, subscription_id),
            "UpdateExpression": "SET " + ", ".join(f"#{name} = :{name}" for name in present),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {f"#{name}": name for name in names},  # `status` is reserved
            "ExpressionAttributeValues": expression_values(**present, **finals),
            "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        try:
            answer = write(lambda: self._client.update_item(**request))
        except ConditionFailed as failed:
            return SubscriptionWrite(False, failed.item)
        return SubscriptionWrite(True, from_item(answer.get("Attributes")))


def _after_the_recorded(aspect: Aspect, order: EventOrder) -> tuple[str, dict[str, str]]:
    """The condition that this event stands after the one the record was last written from, and
    the values it names. A record written before orders were kept (no `<aspect>_event_order`) is
    ordered by its finality (its `status` one of `order.finals`), then by its `created` alone."""
    created, recorded = f"{aspect}_event_created", f"{aspect}_event_order"
    newer = f"attribute_not_exists(#{created}) OR #{created} < :{created}"
    finals = {f"final_{index}": value for index, value in enumerate(order.finals)}
    if finals:
        recorded_final = f"#{Aspect.STATUS} IN ({', '.join(f':{name}' for name in finals)})"
        newer = f"NOT {recorded_final} OR ({newer})" if order.final else f"NOT {recorded_final} AND ({newer})"
    return f"#{recorded} < :{recorded} OR (attribute_not_exists(#{recorded}) AND ({newer}))", finals
