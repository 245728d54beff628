"""The outbox's state machine, run as the stream sender and the redrive run it (outbox.attempt,
outbox.redrive) on the in-memory ledger (tests/memory_store.py, held to DynamoDB's behaviour by
tests/integration/test_ledger_contract.py), with a fake platform and a clock that moves only when
told to: claim, send, record, retry with backoff, give up, requeue, stuck claims, lost answers."""

import threading
from collections.abc import Callable
from dataclasses import replace

import pytest

from checkout_conversions.destinations.base import Answer, Verdict
from checkout_conversions.outbox import attempt, batch, redrive
from checkout_conversions.outbox.model import AttemptResult, DeliveryStatus, Outcome, SkipReason, StoreError
from checkout_conversions.purchase import Consent, PurchaseKind
from checkout_conversions.settings import Settings
from tests.memory_store import (
    TEST_ENVIRONMENT,
    TOKEN_REFUSED,
    Clock,
    FakePlatform,
    MemoryLedger,
    a_delivery,
    sending,
    settings_for_tests,
)

T0 = 1_750_000_000
TOKEN = TEST_ENVIRONMENT["TIKTOK_ACCESS_TOKEN"]
TEST_CODE = TEST_ENVIRONMENT["TIKTOK_TEST_EVENT_CODE"]
DAY = 86400
SETTINGS = settings_for_tests()
TIKTOK = SETTINGS.destination("tiktok")
GRACE = SETTINGS.redrive.grace_seconds
MAX_AGE = TIKTOK.max_age_seconds
HOLD = 60  # what a claimer asks for; its claim lasts this and CLAIM_MARGIN_SECONDS more
CLAIMED_FOR = HOLD + attempt.CLAIM_MARGIN_SECONDS
REDRIVE_MILLIS = 60_000  # what the redrive's invocation has left: enough to send; its claims last as long
RETRY = Answer.failure("timed out")
REFUSED = Answer(Verdict.REFUSED, code=40002, message="invalid field")  # a payload error
NOTHING_DUE: dict[str, int] = {}


@pytest.fixture
def ledger():
    return MemoryLedger()


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def platform():
    return FakePlatform()


def recorded(ledger: MemoryLedger, event_id: str = "cs_1", at: int = T0, **changes) -> str:
    """A paid purchase's TikTok delivery, recorded by the webhook at `at`; its key."""
    settings = changes.pop("settings", SETTINGS)
    consent = changes.pop("consent", Consent.UNKNOWN)
    kind = changes.pop("kind", PurchaseKind.CHECKOUT)
    delivery = replace(a_delivery(settings, event_id, at, consent=consent, kind=kind), **changes)
    assert ledger.start(delivery) is None
    return delivery.key


def stream_sends(
    ledger: MemoryLedger,
    key: str,
    clock: Clock,
    platform: FakePlatform,
    settings: Settings = SETTINGS,
    access_token: str = TOKEN,
    test_event_code: str = TEST_CODE,
) -> AttemptResult:
    """What the stream sender does with a new delivery's record (outbox.sender._send_one): the
    token and the test event code are what it read from their store."""
    claimed = attempt.claim_new(ledger, key, int(clock()), hold_seconds=HOLD)
    if claimed is None:
        return AttemptResult.NOT_CLAIMED
    opened = sending(settings, "tiktok", platform, access_token, test_event_code=test_event_code)
    return batch.deliver_claimed(ledger, claimed, opened, clock)


def redrive_sends(
    ledger: MemoryLedger, key: str, clock: Clock, platform: FakePlatform, settings: Settings = SETTINGS
) -> AttemptResult:
    """What the redrive does with one due delivery (outbox.redrive._redrive_one, once claimed)."""
    claimed = attempt.claim_due(ledger, "tiktok", key, int(clock()), hold_seconds=HOLD)
    if claimed is None:
        return AttemptResult.NOT_CLAIMED
    return batch.deliver_claimed(ledger, claimed, sending(settings, "tiktok", platform), clock)


