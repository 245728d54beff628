"""X-Ray tracing is opt-in (template parameter EnableTracing sets POWERTOOLS_TRACE_DISABLED).

With tracing on (as in Lambda, `Tracing: Active`), `observability.traced` wraps a handler with
Powertools' Tracer, which patches the clients that function uses, and the functions still work.
With it off (the default), the webhook's cold start never imports the X-Ray SDK.

Whether tracing is on is decided at import time, and the test session runs with it off, so each
test runs the real modules in a fresh interpreter (the project's own .venv/bin/python) with
Lambda's variables. The segments the SDK emits go over UDP to a stand-in X-Ray daemon on
loopback, which records them.
"""

import json
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devtools.function_url import signed_webhook_event
from tests.factories import stripe_event
from tests.integration.conftest import WEBHOOK_SECRET

pytest_plugins = ("tests.integration.redrive_fixtures",)

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv" / "bin" / "python"
TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

TRACED_HANDLER = """
import json, sys
from checkout_conversions.observability import traced
from devtools.function_url import LambdaContext

def handler(event, context):
    return {"echo": event}

wrapped = traced("botocore")(handler)
from aws_xray_sdk.core import patcher
print("RESULT " + json.dumps({
    "same_object": wrapped is handler,
    "wraps_handler": getattr(wrapped, "__wrapped__", None) is handler,
    "patched": sorted(patcher._PATCHED_MODULES),
    "answer": wrapped({"n": 1}, LambdaContext()),
}))
"""

WEBHOOK = """
import json, sys
from devtools.function_url import LambdaContext
from stripe_webhook import app
answer = app.lambda_handler(json.loads(sys.stdin.read()), LambdaContext())
print("RESULT " + json.dumps({"answer": answer, "xray_imported": "aws_xray_sdk" in sys.modules}))
"""

SENDER = """
import json, sys
from devtools.function_url import LambdaContext
from delivery_sender import app
answer = app.lambda_handler(json.loads(sys.stdin.read()), LambdaContext(60, "DeliverySenderFunction"))
print("RESULT " + json.dumps({"answer": answer}))
"""

IMPORT_ONLY = """
import json, sys
from stripe_webhook import app
from checkout_conversions.observability import traced
handler = lambda event, context: event
print("RESULT " + json.dumps({
    "xray_imported": sorted(name for name in sys.modules if name.split(".")[0] == "aws_xray_sdk"),
    "traced_is_a_no_op": traced("botocore")(handler) is handler,
}))
"""


class XRayDaemon:
    """Receives the segment documents the X-Ray SDK sends (UDP, a JSON header line, then the
    document), as the daemon in Lambda would."""

    def __init__(self):
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.address = "{}:{}".format(*self._socket.getsockname())

    def documents(self) -> list[dict[str, Any]]:
        received = []
        while True:
            try:
                datagram = self._socket.recv(65535)
            except TimeoutError:
                return received
            header, _, document = datagram.decode("utf-8").partition("\n")
            assert json.loads(header) == {"format": "json", "version": 1}
            received.append(json.loads(document))

    def close(self) -> None:
        self._socket.close()


