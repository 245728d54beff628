"""The one Logger, Metrics and Tracer every module uses.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE, which template.yaml sets; the defaults keep local runs working.
"""

import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "checkout-conversions")

logger = Logger(service=SERVICE)
metrics = Metrics(
    service=SERVICE,
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "CheckoutConversions"),
)
# Patch only the two clients we use: patching every library X-Ray knows costs cold-start time.
tracer = Tracer(service=SERVICE, patch_modules=("botocore", "httpx"))


def count(metric_name: str, value: int = 1) -> None:
    metrics.add_metric(name=metric_name, unit=MetricUnit.Count, value=value)


def report_ignored_settings(problems: tuple[str, ...]) -> None:
    """Once per invocation: settings that were invalid and replaced by their defaults."""
    if problems:
        logger.error("Invalid settings ignored: using defaults", extra={"problems": list(problems)})
        count("ConfigurationErrors")
