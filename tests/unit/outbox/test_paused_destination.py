"""A refused token (issue 17, defect 3): read again at once, the request made again with a rotated
token, and the destination paused when the token read again is refused too, its deliveries
waiting in the redrive queue, probed with one delivery per run and all sent once it is accepted.

Run as the stream sender (outbox.sender._send_destination, one Sending for a batch's deliveries of
one destination) and the redrive (outbox.redrive.run_redrive) run it, on the in-memory ledger
(tests/memory_store.py, held to DynamoDB's behaviour by tests/integration/test_ledger_contract.py),
with a fake platform that accepts one token and a token store the test rewrites."""

from dataclasses import dataclass, field

import pytest

from checkout_conversions.destinations.base import Answer, Verdict
from checkout_conversions.observability import metrics
from checkout_conversions.outbox import attempt, redrive, sender
from checkout_conversions.outbox.model import AttemptResult, DeliveryStatus, SkipReason
from checkout_conversions.secrets import ConfigurationError
from tests.memory_store import (
    TOKEN_REFUSED,
    Clock,
    FakePlatform,
    MemoryLedger,
    a_delivery,
    sending,
    settings_for_tests,
)

T0 = 1_750_000_000
DAY = 86400
SETTINGS = settings_for_tests()
TIKTOK = SETTINGS.destination("tiktok")
GRACE = SETTINGS.redrive.grace_seconds
PAUSED_REASON = SkipReason.ACCESS_REFUSED.describe(TIKTOK)
OLD, NEW = "token-before-the-rotation", "token-after-the-rotation"
PAYLOAD_ERROR = Answer(Verdict.REFUSED, code=40002, message="invalid field")


@dataclass
class TokenStore:
    """The token's entry in SSM / Secrets Manager, and how often it was read past the cache."""

    token: str
    fresh_reads: int = 0
    fails: bool = False
    cached: list[str] = field(default_factory=list)

    def reread(self) -> str:
        self.fresh_reads += 1
        if self.fails:
            raise ConfigurationError("cannot read ssm entry '/shop/tiktok-token': throttled")
        return self.token


@pytest.fixture
def ledger():
    return MemoryLedger()


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def counted():
    """The metrics counted during the test, by name."""
    metrics.clear_metrics()

    def read() -> dict[str, float]:
        return {name: sum(entry["Value"]) for name, entry in metrics.metric_set.items()}

    yield read
    metrics.clear_metrics()


def recorded(ledger: MemoryLedger, *event_ids: str, at: int = T0) -> list[str]:
    """Paid purchases' TikTok deliveries, recorded by the webhook at `at`; their keys."""
    keys = []
    for event_id in event_ids:
        delivery = a_delivery(SETTINGS, event_id, at)
        assert ledger.start(delivery) is None
        keys.append(delivery.key)
    return keys


def stream_batch(
    ledger: MemoryLedger,
    keys: list[str],
    clock: Clock,
    platform: FakePlatform,
    cached_token: str,
    store: TokenStore | None,
    monkeypatch: pytest.MonkeyPatch,
) -> list[AttemptResult]:
    """One stream batch of TikTok records (outbox.sender._send_destination): one Sending, read
    with the token the container has cached."""

    def open_sending(destination, settings, http, environ=None):
        return sending(settings, destination, platform, cached_token, store.reread if store else None)

    monkeypatch.setattr(sender, "open_sending", open_sending)
    batch = sender.Batch(ledger, SETTINGS, None, lambda: 100.0, clock)  # type: ignore[arg-type]
    results = sender._send_destination(batch, TIKTOK, list(enumerate(keys)))
    return [results[index] for index in range(len(keys))]  # type: ignore[misc]


@pytest.fixture
def run_redrive(monkeypatch, ledger, clock):
    """One scheduled run for TikTok (outbox.redrive.run_redrive) at the clock's time; the Sending
    is opened with the token the container has cached (the store's, unless told otherwise)."""

    def run(platform: FakePlatform, store: TokenStore, cached_token: str | None = None) -> dict:
        def open_sending(destination, settings, http, environ=None):
            return sending(settings, destination, platform, cached_token or store.token, store.reread)

        monkeypatch.setattr(redrive, "open_sending", open_sending)
        return redrive.run_redrive(ledger, TIKTOK, None, SETTINGS, lambda: 60_000, clock)

    return run


def assert_paused(ledger: MemoryLedger, key: str, at: int, attempts: int = 1) -> None:
    """Paused: the reason and the refusal recorded, the purchase kept, due at the next run."""
    delivery = ledger.get(key)
    assert delivery.status is DeliveryStatus.PAUSED and delivery.reason == PAUSED_REASON
    assert delivery.purchase_json is not None and delivery.claim_token is None
    assert delivery.next_attempt_at == at and delivery.attempts == attempts
    item = ledger.get_item(key)
    assert item["redrive_queue"] == "tiktok" and "delivery_retryable" not in item
    assert item["delivery_code"] == TOKEN_REFUSED.code
    assert item["delivery_message"] == TOKEN_REFUSED.message
    assert key in [entry.key for entry in ledger.due("tiktok", at, 50, None)[0]]


