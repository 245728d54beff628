"""Lambda entry point of the scheduled TikTok redrive (EventBridge Scheduler, every few minutes)."""

from checkout_conversions import tiktok_api
from checkout_conversions.clients import dynamodb_client
from checkout_conversions.config import load_settings, require_tables
from checkout_conversions.observability import logger, metrics, report_ignored_settings, traced
from checkout_conversions.redrive import run_redrive
from checkout_conversions.store import Store

# Before the clients: X-Ray instruments only the httpx clients created after it patches httpx.
trace = traced("botocore", "httpx")
dynamodb = dynamodb_client()
http = tiktok_api.new_client()


@logger.inject_lambda_context(clear_state=True)
@trace
@metrics.log_metrics
def lambda_handler(event, context):
    settings = load_settings()
    report_ignored_settings(settings.problems)
    require_tables(settings)
    store = Store(dynamodb, settings.sessions_table, settings.customers_table)
    return run_redrive(store, http, settings, context.get_remaining_time_in_millis)
