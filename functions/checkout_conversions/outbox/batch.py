"""Claimed deliveries of one destination sent in as few requests as the platform takes, each
recorded on its own; a request refused in part is split until every refused event stands alone."""

# Both platforms take many events in one request, and Meta refuses the whole request when one
# event in it is invalid; TikTok may take some and say so only as "partial success". Either way
# the request is split in halves and each half sent again, so one bad delivery ends failed on its
# own after about 2 x log2(n) more requests and never holds up or fails the others (up to
# MAX_SPLIT_REQUESTS: a configuration error refuses every event, and is recorded as such). Events
# TikTok already took in a partly refused request go again with their `event_id`: it keeps one.
#
# A request that failed as a whole for a reason of the moment (a timeout, a 5xx, a rate limit) is
# not split: every delivery in it is retried later, as one. The ledger's writes of a batch (the
# claims before, the records after) run a few at a time: each is one small conditional write.

import functools
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from checkout_conversions.aws import WORST_CASE_CALL_SECONDS
from checkout_conversions.destinations.base import Answer, Prepared
from checkout_conversions.observability import count, in_this_trace, logger
from checkout_conversions.outbox import attempt
from checkout_conversions.outbox.model import AttemptResult, Delivery, Ledger, Outcome
from checkout_conversions.outbox.sending import Sending

# Ledger writes (and line-item reads) at once: DynamoDB takes many more; see aws.py's pool.
WRITERS = 8
# What one request's deliveries may spend isolating refused events: about 3 bad events among 500.
MAX_SPLIT_REQUESTS = 64
# Left for recording what was sent, after the last request: the claim's and the records' worst case.
RECORD_MARGIN_SECONDS = 2 * WORST_CASE_CALL_SECONDS

Item = TypeVar("Item")
Done = TypeVar("Done")
Result = AttemptResult | Exception  # an Exception: the work could not be done (StoreError ...)
Ready = tuple[Delivery, Prepared]
Sent = tuple[Delivery, Outcome | None]  # None: not sent, too little time was left


def in_parallel(work: Callable[[Item], Done], items: Sequence[Item]) -> list[Done]:
    """`work` on every item, a few at a time, in the caller's trace; results in the items' order."""
    if len(items) <= 1:
        return [work(item) for item in items]
    runs = [in_this_trace(functools.partial(work, item)) for item in items]
    with ThreadPoolExecutor(max_workers=min(WRITERS, len(items))) as pool:
        return list(pool.map(lambda run: run(), runs))


def deliver(
    ledger: Ledger,
    claimed: Sequence[Delivery],
    sending: Sending,
    clock: Callable[[], float],
    seconds_left: Callable[[], float] = lambda: math.inf,
) -> dict[str, Result]:
    """Send deliveries this caller has just claimed, in as few requests as the platform takes,
    and record each one's outcome; each delivery's result by its key. Events are built a few at a
    time, and sent as soon as a request is full; more are built only while `seconds_left` holds
    their reads, a request and the records, and a request is made only while it holds the request
    and the records. What is left is released unsent, due again at once."""

    def time_for(seconds: float) -> bool:
        return seconds_left() >= seconds + RECORD_MARGIN_SECONDS

    def first_step(delivery: Delivery) -> Prepared | Result:
        return _guarded(delivery, lambda: attempt.settle_or_prepare(ledger, delivery, sending, clock))

    def send(events: list[Ready]) -> None:
        try:
            sent = _send(events, sending, lambda: time_for(sending.post_seconds), _Splits())
        except Exception as error:  # noqa: BLE001 - a bug building the request: the claims expire, the redrive retries
            logger.exception("Request not sent", extra={"events": len(events)})
            results.update((delivery.key, error) for delivery, _ in events)
            return
        recorded = in_parallel(lambda done: _record(ledger, sending, done, clock), sent)
        results.update(zip((delivery.key for delivery, _ in sent), recorded, strict=True))

    results: dict[str, Result] = {}
    ready: list[Ready] = []
    waiting = list(claimed)
    size = sending.platform.max_events_per_request
    while waiting and time_for(sending.worst_case_seconds):
        group, waiting = waiting[:WRITERS], waiting[WRITERS:]
        for delivery, step in zip(group, in_parallel(first_step, group), strict=True):
            if isinstance(step, Prepared):
                ready.append((delivery, step))
            else:
                results[delivery.key] = step
        while len(ready) >= size:
            send(ready[:size])
            ready = ready[size:]
    if ready:
        send(ready)
    results.update(
        zip(
            (d.key for d in waiting),
            in_parallel(lambda d: _record(ledger, sending, (d, None), clock), waiting),
            strict=True,
        )
    )
    return results


