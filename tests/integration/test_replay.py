"""`make replay` (devtools/replay.py): Stripe's own record (its Events API, the stand-in's
`GET /v1/events`) read back, and what this deployment missed done exactly once: a session never
provisioned provisioned as the webhook would, a delivery never sent requeued with its original
event_id, everything else left alone with the reason why.

Driven as an operator runs it (`devtools.replay.main`), against the DynamoDB server the other
integration tests use, the real webhook, the Sessions table's stream into the real sender, the
real redrive, and the TikTok and Meta stand-ins. What is asserted is what an operator or a
platform would notice: the command's table, totals and exit code, what the tables hold, and
which events reached the platforms, how many times."""

import hashlib
import io
import json
import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from botocore.exceptions import ClientError

from checkout_conversions import aws
from checkout_conversions.stripe_side import events_api
from devtools import replay as replay_cli
from tests.factories import checkout_session, invoice, stripe_event
from tests.integration.conftest import STRIPE_API_KEY

pytest_plugins = ("tests.integration.redrive_fixtures",)

HOUR = 3600
DAY = 86400
STRIPE_FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "external" / "stripe"
CUSTOMER = "cus_TestReplaySubscriber1"
SUBSCRIPTION = "sub_TestReplaySubscription1"
TIKTOK_OFF = "TikTok is switched off: TIKTOK_ACCESS_TOKEN is empty"
META_OFF = "Meta is switched off: META_ACCESS_TOKEN is empty"
DENIED = "the buyer denied ad measurement (ad_consent=denied)"
TIKTOK_TEST_MODE = "test-mode event and no TIKTOK_TEST_EVENT_CODE"
META_TOO_OLD = "payment older than 7 days"
# What the factories put of the buyer's into a session or an invoice: none of it may be printed.
BUYERS_DATA = (
    "Jane.Doe@Example.COM",
    "jane.doe@example.com",
    "Jane Doe",
    "Jane",
    "+1 (415) 555-0123",
    "4155550123",
    "203.0.113.7",
    "E.C.P.test-ttclid",
    "2abcDEFttpCookie",
    "Mozilla/5.0",
    "user-42",
    "shop.example.com",
    "Ada.Lovelace@Example.COM",
    "ada.lovelace@example.com",
    "Ada Lovelace",
    "+1 415 555 0101",
    "100 Example Street",
    "San Francisco",
)


# ---------------------------------------------------------------------- running the command


class Row(NamedTuple):
    event_id: str
    event_type: str
    subject: str  # the session or the invoice
    destination: str
    action: str
    why: str


@dataclass(frozen=True)
class Run:
    code: int
    output: str

    @property
    def rows(self) -> list[Row]:
        return [Row(*match.groups()) for match in map(ROW.match, self.output.splitlines()) if match]

    def rows_of(self, subject: str, destination: str | None = None) -> list[Row]:
        return [row for row in self.rows if row.subject == subject and destination in (None, row.destination)]

    def row(self, subject: str, destination: str) -> Row:
        [row] = self.rows_of(subject, destination)
        return row

    @property
    def totals(self) -> dict[tuple[str, str], int]:
        """(action, destination): events, from the totals the command prints last."""
        lines = self.output.splitlines()
        start = next(index for index, line in enumerate(lines) if line.startswith("Totals ("))
        names = lines[start + 1].split()[1:]
        totals = {}
        for line in lines[start + 2 : start + 2 + 4]:
            action, *counts = line.split()
            totals.update({(action, name): int(count) for name, count in zip(names, counts, strict=True)})
        return totals


ROW = re.compile(
    r"^(evt_\S+)\s{2,}(\S+)\s{2,}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s{2,}(\S+)\s{2,}(\S+)\s{2,}"
    r"(provision|record|requeue|nothing)\s{2,}(.*)$"
)


def replay(*argv: str, since: int | None = None, apply: bool = False) -> Run:
    """`make replay SINCE=... [APPLY=1]`: SINCE 12 days ago unless told."""
    since = since if since is not None else int(time.time()) - 12 * DAY
    args = ["--since", str(since), *argv, *(["--apply"] if apply else [])]
    out = io.StringIO()
    code = replay_cli.main(args, out=out)
    return Run(code, out.getvalue())


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def scan_all(dynamodb, table: str) -> list[str]:
    found, request = [], {"TableName": table, "ConsistentRead": True}
    while True:
        answer = dynamodb.scan(**request)
        found += [json.dumps(item, sort_keys=True) for item in answer.get("Items", [])]
        if "LastEvaluatedKey" not in answer:
            return sorted(found)
        request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


@pytest.fixture
def stripe_api(stripe_api, monkeypatch):
    """The Stripe stand-in serving the events, as conftest's, with a 5 s timeout for the sender's
    reads of line items: the stand-in's listen backlog is small (5), and a connection it drops
    while many are opened at once is tried again by the kernel only after 1 s, past conftest's
    1 s timeout (the sender then rightly leaves the delivery to the redrive's next run)."""
    monkeypatch.setenv("STRIPE_API_TIMEOUT_SECONDS", "5")
    return stripe_api


@pytest.fixture
def snapshot(dynamodb, tables):
    """Every item of both tables, as DynamoDB holds them."""

    def take() -> dict[str, list[str]]:
        return {
            name: scan_all(dynamodb, tables[name]) for name in ("SESSIONS_TABLE_NAME", "CUSTOMERS_TABLE_NAME")
        }

    return take


