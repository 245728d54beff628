"""`make deliveries`: the operator's listing and requeue, against the moto server."""

import io
import time

import pytest

from checkout_conversions.outbox.model import DeliveryStatus
from devtools import deliveries
from tests.factories import checkout_session, stripe_event

pytest_plugins = ("tests.integration.redrive_fixtures",)

DAY = 86400
EMAIL_SHA256 = "86e0b9e56c17cc4d12387e1949b85053fbe73bc3ce5a1188713a9d300cc6133d"


def run(*argv):
    out = io.StringIO()
    code = deliveries.main(list(argv), out=out)
    return code, out.getvalue()


def line_of(output, session_id):
    [line] = [line for line in output.splitlines() if session_id in line]
    return line


@pytest.fixture
def made(redrive_env, deliver, stream, redrive, tiktok_server, monkeypatch):
    """One session in each state, oldest first: expired, sent, failed permanently, failed and
    retrying, paused (TikTok refused the token, read again), pending, skipped (a guest checkout,
    keyed by its email).

    Sent and failed ones are sent by the stream sender (the stand-in answering as told); the
    pending one is provisioned and never drained; the expired one is left pending and expired by
    the redrive."""
    sessions = {}

    old = checkout_session()
    assert deliver(stripe_event(session=old, created=int(time.time()) - 3 * DAY)).status == 200
    assert redrive(at=time.time() + 5 * DAY) == {"expired": 1}  # its payment is then 8 days old
    sessions["expired"] = old["id"]

    for name, behaviour in (
        ("sent", "ok"),
        ("permanent", "code:40002"),
        ("retrying", "http:500"),
        ("paused", "code:40105"),
    ):
        tiktok_server.behave(behaviour)
        session = checkout_session()
        assert deliver(stripe_event(session=session)).body["deliveries"]["tiktok"] == {"status": "pending"}
        stream.drain()
        assert len(tiktok_server.requests) == 1
        sessions[name] = session["id"]

    with monkeypatch.context() as patch:
        # A test-mode purchase while no test event code is set: recorded pending by the webhook
        # (it reads no platform secret), skipped by the sender, which reads the code.
        patch.setenv("TIKTOK_TEST_EVENT_CODE", "")
        guest = checkout_session(customer=None, livemode=False)
        assert deliver(stripe_event(session=guest)).body["deliveries"]["tiktok"] == {"status": "pending"}
        stream.drain()
        sessions["skipped"] = guest["id"]

    pending = checkout_session()
    assert deliver(stripe_event(session=pending)).body["deliveries"]["tiktok"] == {"status": "pending"}
    sessions["pending"] = pending["id"]
    return sessions


def test_lists_counts_and_one_line_per_session_newest_first(made):
    code, output = run()

    assert code == 0
    lines = output.splitlines()
    assert lines[0].endswith(": 7")  # TikTok's deliveries
    assert (
        lines[1]
        .strip()
        .startswith(
            "pending 1, sent 1, failed 2, paused 1, skipped 1, expired 1 (1 of the failed will be retried)"
        )
    )
    order = [name for name in ("pending", "skipped", "paused", "retrying", "permanent", "sent", "expired")]
    positions = [output.index(made[name]) for name in order]
    assert positions == sorted(positions), "newest first"

    assert line_of(output, made["sent"]).split()[1:3] == ["sent", "1"]
    permanent = line_of(output, made["permanent"])
    assert "failed (permanent)" in permanent and "40002 stand-in error 40002" in permanent
    paused = line_of(output, made["paused"])
    assert paused.split()[1:3] == ["paused", "1"] and "40105 stand-in error 40105" in paused
    assert paused.rstrip().endswith("(due)")  # at the next redrive run
    retrying = line_of(output, made["retrying"])
    assert "failed (retrying)" in retrying and "HTTP 500" in retrying
    assert retrying.rstrip().endswith("(due)")  # REDRIVE_BACKOFF_BASE_SECONDS = 0
    pending = line_of(output, made["pending"])
    assert pending.split()[1:3] == ["pending", "0"]
    assert "test-mode event and no TIKTOK_TEST_EVENT_CODE" in line_of(output, made["skipped"])
    assert "not sent within 7 days" in line_of(output, made["expired"])


def test_status_filter_and_limit(made):
    code, output = run("--status", "failed")

    assert code == 0
    assert made["permanent"] in output and made["retrying"] in output
    assert made["sent"] not in output and made["pending"] not in output
    assert "Newest 2 failed deliveries" in output

    code, output = run("--limit", "2")
    assert made["skipped"] in output and made["pending"] in output
    assert made["retrying"] not in output

    code, output = run("--status", "expired", "--limit", "5")
    assert made["expired"] in output and made["sent"] not in output

    made_per_status = {"pending": 1, "sent": 1, "failed": 2, "paused": 1, "skipped": 1, "expired": 1}
    assert set(made_per_status) == {status.value for status in DeliveryStatus}
    for status in DeliveryStatus:  # every state a delivery can be in can be listed on its own
        code, output = run("--status", status.value)
        assert code == 0
        assert f"Newest {made_per_status[status]} {status.value} deliveries" in output, output


def test_never_prints_personal_data_or_the_stored_purchase(made, db):
    record = db.session(made["skipped"])
    assert record["customer_id"] == "email#jane.doe@example.com"  # the session marker does hold PII
    assert "Doe" in db.delivery(made["pending"])["purchase"]  # and so does a pending one's purchase

    _, output = run("--limit", "100")

    for secret in (
        "jane.doe",
        "example.com",
        "Jane",
        "email#",
        EMAIL_SHA256,
        "203.0.113.7",
        "E.C.P.test-ttclid",
        "Mozilla",
        "cus_TestCustomer0001",
        "Doe",
        "94107",
        "555-0123",
        "2abcDEFttpCookie",
        '"buyer"',
    ):
        assert secret not in output