def deliver_claimed(
    ledger: Ledger, claimed: Delivery, sending: Sending, clock: Callable[[], float]
) -> AttemptResult:
    """One claimed delivery sent and recorded; StoreError (or any other error) raised."""
    result = deliver(ledger, [claimed], sending, clock)[claimed.key]
    if isinstance(result, Exception):
        raise result
    return result


class _Splits:
    """What isolating refused events may cost one request's deliveries: past it (a configuration
    error refuses every event), the parts still refused are recorded with the refusal."""

    def __init__(self, requests: int = MAX_SPLIT_REQUESTS):
        self.left = requests

    def take(self) -> bool:
        if self.left < 2:
            return False
        self.left -= 2
        return True


def _send(ready: list[Ready], sending: Sending, can_post: Callable[[], bool], splits: _Splits) -> list[Sent]:
    """Each delivery with the answer to the request that carried it; None when too little time
    was left to send it."""
    if sending.refused is not None:
        answer = sending.refused  # the token was refused, read again: paused without a request
    elif not can_post():
        return [(delivery, None) for delivery, _ in ready]
    else:
        answer = _post(ready, sending)
        # Only the platform's own verdict on the events is worth a split (not a wrong URL's 404).
        own_verdict = answer.code is not None or answer.received is not None
        if len(ready) > 1 and answer.refused_in_part(len(ready)) and own_verdict and splits.take():
            count(f"{sending.destination.label}RequestsSplit")
            logger.info(
                f"{sending.destination.label} refused part of a request: sending its halves",
                extra={"events": len(ready), "platform_code": answer.code},
            )
            half = len(ready) // 2
            return _send(ready[:half], sending, can_post, splits) + _send(
                ready[half:], sending, can_post, splits
            )
    return [(delivery, Outcome(answer, prepared)) for delivery, prepared in ready]


def _post(ready: list[Ready], sending: Sending) -> Answer:
    """One request. A refused token is read again and, when the store holds another, the same
    request is POSTed once more with it. Refused again: the destination's deliveries still to
    send in this batch or run get that refusal, without a request."""
    body = sending.platform.body([prepared for _, prepared in ready])
    answer = _request(sending, body)
    if answer.unauthorized and sending.renew_token():
        answer = _request(sending, body)
    if answer.unauthorized:
        sending.refused = answer
    return answer


def _request(sending: Sending, body: bytes) -> Answer:
    sending.requests += 1
    count(f"{sending.destination.label}Requests")
    return sending.platform.post(sending.http, sending.access_token, body)


def _record(ledger: Ledger, sending: Sending, done: Sent, clock: Callable[[], float]) -> Result:
    delivery, outcome = done

    def write() -> AttemptResult:
        if outcome is None:  # not sent: as it was, due at once (the redrive's next run)
            released = ledger.release(delivery.key, delivery.claim_token or "", int(clock()))
            return AttemptResult.RELEASED if released else AttemptResult.NOT_CLAIMED
        attempt.record(ledger, sending.destination, delivery, outcome, sending.settings, int(clock()))
        return attempt.result_of(outcome.answer)

    return _guarded(delivery, write)


def _guarded(delivery: Delivery, work: Callable[[], Done]) -> Done | Exception:
    """`work`'s result, or the error that stopped it: one delivery's problem is its own."""
    try:
        return work()
    except Exception as error:  # noqa: BLE001 - the caller decides what a failed delivery means
        logger.warning(
            "Delivery not finished: it stays due",
            extra={"event_id": delivery.event_id, "error": type(error).__name__},
        )
        return error