@pytest.fixture
def run_redrive(monkeypatch, ledger, clock, platform):
    """One scheduled run for TikTok (outbox.redrive.run_redrive) at the clock's time, sending
    through the fake platform; returns its tally."""

    def run(
        settings: Settings = SETTINGS,
        access_token: str = TOKEN,
        through: FakePlatform | None = None,
    ) -> dict:
        def open_sending(destination, settings, http, environ=None):
            return sending(settings, destination, through or platform, access_token)

        monkeypatch.setattr(redrive, "open_sending", open_sending)
        destination = settings.destination("tiktok")
        return redrive.run_redrive(ledger, destination, None, settings, lambda: REDRIVE_MILLIS, clock)

    return run


def assert_finished(ledger: MemoryLedger, key: str, status: DeliveryStatus) -> None:
    """Out of the queue for good, nothing of the buyer's kept, claimable by nobody ever again."""
    delivery = ledger.get(key)
    assert delivery is not None and delivery.status is status
    assert delivery.purchase_json is None and delivery.claim_token is None
    assert delivery.next_attempt_at is None and "redrive_queue" not in ledger.get_item(key)
    later = T0 + 365 * DAY
    assert ledger.due("tiktok", later, 50, None) == ([], None)
    assert attempt.claim_new(ledger, key, later, HOLD) is None
    assert attempt.claim_due(ledger, "tiktok", key, later, HOLD) is None


# ---------------------------------------------------------------------- sent


@pytest.mark.parametrize("taker", ["stream", "redrive"])
def test_an_accepted_attempt_is_sent_for_good(ledger, clock, platform, taker):
    key = recorded(ledger)
    if taker == "redrive":  # the stream never got to it: due after the grace period
        clock.advance(GRACE)
    send = stream_sends if taker == "stream" else redrive_sends
    assert send(ledger, key, clock, platform) is AttemptResult.SENT

    assert platform.posted == ["cs_1"]
    assert_finished(ledger, key, DeliveryStatus.SENT)
    item = ledger.get_item(key)
    assert item["delivery_attempts"] == 1 and item["delivery_match_keys"] == ["email"]
    with pytest.raises(ValueError, match="is sent"):
        attempt.requeue(ledger, TIKTOK, key, T0 + DAY)
    assert stream_sends(ledger, key, clock, platform) is AttemptResult.NOT_CLAIMED  # a record seen twice
    assert platform.posted == ["cs_1"]


# ---------------------------------------------------------------------- failed


def test_a_retryable_failure_is_retried_by_the_redrive_once_its_backoff_is_over(ledger, clock):
    key = recorded(ledger)
    assert stream_sends(ledger, key, clock, FakePlatform(RETRY)) is AttemptResult.FAILED_RETRYABLE

    retry_at = T0 + SETTINGS.redrive.backoff_seconds(1)
    failed = ledger.get(key)
    assert failed.status is DeliveryStatus.FAILED and failed.next_attempt_at == retry_at
    assert failed.purchase_json is not None and failed.claim_token is None
    assert ledger.get_item(key)["delivery_retryable"] is True
    assert attempt.claim_new(ledger, key, T0 + 1, HOLD) is None  # the stream's turn is over
    assert ledger.due("tiktok", retry_at - 1, 50, None) == ([], None)
    clock.now = retry_at - 1
    assert redrive_sends(ledger, key, clock, FakePlatform()) is AttemptResult.NOT_CLAIMED

    clock.now = retry_at
    assert [entry.key for entry in ledger.due("tiktok", retry_at, 50, None)[0]] == [key]
    assert redrive_sends(ledger, key, clock, FakePlatform()) is AttemptResult.SENT
    assert ledger.get(key).attempts == 2
    assert_finished(ledger, key, DeliveryStatus.SENT)


