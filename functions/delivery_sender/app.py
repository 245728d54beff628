"""Lambda entry point of the delivery sender (the Sessions table's DynamoDB stream, new pending
deliveries of every destination)."""

from checkout_conversions import platform_http
from checkout_conversions.clients import dynamodb_client
from checkout_conversions.observability import logger, metrics, traced
from checkout_conversions.sender import new_processor, send_new_deliveries

# Before the clients: X-Ray instruments only the httpx clients created after it patches httpx.
trace = traced("botocore", "httpx")
dynamodb = dynamodb_client()
http = platform_http.new_client()
processor = new_processor()


@logger.inject_lambda_context(clear_state=True)
@trace
@metrics.log_metrics
def lambda_handler(event, context):
    return send_new_deliveries(event, context, processor, dynamodb, http)
