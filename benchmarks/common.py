"""What every benchmark shares: statistics, tables, the function's environment, events, output.

Each benchmark module has `run(...) -> Section` and a `main()` so it can run on its own
(`python -m benchmarks.warm_latency --quick`); `run_all` runs each in a fresh process of its own.
"""

import argparse
import contextlib
import importlib.metadata
import json
import math
import os
import platform
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FUNCTIONS = REPO / "functions"
WORK = REPO / "benchmarks" / ".work"  # gitignored scratch space

if str(FUNCTIONS) not in sys.path:  # the Lambda task root: `import stripe_webhook.app` works as there
    sys.path.insert(0, str(FUNCTIONS))
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

WEBHOOK_SECRET = "whsec_benchmark_secret_0001"
TIKTOK_TOKEN = "tiktok-benchmark-token"
PIXEL_ID = "CBENCHPIXEL0001"
TEST_EVENT_CODE = "TEST12345"
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
# Variables the Lambda runtime itself sets. They matter: the X-Ray SDK (imported by Powertools'
# Tracer) checks LAMBDA_TASK_ROOT, and outside Lambda it builds a botocore X-Ray client at import.
LAMBDA_RUNTIME = {
    "LAMBDA_TASK_ROOT": str(FUNCTIONS),
    "AWS_LAMBDA_FUNCTION_NAME": "StripeWebhookFunction",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    "_HANDLER": "stripe_webhook.app.lambda_handler",
}
PACKAGES = ("stripe", "httpx", "boto3", "botocore", "aws-lambda-powertools", "moto")


# --- statistics -------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); q in [0, 100]."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    p99: float
    max: float
    min: float
    mean: float

    @classmethod
    def of(cls, values: Sequence[float]) -> "Summary":
        values = list(values)
        if not values:
            return cls(0, math.nan, math.nan, math.nan, math.nan, math.nan)
        return cls(
            n=len(values),
            median=percentile(values, 50),
            p99=percentile(values, 99),
            max=max(values),
            min=min(values),
            mean=sum(values) / len(values),
        )


def ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


# --- formatting -------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    if seconds is None or math.isnan(seconds):
        return "n/a"
    value = seconds * 1000
    if abs(value) < 10:
        return f"{value:.2f} ms"
    if abs(value) < 100:
        return f"{value:.1f} ms"
    return f"{value:.0f} ms"


def secs(seconds: float) -> str:
    return f"{seconds:.3f} s"


def times(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.2f}x"


def mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# --- the function's environment ---------------------------------------------------------------