def test_each_retryable_failure_waits_longer_up_to_the_cap(ledger, clock):
    settings = settings_for_tests(REDRIVE_BACKOFF_BASE_SECONDS="60", REDRIVE_BACKOFF_CAP_SECONDS="300")
    key = recorded(ledger, settings=settings)
    assert stream_sends(ledger, key, clock, FakePlatform(RETRY), settings) is AttemptResult.FAILED_RETRYABLE
    waits = [ledger.get(key).next_attempt_at - int(clock())]
    for _ in range(5):
        clock.now = ledger.get(key).next_attempt_at
        assert (
            redrive_sends(ledger, key, clock, FakePlatform(RETRY), settings) is AttemptResult.FAILED_RETRYABLE
        )
        waits.append(ledger.get(key).next_attempt_at - int(clock()))

    assert waits == [60, 120, 240, 300, 300, 300]
    assert waits == [settings.redrive.backoff_seconds(attempts) for attempts in range(1, 7)]
    assert ledger.get(key).attempts == 6


def test_a_permanent_failure_leaves_the_queue_until_an_operator_requeues_it(ledger, clock, run_redrive):
    key = recorded(ledger)
    assert stream_sends(ledger, key, clock, FakePlatform(REFUSED)) is AttemptResult.FAILED_PERMANENT

    failed = ledger.get(key)
    assert failed.status is DeliveryStatus.FAILED and failed.next_attempt_at is None
    assert failed.purchase_json is not None  # kept, for the operator's requeue
    item = ledger.get_item(key)
    assert item["delivery_retryable"] is False and item["delivery_code"] == 40002
    clock.advance(DAY)
    assert run_redrive() == NOTHING_DUE
    assert attempt.claim_due(ledger, "tiktok", key, int(clock()), HOLD) is None

    requeued = attempt.requeue(ledger, TIKTOK, key, int(clock()))
    assert requeued.status is DeliveryStatus.PENDING and requeued.attempts == 0
    assert requeued.next_attempt_at == int(clock())
    assert "delivery_retryable" not in ledger.get_item(key)
    assert run_redrive() == {"sent": 1}
    assert_finished(ledger, key, DeliveryStatus.SENT)


@pytest.mark.parametrize(
    ("finish", "error", "message"),
    [
        ("sent", ValueError, "is sent"),
        ("skipped", ValueError, "never to be sent"),
        ("expired", ValueError, "expired unsent"),
        ("unknown", LookupError, "no TikTok delivery"),
    ],
)
def test_requeue_is_refused_for_what_cannot_or_must_not_be_sent_again(
    ledger, clock, platform, finish, error, message
):
    key = recorded(ledger, consent=Consent.DENIED if finish == "skipped" else Consent.UNKNOWN)
    if finish == "sent":
        assert stream_sends(ledger, key, clock, platform) is AttemptResult.SENT
    if finish == "expired":
        assert attempt.expire(ledger, TIKTOK, key, T0 + MAX_AGE + 1)
    if finish == "unknown":
        key = "cs_unknown#tiktok"
    before = ledger.get_item(key)

    with pytest.raises(error, match=message):
        attempt.requeue(ledger, TIKTOK, key, T0 + 2 * DAY)
    assert ledger.get_item(key) == before


