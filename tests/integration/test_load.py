"""Load: 200 webhook deliveries from 20 threads, a third of them duplicates and redeliveries, in a
seeded random order, then the Sessions stream drained into the sender (and replayed, as Lambda
may). Every paid session is provisioned once, and reported to TikTok once."""

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.factories import checkout_session, stripe_event

pytestmark = pytest.mark.slow  # concurrent load on loopback: about half a minute

pytest_plugins = ("tests.integration.redrive_fixtures",)

SEED = 20260401
THREADS = 20
COMPLETED = "checkout.session.completed"
ASYNC_SUCCEEDED = "checkout.session.async_payment_succeeded"
PENDING = {"status": "pending"}


STRIPE_RETRIES = 10


def serialise_metrics(monkeypatch):
    """Powertools Metrics keeps one metric set per process and flushes it at the end of each
    invocation. Lambda never runs two invocations in one process at once; twenty threads do, and
    one thread's flush can iterate the set while another adds to it. A lock around adding and
    flushing restores one-at-a-time access, so every count is published exactly once."""
    from checkout_conversions.observability import metrics

    provider = metrics.provider
    lock = threading.RLock()
    add, flush = provider.add_metric, provider.flush_metrics

    def locked(method):
        def call(*args, **kwargs):
            with lock:
                return method(*args, **kwargs)

        return call

    monkeypatch.setattr(provider, "add_metric", locked(add))
    monkeypatch.setattr(provider, "flush_metrics", locked(flush))


def build_deliveries(rng):
    """The events in delivery order, and the set of paid session ids."""
    paid_sessions = set()
    deliveries = []
    provisioning_events = []

    for _ in range(110):  # paid at once
        session = checkout_session()
        event = stripe_event(COMPLETED, session)
        deliveries.append(event)
        provisioning_events.append(event)
        paid_sessions.add(session["id"])

    ordered_pairs = []  # (must come first, must come later)
    for _ in range(12):  # async_payment_succeeded arrives before checkout.session.completed
        session = checkout_session()
        early, late = stripe_event(ASYNC_SUCCEEDED, session), stripe_event(COMPLETED, session)
        deliveries += [early, late]
        provisioning_events.append(early)
        ordered_pairs.append((early, late))
        paid_sessions.add(session["id"])

    for _ in range(11):  # delayed payment: completed while unpaid, then async success
        session = checkout_session(payment_status="unpaid")
        unpaid = stripe_event(COMPLETED, session)
        succeeded = stripe_event(ASYNC_SUCCEEDED, {**session, "payment_status": "paid"})
        deliveries += [unpaid, succeeded]
        provisioning_events.append(succeeded)
        ordered_pairs.append((unpaid, succeeded))
        paid_sessions.add(session["id"])

    # Stripe redelivers the same event, or sends the same session again as a new event.
    for event in rng.sample(provisioning_events, 30):
        deliveries.append(event)
    for event in rng.sample(provisioning_events, 14):
        deliveries.append(stripe_event(event["type"], event["data"]["object"]))

    rng.shuffle(deliveries)
    for first, later in ordered_pairs:
        i, j = deliveries.index(first), deliveries.index(later)
        if i > j:
            deliveries[i], deliveries[j] = deliveries[j], deliveries[i]
    return deliveries, paid_sessions


