"""Provisioning a paid checkout: one TransactWriteItems that writes the session marker, the
customer record, one delivery item per configured destination and, for a subscription, the link
of its subscription record to this checkout. A session is either fully provisioned, marked and"""

# its deliveries started, or not at all: a retry can never skip a session that was not
# provisioned, and never provision one twice.

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from checkout_conversions.outbox.model import ConcurrentUpdate, Delivery, StoreError
from checkout_conversions.purchase import Consent
from checkout_conversions.store import items
from checkout_conversions.store.dynamodb import error_code, translated_errors
from checkout_conversions.store.items import KEY, to_item
from checkout_conversions.store.subscriptions import subscription_key


@dataclass(frozen=True)
class SubscriptionLink:
    """What the subscription record learns from the checkout that started it: the buyer's
    external id (its renewals report it, so the platform joins them to this purchase) and their
    ad choices (its renewals are decided by the same policy)."""

    customer_id: str
    subscription_id: str
    session_id: str
    external_id: str
    consent: Consent
    limited_data_use: bool | None

    def record(self) -> dict[str, Any]:
        """The fields it writes on the subscription's record."""
        fields: dict[str, Any] = {
            "checkout_session": self.session_id,
            "external_id": self.external_id,
            "subscription_id": self.subscription_id,
            "ad_consent": self.consent.value,
        }
        if self.limited_data_use is not None:
            fields["limited_data_use"] = self.limited_data_use
        return fields


@dataclass(frozen=True)
class Provisioning:
    session_id: str
    provisioning_id: str  # tells this request's own write from a duplicate's
    marker: dict[str, Any]
    customer: dict[str, Any]
    deliveries: tuple[Delivery, ...]
    subscription: SubscriptionLink | None


@dataclass(frozen=True)
class ProvisionResult:
    created: bool
    existing: dict[str, Any] | None = None  # the marker of the earlier provisioning


class DynamoProvisioning:
    def __init__(self, client: Any, sessions_table: str, customers_table: str):
        self._client = client
        self.sessions_table = sessions_table
        self.customers_table = customers_table

    def provisioned(self, session_id: str) -> bool:
        """Whether the session's marker is kept: it was provisioned here."""
        with translated_errors():
            answer = self._client.get_item(
                TableName=self.sessions_table,
                Key=to_item({KEY: session_id}),
                ProjectionExpression=KEY,
                ConsistentRead=True,
            )
        return "Item" in answer

    def provision(self, provisioning: Provisioning) -> ProvisionResult:
        """Write it all atomically, unless the session was provisioned already."""
        try:
            self._client.transact_write_items(TransactItems=self._transaction(provisioning))
            return ProvisionResult(created=True)
        except ClientError as error:
            return _cancelled(error, provisioning)
        except BotoCoreError as error:
            raise StoreError(type(error).__name__) from error
        except (TypeError, ValueError, ArithmeticError) as error:  # a value DynamoDB cannot hold
            raise StoreError(f"unstorable value: {type(error).__name__}") from error

    def _transaction(self, provisioning: Provisioning) -> list[dict[str, Any]]:
        marker = {**provisioning.marker, "provisioning_id": provisioning.provisioning_id}
        transaction: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.sessions_table,
                    "Item": items.to_item(marker),
                    "ConditionExpression": f"attribute_not_exists({items.KEY})",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {"Put": {"TableName": self.customers_table, "Item": items.to_item(provisioning.customer)}},
        ]
        transaction += [
            {"Put": {"TableName": self.sessions_table, "Item": items.to_item(items.delivery_item(delivery))}}
            for delivery in provisioning.deliveries
        ]
        if provisioning.subscription is not None:
            transaction.append({"Update": self._link(provisioning.subscription)})
        return transaction

    def _link(self, link: SubscriptionLink) -> dict[str, Any]:
        fields = link.record()
        return {
            "TableName": self.customers_table,
            "Key": subscription_key(link.customer_id, link.subscription_id),
            "UpdateExpression": "SET " + ", ".join(f"{name} = :{name}" for name in fields),
            "ExpressionAttributeValues": items.expression_values(**fields),
        }


def _cancelled(error: ClientError, provisioning: Provisioning) -> ProvisionResult:
    if error_code(error) != "TransactionCanceledException":
        raise StoreError(error_code(error)) from error
    reasons = error.response.get("CancellationReasons") or []
    codes = [reason.get("Code") for reason in reasons]
    if codes and codes[0] == "ConditionalCheckFailed":
        existing = items.from_item(reasons[0].get("Item")) or {}
        # botocore retried a transaction whose first attempt committed but whose answer was lost.
        # DynamoDB itself recognises the retry by its ClientRequestToken; emulators (moto) may
        # not, and answer that the item exists: it is this request's own write.
        if existing.get("provisioning_id") == provisioning.provisioning_id:
            return ProvisionResult(created=True)
        return ProvisionResult(created=False, existing=existing)
    if "TransactionConflict" in codes:
        raise ConcurrentUpdate("TransactionConflict") from error
    raise StoreError(f"transaction cancelled: {codes}") from error