# ---------------------------------------------------------------------- skipped


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"access_token": ""}, SkipReason.NO_TOKEN),
        ({"settings": {"REQUIRE_AD_CONSENT": "true"}}, SkipReason.CONSENT_MISSING),
        ({"test_event_code": ""}, SkipReason.TEST_MODE),
        ({"settings": {"RENEWAL_EVENT_NAME": ""}, "kind": PurchaseKind.RENEWAL}, SkipReason.RENEWALS_OFF),
        ({"send_at": T0 + MAX_AGE + 1}, SkipReason.TOO_OLD),
    ],
    ids=lambda value: value.name if isinstance(value, SkipReason) else None,
)
def test_the_policy_at_send_time_settles_the_delivery_as_skipped(ledger, clock, platform, change, expected):
    """What was true when the purchase was recorded may not be when it is sent: the settings of
    the moment decide, and the reason is recorded."""
    kind = change.get("kind", PurchaseKind.CHECKOUT)
    key = recorded(ledger, kind=kind, settings=settings_for_tests(RENEWAL_EVENT_NAME="Subscribe"))
    assert ledger.get(key).status is DeliveryStatus.PENDING
    clock.now = change.get("send_at", T0)
    settings = settings_for_tests(**change.get("settings", {}))
    token = change.get("access_token", TOKEN)
    code = change.get("test_event_code", TEST_CODE)

    assert stream_sends(ledger, key, clock, platform, settings, token, code) is AttemptResult.SKIPPED

    assert platform.posted == []
    assert ledger.get(key).reason == expected.describe(TIKTOK)
    assert_finished(ledger, key, DeliveryStatus.SKIPPED)
    with pytest.raises(ValueError, match="never to be sent"):
        attempt.requeue(ledger, TIKTOK, key, int(clock()))


def test_a_due_delivery_with_nothing_stored_is_skipped(ledger, clock, platform):
    key = recorded(ledger, purchase_json=None)
    assert stream_sends(ledger, key, clock, platform) is AttemptResult.NOT_CLAIMED  # nothing to send
    clock.advance(GRACE)
    assert redrive_sends(ledger, key, clock, platform) is AttemptResult.SKIPPED
    assert platform.posted == []
    assert ledger.get(key).reason == SkipReason.NOTHING_STORED.describe(TIKTOK)
    assert_finished(ledger, key, DeliveryStatus.SKIPPED)


def test_a_purchase_the_policy_refuses_is_recorded_skipped_and_never_claimed(ledger, clock, run_redrive):
    key = recorded(ledger, consent=Consent.DENIED)
    assert ledger.get(key).reason == SkipReason.CONSENT_DENIED.describe(TIKTOK)
    assert_finished(ledger, key, DeliveryStatus.SKIPPED)
    clock.advance(GRACE)
    assert run_redrive() == NOTHING_DUE


# ---------------------------------------------------------------------- who may claim what


def _pending(ledger, clock):
    recorded(ledger)


def _past_grace(ledger, clock):
    recorded(ledger)
    clock.advance(GRACE)


def _held(ledger, clock):
    _past_grace(ledger, clock)
    assert attempt.claim_due(ledger, "tiktok", "cs_1#tiktok", int(clock()), HOLD) is not None
    clock.advance(CLAIMED_FOR)  # its last second


def _held_past_its_claim(ledger, clock):
    _held(ledger, clock)
    clock.advance(1)


def _failed(answer: Answer, wait: int) -> Callable[[MemoryLedger, Clock], None]:
    def build(ledger, clock):
        recorded(ledger)
        assert stream_sends(ledger, "cs_1#tiktok", clock, FakePlatform(answer)) is not AttemptResult.SENT
        clock.advance(wait)

    return build


def _sent(ledger, clock):
    recorded(ledger)
    assert stream_sends(ledger, "cs_1#tiktok", clock, FakePlatform()) is AttemptResult.SENT
    clock.advance(DAY)


def _skipped(ledger, clock):
    recorded(ledger, consent=Consent.DENIED)
    clock.advance(DAY)


def _expired(ledger, clock):
    recorded(ledger)
    clock.advance(MAX_AGE + 1)
    assert attempt.expire(ledger, TIKTOK, "cs_1#tiktok", int(clock()))


def _requeued(ledger, clock):
    _failed(REFUSED, DAY)(ledger, clock)
    attempt.requeue(ledger, TIKTOK, "cs_1#tiktok", int(clock()))