def sale(age_seconds: int, **session_overrides: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A paid checkout `age_seconds` ago: (session, checkout.session.completed)."""
    created = int(time.time()) - age_seconds
    session = checkout_session(created=created - 60, **session_overrides)
    return session, stripe_event(session=session, created=created)


def items_of(items: list[str], session_id: str) -> list[str]:
    return [item for item in items if session_id in item]


def stripe_fixture(name: str) -> dict[str, Any]:
    return json.loads((STRIPE_FIXTURES / name).read_text())


def sent_ids(server) -> Counter:
    return Counter(event["event_id"] for event in server.events())


class BreaksAfter:
    """A DynamoDB client whose chosen operations fail (InternalServerError, as DynamoDB answers
    when it cannot take a write) once `successes` of them have gone through."""

    def __init__(self, client: Any, successes: dict[str, int]):
        self._client, self._left = client, dict(successes)
        self.failures = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name not in self._left:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            if self._left[name] <= 0:
                self.failures += 1
                error = {"Error": {"Code": "InternalServerError", "Message": "simulated"}}
                raise ClientError(error, "".join(part.title() for part in name.split("_")))
            self._left[name] -= 1
            return attribute(*args, **kwargs)

        return call


# ---------------------------------------------------------------------- 1. a first installation


def test_a_first_installation_provisions_every_sale_and_each_platform_gets_what_its_limit_allows(
    both_env, stripe_api, monkeypatch, db, stream, tiktok_server, meta_server
):
    monkeypatch.setenv("DELIVERY_MAX_AGE_DAYS", "14")  # TikTok takes the 10 days; Meta keeps its 7
    # 40 sales over the 10 days before the installation, one every 6 hours, none near 7 days old.
    sales = [sale(HOUR + index * 6 * HOUR) for index in range(40)]
    stripe_api.add_events([event for _, event in sales])
    recent = {session["id"] for session, event in sales if time.time() - event["created"] < 7 * DAY - HOUR}
    old = {session["id"] for session, _ in sales} - recent
    assert len(recent) == 28 and len(old) == 12

    planned = replay()
    assert planned.code == 0
    assert planned.totals == {
        **{(action, name): 0 for action in ("record", "requeue", "nothing") for name in ("meta", "tiktok")},
        ("provision", "tiktok"): 40,
        ("provision", "meta"): 40,
    }
    for session, _ in sales:
        assert planned.row(session["id"], "tiktok").why == "to send"
        expected = f"not to send: {META_TOO_OLD}" if session["id"] in old else "to send"
        assert planned.row(session["id"], "meta").why == expected
    assert db.markers() == [] and db.customers() == []

    done = replay(apply=True)

    assert done.code == 0
    assert done.totals == planned.totals
    assert all(row.why.startswith("provisioned") for row in done.rows)
    assert len(db.markers()) == 40
    assert {item["checkout_session_id"] for item in db.customers()} == {s["id"] for s, _ in sales}
    meta = {item["session_id"].partition("#")[0]: item for item in db.deliveries("meta")}
    assert {key for key, item in meta.items() if item["delivery_status"] == "skipped"} == old
    assert {item["delivery_reason"] for key, item in meta.items() if key in old} == {META_TOO_OLD}

    stream.drain()

    created = {session["id"]: event["created"] for session, event in sales}
    assert sent_ids(tiktok_server) == Counter(created.keys())  # all 40, each once
    assert sent_ids(meta_server) == Counter(recent)  # the last 7 days' only, each once
    assert not old & set(sent_ids(meta_server))
    for server in (tiktok_server, meta_server):
        assert all(event["event_time"] == created[event["event_id"]] for event in server.events())

    # Run again: nothing left to do, and why.
    again = replay(apply=True)
    assert again.code == 0
    assert again.totals[("nothing", "tiktok")] == again.totals[("nothing", "meta")] == 40
    for session_id in created:
        assert again.row(session_id, "tiktok").why == "already sent"
        assert again.row(session_id, "meta").why == (META_TOO_OLD if session_id in old else "already sent")
    stream.drain()
    assert len(tiktok_server.events()) == 40 and len(meta_server.events()) == 28


# ---------------------------------------------------------------------- 2. switched off for a day


def test_sales_made_while_tiktok_was_switched_off_are_requeued_and_sent_once_with_their_event_id(
    stripe_api, checkout, db, stream, redrive, tiktok_server, monkeypatch
):
    before, after = sale(34 * HOUR), sale(10 * HOUR)
    during = [sale(age * HOUR) for age in (30, 26, 22)]
    assert checkout(before[1]).status == 200
    with monkeypatch.context() as switched_off:
        switched_off.setenv("TIKTOK_ACCESS_TOKEN", "")
        for _, event in during:
            assert checkout(event).body["deliveries"]["tiktok"] == {"status": "pending"}
    assert checkout(after[1]).status == 200
    for session, _ in during:
        record = db.delivery(session["id"])
        assert record["delivery_status"] == "skipped" and record["delivery_reason"] == TIKTOK_OFF
    assert sent_ids(tiktok_server) == Counter([before[0]["id"], after[0]["id"]])
    stripe_api.add_events([event for _, event in (before, *during, after)])
    tiktok_server.behave("ok")  # forget what was sent live

    planned = replay()

    assert planned.code == 0
    assert planned.totals[("requeue", "tiktok")] == 3 and planned.totals[("nothing", "tiktok")] == 2
    for session, _ in during:
        assert planned.row(session["id"], "tiktok")[4:] == ("requeue", "skipped")
    for session, _ in (before, after):
        assert planned.row(session["id"], "tiktok")[4:] == ("nothing", "already sent")

    done = replay(apply=True)

    assert done.code == 0
    assert done.totals == planned.totals
    assert [row.why for row in done.rows if row.action == "requeue"] == ["requeued"] * 3
    for session, _ in during:
        record = db.delivery(session["id"])
        assert record["delivery_status"] == "pending" and record["delivery_attempts"] == 0
        assert "delivery_reason" not in record and record["redrive_queue"] == "tiktok"
    stream.drain()  # a requeue is no new delivery: the stream sender leaves it to the redrive
    assert tiktok_server.requests == []

    assert redrive() == {"sent": 3}

    assert sent_ids(tiktok_server) == Counter(session["id"] for session, _ in during)
    for event in tiktok_server.events():
        [(session, stripe)] = [(s, e) for s, e in during if s["id"] == event["event_id"]]
        assert event["event_time"] == stripe["created"]  # the original event, rebuilt from Stripe's
        assert event["user"]["email"] == sha256("jane.doe@example.com")
        assert event["user"]["ttclid"] == "E.C.P.test-ttclid"
    for session, _ in during:
        assert db.delivery(session["id"])["delivery_status"] == "sent"

    second = replay(apply=True)
    assert second.code == 0
    assert second.totals[("requeue", "tiktok")] == 0 and second.totals[("nothing", "tiktok")] == 5
    assert {row.why for row in second.rows} == {"already sent"}
    assert redrive() == {}
    assert len(tiktok_server.events()) == 3


@pytest.mark.parametrize("state", ["failed for good", "expired"])
def test_a_delivery_that_failed_for_good_or_expired_is_requeued_when_the_platform_would_take_it(
    redrive_env, stripe_api, deliver, checkout, db, stream, redrive, tiktok_server, monkeypatch, state
):
    if state == "failed for good":
        session, event = sale(HOUR)
        tiktok_server.behave("code:40002")  # TikTok refuses it: not retried
        checkout(event)
    else:  # not sent within 7 days (DELIVERY_MAX_AGE_DAYS), the operator allows 14 since
        session, event = sale(6 * DAY)
        assert deliver(event).body["deliveries"]["tiktok"] == {"status": "pending"}
        assert redrive(at=time.time() + 2 * DAY) == {"expired": 1}
        monkeypatch.setenv("DELIVERY_MAX_AGE_DAYS", "14")
    record = db.delivery(session["id"])
    assert record["delivery_status"] == state.split()[0] and "next_attempt_at" not in record
    stripe_api.add_events([event])
    tiktok_server.behave("ok")

    done = replay(apply=True)

    assert done.code == 0
    assert done.row(session["id"], "tiktok")[4:] == ("requeue", "requeued")
    assert redrive() == {"sent": 1}
    [sent] = tiktok_server.accepted_events()
    assert sent["event_id"] == session["id"] and sent["event_time"] == event["created"]
    assert replay(apply=True).row(session["id"], "tiktok")[4:] == ("nothing", "already sent")


def test_a_delivery_refused_again_after_a_replay_is_not_requeued_by_the_next_replay(
    redrive_env, stripe_api, checkout, db, stream, redrive, tiktok_server
):
    """Run twice, a replay does nothing the second time, even for a delivery the platform still
    refuses: the second replay says so, and a single requeue by hand remains possible."""
    session, event = sale(HOUR)
    tiktok_server.behave("code:40002")  # refused for good, and still refused after the replay
    checkout(event)
    stripe_api.add_events([event])

    assert replay(apply=True).row(session["id"], "tiktok")[4:] == ("requeue", "requeued")
    assert redrive() == {"failed_permanent": 1}
    again = replay(apply=True)

    action, why = again.row(session["id"], "tiktok")[4:]
    assert action == "nothing" and "after a replay's requeue" in why and "REQUEUE=" in why
    assert redrive() == {}
    assert len(tiktok_server.requests) == 2  # the live send and the replay's, nothing more
    assert db.delivery(session["id"])["delivery_status"] == "failed"


def test_a_destination_added_since_the_sale_gets_its_delivery_recorded_and_sent_once(
    both_env, stripe_api, checkout, db, stream, tiktok_server, meta_server, monkeypatch
):
    session, event = sale(2 * DAY)
    with monkeypatch.context() as before_meta:
        before_meta.setenv("META_PIXEL_ID", "")  # Meta was not part of the deployment yet
        assert checkout(event).body["deliveries"] == {"tiktok": {"status": "pending"}}
    assert db.delivery(session["id"], "meta") is None
    stripe_api.add_events([event])

    planned = replay()
    done = replay(apply=True)
    stream.drain()

    assert planned.row(session["id"], "meta")[4:] == ("record", "no delivery recorded")
    assert done.row(session["id"], "meta")[4:] == ("record", "recorded")
    assert done.row(session["id"], "tiktok")[4:] == ("nothing", "already sent")
    assert sent_ids(meta_server) == Counter([session["id"]])
    assert sent_ids(tiktok_server) == Counter([session["id"]])  # the live send, not another
    [sent] = meta_server.events()
    assert sent["event_time"] == event["created"]
    assert replay(apply=True).row(session["id"], "meta")[4:] == ("nothing", "already sent")


# ---------------------------------------------------------------------- 3. never provisioned


@pytest.mark.skipif(not STRIPE_FIXTURES.is_dir(), reason="Stripe's fixtures are not beside this checkout")
def test_a_session_stripe_gave_up_on_is_provisioned_by_the_replay_and_reported(
    stripe_api, db, stream, tiktok_server
):
    """Stripe's own checkout session (its API fixture): completed while its payment was still
    pending (an async method), then paid; the webhook missed both."""
    opened = stripe_fixture("fixtures3.checkout.session.json")
    session_id = opened["id"]
    assert opened["payment_status"] == "unpaid"
    now = int(time.time())
    completed = stripe_event("checkout.session.completed", session=opened, created=now - 2 * HOUR)
    paid = {**opened, "status": "complete", "payment_status": "paid", "amount_total": 4200, "currency": "eur"}
    succeeded = stripe_event("checkout.session.async_payment_succeeded", session=paid, created=now - HOUR)
    stripe_api.add_events([completed, succeeded])

    done = replay(apply=True)

    assert done.code == 0
    waiting = done.rows_of(session_id, "-")
    assert [(row.event_id, row.action, row.why) for row in waiting] == [
        (completed["id"], "nothing", "payment_status is unpaid: waiting for async payment")
    ]
    [step] = [row for row in done.rows_of(session_id, "tiktok")]
    assert (step.event_id, step.event_type, step.action, step.why) == (
        succeeded["id"],
        "checkout.session.async_payment_succeeded",
        "provision",
        "provisioned, to send",
    )
    [customer] = db.customers()
    assert customer["checkout_session_id"] == session_id
    assert customer["customer_id"] == "email#example@example.com"  # a guest: keyed by the email
    assert customer["stripe_event_id"] == succeeded["id"]
    assert db.session(session_id)["stripe_event_id"] == succeeded["id"]

    stream.drain()

    [event] = tiktok_server.events()
    assert event["event_id"] == session_id and event["event_time"] == succeeded["created"]
    assert event["user"]["email"] == sha256("example@example.com")
    assert db.delivery(session_id)["delivery_status"] == "sent"


# ---------------------------------------------------------------------- 4. consent denied


def test_a_buyer_who_denied_consent_is_provisioned_but_never_reported_and_the_row_says_why(
    both_env, stripe_api, checkout, db, stream, tiktok_server, meta_server, snapshot
):
    denied = {**checkout_session()["metadata"], "ad_consent": "denied"}
    missed = sale(2 * HOUR, metadata=denied)
    webhooked = sale(HOUR, metadata=denied)
    assert checkout(webhooked[1]).status == 200
    stripe_api.add_events([missed[1], webhooked[1]])

    planned = replay()

    for destination in ("tiktok", "meta"):
        assert planned.row(missed[0]["id"], destination)[4:] == ("provision", f"not to send: {DENIED}")
        assert planned.row(webhooked[0]["id"], destination)[4:] == ("nothing", DENIED)

    before = snapshot()
    done = replay(apply=True)
    stream.drain()

    assert done.code == 0
    for destination in ("tiktok", "meta"):
        assert done.row(missed[0]["id"], destination).action == "provision"
        assert done.row(missed[0]["id"], destination).why.startswith("provisioned")
        assert done.row(webhooked[0]["id"], destination)[4:] == ("nothing", DENIED)
        record = db.delivery(missed[0]["id"], destination)
        assert record["delivery_status"] == "skipped" and record["delivery_reason"] == DENIED
        assert "purchase" not in record  # nothing of the buyer's kept for a platform
    assert {item["checkout_session_id"] for item in db.customers()} == {missed[0]["id"], webhooked[0]["id"]}
    assert tiktok_server.requests == [] and meta_server.requests == []
    # The already provisioned one: nothing of it changed.
    after = snapshot()
    for name in before:
        assert items_of(after[name], webhooked[0]["id"]) == items_of(before[name], webhooked[0]["id"])

    again = replay(apply=True)
    assert again.code == 0 and {row.action for row in again.rows} == {"nothing"}
    assert snapshot() == after


# ---------------------------------------------------------------------- 5. test mode


def test_a_test_mode_sale_without_a_test_event_code_is_not_sent_and_with_one_it_is(
    stripe_api, checkout, db, stream, redrive, tiktok_server, monkeypatch
):
    monkeypatch.delenv("TIKTOK_TEST_EVENT_CODE")
    seen, missed = sale(2 * HOUR, livemode=False), sale(HOUR, livemode=False)
    assert checkout(seen[1]).body["deliveries"]["tiktok"] == {"status": "pending"}
    assert db.delivery(seen[0]["id"])["delivery_reason"] == TIKTOK_TEST_MODE  # the sender skipped it
    stripe_api.add_events([seen[1], missed[1]])

    done = replay(apply=True)

    assert done.code == 0
    assert done.row(seen[0]["id"], "tiktok")[4:] == ("nothing", TIKTOK_TEST_MODE)
    # Never provisioned: provisioned (the customer matters), its delivery not sent.
    assert done.row(missed[0]["id"], "tiktok").action == "provision"
    stream.drain()
    assert redrive() == {}
    assert tiktok_server.requests == []
    assert db.delivery(missed[0]["id"])["delivery_reason"] == TIKTOK_TEST_MODE
    planned_without = replay()
    assert {row.why for row in planned_without.rows} == {TIKTOK_TEST_MODE}

    monkeypatch.setenv("TIKTOK_TEST_EVENT_CODE", "TEST12345")

    planned = replay()
    assert [row[4:] for row in planned.rows] == [("requeue", "skipped")] * 2
    assert replay(apply=True).totals[("requeue", "tiktok")] == 2
    assert redrive() == {"sent": 2}
    assert sent_ids(tiktok_server) == Counter([seen[0]["id"], missed[0]["id"]])
    assert {request.json().get("test_event_code") for request in tiktok_server.requests} == {"TEST12345"}


# ---------------------------------------------------------------------- 6. interrupted, resumed


def test_a_replay_stopped_halfway_finishes_the_work_when_run_again(
    stripe_api, checkout, db, stream, redrive, tiktok_server, monkeypatch
):
    missed = [sale(age * HOUR) for age in (9, 8, 7, 6)]
    off = [sale(age * HOUR) for age in (5, 4)]
    with monkeypatch.context() as switched_off:
        switched_off.setenv("TIKTOK_ACCESS_TOKEN", "")
        for _, event in off:
            checkout(event)
    stripe_api.add_events([event for _, event in (*missed, *off)])
    everything = [session["id"] for session, _ in (*missed, *off)]
    listed = events_api.list_events

    def interrupted_after(count: int):
        def listing(*args: Any, **kwargs: Any):
            for index, event in enumerate(listed(*args, **kwargs)):
                if index == count:
                    raise KeyboardInterrupt  # the operator's Ctrl-C
                yield event

        return listing

    # Newest first: the two requeues, then two of the four provisions.
    with monkeypatch.context() as stopping:
        stopping.setattr(events_api, "list_events", interrupted_after(4))
        with pytest.raises(KeyboardInterrupt):
            replay(apply=True)
    assert len(db.markers()) == 2 + 2
    assert [db.delivery(session["id"])["delivery_status"] for session, _ in off] == ["pending"] * 2

    resumed = replay(apply=True)

    assert resumed.code == 0
    assert resumed.totals[("provision", "tiktok")] == 2 and resumed.totals[("requeue", "tiktok")] == 0
    for session, _ in (*missed[2:], *off):
        assert resumed.row(session["id"], "tiktok").action == "nothing"
    assert len(db.markers()) == 6
    stream.drain()
    redrive(at=time.time() + HOUR)  # past the grace period: whatever the stream did not send
    assert sent_ids(tiktok_server) == Counter(everything)
    assert replay(apply=True).totals[("nothing", "tiktok")] == 6


def test_a_replay_the_store_fails_midway_says_so_and_the_next_run_finishes_each_once(
    stripe_api, checkout, db, stream, redrive, tiktok_server, monkeypatch, dynamodb
):
    missed = [sale(age * HOUR) for age in (9, 8, 7)]
    off = [sale(age * HOUR) for age in (5, 4, 3)]
    with monkeypatch.context() as switched_off:
        switched_off.setenv("TIKTOK_ACCESS_TOKEN", "")
        for _, event in off:
            checkout(event)
    stripe_api.add_events([event for _, event in (*missed, *off)])
    # DynamoDB takes one requeue and one provisioning, then refuses every write.
    with monkeypatch.context() as failing:
        breaking = {}

        def client():
            breaking["client"] = BreaksAfter(dynamodb, {"update_item": 1, "transact_write_items": 1})
            return breaking["client"]

        failing.setattr(aws, "dynamodb_client", client)
        broken = replay(apply=True)

    assert broken.code == 1
    assert breaking["client"].failures == 4
    not_done = [row for row in broken.rows if row.why.startswith("not done: ")]
    assert len(not_done) == 4
    assert all(row.why.endswith("; run the replay again") for row in not_done)
    assert "4 events could not be replayed: run the same command again." in broken.output
    assert len(db.markers()) == 3 + 1

    resumed = replay(apply=True)

    assert resumed.code == 0
    assert resumed.totals[("provision", "tiktok")] == 2 and resumed.totals[("requeue", "tiktok")] == 2
    stream.drain()
    assert redrive() == {"sent": 3}
    assert redrive(at=time.time() + HOUR) == {}
    assert sent_ids(tiktok_server) == Counter(session["id"] for session, _ in (*missed, *off))
    final = replay(apply=True)
    assert final.code == 0 and final.totals[("nothing", "tiktok")] == 6


# ---------------------------------------------------------------------- 7, 8. races


def test_the_replay_racing_the_live_webhook_provisions_each_session_once(
    both_env, stripe_api, deliver, db, stream, tiktok_server, meta_server, monkeypatch
):
    # The first round starts both at once (the webhook is the quicker); in the others Stripe's
    # delivery reaches the webhook just as the replay has found the session not provisioned, so
    # that both write it at the same moment.
    race: dict[str, Any] = {}
    planned = replay_cli.Replay.plan

    def plan(self, raw):
        decided = planned(self, raw)
        if raw["id"] == race["event"]:
            race["meet"].wait(timeout=10)
        return decided

    monkeypatch.setattr(replay_cli.Replay, "plan", plan)
    rounds = []
    for number in range(6):
        session, event = sale(30)
        stripe_api.add_events([event])
        meet = threading.Barrier(2)
        race.update(event=event["id"] if number else "", meet=meet)

        def webhook(event=event, meet=meet):
            meet.wait(timeout=10)
            return deliver(event)

        def operator(meet=meet, together=number == 0):
            if together:
                meet.wait(timeout=10)
            return replay(apply=True)

        with ThreadPoolExecutor(max_workers=2) as pool:
            answered, ran = pool.submit(webhook), pool.submit(operator)
            answer, run = answered.result(), ran.result()
        rounds.append((session, answer, run))

    for session, answer, run in rounds:
        assert answer.status in (200, 409), answer.body  # 409: Stripe retries it
        assert answer.status == 409 or answer.body["status"] in ("provisioned", "duplicate")
        assert run.code == 0
        rows = run.rows_of(session["id"])
        assert {row.destination for row in rows} == {"tiktok", "meta"}
        by_replay = {row.why.split(", ")[0] for row in rows}  # "provisioned, to send"
        assert by_replay <= {"provisioned", "provisioned meanwhile"} or {row.action for row in rows} == {
            "nothing"
        }, rows
        provisioned_by = [
            answer.status == 200 and answer.body["status"] == "provisioned",
            "provisioned" in by_replay,
        ]
        assert provisioned_by.count(True) == 1, (answer.body, rows)
    sessions = [session["id"] for session, _, _ in rounds]
    assert sorted(item["checkout_session_id"] for item in db.customers()) == sorted(sessions)
    assert sorted(item["session_id"] for item in db.markers()) == sorted(sessions)
    for destination in ("tiktok", "meta"):
        assert sorted(item["session_id"] for item in db.deliveries(destination)) == sorted(
            f"{session_id}#{destination}" for session_id in sessions
        )

    stream.drain()

    assert sent_ids(tiktok_server) == Counter(sessions)
    assert sent_ids(meta_server) == Counter(sessions)


def test_two_replays_at_once_do_each_thing_once(
    stripe_api, checkout, db, stream, redrive, tiktok_server, monkeypatch
):
    missed = [sale(age * HOUR) for age in (9, 8, 7)]
    off = [sale(age * HOUR) for age in (5, 4, 3)]
    with monkeypatch.context() as switched_off:
        switched_off.setenv("TIKTOK_ACCESS_TOKEN", "")
        for _, event in off:
            checkout(event)
    stripe_api.add_events([event for _, event in (*missed, *off)])
    start = threading.Barrier(2)

    def operator(_):
        start.wait()
        return replay(apply=True)

    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(operator, range(2)))

    assert [run.code for run in runs] == [0, 0], [run.output for run in runs]
    for session, _ in missed:
        rows = [row for run in runs for row in run.rows_of(session["id"])]
        done = [row.why.split(", ")[0] for row in rows]  # "provisioned, to send"
        assert done.count("provisioned") == 1, rows
        [other] = [row for row in rows if not row.why.startswith("provisioned, ")]
        assert other.why.startswith("provisioned meanwhile, ") or (
            other.action == "nothing" and other.why.startswith("pending")
        ), other
    for session, _ in off:
        rows = [row for run in runs for row in run.rows_of(session["id"])]
        assert [row.why for row in rows].count("requeued") == 1, rows
        others = [row for row in rows if row.why != "requeued"]
        assert all(
            row.why == "changed meanwhile: not requeued"
            or (row.action == "nothing" and row.why.startswith("pending"))
            for row in others
        ), others
    assert len(db.customers()) == 6 and len(db.markers()) == 6
    assert len(db.deliveries("tiktok")) == 6

    stream.drain()
    redrive()

    assert sent_ids(tiktok_server) == Counter(session["id"] for session, _ in (*missed, *off))


# ---------------------------------------------------------------------- 9. the dry run


def test_the_dry_run_writes_nothing_and_prints_ids_only(
    both_env, stripe_api, checkout, monkeypatch, snapshot, stream, tiktok_server, meta_server, capsys
):
    monkeypatch.setenv("RENEWAL_EVENT_NAME", "Subscribe")
    sent, missed = sale(5 * HOUR), sale(4 * HOUR)
    off = sale(3 * HOUR)
    checkout(sent[1])
    with monkeypatch.context() as switched_off:
        switched_off.setenv("TIKTOK_ACCESS_TOKEN", "")
        checkout(off[1])
    cycle = stripe_event(
        "invoice.paid",
        invoice(subscription=SUBSCRIPTION, customer=CUSTOMER, billing_reason="subscription_cycle"),
    )
    stripe_api.add_events([sent[1], missed[1], off[1], cycle])
    tiktok_server.behave("ok")
    meta_server.behave("ok")
    capsys.readouterr()
    before = snapshot()

    planned = replay()

    assert snapshot() == before
    stream.drain()
    assert tiktok_server.requests == [] and meta_server.requests == []
    assert planned.code == 0
    assert planned.output.startswith("Dry run (nothing is written; APPLY=1 does it)")
    assert "Totals (would do), events per action and destination:" in planned.output
    assert planned.row(missed[0]["id"], "tiktok")[4:] == ("provision", "to send")
    assert planned.row(missed[0]["id"], "meta")[4:] == ("provision", "to send")
    assert planned.row(off[0]["id"], "tiktok")[4:] == ("requeue", "skipped")
    assert planned.row(off[0]["id"], "meta")[4:] == ("nothing", "already sent")
    assert planned.row(sent[0]["id"], "tiktok")[4:] == ("nothing", "already sent")
    renewal = cycle["data"]["object"]["id"]
    assert planned.row(renewal, "tiktok")[4:] == ("record", "no delivery recorded")
    assert planned.row(renewal, "meta")[4:] == ("nothing", "Meta takes no renewals")
    assert planned.totals == {
        ("provision", "meta"): 1,
        ("provision", "tiktok"): 1,
        ("record", "meta"): 0,
        ("record", "tiktok"): 1,
        ("requeue", "meta"): 0,
        ("requeue", "tiktok"): 1,
        ("nothing", "meta"): 3,
        ("nothing", "tiktok"): 1,
    }
    done = replay(apply=True)
    assert done.code == 0 and done.totals == planned.totals
    printed = planned.output + done.output + capsys.readouterr().err
    for value in BUYERS_DATA:
        assert value not in printed, value
    assert sha256("jane.doe@example.com") not in printed


# ---------------------------------------------------------------------- 10. renewals


@pytest.fixture
def renewals_on(monkeypatch):
    monkeypatch.setenv("RENEWAL_EVENT_NAME", "Subscribe")


def subscription_sale(age_seconds: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A subscription bought in Checkout and its first invoice: (session, completed, invoice.paid)."""
    session, completed = sale(
        age_seconds, mode="subscription", customer=CUSTOMER, subscription=SUBSCRIPTION, amount_total=2900
    )
    first = stripe_event(
        "invoice.paid",
        invoice(subscription=SUBSCRIPTION, customer=CUSTOMER, billing_reason="subscription_create"),
        created=completed["created"],
    )
    return session, completed, first


def renewal_paid(age_seconds: int) -> dict[str, Any]:
    paid_at = int(time.time()) - age_seconds
    paid = invoice(subscription=SUBSCRIPTION, customer=CUSTOMER, billing_reason="subscription_cycle")
    paid["status_transitions"]["paid_at"] = paid_at
    return stripe_event("invoice.paid", paid, created=paid_at + 5)


def test_a_renewal_the_webhook_missed_is_recorded_and_sent_to_tiktok_only(
    both_env, renewals_on, stripe_api, checkout, db, stream, tiktok_server, meta_server
):
    session, completed, first = subscription_sale(3 * DAY)
    assert checkout(completed).body["status"] == "provisioned"
    assert checkout(first).body["status"] == "recorded"
    cycle = renewal_paid(HOUR)  # the webhook was down
    invoice_id = cycle["data"]["object"]["id"]
    stripe_api.add_events([completed, first, cycle])
    tiktok_server.behave("ok")
    meta_server.behave("ok")

    done = replay(apply=True)

    assert done.code == 0
    assert done.row(invoice_id, "tiktok")[4:] == ("record", "recorded")
    assert done.row(invoice_id, "meta")[4:] == ("nothing", "Meta takes no renewals")
    assert done.row(first["data"]["object"]["id"], "-")[4:] == (
        "nothing",
        "not a renewal: its checkout is the conversion",
    )
    assert {row.why for row in done.rows_of(session["id"])} == {"already sent"}
    [record] = [
        item for item in db.customers() if item["checkout_session_id"] == f"subscription#{SUBSCRIPTION}"
    ]
    assert record["last_paid_invoice"] == invoice_id
    assert db.delivery(invoice_id)["delivery_status"] == "pending"
    assert db.delivery(invoice_id, "meta") is None

    stream.drain()

    [event] = tiktok_server.events()
    assert event["event_id"] == invoice_id and event["event"] == "Subscribe"
    assert event["event_time"] == cycle["data"]["object"]["status_transitions"]["paid_at"]
    assert event["user"]["external_id"] == sha256("user-42")  # joined to the purchase
    assert meta_server.requests == []
    again = replay(apply=True)
    assert again.row(invoice_id, "tiktok")[4:] == ("nothing", "already sent")
    stream.drain()
    assert len(tiktok_server.events()) == 1


def test_a_subscription_whose_checkout_and_renewal_were_both_missed_is_replayed_checkout_first(
    both_env, renewals_on, stripe_api, db, stream, tiktok_server, meta_server
):
    session, completed, first = subscription_sale(20 * DAY)
    cycle = renewal_paid(HOUR)
    invoice_id = cycle["data"]["object"]["id"]
    stripe_api.add_events([completed, first, cycle])

    done = replay(apply=True, since=int(time.time()) - 25 * DAY)
    stream.drain()

    assert done.code == 0
    # Beyond both platforms' limits, the checkout is provisioned for its customer, not reported.
    assert done.row(session["id"], "tiktok")[4:] == (
        "provision",
        "provisioned, not to send: payment older than 7 days",
    )
    assert db.delivery(session["id"])["delivery_reason"] == "payment older than 7 days"
    assert done.row(invoice_id, "tiktok")[4:] == ("record", "recorded")
    [record] = [
        item for item in db.customers() if item["checkout_session_id"] == f"subscription#{SUBSCRIPTION}"
    ]
    assert record["checkout_session"] == session["id"] and record["last_paid_invoice"] == invoice_id
    [event] = tiktok_server.events()
    assert event["event_id"] == invoice_id
    assert event["user"]["external_id"] == sha256("user-42")  # the checkout's, recorded first
    assert meta_server.requests == []


def test_a_renewal_paid_while_renewals_were_off_is_recorded_once_they_are_on(
    both_env, stripe_api, checkout, db, stream, tiktok_server, meta_server, monkeypatch
):
    _, completed, first = subscription_sale(3 * DAY)
    checkout(completed)
    checkout(first)
    cycle = renewal_paid(HOUR)
    invoice_id = cycle["data"]["object"]["id"]
    answer = checkout(cycle)  # RENEWAL_EVENT_NAME unset: recorded, not reported
    assert answer.body["renewal"]["status"] == "skipped"
    assert db.delivery(invoice_id) is None
    stripe_api.add_events([completed, first, cycle])
    tiktok_server.behave("ok")
    monkeypatch.setenv("RENEWAL_EVENT_NAME", "Subscribe")

    done = replay(apply=True)
    stream.drain()

    assert done.row(invoice_id, "tiktok")[4:] == ("record", "recorded")
    [event] = tiktok_server.events()
    assert event["event_id"] == invoice_id and event["event"] == "Subscribe"
    assert replay(apply=True).row(invoice_id, "tiktok")[4:] == ("nothing", "already sent")


def test_the_dry_run_of_a_missed_checkout_and_its_renewal_prints_the_totals_the_replay_then_does(
    both_env, renewals_on, stripe_api, db, stream, tiktok_server
):
    """The issue: "Without APPLY=1 it changes nothing and prints what it would do ... With it, it
    does that and prints the same totals." A buyer who denied consent, whose checkout and renewal
    the webhook both missed: the renewal is never to be reported."""
    _, completed, first = subscription_sale(2 * DAY)
    completed["data"]["object"]["metadata"]["ad_consent"] = "denied"
    cycle = renewal_paid(HOUR)
    invoice_id = cycle["data"]["object"]["id"]
    stripe_api.add_events([completed, first, cycle])

    planned = replay()
    done = replay(apply=True)
    stream.drain()

    assert done.row(invoice_id, "tiktok")[4:] == ("nothing", DENIED)
    assert tiktok_server.requests == []
    assert planned.row(invoice_id, "tiktok")[4:] == ("nothing", DENIED)
    assert planned.totals == done.totals


# ---------------------------------------------------------------------- 11. the platforms' limits


class _TwoDaysAgo(datetime):
    """The webhook's clock, two days back: it took the sale when the payment was 6 days old."""

    @classmethod
    def now(cls, tz=None):
        return datetime.now(tz) - timedelta(days=2)


@pytest.mark.parametrize("state", ["skipped", "expired"])
def test_a_delivery_older_than_metas_limit_is_not_requeued_for_meta_but_is_for_tiktok(
    both_env, stripe_api, deliver, db, stream, redrive, tiktok_server, meta_server, monkeypatch, state
):
    import checkout_conversions.webhook as webhook

    monkeypatch.setenv("DELIVERY_MAX_AGE_DAYS", "14")
    session, event = sale(8 * DAY)
    with monkeypatch.context() as back_then:
        back_then.setattr(webhook, "datetime", _TwoDaysAgo)
        answer = deliver(event)
    assert answer.body["deliveries"] == {"tiktok": {"status": "pending"}, "meta": {"status": "pending"}}
    with monkeypatch.context() as switched_off:
        switched_off.setenv("TIKTOK_ACCESS_TOKEN", "")
        if state == "skipped":
            switched_off.setenv("META_ACCESS_TOKEN", "")
        else:  # Meta's delivery waited in the redrive's queue past Meta's limit
            assert redrive(destination="meta") == {"expired": 1}
        stream.drain()
    meta = db.delivery(session["id"], "meta")
    assert meta["delivery_status"] == state
    assert meta["delivery_reason"] == (META_OFF if state == "skipped" else "not sent within 7 days")
    assert db.delivery(session["id"])["delivery_reason"] == TIKTOK_OFF
    stripe_api.add_events([event])

    done = replay(apply=True)

    assert done.code == 0
    assert done.row(session["id"], "meta")[4:] == ("nothing", META_TOO_OLD)
    assert done.row(session["id"], "tiktok")[4:] == ("requeue", "requeued")
    assert db.delivery(session["id"], "meta") == meta
    assert redrive(destination="meta") == {}
    assert redrive() == {"sent": 1}
    assert sent_ids(tiktok_server) == Counter([session["id"]])
    assert meta_server.requests == []


# ---------------------------------------------------------------------- 12. errors


def error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]


