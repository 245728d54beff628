"""A rotated or refused token (issue 17, defect 3), through the real path: the webhook over HTTP,
the Sessions stream into the sender, the schedule into the redrive, the tokens in SSM (moto), the
platforms' stand-ins over loopback accepting only the token they were given.

(a) a token rotated in SSM while a warm sender holds the old one: delivered with the new one in
    the same attempt, one extra request, no requeue;
(b) a token refused for an hour, then fixed: deliveries paused (state, reason, metric, alarm,
    log line), one probe request per redrive run, then every waiting delivery sent once;
(c) a payload error stays a permanent failure.
Each for TikTok and for Meta.
"""

import time
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from devtools.template_tables import load_template
from tests.factories import checkout_session, stripe_event
from tests.integration.conftest import WEBHOOK_SECRET, read_secrets_from

pytest_plugins = ("tests.integration.redrive_fixtures",)

NOTHING_TO_RETRY = {"batchItemFailures": []}
OLD, NEW = "token-before-the-rotation", "token-after-the-rotation"
PAUSED_REASON = "{label} refused {prefix}_ACCESS_TOKEN, read again from its store: paused"
RUN_EVERY = 300  # the redrive's schedule: every 5 minutes
CACHE_SECONDS = "300"  # SecretsCacheSeconds' default: a warm container holds a token this long


@dataclass(frozen=True)
class Platform:
    """One destination under test: its stand-in, how it refuses a token, a payload error."""

    name: str
    label: str
    server: Any
    refusal: str  # the stand-in's behaviour for a token it does not take
    refusal_code: int
    payload_error: str
    payload_code: int

    def token_of(self, request: Any) -> str | None:
        if self.name == "tiktok":
            return request.headers.get("access-token")
        return request.json().get("access_token")

    def event_ids(self, requests: list[Any]) -> list[str]:
        return [event["event_id"] for request in requests for event in request.json()["data"]]

    def tokens(self) -> list[str | None]:
        return [self.token_of(request) for request in list(self.server.requests)]


REFUSALS = {
    "tiktok-40105": ("tiktok", "code:40105", 40105),  # expired, empty or invalid
    "tiktok-40001": ("tiktok", "code:40001", 40001),  # no rights on the pixel
    "meta-190": ("meta", "error:190", 190),  # invalid or expired
    "meta-10": ("meta", "error:10", 10),  # permission
}


@pytest.fixture
def ssm(aws_endpoint):
    prefix = f"/checkout-test-{uuid.uuid4().hex[:8]}"
    client = boto3.client("ssm", endpoint_url=aws_endpoint)

    class Ssm:
        def name(self, what: str) -> str:
            return f"{prefix}/{what}"

        def write(self, what: str, value: str) -> None:
            client.put_parameter(Name=self.name(what), Value=value, Type="SecureString", Overwrite=True)

    return Ssm()


@pytest.fixture
def stored_tokens(both_env, ssm, aws_endpoint, monkeypatch):
    """Both platforms on, every secret in SSM, cached by a container as long as it is by default;
    both stand-ins take any token until told otherwise."""
    from aws_lambda_powertools.utilities import parameters

    read_secrets_from(aws_endpoint, monkeypatch)
    monkeypatch.setenv("SECRETS_SOURCE", "ssm")
    monkeypatch.setenv("SECRETS_CACHE_SECONDS", CACHE_SECONDS)
    monkeypatch.setenv("REDRIVE_GRACE_SECONDS", "0")
    for variable, what in (
        ("STRIPE_WEBHOOK_SECRET_NAME", "stripe-webhook-secret"),
        ("TIKTOK_ACCESS_TOKEN_NAME", "tiktok-access-token"),
        ("META_ACCESS_TOKEN_NAME", "meta-access-token"),
        ("TIKTOK_TEST_EVENT_CODE_NAME", "tiktok-test-event-code"),
        ("META_TEST_EVENT_CODE_NAME", "meta-test-event-code"),
    ):
        monkeypatch.setenv(variable, ssm.name(what))
        monkeypatch.delenv(variable.removesuffix("_NAME"), raising=False)
    ssm.write("stripe-webhook-secret", WEBHOOK_SECRET)
    ssm.write("tiktok-access-token", OLD)
    ssm.write("meta-access-token", OLD)
    ssm.write("tiktok-test-event-code", "TEST12345")  # the events are test mode
    ssm.write("meta-test-event-code", "TEST_META_1")
    yield ssm
    parameters.clear_caches()


def platform_of(
    name: str, tiktok_server: Any, meta_server: Any, refusal: str = "", code: int = 0
) -> Platform:
    if name == "tiktok":
        return Platform(
            "tiktok", "TikTok", tiktok_server, refusal or "code:40105", code or 40105, "code:40002", 40002
        )
    return Platform("meta", "Meta", meta_server, refusal or "error:190", code or 190, "error:100", 100)


