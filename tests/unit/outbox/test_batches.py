"""Claimed deliveries sent in as few requests as the platform takes (outbox.batch), on the
in-memory ledger: one request for many, a request refused whole split until the bad event stands
alone, a partial success split, a failure of the moment retried together, the time budget."""

from dataclasses import replace

import pytest

from checkout_conversions.destinations.base import Answer, Verdict
from checkout_conversions.outbox import attempt, batch, redrive
from checkout_conversions.outbox.model import AttemptResult, DeliveryStatus, StoreError
from checkout_conversions.purchase import Consent, PurchaseKind
from tests.memory_store import (
    ACCEPTED,
    TEST_ENVIRONMENT,
    Clock,
    FakePlatform,
    MemoryLedger,
    a_delivery,
    sending,
    settings_for_tests,
)

T0 = 1_750_000_000
SETTINGS = settings_for_tests()
GRACE = SETTINGS.redrive.grace_seconds
TOKEN = TEST_ENVIRONMENT["TIKTOK_ACCESS_TOKEN"]
PAYLOAD_ERROR = Answer(Verdict.REFUSED, code=40002, message="invalid field")
PARTIAL = Answer(Verdict.PARTIAL, code=20001, message="partial success")
TIMED_OUT = Answer.failure("timed out")


@pytest.fixture
def ledger():
    return MemoryLedger()


@pytest.fixture
def clock():
    return Clock(T0)


def recorded(ledger: MemoryLedger, count: int, consent: Consent = Consent.UNKNOWN) -> list[str]:
    keys = []
    for n in range(count):
        delivery = a_delivery(SETTINGS, f"cs_{n:04d}", T0, consent=consent, kind=PurchaseKind.CHECKOUT)
        assert ledger.start(delivery) is None
        keys.append(delivery.key)
    return keys


def claimed(ledger: MemoryLedger, keys: list[str], clock: Clock) -> list:
    taken = [attempt.claim_new(ledger, key, int(clock()), hold_seconds=60) for key in keys]
    assert all(taken)
    return taken


PLENTY = 600.0  # seconds left in the invocation


def deliver(ledger, keys, clock, platform, seconds_left=lambda: PLENTY, opened=None) -> dict[str, object]:
    opened = opened or sending(SETTINGS, "tiktok", platform, TOKEN)
    return batch.deliver(ledger, claimed(ledger, keys, clock), opened, clock, seconds_left)


def statuses(ledger: MemoryLedger, keys: list[str]) -> list[DeliveryStatus]:
    return [ledger.get(key).status for key in keys]


def test_a_batch_goes_in_one_request_and_each_delivery_is_recorded_on_its_own(ledger, clock):
    keys = recorded(ledger, 10)
    platform = FakePlatform()

    results = deliver(ledger, keys, clock, platform)

    assert platform.requests == [[f"cs_{n:04d}" for n in range(10)]]
    assert results == {key: AttemptResult.SENT for key in keys}
    assert statuses(ledger, keys) == [DeliveryStatus.SENT] * 10
    assert all(ledger.get(key).claim_token is None for key in keys)


def test_more_than_a_request_holds_goes_in_several(ledger, clock):
    keys = recorded(ledger, 7)
    platform = FakePlatform()
    platform.max_events_per_request = 3

    deliver(ledger, keys, clock, platform)

    assert [len(request) for request in platform.requests] == [3, 3, 1]
    assert sorted(platform.posted) == sorted(key.partition("#")[0] for key in keys)


