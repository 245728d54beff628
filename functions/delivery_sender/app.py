"""Lambda entry point of the delivery sender: the Sessions table's stream (one event source
mapping, new pending deliveries of every destination)."""

from typing import Any

from checkout_conversions.aws import dynamodb_client
from checkout_conversions.destinations import http
from checkout_conversions.observability import logger, metrics, traced
from checkout_conversions.outbox.sender import new_processor, send_new_deliveries
from checkout_conversions.settings import Settings
from checkout_conversions.store.deliveries import DynamoDeliveries

# Before the clients: X-Ray instruments only the httpx clients created after it patches httpx.
trace = traced("botocore", "httpx")
dynamodb = dynamodb_client()
http_client = http.new_client()
processor = new_processor()


def open_ledger(settings: Settings) -> DynamoDeliveries:
    return DynamoDeliveries(dynamodb, settings.tables.sessions)


@logger.inject_lambda_context(clear_state=True)
@trace
@metrics.log_metrics
def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    return send_new_deliveries(event, context, processor, open_ledger, http_client)
