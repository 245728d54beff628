"""Hostile traffic at the Function URL: whatever does not look like a recent Stripe delivery is
refused before any secret is read, and a non-ASCII signature header is a 400, never a crash."""

import time

import boto3
import pytest

from checkout_conversions import secrets
from devtools.function_url import function_url_event, signed_webhook_event, stripe_signature
from tests.factories import stripe_event
from tests.integration.conftest import WEBHOOK_SECRET, read_secrets_from

pytest_plugins = ("tests.integration.redrive_fixtures",)

MALFORMED = {"error": "malformed Stripe-Signature header"}


@pytest.fixture
def secret_reads(env, aws_endpoint, monkeypatch):
    """The signing secret in SSM (cached for no time: every read goes to the store), and a count
    of the reads."""
    read_secrets_from(aws_endpoint, monkeypatch)
    name = f"/hostile-{time.time_ns()}/stripe-webhook-secret"
    boto3.client("ssm", endpoint_url=aws_endpoint).put_parameter(
        Name=name, Value=WEBHOOK_SECRET, Type="SecureString", Overwrite=True
    )
    monkeypatch.setenv("SECRETS_SOURCE", "ssm")
    monkeypatch.setenv("SECRETS_CACHE_SECONDS", "0")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET_NAME", name)
    reads: list[str] = []
    real = secrets._read_stored

    def counted(*args, **kwargs):
        reads.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(secrets, "_read_stored", counted)
    return reads


def with_header(value: str | None, body: bytes = b'{"id": "evt_1", "type": "checkout.session.completed"}'):
    headers = {"content-type": "application/json"}
    if value is not None:
        headers["stripe-signature"] = value
    return function_url_event(body, headers)


@pytest.mark.parametrize(
    "header",
    [
        f"t={int(time.time())},v1=é",  # a non-ASCII signature: hmac.compare_digest raised TypeError
        f"t={int(time.time())},v1=a1b2c3\u00a0",  # a no-break space after an ASCII signature
        "t=١٧٦٥٠٠٠٠٠٠,v1=abc",  # Arabic-Indic digits: int() would read them as a time
        f"t={int(time.time())}é,v1=abc",
    ],
    ids=["signature", "trailing-nbsp", "arabic-digits", "timestamp"],
)
def test_a_non_ascii_signature_header_is_a_400_and_changes_nothing(header, env, invoke, db, emf, logs):
    answer = invoke(with_header(header))

    assert (answer.status, answer.body) == (400, MALFORMED)
    assert db.sessions() == [] and db.customers() == []
    assert emf.total("SignatureFailures") == 1
    [line] = [line for line in logs() if line.get("message") == "Rejected a webhook"]
    assert line["reason"] == MALFORMED["error"]


def test_a_junk_flood_never_reads_a_secret_and_a_real_event_still_does(
    secret_reads, invoke, deliver, db, emf
):
    now = int(time.time())
    signed = signed_webhook_event(stripe_event(), WEBHOOK_SECRET)
    get = dict(signed, requestContext={"http": {"method": "GET"}})
    junk = [
        with_header(None),  # no header at all
        with_header(""),
        with_header("garbage"),
        with_header(f"t={now}"),  # no v1
        with_header(f"v1={'0' * 64}"),  # no t
        with_header(f"t={now - 3600},v1={'0' * 64}"),  # an hour old: a replay
        with_header(f"t={now},v1=é"),
        get,  # not a POST
        with_header(stripe_signature(b"x" * 300_000, WEBHOOK_SECRET), b"x" * 300_000),  # too large
    ]

    answers = [invoke(event).status for event in junk * 5]

    assert set(answers) <= {400, 405, 413} and len(answers) == 45
    assert secret_reads == []
    assert db.sessions() == [] and db.customers() == []
    # The cheap checks refuse only what no secret could make valid: a real delivery reads the
    # secret and is provisioned.
    assert deliver(stripe_event()).body["status"] == "provisioned"
    assert len(secret_reads) == 1
    assert emf.total("SignatureFailures") == 35 and emf.total("RejectedRequests") == 10