@pytest.mark.parametrize("bad", [0, 17, 63])
def test_one_bad_event_refused_whole_is_isolated_and_the_others_go_once(ledger, clock, bad):
    """Meta refuses every event of a request when one is invalid: the request is split in
    halves until the bad one stands alone; no good event is refused, so none goes twice."""
    keys = recorded(ledger, 64)
    bad_id = f"cs_{bad:04d}"
    platform = FakePlatform(answer_for=lambda event_id: PAYLOAD_ERROR if event_id == bad_id else ACCEPTED)

    results = deliver(ledger, keys, clock, platform)

    bad_key = keys[bad]
    assert results[bad_key] is AttemptResult.FAILED_PERMANENT
    failed = ledger.get(bad_key)
    assert failed.status is DeliveryStatus.FAILED and failed.next_attempt_at is None
    assert ledger.get_item(bad_key)["delivery_code"] == 40002
    good = [key for key in keys if key != bad_key]
    assert all(results[key] is AttemptResult.SENT for key in good)
    accepted = [request for request in platform.requests if bad_id not in request]
    assert sorted(event for request in accepted for event in request) == sorted(
        key.partition("#")[0] for key in good
    )  # each good event in exactly one accepted request
    assert len(platform.requests) == 1 + 2 * 6  # the whole, then both halves at each of 6 levels


def test_two_bad_events_in_one_request_each_end_failed_alone(ledger, clock):
    keys = recorded(ledger, 16)
    bad = {"cs_0003", "cs_0012"}
    platform = FakePlatform(answer_for=lambda event_id: PAYLOAD_ERROR if event_id in bad else ACCEPTED)

    results = deliver(ledger, keys, clock, platform)

    for key in keys:
        expected = AttemptResult.FAILED_PERMANENT if key.partition("#")[0] in bad else AttemptResult.SENT
        assert results[key] is expected
    assert platform.posted.count("cs_0003") == 5  # 16, 8, 4, 2, 1


def test_a_partial_success_is_split_and_the_refused_event_found(ledger, clock):
    """TikTok's 20001 does not say which events it refused: the halves go again (the events it
    took go with their event_id, which it deduplicates) down to the one it refuses."""
    keys = recorded(ledger, 4)

    def answer(event_ids: list[str]) -> Answer:
        if "cs_0002" not in event_ids:
            return ACCEPTED
        return PARTIAL if len(event_ids) > 1 else PAYLOAD_ERROR

    platform = FakePlatform(answer_request=answer)

    results = deliver(ledger, keys, clock, platform)

    assert results[keys[2]] is AttemptResult.FAILED_PERMANENT
    assert [results[keys[n]] for n in (0, 1, 3)] == [AttemptResult.SENT] * 3
    assert platform.requests == [
        ["cs_0000", "cs_0001", "cs_0002", "cs_0003"],
        ["cs_0000", "cs_0001"],
        ["cs_0002", "cs_0003"],
        ["cs_0002"],
        ["cs_0003"],
    ]


def test_a_partial_success_of_a_single_event_counts_as_sent(ledger, clock):
    keys = recorded(ledger, 1)
    results = deliver(ledger, keys, clock, FakePlatform(PARTIAL))
    assert results == {keys[0]: AttemptResult.SENT}


def test_a_failure_of_the_moment_is_not_split_every_delivery_retries_later(ledger, clock):
    keys = recorded(ledger, 8)
    platform = FakePlatform(TIMED_OUT)

    results = deliver(ledger, keys, clock, platform)

    assert len(platform.requests) == 1
    assert set(results.values()) == {AttemptResult.FAILED_RETRYABLE}
    retry_at = int(clock()) + SETTINGS.redrive.backoff_seconds(1)
    assert all(ledger.get(key).next_attempt_at == retry_at for key in keys)


def test_with_no_time_left_nothing_is_posted_and_every_delivery_is_released_due_now(ledger, clock):
    keys = recorded(ledger, 3)
    platform = FakePlatform()

    results = deliver(ledger, keys, clock, platform, seconds_left=lambda: 0.0)

    assert platform.requests == []
    assert set(results.values()) == {AttemptResult.RELEASED}
    for key in keys:  # as it was, unclaimed, its claim's attempt not counted, due for the redrive
        delivery = ledger.get(key)
        assert delivery.status is DeliveryStatus.PENDING and delivery.claim_token is None
        assert delivery.attempts == 0 and delivery.next_attempt_at == int(clock())


