"""With X-Ray tracing on (as in Lambda, `Tracing: Active`), the function still works: the Tracer
patches botocore and httpx, and the handler answers as usual. Tracing is on only in a process
that looks like Lambda, so this runs the handler in a fresh interpreter with Lambda's variables."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.factories import stripe_event
from tests.integration.conftest import WEBHOOK_SECRET

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
from devtools.function_url import LambdaContext, signed_webhook_event
from stripe_webhook import app
from checkout_conversions.observability import tracer
assert not tracer.disabled, "tracing should be on in a Lambda-like process"
event = json.loads(sys.stdin.read())
answer = app.lambda_handler(signed_webhook_event(event, sys.argv[1]), LambdaContext())
print("ANSWER " + json.dumps(answer))
"""


def test_the_handler_works_with_tracing_on(env, dynamodb_endpoint, tiktok_server, db):
    environment = {key: value for key, value in os.environ.items() if key != "POWERTOOLS_TRACE_DISABLED"}
    environment.update(
        LAMBDA_TASK_ROOT=str(ROOT / "functions"),
        AWS_LAMBDA_FUNCTION_NAME="StripeWebhookFunction",
        _X_AMZN_TRACE_ID="Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        AWS_XRAY_DAEMON_ADDRESS="127.0.0.1:2000",  # UDP to nowhere: segments are simply dropped
        AWS_XRAY_CONTEXT_MISSING="LOG_ERROR",
        PYTHONPATH=os.pathsep.join([str(ROOT / "functions"), str(ROOT)]),
    )
    event = stripe_event()

    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, WEBHOOK_SECRET],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    [line] = [line for line in done.stdout.splitlines() if line.startswith("ANSWER ")]
    answer = json.loads(line.removeprefix("ANSWER "))
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["tiktok"] == {"status": "sent"}
    assert len(db.customers()) == 1
    assert len(tiktok_server.requests) == 1