def test_two_hundred_deliveries_from_twenty_threads(
    env, deliver, stream, db, tiktok_server, sent_by_event, emf, monkeypatch
):
    # Given: a busy 2-core machine, not a slow TikTok: each phase of a POST may take up to 5 s.
    monkeypatch.setenv("TIKTOK_TIMEOUT_SECONDS", "5")
    serialise_metrics(monkeypatch)
    deliveries, paid_sessions = build_deliveries(random.Random(SEED))
    assert len(deliveries) == 200 and len(paid_sessions) == 133
    distinct_events = {event["id"] for event in deliveries}
    assert len(deliveries) - len(distinct_events) == 30

    # When: Stripe delivers them all at once, from twenty threads
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        answers = list(pool.map(deliver, deliveries))

    # Then: a delivery that met a concurrent one of the same session gets a 409; on a machine this
    # busy the one-request-at-a-time moto can be slower than the client's timeouts, and then the
    # answer is a 500 that writes nothing (moto alone: DynamoDB answers in milliseconds) ...
    in_progress = [
        (event, answer) for event, answer in zip(deliveries, answers, strict=True) if answer.status != 200
    ]
    for event, answer in in_progress:
        assert answer.status in (409, 500), answer
        assert answer.body == {
            "error": "session is being processed, retry later"
            if answer.status == 409
            else "provisioning failed, retry later",
            "session_id": event["data"]["object"]["id"],
        }
    # ... and Stripe retries every non-2xx answer later, with backoff: a retry may meet moto still
    # working through the requests the burst's clients gave up on, and get a 500 too; a later one
    # gets 200 and changes nothing.
    timed_out = sum(1 for _, answer in in_progress if answer.status == 500)
    retries = []
    for event, _ in in_progress:
        for _attempt in range(STRIPE_RETRIES):
            retry = deliver(event)
            if retry.status == 200:
                break
            assert retry.status in (409, 500), retry
            timed_out += retry.status == 500
            time.sleep(1)
        retries.append(retry)
    assert all(retry.status == 200 for retry in retries), [(retry.status, retry.body) for retry in retries]

    statuses = Counter(answer.body.get("status") for answer in answers + retries if answer.status == 200)
    # A 500 after the transaction committed (every attempt's answer lost) makes Stripe's retry a
    # duplicate: then that session's only "provisioned" was never seen. Everything else is exact.
    assert 133 - timed_out <= statuses["provisioned"] <= 133
    assert statuses["ignored"] == 11  # the unpaid completions
    assert statuses["provisioned"] + statuses["duplicate"] == 200 - 11
    for answer in answers + retries:
        if answer.body.get("status") == "provisioned":
            assert answer.body["deliveries"]["tiktok"] == PENDING, answer.body  # nothing sent yet, by anyone
    customers = db.customers()
    assert len(customers) == 133
    assert {customer["checkout_session_id"] for customer in customers} == paid_sessions
    assert {item["session_id"] for item in db.markers()} == paid_sessions
    deliveries = db.deliveries()
    assert {item["event_id"] for item in deliveries} == paid_sessions
    assert Counter(item["delivery_status"] for item in deliveries) == {"pending": 133}
    assert tiktok_server.requests == []  # the webhook never calls TikTok

    # When: the stream hands the new deliveries to the sender
    assert stream.drain() == 133  # one INSERT per provisioned session; duplicates write nothing

    # Then: each session is reported to TikTok exactly once, and the sender handled every record
    by_event = sent_by_event()
    assert set(by_event) == paid_sessions
    assert all(len(bodies) == 1 for bodies in by_event.values())
    # One request per stream batch: each invocation's records went out together.
    assert sorted(len(request.json()["data"]) for request in tiktok_server.requests) == sorted(
        len(invocation.event["Records"]) for invocation in stream.invocations
    )
    sent_requests = len(tiktok_server.requests)
    assert sent_requests == len(stream.invocations) < 133
    assert all(invocation.error is None for invocation in stream.invocations)
    assert all(invocation.answer == {"batchItemFailures": []} for invocation in stream.invocations)
    assert stream.given_up == []
    deliveries = db.deliveries()
    assert Counter(item["delivery_status"] for item in deliveries) == {"sent": 133}
    assert all(item["delivery_attempts"] == 1 for item in deliveries)

    # When: Lambda delivers the same stream records again (at least once, never exactly once)
    first_round = list(stream.invocations)
    replays = [stream.invoke(invocation.event) for invocation in first_round]

    # Then: every record finds its delivery finished: nothing is sent twice, nothing retried
    assert all(replay.error is None for replay in replays)
    assert all(replay.answer == {"batchItemFailures": []} for replay in replays)
    assert len(tiktok_server.requests) == sent_requests
    assert sorted(tiktok_server.event_ids()) == sorted(paid_sessions)
    assert Counter(item["delivery_status"] for item in db.deliveries()) == {"sent": 133}

    assert emf.total("Provisioned") == statuses["provisioned"]  # the answers and the metrics agree
    assert emf.total("Duplicates") == statuses["duplicate"]
    assert emf.total("TikTokSent") == 133
    assert emf.total("TikTokRequests") == sent_requests
    assert emf.total("TikTokFailed") == 0