def function_environment(
    dynamodb_endpoint: str, tables: dict[str, str], tiktok_url: str, timeout_seconds: float = 3.0
) -> dict[str, str]:
    """What template.yaml and the Lambda runtime give the function, pointed at the loopback stand-ins."""
    return {
        **FAKE_AWS,
        **LAMBDA_RUNTIME,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint,
        **tables,
        "SECRETS_SOURCE": "env",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "TIKTOK_ACCESS_TOKEN": TIKTOK_TOKEN,
        "TIKTOK_PIXEL_ID": PIXEL_ID,
        "TIKTOK_API_URL": tiktok_url,
        "TIKTOK_TEST_EVENT_CODE": TEST_EVENT_CODE,
        "TIKTOK_TIMEOUT_SECONDS": f"{timeout_seconds:g}",
        "DEFAULT_PHONE_COUNTRY": "US",
        "POWERTOOLS_SERVICE_NAME": "checkout-conversions",
        "POWERTOOLS_METRICS_NAMESPACE": "CheckoutConversionsBench",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


def child_environment(extra: dict[str, str]) -> dict[str, str]:
    """A clean environment for a fresh interpreter: nothing of ours leaks in but `extra`."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env["PYTHONPATH"] = str(FUNCTIONS)
    env.update(extra)
    return env


def dynamodb_admin(endpoint: str) -> Any:
    """A boto3 client straight to moto (not through the counting proxy), for set-up and checks."""
    import boto3

    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=FAKE_AWS["AWS_REGION"],
        aws_access_key_id=FAKE_AWS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_AWS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=FAKE_AWS["AWS_SESSION_TOKEN"],
    )


def create_tables(admin: Any, prefix: str) -> dict[str, str]:
    """The template's tables, named `{prefix}{LogicalId}`; returns SESSIONS_TABLE_NAME etc."""
    from devtools.template_tables import create_tables as create

    return create(admin, prefix=prefix)


def count_items(admin: Any, table_name: str) -> int:
    total, start = 0, None
    while True:
        kwargs: dict[str, Any] = {"TableName": table_name, "Select": "COUNT"}
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = admin.scan(**kwargs)
        total += page["Count"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return total


def scan_attribute(admin: Any, table_name: str, attribute: str) -> list[Any]:
    """One attribute of every item (None where missing), through every page."""
    values, start = [], None
    while True:
        kwargs: dict[str, Any] = {
            "TableName": table_name,
            "ProjectionExpression": "#a",
            "ExpressionAttributeNames": {"#a": attribute},
        }
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = admin.scan(**kwargs)
        for item in page.get("Items", []):
            value = item.get(attribute)
            values.append(next(iter(value.values())) if value else None)
        start = page.get("LastEvaluatedKey")
        if not start:
            return values


# --- events -----------------------------------------------------------------------------------


def paid_session_event(index: int | None = None) -> dict[str, Any]:
    """A `checkout.session.completed`, paid, shaped like Stripe's (tests/factories.py)."""
    from tests.factories import checkout_session, stripe_event

    overrides: dict[str, Any] = {}
    if index is not None:
        overrides["customer"] = f"cus_Bench{index:06d}"
    return stripe_event(session=checkout_session(**overrides))


def signed(stripe_event: dict[str, Any]) -> dict[str, Any]:
    """The Function URL event Lambda would get for this Stripe event, signed now."""
    from devtools.function_url import signed_webhook_event

    return signed_webhook_event(stripe_event, WEBHOOK_SECRET)


def json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8")


def tiktok_body(stripe_event: dict[str, Any]) -> bytes:
    """The exact TikTok request body the function sends for this event (for the floors)."""
    from checkout_conversions import conversion, tiktok

    session = stripe_event["data"]["object"]
    purchase = conversion.purchase(session, stripe_event, "US")
    body = tiktok.build_request([tiktok.build_event(purchase, "CompletePayment")], PIXEL_ID, TEST_EVENT_CODE)
    return tiktok.encode(body)


# --- the product, in this process -------------------------------------------------------------


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Powertools prints each invocation's metrics (EMF) to stdout: keep the work, drop the text."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def load_handler(environment: dict[str, str]) -> Any:
    """Import stripe_webhook.app under `environment` (its clients are made at import time) and
    point its JSON log lines at /dev/null: they are still formatted and written, as on Lambda."""
    os.environ.update(environment)
    from checkout_conversions.observability import logger
    from stripe_webhook import app

    logger.registered_handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as we do
    return app


def context(timeout_seconds: float = 10.0) -> Any:
    from devtools.function_url import LambdaContext

    return LambdaContext(timeout_seconds)


# --- output -----------------------------------------------------------------------------------


@dataclass
class Section:
    name: str
    title: str
    markdown: str
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    ok: bool | None = None  # None: nothing to pass or fail

    def render(self) -> str:
        return f"### {self.title}\n\n{self.markdown.strip()}\n\n_Took {self.seconds:.0f} s._\n"


def parser(description: str | None) -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(description=(description or "").strip().splitlines()[0])
    result.add_argument("--quick", action="store_true", help="fewer runs: a smoke test, not figures")
    result.add_argument("--json-out", type=Path, help="also write the section as JSON here (run_all)")
    return result


def emit(section: Section, json_out: Path | None) -> None:
    print(section.render(), flush=True)
    if json_out:
        json_out.write_text(json.dumps(asdict(section), default=str))


def timed(run: Any, *args: Any, **kwargs: Any) -> Section:
    started = time.perf_counter()
    section = run(*args, **kwargs)
    section.seconds = time.perf_counter() - started
    return section


# --- the machine ------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": f"{cpu} ({platform.machine()})",
        "memory": memory,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(),
        "load average (1, 5, 15 min) at the start": load,
        **versions,
    }