# ---------------------------------------------------------------------- the stream sender


def test_a_rotated_token_is_read_again_and_the_same_delivery_sent_with_it(
    ledger, clock, counted, monkeypatch
):
    """The container cached the old token; the store has the new one: the batch's one request
    refused, sent again with the new one."""
    first, second = recorded(ledger, "cs_1", "cs_2")
    platform = FakePlatform(accepts_token=NEW)
    store = TokenStore(NEW)

    results = stream_batch(ledger, [first, second], clock, platform, OLD, store, monkeypatch)

    assert results == [AttemptResult.SENT, AttemptResult.SENT]
    # One request carrying both: refused with the old token, then sent with the new.
    assert platform.requests == [["cs_1", "cs_2"], ["cs_1", "cs_2"]]
    assert platform.tokens == [OLD, NEW]
    assert store.fresh_reads == 1
    for key in (first, second):
        delivery = ledger.get(key)
        assert delivery.status is DeliveryStatus.SENT and delivery.attempts == 1
        assert "delivery_code" in ledger.get_item(key) and ledger.get_item(key)["delivery_code"] == 0
    # Sent the moment they were paid (this test's clock stands still): no lag.
    assert counted() == {
        "TikTokSent": 2,
        "TikTokMatchKeyEmail": 2,
        "TikTokDeliveryLag": 0,
        "TikTokRequests": 2,
    }


def test_a_token_refused_again_pauses_the_delivery_and_the_rest_of_the_batch_waits_unsent(
    ledger, clock, counted, monkeypatch
):
    keys = recorded(ledger, "cs_1", "cs_2", "cs_3")
    platform = FakePlatform(accepts_token=NEW)
    store = TokenStore(OLD)  # nobody has written the new token yet

    results = stream_batch(ledger, keys, clock, platform, OLD, store, monkeypatch)

    assert results == [AttemptResult.PAUSED] * 3
    assert platform.requests == [["cs_1", "cs_2", "cs_3"]]  # the token read again is the same: not resent
    assert store.fresh_reads == 1
    for key in keys:
        assert_paused(ledger, key, T0)
    assert counted() == {"TikTokPaused": 3, "TikTokRequests": 1}
    # Not a new pending delivery any more: a stream record seen again does not take it.
    assert attempt.claim_new(ledger, keys[0], T0 + 1, 60) is None


def test_a_token_rotated_twice_is_read_again_once_and_refused_again_pauses(ledger, clock, monkeypatch):
    """Old token cached, another token in the store that is refused too: two requests, paused."""
    [key] = recorded(ledger, "cs_1")
    platform = FakePlatform(accepts_token=NEW)

    results = stream_batch(ledger, [key], clock, platform, OLD, TokenStore("yet-another-token"), monkeypatch)

    assert results == [AttemptResult.PAUSED]
    assert platform.tokens == [OLD, "yet-another-token"]
    assert_paused(ledger, key, T0)


@pytest.mark.parametrize(
    "store", [None, TokenStore(OLD, fails=True)], ids=["no store to read", "store unreadable"]
)
def test_a_token_that_cannot_be_read_again_pauses(ledger, clock, counted, monkeypatch, store):
    [key] = recorded(ledger, "cs_1")
    platform = FakePlatform(accepts_token=NEW)

    assert stream_batch(ledger, [key], clock, platform, OLD, store, monkeypatch) == [AttemptResult.PAUSED]

    assert platform.tokens == [OLD]
    assert_paused(ledger, key, T0)
    assert counted().get("ConfigurationErrors") == (1 if store else None)


def test_a_token_switched_off_meanwhile_pauses_the_refused_request(ledger, clock, monkeypatch):
    """The operator wrote `disabled`: the deliveries of the refused request wait (the destination
    is on again one day, within the maximum age); the redrive, finding the token empty, leaves
    them alone until then."""
    first, second = recorded(ledger, "cs_1", "cs_2")
    platform = FakePlatform(accepts_token=NEW)

    results = stream_batch(ledger, [first, second], clock, platform, OLD, TokenStore(""), monkeypatch)

    assert results == [AttemptResult.PAUSED, AttemptResult.PAUSED]
    assert platform.requests == [["cs_1", "cs_2"]]
    assert_paused(ledger, first, T0)
    assert_paused(ledger, second, T0)


@pytest.mark.parametrize(
    "answer",
    [PAYLOAD_ERROR, Answer(Verdict.REFUSED, code=100, message="invalid parameter")],
    ids=["TikTok 40002", "Meta 100"],
)
def test_a_payload_error_stays_permanent_and_the_token_is_not_read_again(
    ledger, clock, counted, monkeypatch, answer
):
    [key] = recorded(ledger, "cs_1")
    store = TokenStore(OLD)

    results = stream_batch(ledger, [key], clock, FakePlatform(answer), OLD, store, monkeypatch)

    assert results == [AttemptResult.FAILED_PERMANENT]
    assert store.fresh_reads == 0
    failed = ledger.get(key)
    assert failed.status is DeliveryStatus.FAILED and failed.next_attempt_at is None
    assert counted() == {"TikTokFailed": 1, "TikTokPermanentFailures": 1, "TikTokRequests": 1}


