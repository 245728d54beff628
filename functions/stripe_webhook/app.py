"""Lambda entry point for Stripe's webhook (Function URL or HTTP API, payload format 2.0)."""

from typing import Any

from checkout_conversions.aws import dynamodb_client
from checkout_conversions.observability import logger, metrics, traced
from checkout_conversions.webhook import handle_webhook

trace = traced("botocore")
dynamodb = dynamodb_client()


@logger.inject_lambda_context(clear_state=True)
@trace
@metrics.log_metrics
def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    remaining_seconds = lambda: context.get_remaining_time_in_millis() / 1000  # noqa: E731
    return handle_webhook(event, dynamodb, remaining_seconds).to_lambda()
