"""Lambda entry point of the scheduled redrive (EventBridge Scheduler, every few minutes, one
schedule per destination)."""

from typing import Any

from checkout_conversions.aws import dynamodb_client
from checkout_conversions.destinations import http
from checkout_conversions.observability import logger, metrics, traced
from checkout_conversions.outbox.redrive import redrive_due_deliveries
from checkout_conversions.settings import Settings
from checkout_conversions.store.deliveries import DynamoDeliveries

# Before the clients: X-Ray instruments only the httpx clients created after it patches httpx.
trace = traced("botocore", "httpx")
dynamodb = dynamodb_client()
http_client = http.new_client()


def open_ledger(settings: Settings) -> DynamoDeliveries:
    return DynamoDeliveries(dynamodb, settings.tables.sessions)


@logger.inject_lambda_context(clear_state=True)
@trace
@metrics.log_metrics
def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    return redrive_due_deliveries(open_ledger, http_client, context, event)