# ---------------------------------------------------------------------- the redrive


def test_a_paused_destination_is_probed_once_per_run_then_everything_goes_out(
    ledger, clock, counted, run_redrive
):
    keys = recorded(ledger, *(f"cs_{n}" for n in range(4)))
    clock.advance(GRACE)  # the stream never got to them
    platform = FakePlatform(accepts_token=NEW)
    store = TokenStore(OLD)

    # Refused for an hour: every run (each 5 minutes) makes one request, and ends there.
    for run in range(12):
        assert run_redrive(platform, store) == {"paused": 1}
        assert len(platform.posted) == run + 1
        clock.advance(300)
    assert len(set(platform.posted)) == 4  # each run probed the delivery that waited longest
    assert all(ledger.get(key).status is DeliveryStatus.PAUSED for key in keys)
    # Each run found all 4 due, and made one request.
    assert counted() == {"TikTokPaused": 12, "TikTokRedriveBacklog": 12 * 4, "TikTokRequests": 12}

    # The new token is written in the store; the container still has the old one cached. The
    # next run's probe is refused, reads the token again and goes: then every waiting delivery.
    store.token = NEW
    platform.posted.clear()
    assert run_redrive(platform, store, cached_token=OLD) == {"sent": 4}
    assert sorted(set(platform.posted)) == sorted(f"cs_{n}" for n in range(4))
    # The probe refused with the old token, sent with the new one; then the rest in one request.
    probe = platform.posted[0]
    assert platform.requests[-3:-1] == [[probe], [probe]] and len(platform.requests[-1]) == 3
    assert platform.tokens[-2:] == [NEW] * 2
    for key in keys:
        delivery = ledger.get(key)
        assert delivery.status is DeliveryStatus.SENT and delivery.reason is None
    assert ledger.due("tiktok", int(clock()) + DAY, 50, None) == ([], None)
    assert run_redrive(platform, store) == {}


def test_a_paused_delivery_still_expires_after_the_maximum_age(ledger, clock, run_redrive):
    first, second = recorded(ledger, "cs_old", "cs_new")
    platform = FakePlatform(accepts_token=NEW)
    store = TokenStore(OLD)
    clock.advance(GRACE)
    assert run_redrive(platform, store) == {"paused": 1}
    statuses = {ledger.get(key).status for key in (first, second)}
    assert statuses == {DeliveryStatus.PAUSED, DeliveryStatus.PENDING}  # the probe, and one waiting

    clock.now = T0 + TIKTOK.max_age_seconds + 1  # both too old: given up without a request
    platform.posted.clear()
    assert run_redrive(platform, store) == {"expired": 2}
    assert platform.posted == []
    for key in (first, second):
        assert ledger.get(key).status is DeliveryStatus.EXPIRED


def test_a_paused_delivery_is_taken_by_the_redrive_only(ledger, clock, monkeypatch):
    [key] = recorded(ledger, "cs_1")
    stream_batch(ledger, [key], clock, FakePlatform(accepts_token=NEW), OLD, TokenStore(OLD), monkeypatch)
    assert_paused(ledger, key, T0)

    assert attempt.claim_new(ledger, key, T0 + 1, 60) is None
    claimed = attempt.claim_due(ledger, "tiktok", key, T0 + 1, 60)
    assert claimed is not None and claimed.status is DeliveryStatus.PAUSED and claimed.attempts == 2


def test_a_paused_delivery_that_then_times_out_is_failed_retryable_without_the_pause_reason(
    ledger, clock, run_redrive, monkeypatch
):
    [key] = recorded(ledger, "cs_1")
    stream_batch(ledger, [key], clock, FakePlatform(accepts_token=NEW), OLD, TokenStore(OLD), monkeypatch)
    clock.advance(300)

    assert run_redrive(FakePlatform(Answer.failure("timed out")), TokenStore(NEW)) == {"failed_retryable": 1}

    failed = ledger.get(key)
    assert failed.status is DeliveryStatus.FAILED and failed.reason is None
    assert ledger.get_item(key)["delivery_retryable"] is True


def test_a_paused_delivery_can_be_requeued(ledger, clock, monkeypatch):
    [key] = recorded(ledger, "cs_1")
    stream_batch(ledger, [key], clock, FakePlatform(accepts_token=NEW), OLD, TokenStore(OLD), monkeypatch)

    requeued = attempt.requeue(ledger, TIKTOK, key, T0 + 10)

    assert requeued.status is DeliveryStatus.PENDING and requeued.reason is None
    assert requeued.next_attempt_at == T0 + 10 and requeued.attempts == 0
