"""Deliveries sent in batches (outbox/batch.py), through the real path: the webhook provisions, the
redrive reads its index (or the stream hands a batch to the sender), the platforms' stand-ins over
loopback. Every delivery is sent exactly once with its event_id; a request refused for one bad
event is split until that event stands alone; a request that fails for a reason of the moment
fails every delivery in it, retried later, not split."""

import math
import time
from collections import Counter

import pytest

from tests.factories import checkout_session, stripe_event

pytest_plugins = ("tests.integration.redrive_fixtures",)

NOTHING_TO_RETRY = {"batchItemFailures": []}
REFUSED_CODES = {"tiktok": 40002, "meta": 100}  # the stand-ins' refusal of a request with a bad event
LABELS = {"tiktok": "TikTok", "meta": "Meta"}


def sizes(server):
    """How many events each request carried, in order."""
    return [len(request.json()["data"]) for request in list(server.requests)]


def test_a_run_sends_a_probe_then_every_other_due_delivery_in_one_request(
    redrive_env, pending, db, redrive, tiktok_server, emf
):
    made = [session["id"] for session, _ in pending(120)]

    assert redrive() == {"sent": 120}

    # Each delivery once: the run's probe of one, then the other 119 in one request.
    assert sizes(tiktok_server) == [1, 119]
    assert sorted(tiktok_server.event_ids()) == sorted(made)
    assert sorted(tiktok_server.accepted_event_ids()) == sorted(made)
    for session_id in made:
        record = db.delivery(session_id)
        assert record["delivery_status"] == "sent" and record["delivery_attempts"] == 1
    emf.flush()
    assert emf.total("TikTokRequests") == 2
    assert emf.total("TikTokSent") == 120
    assert redrive(at=time.time() + 86400) == {}
    assert len(tiktok_server.requests) == 2


@pytest.mark.parametrize("name", ["tiktok", "meta"])
def test_one_bad_event_among_64_fails_alone_and_the_other_63_are_sent_once(
    both_env, monkeypatch, invoke_many, store, db, redrive, tiktok_server, meta_server, emf, name
):
    server = {"tiktok": tiktok_server, "meta": meta_server}[name]
    made = invoke_many(64)
    # The order the run takes them in (the index's): the bad one is not the run's probe.
    due, _ = store.due(name, int(time.time()), 500, None)
    order = [entry.key.rpartition("#")[0] for entry in due]
    assert sorted(order) == sorted(made)
    bad = order[40]
    good = [session_id for session_id in made if session_id != bad]
    server.refuse_event(bad)

    assert redrive(destination=name) == {"sent": 63, "failed_permanent": 1}

    # Each good event taken exactly once (a refused request takes none), the bad one never.
    taken = Counter(server.accepted_event_ids())
    assert taken == Counter(good)
    assert bad in server.event_ids()
    # The probe, the other 63, then two halves per split down to the bad event alone.
    requests = sizes(server)
    assert requests[:2] == [1, 63]
    alone = [request for request in server.requests if len(request.json()["data"]) == 1]
    assert [bad] in [[event["event_id"] for event in request.json()["data"]] for request in alone]
    assert len(requests) <= 1 + 2 * math.ceil(math.log2(63)) + 1
    record = db.delivery(bad, name)
    assert record["delivery_status"] == "failed" and record["delivery_retryable"] is False
    assert record["delivery_code"] == REFUSED_CODES[name]
    assert "redrive_queue" not in record and "purchase" in record  # kept for an operator's requeue
    for session_id in good:
        record = db.delivery(session_id, name)
        assert record["delivery_status"] == "sent" and record["delivery_attempts"] == 1
    emf.flush()
    label = LABELS[name]
    assert emf.total(f"{label}Requests") == len(requests)
    assert emf.total(f"{label}RequestsSplit") == len(requests) // 2 - 1  # each refused request of several
    assert emf.total(f"{label}PermanentFailures") == 1
    assert redrive(at=time.time() + 86400, destination=name) == {}
    assert len(server.requests) == len(requests)


