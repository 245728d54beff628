"""The scheduled redrive: every delivery the stream sender did not finish is sent exactly once, later."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from checkout_conversions.outbox import attempt as outbox_attempt
from checkout_conversions.outbox.model import DeliveryStatus
from checkout_conversions.settings import load_settings
from tests.factories import checkout_session, stripe_event

pytest_plugins = ("tests.integration.redrive_fixtures",)

DAY = 86400
NOTHING_TO_RETRY = {"batchItemFailures": []}
TALLY_KEYS = ("sent", "failed_retryable", "failed_permanent", "skipped", "not_claimed", "retry_later")


def tiktok():
    """TikTok's settings, as the functions read them now."""
    return load_settings().destination("tiktok")


def queued(record):
    return "redrive_queue" in record or "next_attempt_at" in record


def assert_never_scanned(client):
    operations = client.operations()
    assert "scan" not in operations
    assert set(operations) <= {"query", "update_item"}, operations
    queries = [kwargs for name, kwargs in client.calls if name == "query"]
    assert queries, "the redrive reads its work from the index"
    assert all(kwargs.get("IndexName") == "RedriveIndex" for kwargs in queries)


def test_transient_failures_are_retried_until_each_is_sent_exactly_once(
    redrive_env, deliver, stream, db, redrive, tiktok_server, emf
):
    sessions = [checkout_session() for _ in range(3)]
    events = [stripe_event(session=session) for session in sessions]
    # Requests are answered in this order; the last one sticks. The sender sends its batch of
    # three in one request; each redrive run sends a probe of one, then the other two in one.
    script = ["http:500"] + ["code:50000"] * 2 + ["code:40100"] * 4 + ["ok"]
    tiktok_server.behave(*script)

    for event in events:
        answer = deliver(event)
        assert answer.status == 200
        assert answer.body["deliveries"]["tiktok"] == {"status": "pending"}
    stream.drain()  # the sender's first attempts, one batch of three
    assert [invocation.answer for invocation in stream.invocations] == [NOTHING_TO_RETRY]
    assert len(tiktok_server.requests) == 1
    for session in sessions:
        record = db.delivery(session["id"])
        assert record["delivery_status"] == "failed" and record["delivery_retryable"] is True

    tallies = []
    requests_per_run = []
    for _ in range(10):
        before = len(tiktok_server.requests)
        tallies.append(redrive())
        requests_per_run.append(len(tiktok_server.requests) - before)
        if all(db.delivery(session["id"])["delivery_status"] == "sent" for session in sessions):
            break

    assert requests_per_run == [2, 2, 2, 2]  # the probe, then the rest in one request
    outcomes_by_event: dict[str, list[str]] = {}
    events_by_id: dict[str, list[dict]] = {}
    for index, request in enumerate(tiktok_server.requests):
        for sent in request.json()["data"]:
            outcomes_by_event.setdefault(sent["event_id"], []).append(script[min(index, len(script) - 1)])
            events_by_id.setdefault(sent["event_id"], []).append(sent)
    assert sorted(events_by_id) == sorted(session["id"] for session in sessions)
    for session, event in zip(sessions, events, strict=True):
        outcomes = outcomes_by_event[session["id"]]
        assert outcomes == ["http:500", "code:50000", "code:40100", "code:40100", "ok"]
        sent = events_by_id[session["id"]]
        assert all(attempt == sent[0] for attempt in sent), "every attempt re-sends the same stored event"
        assert sent[0]["event_time"] == event["created"]
        record = db.delivery(session["id"])
        assert record["delivery_status"] == "sent"
        assert record["delivery_attempts"] == len(outcomes) == 5
        assert record["delivery_code"] == 0
        assert not queued(record) and "claim_token" not in record and "delivery_retryable" not in record
    assert sorted(tiktok_server.accepted_event_ids()) == sorted(session["id"] for session in sessions)
    assert sum(tally.get("sent", 0) for tally in tallies) == 3
    assert sum(tally.get("failed_retryable", 0) for tally in tallies) == 9
    assert_never_scanned(redrive.client)

    # Nothing is left to do: further runs send nothing.
    assert redrive(at=time.time() + DAY) == {}
    assert len(tiktok_server.requests) == 9
    emf.flush()
    assert emf.total("TikTokRequests") == 9
    assert emf.total("TikTokRequestsSplit") == 0  # a transient failure fails its request as one