def test_the_time_budget_is_asked_before_every_request_of_a_split(ledger, clock):
    """Out of time in the middle of isolating a bad event: what was not sent waits, unsent and
    not counted as an attempt, for the redrive's next run."""
    keys = recorded(ledger, 8)
    platform = FakePlatform(answer_for=lambda event_id: PAYLOAD_ERROR if event_id == "cs_0000" else ACCEPTED)
    # Time to build the events (1st ask), then for two requests (2nd, 3rd), then none.
    budget = iter([PLENTY, PLENTY, PLENTY] + [0.0] * 10)

    results = deliver(ledger, keys, clock, platform, seconds_left=lambda: next(budget))

    assert len(platform.requests) == 2  # the whole, then its first half, refused again
    assert set(results.values()) == {AttemptResult.RELEASED}
    assert {ledger.get(key).attempts for key in keys} == {0}


def test_slow_line_item_reads_still_send_what_was_built_and_release_the_rest(ledger, clock):
    """Events are built a few at a time, and only while the time left holds their reads and a
    request: a run whose reads are slow sends what it built rather than nothing, every run."""
    keys = recorded(ledger, 40)
    platform = FakePlatform()
    left = [PLENTY]

    def slow_read(session_id: str) -> list:
        left[0] -= 1.0  # each read costs a second of the invocation (8 run at once)
        return []

    opened = sending(SETTINGS, "tiktok", platform, TOKEN)
    opened.read_line_items = slow_read
    needed = opened.worst_case_seconds + batch.RECORD_MARGIN_SECONDS
    left[0] = needed + 12  # time for two groups' reads, then the request

    results = deliver(ledger, keys, clock, platform, seconds_left=lambda: left[0], opened=opened)

    assert [len(request) for request in platform.requests] == [16]
    assert list(results.values()).count(AttemptResult.SENT) == 16
    released = [key for key in keys if results[key] is AttemptResult.RELEASED]
    assert len(released) == 24
    assert all(
        ledger.get(key).attempts == 0 and ledger.get(key).next_attempt_at == int(clock()) for key in released
    )


def test_a_request_refused_whole_by_a_configuration_error_stops_splitting_within_its_budget(ledger, clock):
    """A wrong pixel refuses every event: isolating costs at most MAX_SPLIT_REQUESTS more, and
    every delivery ends failed with the platform's code (fix it, then replay)."""
    keys = recorded(ledger, 500)
    platform = FakePlatform(answer_for=lambda event_id: PAYLOAD_ERROR)

    results = deliver(ledger, keys, clock, platform)

    assert len(platform.requests) <= 1 + batch.MAX_SPLIT_REQUESTS
    assert set(results.values()) == {AttemptResult.FAILED_PERMANENT}
    assert {ledger.get_item(key)["delivery_code"] for key in keys} == {40002}


def test_an_answer_that_is_not_the_platforms_is_not_split(ledger, clock):
    """A wrong URL answers every request alike (HTTP 404, no platform code): no split."""
    keys = recorded(ledger, 64)
    platform = FakePlatform(
        Answer.failure("HTTP 404, not TikTok JSON: check TIKTOK_API_URL", retryable=False)
    )

    results = deliver(ledger, keys, clock, platform)

    assert len(platform.requests) == 1
    assert set(results.values()) == {AttemptResult.FAILED_PERMANENT}


def test_skipped_deliveries_never_go_into_the_request(ledger, clock):
    keys = recorded(ledger, 2) + recorded_denied(ledger)
    platform = FakePlatform()

    results = deliver(ledger, keys, clock, platform)

    assert platform.requests == [["cs_0000", "cs_0001"]]
    assert results[keys[2]] is AttemptResult.SKIPPED


def recorded_denied(ledger: MemoryLedger) -> list[str]:
    """A pending delivery whose buyer denied consent (recorded so by an older version): the
    policy, asked again at send time, skips it."""
    pending = a_delivery(SETTINGS, "cs_denied", T0)
    pending = replace(pending, facts=replace(pending.facts, consent=Consent.DENIED))
    assert ledger.start(pending) is None
    return [pending.key]


def test_a_store_failure_while_recording_one_leaves_the_others_recorded(ledger, clock):
    keys = recorded(ledger, 3)
    platform = FakePlatform()
    ledger.fail_next("record_sent")

    results = deliver(ledger, keys, clock, platform)

    [lost] = [key for key in keys if isinstance(results[key], StoreError)]
    assert [results[key] for key in keys if key != lost] == [AttemptResult.SENT] * 2
    assert ledger.get(lost).status is DeliveryStatus.PENDING  # its claim expires; the redrive resends