def test_a_wrong_stripe_key_is_a_one_line_error_and_nothing_is_written(stripe_api, db, monkeypatch, capsys):
    stripe_api.add_events([sale(HOUR)[1]])
    monkeypatch.setattr(stripe_api, "api_key", "rk_test_the_deployments_real_key")
    capsys.readouterr()

    run = replay(apply=True)

    assert run.code == 1
    [line] = error_lines(capsys)
    assert "Invalid API Key provided" in line and "401" in line
    assert STRIPE_API_KEY[:-4] not in line  # Stripe masks it; so does the message
    assert db.sessions() == [] and db.customers() == []


def test_a_restricted_key_without_the_events_permission_says_which_permission(stripe_api, db, capsys):
    stripe_api.add_events([sale(HOUR)[1]])
    stripe_api.refuse_events(True)
    capsys.readouterr()

    run = replay(apply=True)

    assert run.code == 1
    [line] = error_lines(capsys)
    assert "403" in line and "rak_event_read" in line
    assert db.sessions() == [] and db.customers() == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--since", "2026-12-03", "--until", "2026-12-01"], "SINCE must be before UNTIL"),
        (["--since", "2026-12-01T00:00Z", "--until", "2026-12-01T00:00Z"], "SINCE must be before UNTIL"),
        (["--since", "last tuesday"], "is not a time"),
        (["--since", "2026-12-01", "--destination", "meta"], "meta is not part of this deployment"),
    ],
    ids=["since-after-until", "empty-window", "not-a-time", "unconfigured-destination"],
)
def test_an_operators_mistake_is_exit_code_2_and_stripe_is_not_asked(stripe_api, db, capsys, argv, message):
    capsys.readouterr()
    out = io.StringIO()

    code = replay_cli.main([*argv, "--apply"], out=out)

    assert code == 2
    [line] = error_lines(capsys)
    assert message in line
    assert stripe_api.requests == []
    assert db.sessions() == []


# ---------------------------------------------------------------------- DESTINATION=


def test_destination_replays_that_destination_only(
    both_env, stripe_api, checkout, db, redrive, tiktok_server, meta_server, monkeypatch
):
    session, event = sale(HOUR)
    with monkeypatch.context() as switched_off:
        switched_off.setenv("TIKTOK_ACCESS_TOKEN", "")
        switched_off.setenv("META_ACCESS_TOKEN", "")
        checkout(event)
    stripe_api.add_events([event])

    done = replay("--destination", "meta", apply=True)

    assert done.code == 0
    assert [(row.destination, row.action, row.why) for row in done.rows] == [("meta", "requeue", "requeued")]
    assert db.delivery(session["id"])["delivery_status"] == "skipped"
    assert redrive(destination="meta") == {"sent": 1} and redrive() == {}
    assert sent_ids(meta_server) == Counter([session["id"]]) and tiktok_server.requests == []