def test_backoff_doubles_after_each_failure_up_to_the_cap(
    env, checkout, db, redrive, tiktok_server, monkeypatch, epoch_of
):
    monkeypatch.setenv("REDRIVE_BACKOFF_BASE_SECONDS", "10")
    monkeypatch.setenv("REDRIVE_BACKOFF_CAP_SECONDS", "35")
    tiktok_server.behave("http:500")
    session = checkout_session()

    checkout(stripe_event(session=session))  # the sender's attempt is the first

    delays = []
    for attempt in range(1, 6):
        record = db.delivery(session["id"])
        assert record["delivery_status"] == "failed" and record["delivery_attempts"] == attempt
        delays.append(record["next_attempt_at"] - epoch_of(record["delivery_updated_at"]))
        due = record["next_attempt_at"]
        assert redrive(at=due - 1) == {}, "not due yet"
        before = len(tiktok_server.requests)
        # One attempt per run: failed, the delivery is due again only after its next backoff.
        assert redrive(at=due) == {"failed_retryable": 1}
        assert len(tiktok_server.requests) == before + 1

    assert delays == [10, 20, 35, 35, 35]
    assert len(tiktok_server.requests) == 6
    assert tiktok_server.event_ids() == [session["id"]] * 6


def test_a_delivery_the_sender_failed_is_retried_by_the_redrive_after_its_backoff(
    env, checkout, stream, db, redrive, tiktok_server, sent_by_event, epoch_of
):
    tiktok_server.behave("http:503", "ok")
    session = checkout_session()

    checkout(stripe_event(session=session))

    record = db.delivery(session["id"])
    assert record["delivery_status"] == "failed" and record["delivery_retryable"] is True
    assert record["delivery_attempts"] == 1 and record["delivery_http_status"] == 503
    due = record["next_attempt_at"]
    assert due - epoch_of(record["delivery_updated_at"]) == 60  # REDRIVE_BACKOFF_BASE_SECONDS default
    assert record["redrive_queue"] == "tiktok" and "claim_token" not in record

    # The stream's record delivered again does not retry it: only the redrive does, with backoff.
    assert stream.invoke(stream.invocations[0].event).answer == NOTHING_TO_RETRY
    assert redrive(at=due - 1) == {}
    assert len(tiktok_server.requests) == 1

    assert redrive(at=due) == {"sent": 1}

    first, second = sent_by_event()[session["id"]]
    assert first == second
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "sent" and record["delivery_attempts"] == 2
    assert not queued(record) and "delivery_retryable" not in record
    assert redrive(at=due + DAY) == {}


@pytest.mark.parametrize("first", ["sender", "redrive"])
def test_the_stream_sender_and_the_redrive_never_both_send_a_delivery(
    redrive_env, pending, stream, db, redrive, tiktok_server, sent_by_event, logs, monkeypatch, first
):
    """Whichever claims the delivery first sends it; the other, trying while the first is in the
    middle of its request, finds it claimed and sends nothing."""
    from checkout_conversions.destinations.tiktok.client import TikTok

    [(session, _)] = pending()  # due for the redrive at once, and in the stream for the sender
    results = {}

    def sender():
        stream.drain()
        assert [invocation.answer for invocation in stream.invocations] == [NOTHING_TO_RETRY]
        [tally] = [line for line in logs() if line.get("message") == "Stream batch finished"]
        results["sender"] = {key: tally[key] for key in TALLY_KEYS if key in tally}

    def redrive_run():
        results["redrive"] = redrive()

    runs = {"sender": sender, "redrive": redrive_run}
    second = "redrive" if first == "sender" else "sender"
    real_post = TikTok.post
    started = []

    def post_while_the_other_runs(*args, **kwargs):
        if not started:
            started.append(second)
            runs[second]()  # the first holds its claim and has not sent yet
        return real_post(*args, **kwargs)

    monkeypatch.setattr(TikTok, "post", post_while_the_other_runs)

    runs[first]()

    assert started == [second]
    assert results == {first: {"sent": 1}, second: {"not_claimed": 1}}
    assert len(sent_by_event()[session["id"]]) == 1
    assert len(tiktok_server.requests) == 1
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "sent" and record["delivery_attempts"] == 1


