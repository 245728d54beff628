"""The local run of `make run` / `make demo`: real HTTP in front of the real webhook handler,
answering as the Function URL would; the stream's sender behind it; the demo's verdict on the
sample events; and the events `make event` writes for `sam local invoke`."""

import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from devtools import dotenv, sign_event
from devtools.function_url import stripe_signature
from devtools.local_server import FunctionUrlServer, post
from devtools.sign_event import EVENTS_DIR, as_sent_now, invoke_event, load_event, payload
from devtools.template_tables import create_tables
from tests.integration.conftest import WEBHOOK_SECRET

pytestmark = pytest.mark.slow  # the local server and the demo, in subprocesses

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(app, env):
    """The local server around the real handler, recording the events the handler receives."""
    received = []

    def handler(event, context):
        received.append(event)
        return app.lambda_handler(event, context)

    with FunctionUrlServer(handler, port=0) as running:
        running.received = received
        yield running


def test_a_request_answered_before_logging_is_turned_on_is_never_logged_after_it():
    """`make run` sends the samples, prints the banner, then turns request logging on: a sample's
    request, still finishing in its thread, must not print its line after the banner."""
    logged = []

    def handler(event, context):
        running.on_request = lambda *line: logged.append(line)  # turned on while this one is in flight
        return {"statusCode": 200, "body": "{}"}

    with FunctionUrlServer(handler, port=0) as running:
        assert post(running.port, b"{}", {"content-type": "application/json"})[0] == 200
        time.sleep(0.2)  # the request thread's last step, after the answer was sent
        assert logged == []
        post(running.port, b"{}", {"content-type": "application/json"})
        time.sleep(0.2)
    assert [line[:3] for line in logged] == [("POST", "/", 200)]


