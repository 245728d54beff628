"""Lambda entry point of the scheduled redrive (EventBridge Scheduler, every few minutes, one
schedule per destination)."""

from checkout_conversions import platform_http
from checkout_conversions.clients import dynamodb_client
from checkout_conversions.observability import logger, metrics, traced
from checkout_conversions.redrive import redrive_due_deliveries

# Before the clients: X-Ray instruments only the httpx clients created after it patches httpx.
trace = traced("botocore", "httpx")
dynamodb = dynamodb_client()
http = platform_http.new_client()


@logger.inject_lambda_context(clear_state=True)
@trace
@metrics.log_metrics
def lambda_handler(event, context):
    return redrive_due_deliveries(dynamodb, http, context, event)
