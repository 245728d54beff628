"""Lambda entry point for Stripe's webhook (Function URL or HTTP API, payload format 2.0)."""

from checkout_conversions.clients import dynamodb_client, http_client
from checkout_conversions.observability import logger, metrics, tracer
from checkout_conversions.webhook import handle_webhook

dynamodb = dynamodb_client()
http = http_client()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event, context):
    return handle_webhook(event, context.get_remaining_time_in_millis, dynamodb, http).to_lambda()