def signed_headers(body: bytes, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    return {"content-type": "application/json", "stripe-signature": stripe_signature(body, secret)}


def test_signed_sample_over_http_answers_like_the_direct_call(server, invoke, dynamodb, monkeypatch):
    event = as_sent_now(load_event(EVENTS_DIR / "checkout_session_completed_kwd.json"))
    body = payload(event)

    status, raw = post(server.port, body, signed_headers(body))

    for name, value in create_tables(dynamodb, prefix=f"t{uuid.uuid4().hex[:10]}-").items():
        monkeypatch.setenv(name, value)  # the direct call gets fresh tables too
    direct = invoke(invoke_event(event, WEBHOOK_SECRET))

    assert (status, json.loads(raw)) == (direct.status, direct.body)
    assert direct.body["status"] == "provisioned"
    assert direct.body["deliveries"]["tiktok"] == {"status": "pending"}
    [received] = server.received
    assert received["body"] == body.decode("utf-8")
    assert received["isBase64Encoded"] is False
    assert received["requestContext"]["http"]["method"] == "POST"
    assert received["headers"]["stripe-signature"].startswith("t=")


def test_get_gets_405_from_the_function(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/?probe=1")
    response = connection.getresponse()

    assert response.status == 405
    assert response.getheader("allow") == "POST"
    assert json.loads(response.read()) == {"error": "method not allowed"}
    [received] = server.received
    assert received["requestContext"]["http"]["method"] == "GET"
    assert received["rawQueryString"] == "probe=1"


def test_binary_body_reaches_the_handler_base64_encoded(server):
    body = b"\x89PNG\r\n\x1a\n\x00\xff\xfe" + bytes(range(256))

    status, raw = post(server.port, body, signed_headers(body))

    [received] = server.received
    assert received["isBase64Encoded"] is True
    assert base64.b64decode(received["body"]) == body
    assert status == 400
    assert json.loads(raw) == {"error": "body is not UTF-8"}


# The demo as `make demo` runs it, its TikTok stand-in recording what it received (the requests'
# bodies, written to argv[1] when the stand-in stops).
RECORDING_DEMO = """
import json, sys
from devtools import local_server, meta_standin, tiktok_standin

def recording(standin, path):
    class Recording(standin):
        def stop(self):
            super().stop()
            with open(path, "w") as out:
                json.dump([request.json() for request in self.requests], out)
    return Recording

tiktok_standin.TikTokStandIn = recording(tiktok_standin.TikTokStandIn, sys.argv[1])
meta_standin.MetaStandIn = recording(meta_standin.MetaStandIn, sys.argv[1] + ".meta")
sys.exit(local_server.main(sys.argv[2:]))
"""


def run_demo(
    tmp_path: Path, *extra: str, record_to: Path | None = None, **settings: str
) -> subprocess.CompletedProcess:
    """`make demo` in a subprocess, without this test run's settings or a developer's .env; with
    `record_to`, the stand-in's requests are written there."""
    inherited = ("TIKTOK_", "META_", "STRIPE_", "POWERTOOLS_", "AWS_", "SESSIONS_", "CUSTOMERS_", "RENEWAL_")
    environ = {name: value for name, value in os.environ.items() if not name.startswith(inherited)}
    environ.update(settings)
    program = ["-c", RECORDING_DEMO, str(record_to)] if record_to else ["-m", "devtools.local_server"]
    return subprocess.run(
        [sys.executable, *program, "--demo", "--port", "0", "--env-file", str(tmp_path / "no.env"), *extra],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def table_rows(stdout: str) -> list[list[str]]:
    """The demo's table: #, sample, event type, HTTP, outcome, TikTok answer, TikTok sender, Meta
    answer, Meta sender, check."""
    return [line.split() for line in stdout.splitlines() if line.strip()[:2].strip().isdigit()]


def sample_object(name: str) -> dict:
    return load_event(EVENTS_DIR / f"{name}.json")["data"]["object"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One `make demo` with the stand-ins: its output, what TikTok's received, and when (what
    Meta's received is in `meta_requests`)."""
    tmp_path = tmp_path_factory.mktemp("demo")
    started = int(time.time())
    run = run_demo(tmp_path, record_to=tmp_path / "tiktok.json")
    finished = int(time.time())
    assert run.returncode == 0, run.stdout + run.stderr
    requests = json.loads((tmp_path / "tiktok.json").read_text())
    run.meta_requests = json.loads((tmp_path / "tiktok.json.meta").read_text())
    return run, requests, (started, finished)


def test_demo_shows_each_purchase_answered_pending_then_sent_by_the_stream(demo):
    run, requests, _ = demo

    assert "Demo OK: all 14 samples" in run.stdout
    assert "TikTok     local stand-in at http://127.0.0.1:" in run.stdout
    assert "MISMATCH" not in run.stdout
    rows = table_rows(run.stdout)
    assert len(rows) == 14
    purchases = [row for row in rows if row[4] == "provisioned"]
    assert len(purchases) == 6
    # Answered at once, sent a moment later; the buyer who denied ad consent is never reported.
    assert [row[5:9] for row in purchases].count(["pending", "sent", "pending", "sent"]) == 5
    [denied] = [row for row in purchases if row[1] == "checkout_session_completed_consent_denied"]
    assert denied[5:9] == ["skipped", "skipped", "skipped", "skipped"]
    # Six deliveries to TikTok: five purchases and sample 11's renewal; five to Meta (no renewals).
    assert (
        "TikTok stand-in received 6 requests: 6 events, 6 distinct event ids for 6 deliveries sent"
        in run.stdout
    )
    assert (
        "Meta stand-in received 5 requests: 5 events, 5 distinct event ids for 5 deliveries sent"
        in run.stdout
    )
    coverage = run.stdout.split("Match keys of the 6 events sent to TikTok", 1)[1].splitlines()[1]
    assert "email 100%" in coverage and "phone 100%" in coverage and "locale 17%" in coverage
    events = [event for request in requests for event in request["data"]]
    purchase_ids = {
        sample_object(row[1])["id"]
        for row in purchases
        if row[1] != "checkout_session_completed_consent_denied"
    }
    assert sorted(event["event_id"] for event in events if event["event"] == "CompletePayment") == sorted(
        purchase_ids
    )
    meta_events = [event for request in run.meta_requests for event in request["data"]]
    assert sorted(event["event_id"] for event in meta_events) == sorted(purchase_ids)
    assert {event["event_name"] for event in meta_events} == {"Purchase"}
    assert {request["test_event_code"] for request in run.meta_requests} == {"TEST_LOCAL_META"}


def test_demo_shows_a_subscriptions_life_reported_once_and_recorded_in_order(demo):
    """Sample 1's subscription: its first invoice (no second conversion), a renewal (reported once,
    as a Subscribe event keyed by its invoice, even when Stripe redelivers it), its cancellation,
    and an older update arriving late (the record stays canceled)."""
    run, requests, (started, finished) = demo
    checkout = sample_object("checkout_session_completed")
    first_invoice = sample_object("invoice_paid_subscription_create")
    renewal = sample_object("invoice_paid")
    renewal_event = load_event(EVENTS_DIR / "invoice_paid.json")

    assert table_rows(run.stdout)[9:] == [
        [
            "10",
            "invoice_paid_subscription_create",
            "invoice.paid",
            "200",
            "recorded",
            "-",
            "-",
            "-",
            "-",
            "ok",
        ],
        ["11", "invoice_paid", "invoice.paid", "200", "recorded", "pending", "sent", "-", "-", "ok"],
        ["12", "invoice_paid", "invoice.paid", "200", "unchanged", "sent", "sent", "-", "-", "ok"],
        [
            "13",
            "customer_subscription_deleted",
            "customer.subscription.deleted",
            "200",
            "recorded",
            "-",
            "-",
            "-",
            "-",
            "ok",
        ],
        [
            "14",
            "customer_subscription_updated",
            "customer.subscription.updated",
            "200",
            "unchanged",
            "-",
            "-",
            "-",
            "-",
            "ok",
        ],
    ]

    # What TikTok received: the checkout once, the renewal once under RENEWAL_EVENT_NAME (the demo's
    # Subscribe), never the first invoice.
    events = [event for request in requests for event in request["data"]]
    assert {request.get("test_event_code") for request in requests} == {"TEST_LOCAL"}
    assert [event["event_id"] for event in events].count(checkout["id"]) == 1
    assert first_invoice["id"] not in {event["event_id"] for event in events}
    [reported] = [event for event in events if event["event_id"] == renewal["id"]]
    assert reported["event"] == "Subscribe"
    assert [event["event"] for event in events].count("Subscribe") == 1
    assert reported["properties"]["order_id"] == renewal["id"]
    assert (reported["properties"]["value"], reported["properties"]["currency"]) == (29, "USD")  # 2900 usd
    # Paid "now" (the samples are signed now), and joined to the checkout by the same external id:
    # the checkout's client_reference_id, hashed.
    assert started <= reported["event_time"] <= finished
    [purchase] = [event for event in events if event["event_id"] == checkout["id"]]
    external_id = hashlib.sha256(checkout["client_reference_id"].encode()).hexdigest()
    assert reported["user"]["external_id"] == purchase["user"]["external_id"] == external_id
    assert reported["user"]["email"] == hashlib.sha256(renewal["customer_email"].encode()).hexdigest()

    # The subscription record: canceled (the late update did not revive it), paid through the
    # renewal's period end (moved to now like every sample time), started by sample 1's checkout.
    records = re.findall(
        r"^Subscription record (\S+): status (\S+), paid through (\S+), last paid invoice (\S+), "
        r"checkout (\S+)$",
        run.stdout,
        re.M,
    )
    period = max(line["period"]["end"] for line in renewal["lines"]["data"]) - renewal_event["created"]
    paid_through_dates = {time.strftime("%Y-%m-%d", time.gmtime(at + period)) for at in (started, finished)}
    [(subscription_id, status, paid_through, last_invoice, checkout_session)] = records
    assert subscription_id == checkout["subscription"]
    assert status == "canceled"
    assert paid_through in paid_through_dates
    assert last_invoice == renewal["id"]
    assert checkout_session == checkout["id"]


def test_demo_with_tiktok_switched_off_records_every_delivery_skipped(tmp_path):
    off = {"TIKTOK_ACCESS_TOKEN": "disabled", "TIKTOK_PIXEL_ID": "CPIXEL", "TIKTOK_TEST_EVENT_CODE": "T1"}
    demo = run_demo(tmp_path, **off)

    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "TikTok     disabled (TikTok is switched off: TIKTOK_ACCESS_TOKEN is empty)" in demo.stdout
    rows = table_rows(demo.stdout)
    purchases = [row for row in rows if row[4] == "provisioned"]
    assert len(purchases) == 6
    # The webhook never reads the token: it answers pending, and the sender records skipped.
    assert [row[5:7] for row in purchases].count(["pending", "skipped"]) == 5
    # Meta is another destination: its stand-in still gets every purchase.
    assert [row[7:9] for row in purchases].count(["pending", "sent"]) == 5
    # Without the stand-in RENEWAL_EVENT_NAME stays empty: the renewal is recorded, never reported.
    renewals = [row[4:7] for row in rows if row[1] == "invoice_paid"]
    assert renewals == [["recorded", "skipped", "-"], ["unchanged", "skipped", "-"]]
    assert "Match keys of the 0 events sent to TikTok" in demo.stdout


def test_demo_exits_non_zero_when_an_expectation_is_wrong(tmp_path):
    events = shutil.copytree(EVENTS_DIR, tmp_path / "events", ignore=shutil.ignore_patterns("generated"))
    manifest = json.loads((events / "samples.json").read_text())
    assert manifest["samples"][1]["outcome"] == "duplicate"
    manifest["samples"][1]["outcome"] = "provisioned"  # wrong: the second delivery is a duplicate
    (events / "samples.json").write_text(json.dumps(manifest))

    demo = run_demo(tmp_path, "--manifest", str(events / "samples.json"))

    assert demo.returncode == 1, demo.stdout + demo.stderr
    assert "MISMATCH" in demo.stdout
    assert "expected 200 provisioned - - - -, got 200 duplicate - - - -" in demo.stdout
    assert "Demo FAILED: 1 of 14 samples" in demo.stderr


def test_sign_event_writes_an_invoke_event_and_refuses_unknown_names(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TIKTOK_ACCESS_TOKEN", raising=False)
    for name in ("SESSIONS_TABLE_NAME", "CUSTOMERS_TABLE_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sign_event, "DOTENV", tmp_path / "no.env")
    out = tmp_path / "completed.invoke.json"

    assert sign_event.main(["checkout_session_completed", "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["isBase64Encoded"] is False
    assert json.loads(written["body"])["type"] == "checkout.session.completed"
    env_vars = json.loads((tmp_path / "env.json").read_text())["StripeWebhookFunction"]
    assert env_vars["STRIPE_WEBHOOK_SECRET"] == sign_event.LOCAL_WEBHOOK_SECRET
    assert (tmp_path / "env.json").stat().st_mode & 0o077 == 0
    said = capsys.readouterr().out
    assert "sam local invoke StripeWebhookFunction -e" in said
    # No deployed stack's tables given: said, with where to find them, not left out silently.
    assert "SESSIONS_TABLE_NAME and CUSTOMERS_TABLE_NAME" in said and "describe-stacks" in said

    assert sign_event.main(["no_such_event"]) == 2
    assert "checkout_session_completed_jpy" in capsys.readouterr().err


def test_env_json_gives_each_function_only_its_own_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOK_ACCESS_TOKEN", "tiktok-token-for-the-sender")
    monkeypatch.setattr(sign_event, "DOTENV", tmp_path / "no.env")

    assert sign_event.main(["checkout_session_completed", "--out", str(tmp_path / "e.json")]) == 0

    env_vars = json.loads((tmp_path / "env.json").read_text())
    assert "TIKTOK_ACCESS_TOKEN" not in env_vars["StripeWebhookFunction"]
    assert "STRIPE_WEBHOOK_SECRET" not in env_vars["DeliverySenderFunction"]
    assert env_vars["DeliverySenderFunction"]["TIKTOK_ACCESS_TOKEN"] == "tiktok-token-for-the-sender"


def test_stream_event_for_a_session_makes_the_sender_send_that_delivery(
    tmp_path, env, deliver, sender_app, tiktok_server, db, capsys, monkeypatch
):
    """`make event SESSION=cs_...` then `sam local invoke DeliverySenderFunction -e ...`: the event
    carries one INSERT of a pending delivery, which the real sender claims and sends once."""
    from devtools.function_url import LambdaContext
    from tests.factories import stripe_event

    monkeypatch.setattr(sign_event, "DOTENV", tmp_path / "no.env")
    event = stripe_event()
    session_id = event["data"]["object"]["id"]
    assert deliver(event).body["deliveries"]["tiktok"] == {"status": "pending"}
    out = tmp_path / "stream.invoke.json"

    assert sign_event.main(["--stream-for", session_id, "--out", str(out)]) == 0
    assert f"sam local invoke DeliverySenderFunction -e {out}" in capsys.readouterr().out
    stream_event = json.loads(out.read_text())
    context = LambdaContext(60, function_name="DeliverySenderFunction")
    answer = sender_app.lambda_handler(stream_event, context)

    assert answer == {"batchItemFailures": []}
    assert [sent["event_id"] for sent in tiktok_server.events()] == [session_id]
    assert db.delivery(session_id)["delivery_status"] == "sent"
    # Invoked again with the same event (as Lambda may): nothing more is sent.
    assert sender_app.lambda_handler(stream_event, context) == {"batchItemFailures": []}
    assert len(tiktok_server.requests) == 1
    assert sign_event.main(["--stream-for", "not-a-session"]) == 2
    assert "invoice id (in_...)" in capsys.readouterr().err
    assert sign_event.main(["--stream-for", "in_1RenewalInvoice", "--out", str(out)]) == 0
    [renewal_record] = json.loads(out.read_text())["Records"]
    assert renewal_record["dynamodb"]["Keys"] == {"session_id": {"S": "in_1RenewalInvoice#tiktok"}}


def test_the_committed_stream_sample_passes_the_templates_filter_as_a_new_delivery():
    """events/stream/ holds the sample `sam local invoke DeliverySenderFunction` uses: it must be
    what the event source mapping would deliver, for the sample checkout session."""
    from checkout_conversions.store.items import announced
    from devtools.stream_mapping import MappingSettings, matches

    sample = json.loads((EVENTS_DIR / "stream" / "delivery_sender_new_delivery.json").read_text())
    checkout = load_event(EVENTS_DIR / "checkout_session_completed.json")
    [record] = sample["Records"]
    [pattern] = MappingSettings.from_template("NewDeliveries").filters

    assert matches(pattern, record)
    key, destination = announced(record)
    assert (key, destination) == (f"{checkout['data']['object']['id']}#tiktok", "tiktok")


def test_dotenv_never_overrides_the_real_environment(tmp_path):
    file = tmp_path / ".env"
    file.write_text("# comment\nexport A='from file'\nB=\"quoted # kept\"\nC=plain # comment\n\n")
    environ = {"A": "real"}

    assert dotenv.load(file, environ) == ["B", "C"]
    assert environ == {"A": "real", "B": "quoted # kept", "C": "plain"}
    assert dotenv.load(tmp_path / "missing", environ) == []


# --- what the docs say and `make run` does agree (issue 20) -----------------------------------


def local_environ(tmp_path: Path, **settings: str) -> dict[str, str]:
    """A shell's environment for `make run`: none of this test run's settings, no AWS of its own,
    no developer's .env (`--env-file` points nowhere)."""
    inherited = ("TIKTOK_", "META_", "STRIPE_", "POWERTOOLS_", "AWS_", "SESSIONS_", "CUSTOMERS_", "RENEWAL_")
    environ = {name: value for name, value in os.environ.items() if not name.startswith(inherited)}
    environ.update(LOCAL_RUN_FILE=str(tmp_path / "make-run.json"), **settings)
    return environ


def start_serving(tmp_path: Path, environ: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """`make run` on a free port, up to its "Serving" line; (the process, what it printed)."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devtools.local_server",
            "--port",
            "0",
            "--env-file",
            str(tmp_path / "no.env"),
        ],
        cwd=REPO,
        env=environ,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = server.stdout.readline()
        seen.append(line)
        if not line or line.startswith("Events signed with"):
            break
    seen.append(server.stdout.readline())  # the banner's last line: how to list the deliveries
    return server, "".join(seen)


def stop(server: subprocess.Popen, signum: int) -> str:
    os.killpg(server.pid, signum)
    rest, _ = server.communicate(timeout=30)
    return rest


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_make_deliveries_lists_a_running_make_runs_deliveries_with_nothing_to_set(tmp_path, signum):
    environ = local_environ(tmp_path)
    server, banner = start_serving(tmp_path, environ)
    try:
        assert "Serving http://127.0.0.1:" in banner, banner
        assert "make deliveries" in banner.splitlines()[-1]  # the banner names the command
        state = json.loads((tmp_path / "make-run.json").read_text())
        assert state["pid"] == server.pid and state["sessions_table"] == "local-SessionsTable"

        # As a user types it in another terminal: no port, table, region or credentials.
        listed = subprocess.run(
            [shutil.which("make"), "--no-print-directory", "deliveries", f"VENV={Path(sys.prefix)}"],
            cwd=REPO,
            env=environ,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert listed.returncode == 0, listed.stdout + listed.stderr
        assert "local-SessionsTable" in listed.stdout
        assert "make run's local DynamoDB at " + state["endpoint"] in listed.stderr
        tiktok = listed.stdout.split("Meta", 1)[0]
        assert re.search(r"\bsent\b", tiktok) and "cs_test_" in listed.stdout
    finally:
        rest = stop(server, signum)
    # Ctrl-C and SIGTERM end alike, with the same last words, and forget the state.
    assert server.returncode == 0 and rest.rstrip().endswith("Stopped."), rest
    assert not (tmp_path / "make-run.json").exists()

    # Without a running make run (nor a stack or a table name) the listing says what to do.
    alone = subprocess.run(
        [sys.executable, "-m", "devtools.deliveries"], cwd=REPO, env=environ, capture_output=True, text=True
    )
    assert alone.returncode == 2 and "start `make run`" in alone.stderr


def test_a_busy_port_says_which_make_run_port_to_use_instead(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        environ = local_environ(tmp_path)
        done = subprocess.run(
            [sys.executable, "-m", "devtools.local_server", "--port", str(port), "--env-file", "no.env"],
            cwd=REPO,
            env=environ,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "make run PORT=" in done.stderr


def test_the_help_speaks_of_both_destinations(capsys):
    from devtools import local_server

    with pytest.raises(SystemExit):
        local_server.main(["--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert "TikTok and Meta stand-ins" in said and "delivery sender" in said
    assert "the TikTok sender" not in said and "a TikTok stand-in)" not in said


def test_the_documented_sample_output_has_the_columns_make_run_and_make_demo_print(demo):
    """docs/local-development.md shows `make run`'s table; `make demo` adds the `check` column."""
    run, _, _ = demo
    doc = (REPO / "docs" / "local-development.md").read_text()
    blocks = re.findall(r"^```(\w*)\n(.*?)^```", doc, re.S | re.M)
    [block] = [block for _, block in blocks if "event type" in block]
    header = block.splitlines()[0]
    printed = next(line for line in run.stdout.splitlines() if "event type" in line)
    assert re.split(r"\s{2,}", printed.strip()) == [*re.split(r"\s{2,}", header.strip()), "check"]
    for line in block.splitlines()[1:]:
        if line.strip() != "...":
            assert [*line.split(), "ok"] in table_rows(run.stdout), line  # the demo's rows


def test_the_meta_stand_in_line_speaks_of_purchases_only(demo):
    run, _, _ = demo
    [meta] = [line for line in run.stdout.split("\n\n") if line.startswith("The Meta stand-in")]
    [tiktok] = [line for line in run.stdout.split("\n\n") if line.startswith("The TikTok stand-in")]
    assert "renewal" not in meta and "renewal" in tiktok


def test_make_event_for_meta_speaks_of_meta_and_says_when_no_delivery_can_be_made(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(sign_event, "DOTENV", tmp_path / "no.env")
    for name in ("TIKTOK_ACCESS_TOKEN", "META_ACCESS_TOKEN", "TIKTOK_PIXEL_ID", "META_PIXEL_ID"):
        monkeypatch.delenv(name, raising=False)

    # No pixel id: env.json gives the webhook no destination, and the output says so.
    assert sign_event.main(["checkout_session_completed", "--out", str(tmp_path / "e.json")]) == 0
    said = capsys.readouterr().out
    assert "No delivery will be created" in said and "Then hand its deliveries" not in said
    assert "no TIKTOK_PIXEL_ID" in said and "no META_PIXEL_ID" in said

    # With the stack's pixel ids, env.json carries them to both functions.
    monkeypatch.setenv("TIKTOK_PIXEL_ID", "CPIXEL")
    monkeypatch.setenv("META_PIXEL_ID", "1234567890")
    assert sign_event.main(["checkout_session_completed", "--out", str(tmp_path / "e.json")]) == 0
    said = capsys.readouterr().out
    assert "make event SESSION=" in said and "[DESTINATION=meta]" in said
    env_vars = json.loads((tmp_path / "env.json").read_text())
    for function in ("StripeWebhookFunction", "DeliverySenderFunction"):
        assert env_vars[function]["TIKTOK_PIXEL_ID"] == "CPIXEL"
        assert env_vars[function]["META_PIXEL_ID"] == "1234567890"

    assert (
        sign_event.main(
            ["--stream-for", "cs_test_a1", "--destination", "meta", "--out", str(tmp_path / "s.json")]
        )
        == 0
    )
    said = capsys.readouterr().out
    assert "Meta off for DeliverySenderFunction (no META_ACCESS_TOKEN" in said and "TikTok" not in said
    monkeypatch.setenv("META_ACCESS_TOKEN", "meta-token")
    assert (
        sign_event.main(
            ["--stream-for", "cs_test_a1", "--destination", "meta", "--out", str(tmp_path / "s.json")]
        )
        == 0
    )
    assert "META_* from your environment for DeliverySenderFunction" in capsys.readouterr().out


def test_make_replay_without_a_stack_replays_into_a_running_make_run(tmp_path, stripe_server):
    """`make replay` with nothing but a Stripe key set finds the running `make run` (its tables
    and its functions' settings); with APPLY=1 it provisions a sale that server never saw, and
    that server's own stream sends it to its TikTok stand-in."""
    from tests.factories import checkout_session, stripe_event

    session = checkout_session()
    stripe_server.reset()
    stripe_server.add_events([stripe_event(session=session, created=int(time.time()) - 600)])
    environ = local_environ(
        tmp_path, STRIPE_API_KEY="rk_test_local_replay", STRIPE_API_BASE=stripe_server.url
    )
    server, banner = start_serving(tmp_path, environ)
    # Its logs read as they come, as a terminal would: the server never waits on a full pipe.
    printed: list[str] = []
    reader = threading.Thread(target=lambda: printed.extend(server.stdout), daemon=True)
    reader.start()
    try:
        assert "Serving http://127.0.0.1:" in banner, banner

        def make(*words: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [shutil.which("make"), "--no-print-directory", *words, f"VENV={Path(sys.prefix)}"],
                cwd=REPO,
                env=environ,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )

        since = f"SINCE={int(time.time()) - 3600}"
        dry = make("replay", since)
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert re.search(rf"{session['id']}\s+tiktok\s+provision\s+to send", dry.stdout), dry.stdout
        applied = make("replay", since, "APPLY=1")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert "provisioned, to send" in applied.stdout

        deadline = time.monotonic() + 30  # the server's stream, polled 4 times a second
        listed = ""
        while time.monotonic() < deadline and not re.search(rf"{session['id']}\s+sent", listed):
            time.sleep(0.5)
            listed = make("deliveries").stdout
        assert re.search(rf"{session['id']}\s+sent", listed), listed
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        reader.join(timeout=5)
    assert server.returncode == 0 and "".join(printed).rstrip().endswith("Stopped.")
