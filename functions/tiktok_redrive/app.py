"""Lambda entry point of the scheduled TikTok redrive (EventBridge Scheduler, every few minutes)."""

from checkout_conversions.clients import dynamodb_client, http_client
from checkout_conversions.config import load_settings, require_tables
from checkout_conversions.observability import logger, metrics, report_ignored_settings, tracer
from checkout_conversions.redrive import run_redrive
from checkout_conversions.store import Store

dynamodb = dynamodb_client()
http = http_client()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event, context):
    settings = load_settings()
    report_ignored_settings(settings.problems)
    require_tables(settings)
    store = Store(dynamodb, settings.sessions_table, settings.customers_table)
    return run_redrive(store, http, settings, context.get_remaining_time_in_millis)