def test_a_delivery_that_is_not_due_yet_is_not_sent(env, pending, db, redrive, tiktok_server):
    [(session, _)] = pending()
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "pending" and record["delivery_attempts"] == 0
    grace_ends = record["next_attempt_at"]
    assert grace_ends - time.time() > 100  # REDRIVE_GRACE_SECONDS = 120

    assert redrive() == {}
    assert redrive(at=grace_ends - 1) == {}
    assert tiktok_server.requests == []

    assert redrive(at=grace_ends) == {"sent": 1}
    assert len(tiktok_server.requests) == 1
    assert db.delivery(session["id"])["delivery_attempts"] == 1


def test_a_sent_delivery_is_never_sent_again_and_cannot_be_requeued(
    redrive_env, checkout, db, redrive, store, tiktok_server
):
    session = checkout_session()
    checkout(stripe_event(session=session))
    assert db.delivery(session["id"])["delivery_status"] == "sent"

    with pytest.raises(ValueError, match="is sent"):
        outbox_attempt.requeue(store, tiktok(), session["id"] + "#tiktok", int(time.time()))

    assert redrive() == {}
    assert redrive(at=time.time() + DAY) == {}
    assert len(tiktok_server.requests) == 1
    assert not queued(db.delivery(session["id"]))


def test_requeue_sends_a_permanently_failed_delivery_once_more(
    redrive_env, checkout, db, redrive, store, tiktok_server, sent_by_event
):
    tiktok_server.behave("code:40002", "ok")
    session = checkout_session()
    checkout(stripe_event(session=session))
    assert db.delivery(session["id"])["delivery_retryable"] is False
    assert redrive() == {}

    requeued = outbox_attempt.requeue(store, tiktok(), session["id"] + "#tiktok", int(time.time()))

    record = db.delivery(session["id"])
    assert requeued.status is DeliveryStatus.PENDING and record["redrive_queue"] == "tiktok"
    assert "delivery_retryable" not in record
    assert redrive() == {"sent": 1}
    bodies = sent_by_event()[session["id"]]
    assert len(bodies) == 2 and bodies[0] == bodies[1]
    with pytest.raises(ValueError, match="is sent"):
        outbox_attempt.requeue(store, tiktok(), session["id"] + "#tiktok", int(time.time()))


@pytest.mark.parametrize(
    "cleared",
    ["TIKTOK_PIXEL_ID", "TIKTOK_ACCESS_TOKEN"],
    ids=["skipped-by-the-webhook", "skipped-by-the-sender"],
)
def test_requeue_refuses_unknown_sessions_and_deliveries_without_a_stored_event(
    redrive_env, checkout, db, store, monkeypatch, cleared
):
    with pytest.raises(LookupError):
        outbox_attempt.requeue(store, tiktok(), "cs_test_no_such_session" + "#tiktok", int(time.time()))

    monkeypatch.setenv(cleared, "")
    session = checkout_session()
    checkout(stripe_event(session=session))
    if cleared == "TIKTOK_PIXEL_ID":  # TikTok is not part of this deployment: no delivery at all
        assert db.delivery(session["id"]) is None
        with pytest.raises(LookupError):
            outbox_attempt.requeue(store, tiktok(), session["id"] + "#tiktok", int(time.time()))
        return
    assert db.delivery(session["id"])["delivery_status"] == "skipped"
    with pytest.raises(ValueError, match="skipped with no stored event"):
        outbox_attempt.requeue(store, tiktok(), session["id"] + "#tiktok", int(time.time()))