@pytest.fixture(params=sorted(REFUSALS))
def refusing(request, stored_tokens, tiktok_server, meta_server):
    """The destination under test and the way it refuses a token; told which token it takes
    (`accept_only`) by the test. The stand-ins forget it with the next test's `behave`."""
    name, refusal, code = REFUSALS[request.param]
    yield platform_of(name, tiktok_server, meta_server, refusal, code)
    tiktok_server.behave("ok")
    meta_server.behave("ok")


@pytest.fixture(params=["tiktok", "meta"])
def platform(request, stored_tokens, tiktok_server, meta_server):
    return platform_of(request.param, tiktok_server, meta_server)


def paid(checkout) -> str:
    """A paid checkout, answered and sent through the stream as in AWS; its session id."""
    session = checkout_session()
    answer = checkout(stripe_event(session=session))
    assert answer.status == 200 and answer.body["status"] == "provisioned"
    return session["id"]


# ---------------------------------------------------------------------- (a) a rotated token


def test_a_token_rotated_while_a_warm_sender_holds_the_old_one_is_read_again_and_the_delivery_sent(
    refusing, stored_tokens, checkout, stream, db, redrive, emf, logs
):
    server = refusing.server
    # A warm sender: its container read the token (and cached it for 300 s) with the first sale.
    first = paid(checkout)
    assert db.delivery(first, refusing.name)["delivery_status"] == "sent"
    assert refusing.tokens() == [OLD]

    # The token is rotated: the platform takes only the new one, which is now in SSM.
    stored_tokens.write(f"{refusing.name}-access-token", NEW)
    server.accept_only(NEW, refusal=refusing.refusal)
    before = len(server.requests)
    second = paid(checkout)

    # Refused with the cached token, read again from SSM, sent with the new one: one extra request.
    assert refusing.tokens()[before:] == [OLD, NEW]
    assert refusing.event_ids(server.requests[before:]) == [second, second]
    record = db.delivery(second, refusing.name)
    assert record["delivery_status"] == "sent" and record["delivery_attempts"] == 1
    assert "redrive_queue" not in record and "delivery_reason" not in record
    assert all(invocation.answer == NOTHING_TO_RETRY for invocation in stream.invocations)

    # The cache now holds the new token: the next sale is one request.
    third = paid(checkout)
    assert refusing.tokens()[before + 2 :] == [NEW]
    assert db.delivery(third, refusing.name)["delivery_status"] == "sent"

    # Nothing to requeue, nothing left for the redrive, nobody paged.
    assert redrive(at=time.time() + 3600, destination=refusing.name) == {}
    assert len(server.requests) == before + 3
    assert emf.total(f"{refusing.label}Paused") == 0
    assert emf.total(f"{refusing.label}PermanentFailures") == 0
    assert emf.total(f"{refusing.label}Sent") == 3
    [reread] = [
        line for line in logs() if line.get("message") == f"{refusing.label} refused its token: read it again"
    ]
    assert reread["token_changed"] is True and reread["destination"] == refusing.name
    for token in (OLD, NEW):
        assert token not in logs.text()


# ---------------------------------------------------------------------- (b) refused, then fixed