def test_a_request_that_times_out_fails_every_delivery_in_it_and_the_next_run_sends_each_once(
    redrive_env, pending, db, redrive, tiktok_server, monkeypatch, emf
):
    monkeypatch.setenv("REDRIVE_BACKOFF_BASE_SECONDS", "60")
    made = [session["id"] for session, _ in pending(5)]
    tiktok_server.behave("ok", "hang")  # the probe is answered; the request of the other four hangs
    now = int(time.time())

    assert redrive(at=now) == {"sent": 1, "failed_retryable": 4}
    tiktok_server.release_hung()

    assert sizes(tiktok_server) == [1, 4], "a timed-out request is not split"
    [probe] = tiktok_server.accepted_event_ids()
    timed_out = [session_id for session_id in made if session_id != probe]
    assert sorted(event["event_id"] for event in tiktok_server.requests[1].json()["data"]) == sorted(
        timed_out
    )
    for session_id in timed_out:
        record = db.delivery(session_id)
        assert record["delivery_status"] == "failed" and record["delivery_retryable"] is True
        assert record["delivery_message"] == "timed out (ReadTimeout, 1s)"
        assert record["delivery_attempts"] == 1 and record["redrive_queue"] == "tiktok"
        assert record["next_attempt_at"] == now + 60  # due later, after its backoff
    emf.flush()
    assert emf.total("TikTokRequestsSplit") == 0

    tiktok_server.behave("ok")
    assert redrive(at=now + 59) == {}, "not due yet"
    assert tiktok_server.requests == []
    assert redrive(at=now + 60) == {"sent": 4}

    assert sorted(tiktok_server.accepted_event_ids()) == sorted(timed_out)  # each once
    assert sizes(tiktok_server) == [1, 3]
    for session_id in made:
        record = db.delivery(session_id)
        assert record["delivery_status"] == "sent"
        assert record["delivery_attempts"] == (1 if session_id == probe else 2)
    assert redrive(at=now + 86400) == {}


def test_the_stream_sender_sends_a_batch_of_one_destination_in_one_request(
    env, deliver, stream, db, tiktok_server, emf
):
    sessions = [checkout_session() for _ in range(5)]
    for session in sessions:
        assert deliver(stripe_event(session=session)).body["deliveries"]["tiktok"] == {"status": "pending"}

    assert stream.drain() == 5

    [invocation] = stream.invocations
    assert len(invocation.event["Records"]) == 5 and invocation.answer == NOTHING_TO_RETRY
    [request] = tiktok_server.requests
    assert sorted(event["event_id"] for event in request.json()["data"]) == sorted(
        session["id"] for session in sessions
    )
    for session in sessions:
        record = db.delivery(session["id"])
        assert record["delivery_status"] == "sent" and record["delivery_attempts"] == 1
    assert emf.total("TikTokRequests") == 1
    assert emf.total("TikTokSent") == 5


@pytest.fixture
def invoke_many(both_env, invoke, monkeypatch):
    """Provision `count` paid sessions, each with a TikTok and a Meta delivery left pending (the
    stream never drained) and due for the redrive at once; their session ids."""
    from devtools.function_url import signed_webhook_event
    from tests.integration.conftest import WEBHOOK_SECRET

    monkeypatch.setenv("REDRIVE_GRACE_SECONDS", "0")
    monkeypatch.setenv("REDRIVE_BACKOFF_BASE_SECONDS", "0")

    def make(count):
        made = []
        for _ in range(count):
            session = checkout_session()
            answer = invoke(signed_webhook_event(stripe_event(session=session), WEBHOOK_SECRET))
            assert answer.body["deliveries"] == {
                "tiktok": {"status": "pending"},
                "meta": {"status": "pending"},
            }
            made.append(session["id"])
        return made

    return make
