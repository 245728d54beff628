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
# Tracer when tracing is on) checks LAMBDA_TASK_ROOT, and outside Lambda it builds a botocore X-Ray
# client at import.
WEBHOOK_FUNCTION = "StripeWebhookFunction"
SENDER_FUNCTION = "DeliverySenderFunction"
REDRIVE_FUNCTION = "DeliveryRedriveFunction"


def lambda_runtime(function_name: str = WEBHOOK_FUNCTION) -> dict[str, str]:
    handler = {
        WEBHOOK_FUNCTION: "stripe_webhook.app.lambda_handler",
        SENDER_FUNCTION: "delivery_sender.app.lambda_handler",
        REDRIVE_FUNCTION: "delivery_redrive.app.lambda_handler",
    }[function_name]
    return {
        "LAMBDA_TASK_ROOT": str(FUNCTIONS),
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "_HANDLER": handler,
    }


# What a deployment sets among template.yaml's parameters; every other parameter keeps its default.
DEPLOYED_PARAMETERS = {
    "StripeWebhookSecret": WEBHOOK_SECRET,
    "TikTokAccessToken": TIKTOK_TOKEN,
    "TikTokPixelId": PIXEL_ID,
    "TikTokTestEventCode": TEST_EVENT_CODE,
    "DefaultPhoneCountry": "US",
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
    dynamodb_endpoint: str,
    tables: dict[str, str],
    tiktok_url: str,
    functions: tuple[str, ...] = (WEBHOOK_FUNCTION,),
    parameters: dict[str, str] | None = None,
) -> dict[str, str]:
    """What template.yaml gives these functions (Globals and each function's own variables, with
    the parameters' defaults except DEPLOYED_PARAMETERS and `parameters`), and what the Lambda
    runtime sets, pointed at the loopback stand-ins. With the defaults tracing is off
    (EnableTracing false: POWERTOOLS_TRACE_DISABLED=true). Several functions in one process (the
    sender benchmarks, as `make run`) get the union of their variables."""
    from devtools.template_tables import load_template

    template = load_template()
    values = {name: spec.get("Default", "") for name, spec in template.get("Parameters", {}).items()}
    values.update(DEPLOYED_PARAMETERS)
    values.update(parameters or {})
    logical_tables = {logical_id: tables[variable] for variable, logical_id in _table_variables(template)}
    resolve = _Resolver(template, values, logical_tables)
    variables = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    for function in functions:
        own = template["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {})
        variables.update(own)
    environment = {name: resolve(value) for name, value in variables.items()}
    return {
        **FAKE_AWS,
        **lambda_runtime(functions[0]),
        **environment,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint,
        # Not a template variable: the stand-in instead of business-api.tiktok.com.
        "TIKTOK_API_URL": tiktok_url,
    }


def _table_variables(template: dict[str, Any]) -> list[tuple[str, str]]:
    from devtools.template_tables import table_environment

    return list(table_environment(template).items())


class _Resolver:
    """Just enough CloudFormation for the template's environment variables: Ref (a parameter or a
    table), Fn::If on a condition, and the conditions' Fn::Equals / Fn::Not / Fn::And / Fn::Or."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, Any], tables: dict[str, str]):
        self.conditions = template.get("Conditions", {})
        self.parameters = parameters
        self.tables = tables

    def __call__(self, value: Any) -> str:
        resolved = self.value(value)
        return str(resolved).lower() if isinstance(resolved, bool) else str(resolved)

    def value(self, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        [(function, argument)] = value.items()
        if function == "Ref":
            if argument in self.tables:
                return self.tables[argument]
            return self.parameters[argument]
        if function == "Fn::If":
            condition, when_true, when_false = argument
            return self.value(when_true if self.condition(condition) else when_false)
        raise ValueError(f"{function} is not supported in the benchmarks' environment")

    def condition(self, name_or_expression: Any) -> bool:
        expression = (
            self.conditions[name_or_expression] if isinstance(name_or_expression, str) else name_or_expression
        )
        [(function, argument)] = expression.items()
        if function == "Fn::Equals":
            left, right = (str(self.value(part)) for part in argument)
            return left == right
        if function == "Fn::Not":
            return not self.condition(argument[0])
        if function == "Fn::And":
            return all(self.condition(part) for part in argument)
        if function == "Fn::Or":
            return any(self.condition(part) for part in argument)
        if function == "Fn::Condition":
            return self.condition(argument)
        raise ValueError(f"{function} is not supported in the benchmarks' conditions")


def tracing_environment(xray_daemon: str) -> dict[str, str]:
    """What Lambda adds when the function's tracing is Active (EnableTracing=true): the trace header
    of the invocation (sampled) and the X-Ray daemon's address (here a UDP sink on loopback)."""
    root = f"1-{int(time.time()):08x}-{os.urandom(12).hex()}"
    return {
        "_X_AMZN_TRACE_ID": f"Root={root};Parent={os.urandom(8).hex()};Sampled=1",
        "AWS_XRAY_DAEMON_ADDRESS": xray_daemon,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
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


def stored_purchase(stripe_event: dict[str, Any]) -> str:
    """The purchase the webhook stores on the session item for this Stripe event (a JSON string),
    for the floors' items, which carry as much as the product's."""
    from checkout_conversions.stripe_side import checkout

    return checkout.purchase(stripe_event["data"]["object"], stripe_event).to_json()


def session_id(stripe_event: dict[str, Any]) -> str:
    return stripe_event["data"]["object"]["id"]


# --- the product, in this process -------------------------------------------------------------


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Powertools prints each invocation's metrics (EMF) to stdout: keep the work, drop the text."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def load_handler(environment: dict[str, str]) -> Any:
    """Import stripe_webhook.app under `environment` (its client is made at import time) and
    point the JSON log lines at /dev/null: they are still formatted and written, as on Lambda."""
    os.environ.update(environment)
    from stripe_webhook import app

    quiet_logs()
    return app


def load_sender(environment: dict[str, str]) -> Any:
    """Import delivery_sender.app under `environment` (its clients are made at import time)."""
    os.environ.update(environment)
    from delivery_sender import app

    quiet_logs()
    return app


_log_sink: Any = None


def quiet_logs() -> None:
    """Logger and Metrics are one per process (checkout_conversions.observability), shared by every
    function imported in it."""
    global _log_sink
    from checkout_conversions.observability import logger

    if _log_sink is None:
        _log_sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as we do
    logger.registered_handler.setStream(_log_sink)


def context(timeout_seconds: float = 10.0, function_name: str = WEBHOOK_FUNCTION) -> Any:
    from devtools.function_url import LambdaContext

    return LambdaContext(timeout_seconds, function_name=function_name)


# --- the stream: Lambda's event source mapping, done locally ------------------------------------


def streams_client(endpoint: str) -> Any:
    """A DynamoDB Streams client (moto serves the Streams API at its DynamoDB endpoint)."""
    import boto3

    return boto3.client(
        "dynamodbstreams",
        endpoint_url=endpoint,
        region_name=FAKE_AWS["AWS_REGION"],
        aws_access_key_id=FAKE_AWS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_AWS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=FAKE_AWS["AWS_SESSION_TOKEN"],
    )


def stream_mapping(streams_endpoint: str, admin: Any, sessions_table: str, handler: Any) -> Any:
    """devtools/stream_mapping.LocalStreamMapping of the Sessions table to `handler`, with
    template.yaml's filter, batch size and retries. Its Streams API requests go to
    `streams_endpoint` (the counting proxy, to count them); the table is described by `admin`."""
    from devtools.stream_mapping import LocalStreamMapping

    return LocalStreamMapping.for_table(streams_client(streams_endpoint), admin, sessions_table, handler)


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
