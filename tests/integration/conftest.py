"""Integration fixtures: the real handlers, a DynamoDB-compatible server on loopback (tables made
from template.yaml, with the Sessions table's stream), Lambda's stream event source mapping done
locally (devtools/stream_mapping.py), and a TikTok stand-in over real HTTP."""

import io
import json
import os
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from devtools.function_url import LambdaContext, signed_webhook_event
from devtools.local_dynamodb import moto_dynamodb, point_boto3_at
from devtools.meta_standin import MetaStandIn
from devtools.stream_mapping import LocalStreamMapping
from devtools.stripe_standin import StripeStandIn
from devtools.template_tables import create_tables
from devtools.tiktok_standin import TikTokStandIn

WEBHOOK_SECRET = "whsec_test_integration_secret_0001"
PIXEL_ID = "CTESTPIXEL0001"
TIKTOK_TOKEN = "tiktok-test-token-never-logged"
STRIPE_API_KEY = "rk_test_integration_key_never_logged"
META_PIXEL_ID = "1234567890123456"
META_TOKEN = "meta-test-token-never-logged"


@pytest.fixture(scope="session")
def dynamodb_endpoint():
    """moto on loopback, or any DynamoDB-compatible server named by DYNAMODB_TEST_ENDPOINT
    (e.g. Amazon's DynamoDB Local, see tests/run-against-dynamodb-local.sh)."""
    os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
    os.environ["POWERTOOLS_METRICS_NAMESPACE"] = "CheckoutConversionsTest"
    external = os.environ.get("DYNAMODB_TEST_ENDPOINT")
    if external:
        point_boto3_at(external)
        yield external
        return
    with moto_dynamodb() as endpoint:
        point_boto3_at(endpoint)
        yield endpoint


@pytest.fixture(scope="session")
def aws_endpoint(dynamodb_endpoint):
    """moto on loopback for the other AWS services the tests use (SSM, Secrets Manager): the
    DynamoDB one when that is moto, its own server when DynamoDB is DynamoDB Local."""
    if not os.environ.get("DYNAMODB_TEST_ENDPOINT"):
        yield dynamodb_endpoint
        return
    with moto_dynamodb() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def dynamodb(dynamodb_endpoint):
    return boto3.client("dynamodb")


@pytest.fixture(scope="session")
def streams(dynamodb_endpoint):
    """The DynamoDB Streams API, served by the same server as DynamoDB (moto or DynamoDB Local)."""
    return boto3.client("dynamodbstreams", endpoint_url=dynamodb_endpoint)


@pytest.fixture(scope="session")
def tiktok_server():
    server = TikTokStandIn().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def meta_server():
    server = MetaStandIn().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def app(dynamodb_endpoint):
    from stripe_webhook import app as webhook_app

    return webhook_app


@pytest.fixture(scope="session")
def stripe_server():
    server = StripeStandIn().start()
    yield server
    server.stop()


@pytest.fixture
def stripe_api(env, stripe_server, monkeypatch):
    """Stripe's API (line items) on loopback, and the sender configured to read it: a restricted
    key in STRIPE_API_KEY, STRIPE_API_BASE at the stand-in. `stripe_api.set_line_items(session_id,
    [line_item(...), ...])` (devtools.stripe_standin.line_item) says what a session bought."""
    stripe_server.reset()
    monkeypatch.setenv("STRIPE_API_KEY", STRIPE_API_KEY)
    monkeypatch.setenv("STRIPE_API_BASE", stripe_server.url)
    monkeypatch.setenv("STRIPE_API_TIMEOUT_SECONDS", "1")
    yield stripe_server
    stripe_server.release_hung()


@pytest.fixture(scope="session")
def sender_app(dynamodb_endpoint):
    from delivery_sender import app as sender_function

    return sender_function


@pytest.fixture
def tables(dynamodb, monkeypatch):
    environment = create_tables(dynamodb, prefix=f"t{uuid.uuid4().hex[:10]}-")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return environment