def subsegments(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every (sub)segment sent, nested ones included."""
    found = []
    pending = list(documents)
    while pending:
        document = pending.pop()
        found.append(document)
        pending += document.get("subsegments", [])
    return found


@pytest.fixture
def xray():
    daemon = XRayDaemon()
    yield daemon
    daemon.close()


def lambda_environment(function_name: str, tracing: bool, daemon: XRayDaemon | None = None) -> dict[str, str]:
    """This test's configuration (tables, secrets, endpoints) as Lambda would set it."""
    environment = {key: value for key, value in os.environ.items() if key != "POWERTOOLS_TRACE_DISABLED"}
    if not tracing:
        environment["POWERTOOLS_TRACE_DISABLED"] = "true"
    environment.update(
        LAMBDA_TASK_ROOT=str(ROOT / "functions"),
        AWS_LAMBDA_FUNCTION_NAME=function_name,
        _X_AMZN_TRACE_ID=TRACE_HEADER,
        AWS_XRAY_CONTEXT_MISSING="LOG_ERROR",
        PYTHONPATH=os.pathsep.join([str(ROOT / "functions"), str(ROOT)]),
    )
    # With no daemon, segments go to a port where nothing listens: they are simply dropped.
    environment["AWS_XRAY_DAEMON_ADDRESS"] = daemon.address if daemon else "127.0.0.1:9"
    return environment


def run(script: str, environment: dict[str, str], stdin: str = "") -> dict[str, Any]:
    done = subprocess.run(
        [str(PYTHON), "-c", script],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    [line] = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    return json.loads(line.removeprefix("RESULT "))


def test_traced_wraps_the_handler_with_powertools_tracer_when_tracing_is_on(env, xray):
    result = run(TRACED_HANDLER, lambda_environment("StripeWebhookFunction", tracing=True, daemon=xray))

    assert result["same_object"] is False
    assert result["wraps_handler"] is True
    assert result["patched"] == ["botocore"]  # only the clients named, not every library
    assert result["answer"] == {"echo": {"n": 1}}
    [handler] = [doc for doc in subsegments(xray.documents()) if doc["name"] == "## handler"]
    assert handler["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    assert handler["annotations"] == {"ColdStart": True, "Service": "checkout-conversions"}


def test_the_webhook_works_with_tracing_on(env, xray, db, tiktok_server):
    event = signed_webhook_event(stripe_event(), WEBHOOK_SECRET)

    result = run(
        WEBHOOK, lambda_environment("StripeWebhookFunction", tracing=True, daemon=xray), json.dumps(event)
    )

    answer = result["answer"]
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["deliveries"]["tiktok"] == {"status": "pending"}
    assert result["xray_imported"] is True
    assert len(db.customers()) == 1
    [delivery] = db.deliveries()
    assert delivery["delivery_status"] == "pending"
    assert tiktok_server.requests == []  # the webhook never calls TikTok, traced or not
    traced = subsegments(xray.documents())
    [handler] = [doc for doc in traced if doc["name"] == "## lambda_handler"]
    [dynamodb] = [doc for doc in traced if doc["name"] == "dynamodb"]  # botocore, patched
    assert dynamodb["aws"]["operation"] == "TransactWriteItems"
    assert dynamodb["parent_id"] == handler["id"]


def send_traced(deliver, stream, xray) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """A new pending delivery, and a freshly imported, traced sender invoked with its stream
    record as Lambda would: (session id, the sender's answer, the segments sent)."""
    session_id = deliver(stripe_event()).body["session_id"]
    records = stream.poll()
    assert len(records) == 1
    result = run(
        SENDER,
        lambda_environment("DeliverySenderFunction", tracing=True, daemon=xray),
        json.dumps({"Records": records}),
    )
    return session_id, result["answer"], subsegments(xray.documents())


def test_the_sender_works_with_tracing_on(env, deliver, stream, db, tiktok_server, xray):
    session_id, answer, traced = send_traced(deliver, stream, xray)

    assert answer == {"batchItemFailures": []}
    assert len(tiktok_server.requests) == 1
    assert db.delivery(session_id)["delivery_status"] == "sent"
    [handler] = [doc for doc in traced if doc["name"] == "## lambda_handler"]
    dynamodb = [doc for doc in traced if doc["name"] == "dynamodb"]
    assert [doc["aws"]["operation"] for doc in dynamodb] == ["UpdateItem", "UpdateItem"]  # claim, record
    assert all(doc["parent_id"] == handler["id"] for doc in dynamodb)


def test_the_senders_post_to_tiktok_is_traced(env, deliver, stream, tiktok_server, xray):
    _, answer, traced = send_traced(deliver, stream, xray)

    assert answer == {"batchItemFailures": []}
    [post] = [doc for doc in traced if doc.get("http", {}).get("request", {}).get("method") == "POST"]
    assert post["http"]["request"]["url"] == env["TIKTOK_API_URL"]
    assert post["http"]["response"]["status"] == 200


def test_with_tracing_off_the_webhook_never_imports_the_xray_sdk(env):
    result = run(IMPORT_ONLY, lambda_environment("StripeWebhookFunction", tracing=False))

    assert result["xray_imported"] == []
    assert result["traced_is_a_no_op"] is True
