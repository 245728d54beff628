"""Fixtures for the redrive, fault, load, fuzz, secrets and deliveries-CLI tests.

Registered by `pytest_plugins = ("tests.integration.redrive_fixtures",)` in the modules that use
them (never imported directly, so pytest can rewrite the asserts here). Nothing here is autouse:
other modules are unaffected.
"""

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from devtools.function_url import LambdaContext, signed_webhook_event
from tests.factories import checkout_session, stripe_event
from tests.integration.conftest import WEBHOOK_SECRET

# The redrive stops starting sends when less than STOP_MARGIN_SECONDS + one whole send is left.
PLENTY_OF_TIME_MILLIS = 60_000


class RecordingClient:
    """A DynamoDB client proxy that records every operation called on it (name and arguments)."""

    def __init__(self, client: Any):
        self._client = client
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name.startswith("_") or name in ("get_waiter", "get_paginator"):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls.append((name, kwargs))
            return attribute(*args, **kwargs)

        return call

    def operations(self) -> list[str]:
        return [name for name, _ in self.calls]


class FailingClient:
    """A DynamoDB client proxy whose chosen operation raises a ClientError (throttling and the like).

    `when(kwargs)` picks which calls fail (all of them by default); `times` bounds how many do."""

    def __init__(
        self,
        client: Any,
        operation: str,
        code: str,
        when: Callable[[dict[str, Any]], bool] = lambda kwargs: True,
        times: int | None = None,
        cancellation_reasons: list[dict[str, Any]] | None = None,
    ):
        self._client = client
        self._operation = operation
        self._code = code
        self._when = when
        self._times = times
        self._reasons = cancellation_reasons
        self.failures = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name != self._operation:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            if self._when(kwargs) and (self._times is None or self.failures < self._times):
                self.failures += 1
                response: dict[str, Any] = {
                    "Error": {"Code": self._code, "Message": f"simulated {self._code}"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                }
                if self._reasons is not None:
                    response["CancellationReasons"] = self._reasons
                operation_name = "".join(part.title() for part in name.split("_"))
                raise ClientError(response, operation_name)
            return attribute(*args, **kwargs)

        return call


class EmfCapture:
    """CloudWatch EMF blobs the function printed.

    Powertools Metrics serialises its metric set and `print()`s it as one JSON line at the end of
    each invocation (`@metrics.log_metrics`), or when `metrics.flush_metrics()` is called. print()
    looks up sys.stdout when it runs, so pytest's capsys sees exactly those lines (the Logger, in
    contrast, holds the stream it was given at import time and never writes here). Lines carrying
    the EMF `_aws` key are the metrics; anything else is ignored.
    """

    def __init__(self, capsys: pytest.CaptureFixture[str]):
        self._capsys = capsys
        self._blobs: list[dict[str, Any]] = []

    def flush(self) -> None:
        """Publish metrics counted outside a Lambda handler (run_redrive called directly)."""
        from checkout_conversions.observability import metrics

        metrics.flush_metrics()

    def blobs(self) -> list[dict[str, Any]]:
        out = self._capsys.readouterr().out
        for line in out.splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                blob = json.loads(line)
            except ValueError:
                continue
            if isinstance(blob, dict) and "_aws" in blob:
                self._blobs.append(blob)
        return list(self._blobs)

    def names(self, blob: dict[str, Any]) -> list[str]:
        return [m["Name"] for directive in blob["_aws"]["CloudWatchMetrics"] for m in directive["Metrics"]]

    @staticmethod
    def value(blob: dict[str, Any], name: str) -> float:
        """One blob's value of a metric (Powertools writes a list of values, or one number)."""
        value = blob[name]
        return sum(value) if isinstance(value, list) else value

    def total(self, name: str) -> float:
        """The sum of every value of metric `name` across all blobs so far."""
        return sum(self.value(blob, name) for blob in self.blobs() if name in self.names(blob))


@pytest.fixture
def emf(capsys):
    from checkout_conversions.observability import metrics

    metrics.clear_metrics()
    capsys.readouterr()
    yield EmfCapture(capsys)
    metrics.clear_metrics()


@pytest.fixture
def redrive_env(env, monkeypatch):
    """The configured function with no grace period and no backoff: the redrive takes every
    delivery that is not held by someone at once."""
    monkeypatch.setenv("REDRIVE_GRACE_SECONDS", "0")
    monkeypatch.setenv("REDRIVE_BACKOFF_BASE_SECONDS", "0")
    return env


@pytest.fixture
def recording_dynamodb(dynamodb):
    return RecordingClient(dynamodb)


@pytest.fixture
def redrive(recording_dynamodb, tables):
    """Run the redrive as its Lambda would, with `at` (epoch seconds) as the current time."""
    from checkout_conversions.destinations import http
    from checkout_conversions.outbox.redrive import run_redrive
    from checkout_conversions.settings import load_settings
    from checkout_conversions.store.deliveries import DynamoDeliveries

    client = http.new_client()  # the product's: one deadline per POST

    def run(
        at: float | None = None,
        remaining_millis: Callable[[], int] | None = None,
        http_client: httpx.Client | None = None,
        destination: str = "tiktok",
    ) -> dict[str, Any]:
        settings = load_settings()
        ledger = DynamoDeliveries(recording_dynamodb, settings.tables.sessions)
        clock = (lambda: at) if at is not None else time.time
        return run_redrive(
            ledger,
            settings.destination(destination),
            http_client or client,
            settings,
            remaining_millis or (lambda: PLENTY_OF_TIME_MILLIS),
            clock=clock,
        )

    run.client = recording_dynamodb
    yield run
    client.close()


@pytest.fixture
def store(dynamodb, tables):
    from checkout_conversions.store.deliveries import DynamoDeliveries

    return DynamoDeliveries(dynamodb, tables["SESSIONS_TABLE_NAME"])


@pytest.fixture
def pending(invoke):
    """Provision `count` paid sessions whose TikTok delivery stays pending: the stream is never
    drained, as when the sender did not get to them. Returns the (session, event) pairs."""

    def make(count: int = 1, **session_overrides: Any) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        made = []
        for _ in range(count):
            session = checkout_session(**session_overrides)
            event = stripe_event(session=session)
            answer = invoke(signed_webhook_event(event, WEBHOOK_SECRET))
            assert answer.status == 200, answer.body
            assert answer.body["deliveries"]["tiktok"] == {"status": "pending"}, answer.body
            made.append((session, event))
        return made

    return make


@pytest.fixture
def sent_by_event(tiktok_server):
    """The TikTok stand-in's requests grouped by event_id, in arrival order."""

    def group() -> dict[str, list[dict[str, Any]]]:
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for request in list(tiktok_server.requests):
            body = request.json()
            for event in body["data"]:
                grouped[event["event_id"]].append(body)
        return dict(grouped)

    return group


@pytest.fixture
def redrive_app(dynamodb_endpoint):
    from delivery_redrive import app as redrive_function

    return redrive_function


@pytest.fixture
def redrive_context():
    def make(timeout_seconds: float = 120.0) -> LambdaContext:
        return LambdaContext(timeout_seconds, function_name="DeliveryRedriveFunction")

    return make


def iso_epoch(value: str) -> int:
    return int(datetime.fromisoformat(value).timestamp())


@pytest.fixture
def epoch_of():
    return iso_epoch


@pytest.fixture
def failing_client():
    """FailingClient, the class (a fixture so that test modules need not import this module)."""
    return FailingClient