def test_match_key_coverage_of_the_newest_sent_deliveries(redrive_env, checkout, db):
    # Given: four sent deliveries; every one with an email, half with a phone, one with a click id
    buyers = [
        ({"email": "a@example.com", "phone": "+1 415 555 0123"}, {"ttclid": "E.C.P.one"}),
        ({"email": "b@example.com", "phone": "+1 415 555 0124"}, {}),
        ({"email": "c@example.com"}, {}),
        ({"email": "d@example.com"}, {}),
    ]
    for details, metadata in buyers:
        session = checkout_session(
            customer=None, client_reference_id=None, customer_details=details, metadata=metadata
        )
        assert checkout(stripe_event(session=session)).body["deliveries"]["tiktok"] == {"status": "pending"}
    assert [item["delivery_status"] for item in db.deliveries()] == ["sent"] * 4

    code, output = run()

    # Then: the share of sent events that carried each key (names and shares, never values)
    assert code == 0
    lines = output.splitlines()
    header = lines.index("Match keys of the newest 4 sent events (share that carried each):")
    coverage = dict(part.rsplit(" ", 1) for part in lines[header + 1].strip().split(", "))
    assert coverage["email"] == "100%"
    assert coverage["phone"] == "50%"
    assert coverage["ttclid"] == "25%"
    assert coverage["first_name"] == coverage["external_id"] == coverage["ip"] == "0%"
    assert "a@example.com" not in output and "E.C.P.one" not in output

    # Over the newest two only (the last two checkouts: no phone, no click id)
    _, output = run("--coverage", "2")
    assert "Match keys of the newest 2 sent events" in output
    assert "phone 0%" in output and "email 100%" in output


def test_requeue_puts_a_failed_delivery_back_and_the_redrive_sends_it(made, db, redrive, tiktok_server):
    tiktok_server.behave("ok")

    code, output = run("--requeue", made["permanent"])

    assert code == 0
    assert output.startswith(f"Requeued TikTok's delivery of {made['permanent']}: pending, due now")
    record = db.delivery(made["permanent"])
    assert record["delivery_status"] == "pending" and record["redrive_queue"] == "tiktok"
    assert "pending" in line_of(run()[1], made["permanent"])
    # It, the retrying one, the paused one (TikTok takes the token again) and the pending one (no
    # grace period).
    assert redrive() == {"sent": 4}
    assert db.delivery(made["permanent"])["delivery_status"] == "sent"


@pytest.mark.parametrize(
    ("which", "says"),
    [
        ("sent", "is sent: TikTok already has it, and it is never sent twice"),
        ("skipped", "is skipped with no stored event: it was never to be sent"),
    ],
)
def test_requeue_refuses_and_says_why(made, db, which, says):
    before = db.delivery(made[which])

    code, output = run("--requeue", made[which])

    assert code == 1
    assert output.startswith("Not requeued:") and says in output
    assert db.delivery(made[which]) == before


def test_requeue_of_an_unknown_session(tables, env):
    code, output = run("--requeue", "cs_test_nobody")

    assert code == 1
    assert "there is no TikTok delivery of cs_test_nobody" in output


def test_requeue_of_an_expired_delivery_is_refused_its_event_is_gone(made, db):
    code, output = run("--requeue", made["expired"])

    assert code == 1
    assert "expired unsent and its stored event was deleted" in output
    record = db.delivery(made["expired"])
    assert record["delivery_status"] == "expired"
    assert "purchase" not in record and "redrive_queue" not in record


class FakeCloudFormation:
    def __init__(self, outputs):
        self.outputs = outputs
        self.asked = []

    def describe_stacks(self, StackName):  # noqa: N803 - boto3's parameter name
        self.asked.append(StackName)
        return {"Stacks": [{"StackName": StackName, "Outputs": self.outputs}]}


def test_table_from_the_stacks_outputs(made, tables, monkeypatch):
    cloudformation = FakeCloudFormation(
        [
            {"OutputKey": "WebhookUrl", "OutputValue": "https://example.lambda-url.us-east-1.on.aws/"},
            {"OutputKey": "SessionsTableName", "OutputValue": tables["SESSIONS_TABLE_NAME"]},
            {"OutputKey": "CustomersTableName", "OutputValue": tables["CUSTOMERS_TABLE_NAME"]},
        ]
    )
    monkeypatch.setattr(deliveries, "cloudformation_client", lambda: cloudformation)
    monkeypatch.delenv("SESSIONS_TABLE_NAME")

    code, output = run("--stack-name", "checkout-conversions")

    assert code == 0
    assert cloudformation.asked == ["checkout-conversions"]
    assert tables["SESSIONS_TABLE_NAME"] in output and made["sent"] in output


def test_stack_without_the_output_or_no_table_at_all_is_a_usage_error(tables, monkeypatch, capsys):
    monkeypatch.setattr(deliveries, "cloudformation_client", lambda: FakeCloudFormation([]))
    assert run("--stack-name", "other-stack")[0] == 2
    assert "has no SessionsTableName output" in capsys.readouterr().err

    monkeypatch.delenv("SESSIONS_TABLE_NAME")
    assert run()[0] == 2
    assert "set SESSIONS_TABLE_NAME or pass --stack-name" in capsys.readouterr().err


def test_an_empty_table(tables):
    code, output = run()

    assert code == 0
    assert ": 0\n" in output and "none" in output
