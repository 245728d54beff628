"""The one Logger and Metrics every module uses, and X-Ray tracing when it is switched on."""

# Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME and
# POWERTOOLS_METRICS_NAMESPACE, which template.yaml sets; the defaults keep local runs working.

import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "checkout-conversions")

logger = Logger(service=SERVICE)
metrics = Metrics(
    service=SERVICE,
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "CheckoutConversions"),
)
# The sender sends a batch's destinations in threads of their own; the metric set is shared.
_metrics_lock = threading.Lock()

Handler = TypeVar("Handler", bound=Callable[..., Any])
Result = TypeVar("Result")


def tracing_enabled() -> bool:
    """template.yaml's EnableTracing sets POWERTOOLS_TRACE_DISABLED (true unless tracing is on)."""
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() not in ("true", "1", "yes", "on")


def traced(*patch_modules: str) -> Callable[[Handler], Handler]:
    """The X-Ray decorator of a Lambda handler, patching only the clients that function uses; a
    no-op when tracing is off. The Tracer imports the X-Ray SDK, so it is only created when
    tracing is on: the webhook's cold start (the buyer's wait) does not pay for it otherwise."""
    if not tracing_enabled():
        return lambda handler: handler
    from aws_lambda_powertools import Tracer

    tracer = Tracer(service=SERVICE, patch_modules=list(patch_modules))

    def decorate(handler: Handler) -> Handler:
        return cast(Handler, tracer.capture_lambda_handler(handler, capture_response=False))

    return decorate


def in_this_trace(work: Callable[[], Result]) -> Callable[[], Result]:
    """`work`, to run in another thread as part of the caller's X-Ray trace: the SDK keeps the
    current (sub)segment per thread, so a thread of its own would otherwise trace apart."""
    if not tracing_enabled():
        return work
    from aws_xray_sdk.core import xray_recorder

    entity = xray_recorder.get_trace_entity()

    def traced_work() -> Result:
        xray_recorder.set_trace_entity(entity)
        return work()

    return traced_work


def count(metric_name: str, value: int = 1) -> None:
    with _metrics_lock:
        metrics.add_metric(name=metric_name, unit=MetricUnit.Count, value=value)


def seconds(metric_name: str, value: float) -> None:
    """A duration in seconds (a delivery's lag: from the payment to the platform's acceptance)."""
    with _metrics_lock:
        metrics.add_metric(name=metric_name, unit=MetricUnit.Seconds, value=value)


def report_ignored_settings(problems: tuple[str, ...]) -> None:
    """Once per invocation: settings that were invalid and replaced by their defaults."""
    if problems:
        logger.error("Invalid settings ignored: using defaults", extra={"problems": list(problems)})
        count("ConfigurationErrors")