def test_a_token_refused_for_an_hour_pauses_the_destination_probes_once_per_run_then_sends_everything_once(
    refusing, stored_tokens, checkout, stream, db, redrive, emf, logs, tiktok_server
):
    label, name, server = refusing.label, refusing.name, refusing.server
    # The platform took the token back (revoked, expired); SSM still holds it.
    server.accept_only(NEW, refusal=refusing.refusal)
    sessions = [paid(checkout) for _ in range(3)]

    # Each sale: refused, the token read again from SSM (the same one), so not sent again: paused.
    assert refusing.event_ids(server.requests) == sessions
    assert all(invocation.answer == NOTHING_TO_RETRY for invocation in stream.invocations)
    reason = PAUSED_REASON.format(label=label, prefix=name.upper())
    for session_id in sessions:
        record = db.delivery(session_id, name)
        assert record["delivery_status"] == "paused" and record["delivery_reason"].startswith(reason)
        assert record["delivery_code"] == refusing.refusal_code
        assert record["redrive_queue"] == name and record["next_attempt_at"] <= time.time()
        assert "purchase" in record and "claim_token" not in record and "delivery_retryable" not in record
    assert emf.total(f"{label}Paused") == 3
    assert emf.total(f"{label}PermanentFailures") == 0 and emf.total(f"{label}Failed") == 0
    paused_lines = [line for line in logs() if line.get("message") == f"{label} delivery paused"]
    assert len(paused_lines) == 3 and paused_lines[0]["level"] == "WARNING"
    assert paused_lines[0]["platform_code"] == refusing.refusal_code
    assert paused_lines[0]["reason"].startswith(reason)
    # The other destination is untouched.
    other = "meta" if name == "tiktok" else "tiktok"
    assert all(db.delivery(session_id, other)["delivery_status"] == "sent" for session_id in sessions)

    # An hour of runs every 5 minutes: each makes exactly one request (a probe), and ends.
    start = time.time()
    for run in range(1, 13):
        before = len(server.requests)
        assert redrive(at=start + run * RUN_EVERY, destination=name) == {"paused": 1}
        assert len(server.requests) == before + 1
        assert refusing.tokens()[-1] == OLD
    assert all(db.delivery(session_id, name)["delivery_status"] == "paused" for session_id in sessions)
    emf.flush()
    assert emf.total(f"{label}Paused") == 3 + 12  # the alarm's metric, every run while paused
    probe_lines = [line for line in logs() if "the next run tries one delivery" in line.get("message", "")]
    assert len(probe_lines) == 12 and probe_lines[0]["level"] == "WARNING"

    # Fixed: the new token is written in SSM (the platform takes it). The warm redrive still has
    # the old one cached: its probe is refused, reads the token again, goes, and so does the rest.
    stored_tokens.write(f"{name}-access-token", NEW)
    before = len(server.requests)
    fixed_at = start + 13 * RUN_EVERY
    assert redrive(at=fixed_at, destination=name) == {"sent": 3}

    # The probe (one delivery) with the old token, again with the new one, then the other two
    # waiting deliveries in one request.
    after_fix = server.requests[before:]
    assert [refusing.token_of(request) for request in after_fix] == [OLD, NEW, NEW]
    assert [len(request.json()["data"]) for request in after_fix] == [1, 1, 2]
    assert refusing.event_ids(after_fix[:1]) == refusing.event_ids(after_fix[1:2])
    accepted = refusing.event_ids(after_fix[1:])
    assert sorted(accepted) == sorted(sessions)  # each waiting delivery once, in the same run
    for session_id in sessions:
        record = db.delivery(session_id, name)
        assert record["delivery_status"] == "sent" and "delivery_reason" not in record
        assert "purchase" not in record and "redrive_queue" not in record
    assert redrive(at=fixed_at + RUN_EVERY, destination=name) == {}
    assert stream.drain() == 0
    assert len(server.requests) == before + 3
    # Nobody requeued anything: each delivery was accepted exactly once in all.
    with_new = [request for request in server.requests if refusing.token_of(request) == NEW]
    assert sorted(refusing.event_ids(with_new)) == sorted(sessions)
    for token in (OLD, NEW):
        assert token not in logs.text()


def test_each_destination_has_an_alarm_on_its_paused_metric():
    """template.yaml: one alarm per destination, on `<Label>Paused` with the metrics' `service`
    dimension, firing on the first paused delivery, like the permanent failures' alarms."""
    resources = load_template()["Resources"]
    for label in ("TikTok", "Meta"):
        alarm = resources[f"{label}PausedAlarm"]["Properties"]
        permanent = resources[f"{label}PermanentFailuresAlarm"]["Properties"]
        assert alarm["MetricName"] == f"{label}Paused"
        for same in (
            "Namespace",
            "Dimensions",
            "Statistic",
            "Threshold",
            "ComparisonOperator",
            "AlarmActions",
        ):
            assert alarm[same] == permanent[same], same
        assert alarm["TreatMissingData"] == "notBreaching"


def test_the_paused_metric_carries_the_alarms_dimension(platform, stored_tokens, checkout, emf):
    platform.server.accept_only(NEW, refusal=platform.refusal)
    paid(checkout)
    [blob] = [blob for blob in emf.blobs() if f"{platform.label}Paused" in emf.names(blob)]
    assert blob["service"] == "checkout-conversions"
    assert ["service"] in blob["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    platform.server.behave("ok")


# ---------------------------------------------------------------------- (c) a payload error


def test_a_payload_error_stays_a_permanent_failure(
    platform, stored_tokens, checkout, stream, db, redrive, emf
):
    platform.server.behave(platform.payload_error)
    session_id = paid(checkout)

    assert len(platform.server.requests) == 1  # not sent again with a token read again
    record = db.delivery(session_id, platform.name)
    assert record["delivery_status"] == "failed" and record["delivery_retryable"] is False
    assert record["delivery_code"] == platform.payload_code
    assert "redrive_queue" not in record and "delivery_reason" not in record
    assert "purchase" in record  # kept for an operator's requeue
    assert emf.total(f"{platform.label}PermanentFailures") == 1
    assert emf.total(f"{platform.label}Paused") == 0
    assert redrive(at=time.time() + 3600, destination=platform.name) == {}
    assert len(platform.server.requests) == 1
    platform.server.behave("ok")