@pytest.mark.parametrize(
    ("state", "stream_takes", "redrive_takes"),
    [
        (_pending, True, False),  # the stream's alone during the grace period
        (_past_grace, True, True),
        (_held, False, False),
        (_held_past_its_claim, True, True),
        (_failed(RETRY, SETTINGS.redrive.backoff_seconds(1) - 1), False, False),
        (_failed(RETRY, SETTINGS.redrive.backoff_seconds(1)), False, True),
        (_failed(REFUSED, DAY), False, False),
        (_failed(TOKEN_REFUSED, 0), False, True),  # due at the next run
        (_sent, False, False),
        (_skipped, False, False),
        (_expired, False, False),
        (_requeued, True, True),
    ],
    ids=[
        "pending",
        "pending past the grace period",
        "held",
        "held past its claim",
        "failed, retry not yet due",
        "failed, retry due",
        "failed permanently",
        "paused",
        "sent",
        "skipped",
        "expired",
        "requeued",
    ],
)
def test_who_may_claim_a_delivery(state, stream_takes, redrive_takes):
    """The stream sender takes only pending deliveries nobody holds; the redrive only due ones
    nobody holds, from its own queue."""
    for taker, takes in (("stream", stream_takes), ("redrive", redrive_takes)):
        ledger, clock = MemoryLedger(), Clock(T0)
        state(ledger, clock)
        before = ledger.get("cs_1#tiktok")
        now = int(clock())
        if taker == "stream":
            claimed = attempt.claim_new(ledger, "cs_1#tiktok", now, HOLD)
        else:
            claimed = attempt.claim_due(ledger, "tiktok", "cs_1#tiktok", now, HOLD)
        assert (claimed is not None) is takes, taker
        if takes:
            assert claimed.attempts == before.attempts + 1 and claimed.claim_token
            assert ledger.get_item("cs_1#tiktok")["claim_expires_at"] == now + CLAIMED_FOR
        else:
            assert ledger.get("cs_1#tiktok") == before


# ---------------------------------------------------------------------- races and stuck claims

TAKERS = {
    "stream": lambda ledger, now: attempt.claim_new(ledger, "cs_1#tiktok", now, HOLD),
    "redrive": lambda ledger, now: attempt.claim_due(ledger, "tiktok", "cs_1#tiktok", now, HOLD),
}


@pytest.mark.parametrize(("first", "second"), [(a, b) for a in TAKERS for b in TAKERS], ids=lambda name: name)
def test_of_two_claimers_the_first_wins_and_the_second_finds_it_held(ledger, first, second):
    recorded(ledger)
    now = T0 + GRACE  # due: either may take it
    winner = TAKERS[first](ledger, now)
    assert winner is not None and winner.attempts == 1
    assert TAKERS[second](ledger, now) is None
    assert ledger.get("cs_1#tiktok").claim_token == winner.claim_token