def test_a_redrive_run_drains_a_backlog_in_a_probe_and_full_requests(ledger, clock, monkeypatch):
    keys = recorded(ledger, 1200)
    clock.advance(GRACE + 1)
    platform = FakePlatform()
    monkeypatch.setattr(
        redrive,
        "open_sending",
        lambda destination, settings, http: sending(settings, "tiktok", platform, TOKEN),
    )

    tally = redrive.run_redrive(
        ledger, SETTINGS.destination("tiktok"), None, SETTINGS, lambda: 600_000, clock
    )  # type: ignore[arg-type]

    assert tally == {"sent": 1200}
    assert [len(request) for request in platform.requests] == [1, 499, 500, 200]
    assert len(set(platform.posted)) == len(platform.posted) == 1200
    assert set(statuses(ledger, keys)) == {DeliveryStatus.SENT}
    assert ledger.due("tiktok", int(clock()) + 10**6, 10, None) == ([], None)


def test_the_runs_probe_is_the_first_delivery_that_needs_a_request(ledger, clock, monkeypatch):
    """A paused destination costs one request per run, even when the delivery due first needs
    none (it expires): the next one is the probe, alone."""
    from tests.memory_store import TOKEN_REFUSED

    old = a_delivery(SETTINGS, "cs_old", T0 - SETTINGS.destination("tiktok").max_age_seconds)
    assert ledger.start(old) is None
    keys = recorded(ledger, 5)
    clock.advance(GRACE + 1)
    platform = FakePlatform(TOKEN_REFUSED)
    monkeypatch.setattr(
        redrive,
        "open_sending",
        lambda destination, settings, http: sending(settings, "tiktok", platform, TOKEN),
    )

    tally = redrive.run_redrive(
        ledger, SETTINGS.destination("tiktok"), None, SETTINGS, lambda: 600_000, clock
    )  # type: ignore[arg-type]

    assert tally == {"expired": 1, "paused": 1}
    assert platform.requests == [["cs_0000"]]
    assert [ledger.get(key).status for key in keys[1:]] == [DeliveryStatus.PENDING] * 4


def test_a_request_that_cannot_be_built_fails_its_deliveries_alone_and_loses_nothing(ledger, clock):
    """A bug building the body is the request's own: its deliveries stay claimed until the claim
    expires and the redrive takes them again; the caller goes on."""
    keys = recorded(ledger, 3)
    platform = FakePlatform()

    def broken(events):
        raise TypeError("cannot encode")

    platform.body = broken  # type: ignore[method-assign]

    results = deliver(ledger, keys, clock, platform)

    assert all(isinstance(results[key], TypeError) for key in keys)
    assert platform.requests == []
    assert all(
        ledger.get(key).status is DeliveryStatus.PENDING and ledger.get(key).claim_token for key in keys
    )


def test_a_request_of_which_the_platform_took_fewer_events_is_split_until_each_is_accounted_for(
    ledger, clock
):
    """Meta says how many events it received: fewer than were sent, and the request is split
    like a refused one, down to the event it did not take."""
    keys = recorded(ledger, 4)

    def answer(event_ids: list[str]) -> Answer:
        taken = [event_id for event_id in event_ids if event_id != "cs_0001"]
        if not taken:
            return Answer.failure("no events received")
        return Answer(Verdict.ACCEPTED, message=f"events_received={len(taken)}", received=len(taken))

    platform = FakePlatform(answer_request=answer)

    results = deliver(ledger, keys, clock, platform)

    assert results[keys[1]] is AttemptResult.FAILED_RETRYABLE
    assert [results[keys[n]] for n in (0, 2, 3)] == [AttemptResult.SENT] * 3
    assert platform.requests == [
        ["cs_0000", "cs_0001", "cs_0002", "cs_0003"],
        ["cs_0000", "cs_0001"],
        ["cs_0000"],
        ["cs_0001"],
        ["cs_0002", "cs_0003"],
    ]