def test_deliveries_past_the_max_age_expire_and_are_not_sent(
    redrive_env, invoke, db, redrive, tiktok_server, emf, sent_by_event
):
    from devtools.function_url import signed_webhook_event
    from tests.integration.conftest import WEBHOOK_SECRET

    now = time.time()
    fresh, old = checkout_session(), checkout_session()
    for session, created in ((fresh, int(now) - 5), (old, int(now) - 3 * DAY)):
        event = stripe_event(session=session, created=created)
        answer = invoke(signed_webhook_event(event, WEBHOOK_SECRET))
        assert answer.body["deliveries"]["tiktok"] == {"status": "pending"}

    # Five days on: the old one's payment is 8 days old (> DELIVERY_MAX_AGE_DAYS = 7), the fresh one's 5.
    tally = redrive(at=now + 5 * DAY)
    emf.flush()

    assert tally == {"expired": 1, "sent": 1}
    assert list(sent_by_event()) == [fresh["id"]]
    record = db.delivery(old["id"])
    assert record["delivery_status"] == "expired"
    assert record["delivery_reason"] == "not sent within 7 days"
    assert not queued(record) and "claim_token" not in record
    assert emf.total("DeliveriesExpired") == 1
    assert redrive(at=now + 30 * DAY) == {}


def test_redrive_with_the_token_cleared_sends_nothing_and_keeps_deliveries_pending(
    redrive_env, pending, db, redrive, tiktok_server, monkeypatch
):
    made = pending(2)
    monkeypatch.setenv("TIKTOK_ACCESS_TOKEN", "")

    assert redrive() == {"disabled": "TikTok is switched off: TIKTOK_ACCESS_TOKEN is empty"}

    assert tiktok_server.requests == []
    for session, _ in made:
        record = db.delivery(session["id"])
        assert record["delivery_status"] == "pending" and queued(record)
        assert record["delivery_attempts"] == 0
    # Switched on again, the waiting deliveries go out.
    monkeypatch.setenv("TIKTOK_ACCESS_TOKEN", "tiktok-test-token-never-logged")
    assert redrive() == {"sent": 2}


def test_test_mode_delivery_is_skipped_once_the_test_event_code_is_cleared(
    redrive_env, pending, db, redrive, tiktok_server, monkeypatch
):
    [(test_session, _)] = pending(livemode=False)
    [(live_session, _)] = pending(livemode=True)
    monkeypatch.setenv("TIKTOK_TEST_EVENT_CODE", "")

    assert redrive() == {"skipped": 1, "sent": 1}

    record = db.delivery(test_session["id"])
    assert record["delivery_status"] == "skipped"
    assert record["delivery_reason"] == "test-mode event and no TIKTOK_TEST_EVENT_CODE"
    assert not queued(record) and "claim_token" not in record
    [request] = tiktok_server.requests
    assert request.json()["data"][0]["event_id"] == live_session["id"]
    assert "test_event_code" not in request.json()


def test_two_concurrent_redrives_send_each_delivery_exactly_once(
    redrive_env, pending, db, redrive, tiktok_server, sent_by_event, monkeypatch
):
    # A stalled machine must not turn a slow answer into a timeout: a timed-out send is rightly
    # resent with the same event_id (no backoff here), which is not the race this test is about.
    monkeypatch.setenv("TIKTOK_TIMEOUT_SECONDS", "10")
    made = pending(12)
    start = threading.Barrier(2)

    def run(_):
        with httpx.Client() as client:  # two Lambda containers: two connection pools
            start.wait()
            return redrive(http_client=client)

    with ThreadPoolExecutor(max_workers=2) as pool:
        tallies = list(pool.map(run, range(2)))

    assert all(set(tally) <= {"sent", "not_claimed"} for tally in tallies), tallies
    by_event = sent_by_event()
    assert sorted(by_event) == sorted(session["id"] for session, _ in made)
    assert all(len(bodies) == 1 for bodies in by_event.values())
    assert sum(tally.get("sent", 0) for tally in tallies) == 12
    for session, _ in made:
        record = db.delivery(session["id"])
        assert record["delivery_status"] == "sent" and record["delivery_attempts"] == 1