def test_of_many_claimers_at_the_same_instant_exactly_one_wins(ledger):
    recorded(ledger)
    now = T0 + GRACE
    start = threading.Barrier(4)
    won = []

    def claim(taker: str) -> None:
        start.wait()
        claimed = TAKERS[taker](ledger, now)
        if claimed is not None:
            won.append(claimed)

    threads = [threading.Thread(target=claim, args=(taker,)) for taker in ["stream", "redrive"] * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1 and won[0].attempts == 1
    assert ledger.get("cs_1#tiktok").claim_token == won[0].claim_token


def test_a_claim_retried_after_its_answer_was_lost_is_still_its_takers(ledger):
    """The store took the claim and the answer was lost: the same request again (same token, as
    the SDK retries it) answers the claim; anyone else finds it held."""
    recorded(ledger)
    ledger.fail_next("claim_new", applied=True)
    with pytest.raises(StoreError):
        ledger.claim_new("cs_1#tiktok", "token-1", T0, T0 + CLAIMED_FOR)
    claimed = ledger.claim_new("cs_1#tiktok", "token-1", T0, T0 + CLAIMED_FOR)
    assert claimed is not None and claimed.claim_token == "token-1" and claimed.attempts == 1
    assert ledger.claim_new("cs_1#tiktok", "token-2", T0, T0 + CLAIMED_FOR) is None


def test_a_stuck_claim_is_taken_over_by_the_redrive_once_it_expires(ledger, clock, platform, run_redrive):
    key = recorded(ledger)
    # The stream sender's claim lasts as long as its invocation could (here 300 s), and its
    # holder dies mid-send.
    stuck = attempt.claim_new(ledger, key, T0, hold_seconds=300)
    assert stuck is not None
    held_until = T0 + 300 + attempt.CLAIM_MARGIN_SECONDS

    clock.now = T0 + GRACE  # due, but held
    assert run_redrive() == {"not_claimed": 1}
    clock.now = held_until  # the claim's last second
    assert run_redrive() == {"not_claimed": 1}
    assert platform.posted == []
    clock.advance(1)
    assert run_redrive() == {"sent": 1}
    assert platform.posted == ["cs_1"] and ledger.get(key).attempts == 2
    assert_finished(ledger, key, DeliveryStatus.SENT)

    # Had the holder only been slow, what it records now finds its claim gone and changes nothing.
    sent = ledger.get_item(key)
    attempt.record(ledger, TIKTOK, stuck, Outcome(RETRY), SETTINGS, int(clock()) + 1)
    assert ledger.get_item(key) == sent


@pytest.mark.parametrize(
    ("operation", "answer", "applied", "status", "sent_again"),
    [
        ("record_sent", None, False, DeliveryStatus.PENDING, True),  # not written: sent again
        ("record_sent", None, True, DeliveryStatus.SENT, False),  # written, its answer lost
        ("record_failure", RETRY, False, DeliveryStatus.PENDING, True),
        ("record_failure", RETRY, True, DeliveryStatus.FAILED, True),  # retried in any case
        ("record_failure", REFUSED, False, DeliveryStatus.PENDING, True),
        ("record_failure", REFUSED, True, DeliveryStatus.FAILED, False),
    ],
    ids=[
        "sent, not recorded",
        "sent, answer lost",
        "retryable, not recorded",
        "retryable, answer lost",
        "refused, not recorded",
        "refused, answer lost",
    ],
)
def test_an_outcome_the_store_did_not_confirm_leaves_the_claim_to_expire(
    ledger, clock, platform, run_redrive, operation, answer, applied, status, sent_again
):
    """The platform answered, then the store failed (StoreError): the stream record fails and
    Lambda delivers it again, which finds the delivery held (or finished). Unless the outcome was
    written after all, the claim expires and the redrive sends the same event again (the
    platform deduplicates it by event_id)."""
    key = recorded(ledger)
    stream_platform = FakePlatform(answer) if answer else FakePlatform()
    ledger.fail_next(operation, applied=applied)
    with pytest.raises(StoreError):
        stream_sends(ledger, key, clock, stream_platform)
    assert stream_platform.posted == ["cs_1"]
    assert ledger.get(key).status is status
    clock.advance(1)
    assert stream_sends(ledger, key, clock, stream_platform) is AttemptResult.NOT_CLAIMED  # Lambda's retry
    assert stream_platform.posted == ["cs_1"]

    clock.now = T0 + GRACE  # the claim is over, the delivery due
    tally = run_redrive()

    assert platform.posted == (["cs_1"] if sent_again else [])
    assert tally == ({"sent": 1} if sent_again else NOTHING_DUE)
    final = ledger.get(key)
    assert final.status is (DeliveryStatus.SENT if sent_again else status)
    assert final.attempts == (2 if sent_again else 1)


# ---------------------------------------------------------------------- the redrive's run


@pytest.mark.parametrize(
    ("state", "tally", "status"),
    [
        (_pending, {"expired": 1}, DeliveryStatus.EXPIRED),  # the stream never sent it
        (_failed(RETRY, 0), {"expired": 1}, DeliveryStatus.EXPIRED),  # it kept failing
        (_failed(REFUSED, 0), NOTHING_DUE, DeliveryStatus.FAILED),  # out of the queue already
        (_failed(TOKEN_REFUSED, 0), {"expired": 1}, DeliveryStatus.EXPIRED),  # waited too long
        (_sent, NOTHING_DUE, DeliveryStatus.SENT),
    ],
    ids=["pending", "failing", "failed permanently", "paused", "sent"],
)
def test_the_redrive_gives_up_what_is_past_the_maximum_age(
    ledger, clock, platform, run_redrive, state, tally, status
):
    state(ledger, clock)
    clock.now = T0 + MAX_AGE + 1

    assert run_redrive() == tally
    assert platform.posted == []
    delivery = ledger.get("cs_1#tiktok")
    assert delivery.status is status
    if status is DeliveryStatus.EXPIRED:
        assert delivery.reason == SkipReason.NOT_SENT_IN_TIME.describe(TIKTOK)
        assert_finished(ledger, "cs_1#tiktok", DeliveryStatus.EXPIRED)


def test_the_redrive_sends_what_is_exactly_the_maximum_age(ledger, clock, platform, run_redrive):
    recorded(ledger)
    clock.now = T0 + MAX_AGE
    assert run_redrive() == {"sent": 1}
    assert platform.posted == ["cs_1"]


def test_the_redrive_leaves_a_held_delivery_past_the_maximum_age_to_its_holder(ledger, clock, run_redrive):
    key = recorded(ledger)
    clock.now = T0 + MAX_AGE
    assert attempt.claim_new(ledger, key, int(clock()), hold_seconds=HOLD) is not None
    clock.advance(1)
    assert run_redrive() == {"not_claimed": 1}
    assert ledger.get(key).status is DeliveryStatus.PENDING
    clock.advance(CLAIMED_FOR)
    assert run_redrive() == {"expired": 1}


def test_the_redrive_works_through_every_page_past_deliveries_that_keep_failing(ledger, clock, run_redrive):
    settings = settings_for_tests(REDRIVE_BATCH_SIZE="2")
    failing = {"cs_0", "cs_1"}  # the oldest: the first page is all failures
    platform = FakePlatform(
        answer_for=lambda event_id: RETRY if event_id in failing else Answer(Verdict.ACCEPTED)
    )
    keys = [recorded(ledger, f"cs_{n}", at=T0 + n) for n in range(5)]
    clock.now = T0 + GRACE + 10

    tally = run_redrive(settings, through=platform)

    assert tally == {"failed_retryable": 2, "sent": 3}
    assert platform.posted == [f"cs_{n}" for n in range(5)]
    assert ledger.calls.count("due") == 3  # pages of 2, 2 and 1
    for key in keys[2:]:
        assert ledger.get(key).status is DeliveryStatus.SENT
    retry_at = int(clock()) + settings.redrive.backoff_seconds(1)
    assert [ledger.get(key).next_attempt_at for key in keys[:2]] == [retry_at, retry_at]

    assert run_redrive(settings, through=platform) == NOTHING_DUE  # the same instant: nothing due
    clock.now = retry_at
    failing.clear()
    assert run_redrive(settings, through=platform) == {"sent": 2}
    assert platform.posted == [f"cs_{n}" for n in range(5)] + ["cs_0", "cs_1"]


def test_a_redrive_with_the_token_switched_off_claims_nothing(ledger, clock, run_redrive):
    key = recorded(ledger)
    clock.advance(GRACE)
    assert run_redrive(access_token="") == {"disabled": SkipReason.NO_TOKEN.describe(TIKTOK)}
    assert ledger.calls == ["start"]
    assert ledger.get(key).status is DeliveryStatus.PENDING