@pytest.fixture
def env(monkeypatch, tables, tiktok_server):
    """A fully configured function: TikTok on, test mode allowed through a test event code."""
    tiktok_server.behave("ok")
    settings = {
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "TIKTOK_ACCESS_TOKEN": TIKTOK_TOKEN,
        "TIKTOK_PIXEL_ID": PIXEL_ID,
        "TIKTOK_API_URL": tiktok_server.url,
        "TIKTOK_TEST_EVENT_CODE": "TEST12345",
        "TIKTOK_TIMEOUT_SECONDS": "1",
        "DEFAULT_PHONE_COUNTRY": "US",
        "REDRIVE_GRACE_SECONDS": "120",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return settings


@pytest.fixture
def both_env(env, monkeypatch, meta_server):
    """TikTok and Meta both on, each talking to its stand-in, test mode allowed for both."""
    meta_server.behave("ok")
    settings = {
        "META_ACCESS_TOKEN": META_TOKEN,
        "META_PIXEL_ID": META_PIXEL_ID,
        "META_API_BASE_URL": meta_server.url_base,
        "META_TEST_EVENT_CODE": "TEST_META_1",
        "META_TIMEOUT_SECONDS": "1",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    yield {**env, **settings}
    meta_server.release_hung()


@pytest.fixture
def stream(streams, dynamodb, tables, sender_app):
    """Lambda's event source mapping of this test's Sessions stream to the real sender handler,
    with template.yaml's filter, batch size and retries: `stream.drain()` delivers every record
    written so far; `stream.invocations` are the events the sender was invoked with."""
    return LocalStreamMapping.for_table(
        streams,
        dynamodb,
        tables["SESSIONS_TABLE_NAME"],
        lambda event, context: sender_app.lambda_handler(event, context),
    )


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


@pytest.fixture
def invoke(app):
    def call(event: dict[str, Any], timeout_seconds: float = 10.0) -> Answer:
        result = app.lambda_handler(event, LambdaContext(timeout_seconds))
        return Answer(result["statusCode"], json.loads(result["body"]), result.get("headers", {}))

    return call


@pytest.fixture
def deliver(invoke):
    """POST a Stripe event the way Stripe does: signed now with the configured secret."""

    def call(stripe_event: dict[str, Any], secret: str = WEBHOOK_SECRET, **kwargs: Any) -> Answer:
        return invoke(signed_webhook_event(stripe_event, secret, **kwargs))

    return call


@pytest.fixture
def checkout(deliver, stream):
    """A paid checkout as it goes in AWS: Stripe's webhook is answered, then the stream hands the
    new delivery to the sender. Returns the webhook's answer."""

    def call(stripe_event: dict[str, Any], **kwargs: Any) -> Answer:
        answer = deliver(stripe_event, **kwargs)
        stream.drain()
        return answer

    return call


@pytest.fixture
def db(dynamodb, tables):
    """Read what the function wrote."""
    from checkout_conversions.store.items import from_item

    class Db:
        def session(self, session_id: str) -> dict[str, Any] | None:
            """The session's provisioning marker."""
            item = dynamodb.get_item(
                TableName=tables["SESSIONS_TABLE_NAME"], Key={"session_id": {"S": session_id}}
            ).get("Item")
            return from_item(item)

        def delivery(self, event_id: str, destination: str = "tiktok") -> dict[str, Any] | None:
            """A destination's delivery of a session (or a renewal's invoice)."""
            return self.session(f"{event_id}#{destination}")

        def all(self, variable: str) -> list[dict[str, Any]]:
            items = dynamodb.scan(TableName=tables[variable]).get("Items", [])
            return [from_item(item) for item in items]

        def customers(self) -> list[dict[str, Any]]:
            return self.all("CUSTOMERS_TABLE_NAME")

        def sessions(self) -> list[dict[str, Any]]:
            """Every item of the Sessions table: markers and deliveries."""
            return self.all("SESSIONS_TABLE_NAME")

        def markers(self) -> list[dict[str, Any]]:
            return [item for item in self.sessions() if "destination" not in item]

        def deliveries(self, destination: str | None = None) -> list[dict[str, Any]]:
            return [
                item
                for item in self.all("SESSIONS_TABLE_NAME")
                if "destination" in item and destination in (None, item["destination"])
            ]

    return Db()


@pytest.fixture
def logs(app):
    """The JSON log lines the function wrote during this test (its Powertools handler is pointed at
    a buffer: it holds the stdout of import time, which pytest's capture fixtures do not see)."""
    from checkout_conversions.observability import logger

    buffer = io.StringIO()
    handler = logger.registered_handler
    previous = handler.setStream(buffer)

    def read() -> list[dict[str, Any]]:
        return [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]

    read.text = buffer.getvalue
    yield read
    handler.setStream(previous)


def read_secrets_from(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The functions as in a fresh container whose secret clients (SSM, Secrets Manager) talk to
    `endpoint`: new Parameters providers, empty caches."""
    from aws_lambda_powertools.utilities import parameters

    from checkout_conversions import secrets

    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint)
    monkeypatch.setattr(secrets, "_providers", {})
    parameters.clear_caches()