def test_redrive_lambda_handler_end_to_end(
    redrive_env,
    pending,
    db,
    redrive_app,
    redrive_context,
    recording_dynamodb,
    tiktok_server,
    emf,
    monkeypatch,
):
    made = pending(3)
    monkeypatch.setattr(redrive_app, "dynamodb", recording_dynamodb)
    scheduled = {"destination": "tiktok"}  # the schedule's input (template.yaml)

    tally = redrive_app.lambda_handler(scheduled, redrive_context())

    assert tally == {"tiktok": {"sent": 3}}
    # The run's probe of one delivery, then the other two in one request.
    assert [len(request.json()["data"]) for request in tiktok_server.requests] == [1, 2]
    assert sorted(tiktok_server.event_ids()) == sorted(session["id"] for session, _ in made)
    assert all(db.delivery(session["id"])["delivery_status"] == "sent" for session, _ in made)
    assert emf.total("TikTokSent") == 3
    assert emf.total("TikTokRequests") == 2
    assert_never_scanned(recording_dynamodb)


def test_redrive_lambda_handler_with_tiktok_switched_off_returns_why(
    redrive_env, pending, redrive_app, redrive_context, tiktok_server, monkeypatch
):
    pending()
    monkeypatch.setenv("TIKTOK_PIXEL_ID", "")

    tally = redrive_app.lambda_handler({"destination": "tiktok"}, redrive_context())

    assert tally == {"tiktok": {"disabled": "TikTok is switched off: TIKTOK_PIXEL_ID is not set"}}
    assert redrive_app.lambda_handler({}, redrive_context()) == {}  # a manual run: no destination configured
    assert tiktok_server.requests == []


def test_redrive_stops_starting_sends_when_the_lambda_is_nearly_out_of_time(
    redrive_env, pending, db, redrive_app, redrive_context, tiktok_server
):
    pending(2)

    # 11 s left: less than the stop margin (a claim and a record, each with its retries: 18 s)
    # plus one whole send (4 x the 1 s TikTok timeout).
    assert redrive_app.lambda_handler({}, redrive_context(timeout_seconds=11.0)) == {"tiktok": {}}
    assert tiktok_server.requests == []


@pytest.mark.parametrize("batch_size", ["1", "50"])
def test_one_failing_delivery_does_not_hold_up_the_others(
    redrive_env, pending, redrive, tiktok_server, db, monkeypatch, batch_size
):
    from checkout_conversions.outbox.model import StoreError

    monkeypatch.setenv("REDRIVE_BATCH_SIZE", batch_size)  # 1: the broken one fills a whole page
    [(broken, _), (fine, _), (also_fine, _)] = pending(3)
    real_claim = outbox_attempt.claim_due

    def claim_due(ledger, queue, key, now, hold_seconds):
        if key == f"{broken['id']}#tiktok":
            raise StoreError("InternalServerError")
        return real_claim(ledger, queue, key, now, hold_seconds)

    monkeypatch.setattr(outbox_attempt, "claim_due", claim_due)

    tally = redrive()

    assert tally == {"error": 1, "sent": 2}
    assert db.delivery(fine["id"])["delivery_status"] == "sent"
    assert db.delivery(also_fine["id"])["delivery_status"] == "sent"
    assert db.delivery(broken["id"])["delivery_status"] == "pending"  # still due for the next run
    monkeypatch.setattr(outbox_attempt, "claim_due", real_claim)
    assert redrive() == {"sent": 1}


def test_a_transaction_conflict_on_recording_is_retried(
    redrive_env, pending, redrive_app, redrive_context, db, tiktok_server, failing_client, monkeypatch
):
    """Real DynamoDB refuses a write to an item a transaction is using at that instant (a
    duplicate delivery being checked) with TransactionConflictException, which botocore does not
    retry: the store does, so the outcome is still recorded."""
    [(session, _)] = pending(1)
    conflicting = failing_client(
        redrive_app.dynamodb,
        "update_item",
        "TransactionConflictException",
        when=lambda kwargs: (
            kwargs.get("ExpressionAttributeValues", {}).get(":delivery_status") == {"S": "sent"}
        ),
        times=2,
    )
    monkeypatch.setattr(redrive_app, "dynamodb", conflicting)

    assert redrive_app.lambda_handler({}, redrive_context()) == {"tiktok": {"sent": 1}}

    assert conflicting.failures == 2
    assert len(tiktok_server.requests) == 1
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "sent" and "claim_token" not in record
