"""Drain a backlog: 5,000 waiting deliveries per destination, each sent exactly once by one redrive run.

The product owner's goal: "5,000 waiting deliveries per destination drained within one redrive
run, with at most 1 platform request per 100 deliveries, each delivered exactly once, against the
stand-ins."

The stand-ins' process (benchmarks/standins.py: moto's DynamoDB behind the counting proxy, the
TikTok and Meta stand-ins answering at once) and the template's tables. 5,000 deliveries per
destination (10,000 items) are recorded as the webhook records them (outbox.start.new_delivery,
then DynamoDeliveries.start, straight to moto, from a thread pool: not timed, not counted): live
paid checkouts with the buyer's details, browser signals and ad consent, paid over the last three
days and recorded a few seconds after their payment, so every one is past its grace period and
due. Then ONE redrive run per destination, as its schedule invokes it (`{"destination": "tiktok"}`,
then `{"destination": "meta"}`): `outbox.redrive.redrive_due_deliveries` with the product's
DynamoDB client (through the counting proxy), `http.new_client()` and a Lambda context counting
down the template's Timeout of DeliveryRedriveFunction in real time.

Measured per destination: the run's wall time, the requests and events each stand-in received,
the distinct event ids (each seeded delivery exactly once), the deliveries still due afterwards
and the items `sent`, the DynamoDB requests at the proxy, and where the run's time went (a
DynamoDB call in flight, a POST in flight, neither). Then, for context, TikTok again with 300
new deliveries: one run at the default REDRIVE_BATCH_SIZE against REDRIVE_BATCH_SIZE=1 (one
request per delivery; at most MAX_PAGES deliveries per run, so runs are repeated until none is
due), as requests and seconds per 100 deliveries and their ratios.
"""

import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from benchmarks import common
from benchmarks.standins import StandIns, diff

DELIVERIES = 5000  # per destination
QUICK_DELIVERIES = 500
COMPARISON = 300  # TikTok deliveries for each side of the batch-size comparison
QUICK_COMPARISON = 60
DESTINATIONS = ("tiktok", "meta")
TARGET_REQUESTS_PER_100 = 1.0
SEED = 20251210
SEED_THREADS = 8
SPREAD_SECONDS = 3 * 86400  # payments spread over the last three days (Meta's limit is 7)
NEWEST_SECONDS = 3600  # the newest payment is an hour old: every grace period has passed
MAX_SINGLE_RUNS = 60  # REDRIVE_BATCH_SIZE=1: runs until nothing is due, at most this many
META_PIXEL_ID = "1234567890123456"
META_TOKEN = "meta-benchmark-token"
META_TEST_EVENT_CODE = "TEST54321"
# moto's Query of one 500-item page of RedriveIndex reads, sorts and serialises the whole partition
# in Python: 0.4 to 1.8 s at 10,000 items on this machine (DynamoDB: tens of milliseconds). The
# product's client waits 1.5 s for an answer, then retries; moto serialises its requests, so the
# retry waits behind the Query it abandoned and times out too, and after three attempts the run
# fails with a StoreError. So the benchmark's client waits longer; every other setting (connect
# timeout, retries) is the product's. `--product-read-timeout` keeps the product's 1.5 s.
READ_TIMEOUT_SECONDS = 10.0


# --- where a run's time goes ---------------------------------------------------------------------


@dataclass
class Intervals:
    """Start and end (perf_counter) of calls, by kind, from any thread."""

    spans: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, start: float, end: float) -> None:
        with self._lock:
            self.spans.setdefault(kind, []).append((start, end))

    def clear(self) -> None:
        with self._lock:
            self.spans.clear()

    def kinds(self) -> list[str]:
        with self._lock:
            return sorted(self.spans)

    def of(self, *kinds: str) -> list[tuple[float, float]]:
        with self._lock:
            return [span for kind in kinds for span in self.spans.get(kind, [])]


def covered(spans: list[tuple[float, float]]) -> float:
    """Seconds during which at least one of the spans was in progress."""
    total, end = 0.0, -1.0
    for start, stop in sorted(spans):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


class TimedLedger:
    """The product's DynamoDeliveries, each call's span noted by method (due, claim_due, ...)."""

    def __init__(self, ledger: Any, intervals: Intervals):
        self._ledger = ledger
        self._intervals = intervals

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._ledger, name)
        if not callable(method):
            return method

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self._intervals.add(name, started, time.perf_counter())

        return timed


def timed_http_client(intervals: Intervals) -> Any:
    """`http.new_client()`, with hooks noting each POST from its start until the answer's headers."""
    from checkout_conversions.destinations import http

    client = http.new_client()
    started: dict[int, float] = {}

    def on_request(request: Any) -> None:
        started[id(request)] = time.perf_counter()

    def on_response(response: Any) -> None:
        begun = started.pop(id(response.request), None)
        if begun is not None:
            intervals.add("POST", begun, time.perf_counter())

    client.event_hooks = {"request": [on_request], "response": [on_response]}
    return client


# --- the backlog ---------------------------------------------------------------------------------


def backlog(count: int, destination: str, label: str, now: int, rng: random.Random) -> list[Any]:
    """`count` deliveries to `destination` of live paid checkouts, as the webhook records them."""
    from checkout_conversions.outbox.model import ReportFacts
    from checkout_conversions.outbox.start import Provenance, new_delivery
    from checkout_conversions.purchase import PurchaseKind
    from checkout_conversions.settings import load_settings
    from checkout_conversions.stripe_side import checkout
    from checkout_conversions.values import iso
    from tests.factories import checkout_session, stripe_event

    settings = load_settings()
    chosen = settings.destination(destination)
    deliveries = []
    for index in range(count):
        paid_at = now - NEWEST_SECONDS - rng.randrange(SPREAD_SECONDS)
        recorded_at = paid_at + rng.randint(1, 5)  # the webhook answers within seconds
        session = checkout_session(
            id=f"cs_live_{label}{index:06d}{rng.getrandbits(40):010x}",
            livemode=True,
            amount_subtotal=(amount := rng.randrange(500, 50_000)),
            amount_total=amount,
            currency=rng.choice(("usd", "eur", "gbp")),
            customer=f"cus_Drain{label}{index:06d}",
            client_reference_id=f"user-{label}-{index}",
            customer_details={
                "email": f"Buyer.{label}.{index}@Example.com",
                "name": f"Buyer {label.title()} Number{index}",
                "phone": f"+1 415 555 {index % 10000:04d}",
                "address": {
                    "country": "US",
                    "postal_code": f"{94000 + index % 1000}",
                    "city": "San Francisco",
                },
            },
            metadata={
                "ttclid": f"E.C.P.{rng.getrandbits(64):016x}",
                "ttp": f"{rng.getrandbits(64):016x}ttp",
                "fbp": f"fb.1.{paid_at * 1000}.{rng.getrandbits(31)}",
                "fbclid": f"IwAR{rng.getrandbits(64):016x}",
                "client_ip": f"203.0.113.{index % 250 + 1}",
                "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
                "page_url": "https://shop.example.com/checkout",
                "page_referrer": "https://www.tiktok.com/",
                "ad_consent": "granted",
            },
            created=paid_at - rng.randint(30, 600),
        )
        event = stripe_event(session=session, created=paid_at, livemode=True)
        purchase = checkout.purchase(session, event)
        facts = ReportFacts(PurchaseKind.CHECKOUT, True, paid_at, checkout.ad_consent(session))
        provenance = Provenance(
            stripe_event_id=event["id"],
            event_type=event["type"],
            provisioned_at=iso(recorded_at),
            expires_at=recorded_at + settings.record_retention_days * 86400,
        )
        deliveries.append(new_delivery(chosen, purchase, facts, provenance, settings, recorded_at))
    return deliveries


def seed(admin: Any, sessions_table: str, deliveries: list[Any]) -> float:
    """Record the deliveries straight to moto (not through the counting proxy); seconds taken."""
    from checkout_conversions.store.deliveries import DynamoDeliveries

    ledger = DynamoDeliveries(admin, sessions_table)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=SEED_THREADS) as pool:
        existing = [result for result in pool.map(ledger.start, deliveries) if result is not None]
    if existing:
        raise RuntimeError(f"{len(existing)} seeded deliveries were already recorded")
    return time.perf_counter() - started


def still_due(admin: Any, sessions_table: str, destination: str, now: int) -> int:
    """Deliveries of `destination` in RedriveIndex due at `now`, read straight from moto."""
    total, start = 0, None
    while True:
        request: dict[str, Any] = {
            "TableName": sessions_table,
            "IndexName": "RedriveIndex",
            "KeyConditionExpression": "redrive_queue = :queue AND next_attempt_at <= :now",
            "ExpressionAttributeValues": {":queue": {"S": destination}, ":now": {"N": str(now)}},
            "Select": "COUNT",
        }
        if start:
            request["ExclusiveStartKey"] = start
        page = admin.query(**request)
        total += int(page["Count"])
        start = page.get("LastEvaluatedKey")
        if not start:
            return total


@dataclass
class Stored:
    """What the items with the seeded keys hold after a run, read straight from moto."""

    statuses: Counter[str] = field(default_factory=Counter)
    in_queue: int = 0  # still in RedriveIndex (due now or later)
    not_sent: Counter[str] = field(default_factory=Counter)  # "status: message, due in N s"


def stored(admin: Any, sessions_table: str, keys: set[str], now: int) -> Stored:
    found = Stored()
    ordered = sorted(keys)
    for first in range(0, len(ordered), 100):  # BatchGetItem takes up to 100 keys
        pending: dict[str, Any] = {
            sessions_table: {
                "Keys": [{"session_id": {"S": key}} for key in ordered[first : first + 100]],
                "ProjectionExpression": "session_id, delivery_status, delivery_message, redrive_queue, "
                "next_attempt_at",
                "ConsistentRead": True,
            }
        }
        while pending:
            answer = admin.batch_get_item(RequestItems=pending)
            for item in answer.get("Responses", {}).get(sessions_table, []):
                status = item.get("delivery_status", {}).get("S", "(none)")
                found.statuses[status] += 1
                if "redrive_queue" in item:
                    found.in_queue += 1
                if status != "sent":
                    message = item.get("delivery_message", {}).get("S", "no message")
                    due = item.get("next_attempt_at", {}).get("N")
                    if due is None:
                        when = ", out of the queue"
                    elif int(due) <= now:
                        when = ", due now"
                    else:
                        when = f", due again in {int(due) - now} s"
                    found.not_sent[f"{status}: {message}{when}"] += 1
            pending = answer.get("UnprocessedKeys") or {}
    missing = len(keys) - sum(found.statuses.values())
    if missing:
        found.statuses["(no item)"] += missing
    return found


# --- one redrive run -------------------------------------------------------------------------------


@dataclass
class Run:
    destination: str
    seeded: int
    wall: float
    tally: dict[str, Any]
    remaining_at_end: float  # seconds the context had left when the run returned
    requests: list[list[str]]  # each request's event ids, as the stand-in received it
    dynamodb: dict[str, Any]  # counts and seconds at the proxy, by operation
    time_split: dict[str, float]
    process_cpu: float
    standins_cpu: float
    due_after: int
    stored: Stored
    post_offsets: list[float]  # when each request reached the stand-in, seconds from the run's start
    stop_budget: float  # one request's worst case: the redrive keeps STOP_MARGIN_SECONDS + this
    batch_size: int  # REDRIVE_BATCH_SIZE as the run read it
    error: str | None  # what the invocation raised, if it did (Lambda: a failed invocation)
    expected_ids: set[str] = field(repr=False, default_factory=set)

    @property
    def events(self) -> int:
        return sum(len(ids) for ids in self.requests)

    @property
    def distinct(self) -> int:
        return len({event_id for ids in self.requests for event_id in ids})

    @property
    def per_100_requests(self) -> float:
        return 100 * len(self.requests) / self.seeded if self.seeded else float("nan")

    @property
    def per_100_seconds(self) -> float:
        return 100 * self.wall / self.seeded if self.seeded else float("nan")

    @property
    def exactly_once(self) -> bool:
        received = Counter(event_id for ids in self.requests for event_id in ids)
        return set(received) == self.expected_ids and all(n == 1 for n in received.values())


@contextmanager
def redrive_environment(batch_size: int | None) -> Iterator[None]:
    """REDRIVE_BATCH_SIZE set (None: unset, the default) for the runs inside."""
    before = os.environ.pop("REDRIVE_BATCH_SIZE", None)
    if batch_size is not None:
        os.environ["REDRIVE_BATCH_SIZE"] = str(batch_size)
    try:
        yield
    finally:
        os.environ.pop("REDRIVE_BATCH_SIZE", None)
        if before is not None:
            os.environ["REDRIVE_BATCH_SIZE"] = before


class Harness:
    """The product's redrive, its clients made once as in a warm container, timed run by run."""

    def __init__(
        self,
        standins: StandIns,
        admin: Any,
        sessions_table: str,
        timeout_seconds: float,
        read_timeout: float | None,
    ):
        import boto3
        from botocore.config import Config

        from checkout_conversions.aws import AWS_CLIENT_CONFIG
        from checkout_conversions.observability import metrics
        from checkout_conversions.outbox.redrive import redrive_due_deliveries
        from checkout_conversions.store.deliveries import DynamoDeliveries

        self.standins = standins
        self.admin = admin
        self.sessions_table = sessions_table
        self.timeout_seconds = timeout_seconds
        self.intervals = Intervals()
        self._metrics = metrics
        self._redrive = redrive_due_deliveries
        # The product's client configuration (aws.dynamodb_client), through the proxy; with a longer
        # read timeout unless `read_timeout` is None (see READ_TIMEOUT_SECONDS).
        config = AWS_CLIENT_CONFIG
        if read_timeout is not None:
            config = config.merge(Config(read_timeout=read_timeout))
        self.read_timeout = config.read_timeout
        dynamodb = boto3.client("dynamodb", config=config)
        self._open_ledger: Callable[[Any], Any] = lambda settings: TimedLedger(
            DynamoDeliveries(dynamodb, settings.tables.sessions), self.intervals
        )
        self.http_client = timed_http_client(self.intervals)

    def worst_case_seconds(self, destination: str) -> float:
        """How long the redrive reckons one request may take (`Sending.worst_case_seconds`)."""
        from checkout_conversions.outbox.sending import open_sending
        from checkout_conversions.settings import load_settings

        settings = load_settings()
        return open_sending(settings.destination(destination), settings, self.http_client).worst_case_seconds

    def arrivals(self, destination: str) -> list[tuple[float, list[str]]]:
        return list(self.standins.call(f"{destination}_arrivals"))

    def run(self, destination: str, expected: list[Any]) -> Run:
        """One scheduled invocation of the redrive for `destination`."""
        from checkout_conversions.settings import load_settings

        self.standins.call("collect")
        self.intervals.clear()
        already = len(self.arrivals(destination))
        before = self.standins.snapshot()
        standins_cpu = self.standins.call("cpu_seconds")
        context = common.context(self.timeout_seconds, function_name=common.REDRIVE_FUNCTION)
        cpu = time.process_time()
        error = None
        with common.quiet_stdout():
            started = time.perf_counter()
            try:
                tally = self._redrive(
                    self._open_ledger, self.http_client, context, {"destination": destination}
                )
            except Exception as raised:  # the invocation failed: reported, and the benchmark goes on
                tally, error = {}, f"{type(raised).__name__}: {raised}"
                _progress(f"{destination}: the redrive raised {error}")
            wall = time.perf_counter() - started
            remaining = context.get_remaining_time_in_millis() / 1000
            cpu = time.process_time() - cpu
            self._metrics.flush_metrics()  # what the handler's log_metrics does (not timed)
        standins_cpu = self.standins.call("cpu_seconds") - standins_cpu
        change = diff(self.standins.snapshot(), before)
        arrived = self.arrivals(destination)[already:]
        requests = [ids for _, ids in arrived]
        keys = {delivery.key for delivery in expected}
        ledger_calls = [kind for kind in self.intervals.kinds() if kind != "POST"]
        dynamodb_spans = self.intervals.of(*ledger_calls)
        post_spans = self.intervals.of("POST")
        either = covered(dynamodb_spans + post_spans)
        split = {
            "DynamoDB call in flight": covered(dynamodb_spans),
            "POST in flight": covered(post_spans),
            "both": covered(dynamodb_spans) + covered(post_spans) - either,
            "neither (our code: events, bodies, logs, threads)": wall - either,
        }
        for kind in ledger_calls:
            split[f"of which {kind} in flight"] = covered(self.intervals.of(kind))
        return Run(
            destination=destination,
            seeded=len(expected),
            wall=wall,
            tally=tally.get(destination, {}),
            error=error,
            remaining_at_end=remaining,
            requests=requests,
            dynamodb={
                "counts": change["counts"],
                "seconds": change["seconds"],
                "abandoned": change.get("abandoned", {}),
            },
            time_split=split,
            process_cpu=cpu,
            standins_cpu=standins_cpu,
            due_after=still_due(self.admin, self.sessions_table, destination, int(time.time())),
            stored=stored(self.admin, self.sessions_table, keys, int(time.time())),
            post_offsets=[at - started for at, _ in arrived],
            stop_budget=self.worst_case_seconds(destination),
            batch_size=load_settings().redrive.batch_size,
            expected_ids={delivery.event_id for delivery in expected},
        )


def redrive_timeout() -> float:
    """DeliveryRedriveFunction's Timeout in template.yaml (else the Globals' one, else Lambda's 3 s)."""
    from devtools.template_tables import load_template

    template = load_template()
    own = template["Resources"][common.REDRIVE_FUNCTION]["Properties"].get("Timeout")
    return float(own or template["Globals"]["Function"].get("Timeout") or 3)


# --- the benchmark -------------------------------------------------------------------------------


def run(
    deliveries: int = DELIVERIES,
    comparison: int = COMPARISON,
    read_timeout: float | None = READ_TIMEOUT_SECONDS,
    lambda_timeout: float | None = None,
    seed_value: int = SEED,
) -> common.Section:
    rng = random.Random(seed_value)
    timeout_seconds = lambda_timeout or redrive_timeout()
    with StandIns() as standins:
        admin = common.dynamodb_admin(standins.moto_url)
        tables = common.create_tables(admin, prefix="drain-")
        sessions_table = tables["SESSIONS_TABLE_NAME"]
        environment = common.function_environment(
            standins.proxy_url,
            tables,
            standins.tiktok_url,
            functions=(common.REDRIVE_FUNCTION,),
            parameters={
                "MetaPixelId": META_PIXEL_ID,
                "MetaAccessToken": META_TOKEN,
                "MetaTestEventCode": META_TEST_EVENT_CODE,
            },
        )
        environment["META_API_BASE_URL"] = standins.meta_url
        os.environ.update(environment)
        os.environ.pop("REDRIVE_BATCH_SIZE", None)
        common.quiet_logs()
        standins.call("behave", "ok")
        standins.call("meta_behave", "ok")

        now = int(time.time())
        backlogs = {name: backlog(deliveries, name, name[:2], now, rng) for name in DESTINATIONS}
        seeding = seed(admin, sessions_table, [d for name in DESTINATIONS for d in backlogs[name]])
        _progress(f"seeded {sum(len(b) for b in backlogs.values())} deliveries in {seeding:.1f} s")
        harness = Harness(standins, admin, sessions_table, timeout_seconds, read_timeout)
        runs = []
        for name in DESTINATIONS:
            runs.append(finished := harness.run(name, backlogs[name]))
            _progress(
                f"{name}: one run, {finished.wall:.1f} s, {len(finished.requests)} requests, "
                f"{finished.distinct} distinct events, {finished.stored.in_queue} left in the queue"
            )

        # For context: the same destination at REDRIVE_BATCH_SIZE=1 (one request per delivery).
        now = int(time.time())
        default_side = backlog(comparison, "tiktok", "cd", now, rng)
        single_side = backlog(comparison, "tiktok", "c1", now, rng)
        seed(admin, sessions_table, default_side)
        with redrive_environment(None):
            default_runs = [harness.run("tiktok", default_side)]
        seed(admin, sessions_table, single_side)
        single_runs: list[Run] = []
        with redrive_environment(1):
            while len(single_runs) < MAX_SINGLE_RUNS:
                single_runs.append(harness.run("tiktok", single_side))
                if single_runs[-1].stored.in_queue == 0 or not single_runs[-1].requests:
                    break
        _progress(f"comparison: 1 run at the default batch size, {len(single_runs)} at REDRIVE_BATCH_SIZE=1")
        load = os.getloadavg()

    return _section(
        runs, default_runs, single_runs, comparison, seeding, timeout_seconds, harness.read_timeout, load
    )


_STARTED = time.perf_counter()


def _progress(message: str) -> None:
    print(f"[{time.perf_counter() - _STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def _side(runs: list[Run], seeded: int) -> dict[str, Any]:
    requests = sum(len(r.requests) for r in runs)
    wall = sum(r.wall for r in runs)
    ids = Counter(event_id for r in runs for ids in r.requests for event_id in ids)
    return {
        "runs": len(runs),
        "seeded": seeded,
        "requests": requests,
        "events": sum(ids.values()),
        "distinct": len(ids),
        "exactly_once": len(ids) == seeded and all(n == 1 for n in ids.values()),
        "seconds": wall,
        "requests_per_100": 100 * requests / seeded,
        "seconds_per_100": 100 * wall / seeded,
        "in_queue_after": runs[-1].stored.in_queue if runs else seeded,
        "sent": runs[-1].stored.statuses.get("sent", 0) if runs else 0,
    }


def _checks(runs: list[Run], timeout_seconds: float) -> list[tuple[str, Any, Any, bool]]:
    checks: list[tuple[str, Any, Any, bool]] = []
    for r in runs:
        name, sent = r.destination, r.stored.statuses.get("sent", 0)
        checks += [
            (f"{name}: the invocation raised nothing", r.error or "nothing", "nothing", r.error is None),
            (f"{name}: events received == deliveries", r.events, r.seeded, r.events == r.seeded),
            (f"{name}: distinct event ids == deliveries", r.distinct, r.seeded, r.distinct == r.seeded),
            (
                f"{name}: every seeded event id received exactly once",
                "yes" if r.exactly_once else "no",
                "yes",
                r.exactly_once,
            ),
            (f"{name}: items `sent`", sent, r.seeded, sent == r.seeded),
            (f"{name}: due after the run", r.due_after, 0, r.due_after == 0),
            (f"{name}: in the redrive queue after the run", r.stored.in_queue, 0, r.stored.in_queue == 0),
            (
                f"{name}: platform requests per 100 deliveries",
                f"{r.per_100_requests:.2f}",
                f"<= {TARGET_REQUESTS_PER_100:g}",
                r.per_100_requests <= TARGET_REQUESTS_PER_100,
            ),
            (
                f"{name}: the run returned within the {timeout_seconds:g} s timeout",
                f"{r.wall:.1f} s",
                f"< {timeout_seconds:g} s",
                r.wall < timeout_seconds,
            ),
        ]
    return checks


def _section(
    runs: list[Run],
    default_runs: list[Run],
    single_runs: list[Run],
    comparison: int,
    seeding: float,
    timeout_seconds: float,
    read_timeout: float,
    load: tuple[float, float, float],
) -> common.Section:
    from checkout_conversions.outbox.redrive import MAX_PAGES, STOP_MARGIN_SECONDS

    checks = _checks(runs, timeout_seconds)
    ok = all(passed for *_, passed in checks)
    main_table = common.table(
        [
            "destination",
            "deliveries",
            "run wall time",
            "left in the context",
            "platform requests",
            "events",
            "distinct ids",
            "events per request",
            "requests per 100",
            "due / queued after",
            "tally",
        ],
        [
            [
                r.destination,
                r.seeded,
                f"**{r.wall:.1f} s**",
                f"{r.remaining_at_end:.1f} s",
                len(r.requests),
                r.events,
                r.distinct,
                ", ".join(_sizes(r.requests)) or "-",
                f"**{r.per_100_requests:.2f}**",
                f"{r.due_after} / {r.stored.in_queue}",
                ", ".join(f"{k} {v}" for k, v in sorted(r.tally.items())) or f"raised {r.error}",
            ]
            for r in runs
        ],
    )
    check_table = common.table(
        ["check", "counted", "target", ""],
        [[name, counted, target, "ok" if passed else "**MISS**"] for name, counted, target, passed in checks],
    )
    timeline = "\n".join(
        f"* {r.destination}: requests reached the stand-in at "
        f"{', '.join(f'{offset:.1f}' for offset in r.post_offsets) or 'no time'} s from the run's start."
        for r in runs
    )
    not_sent = [[r.destination, what, n] for r in runs for what, n in sorted(r.stored.not_sent.items())]
    not_sent_table = (
        common.table(["destination", "not sent: status, message, next attempt", "deliveries"], not_sent)
        if not_sent
        else "Every seeded delivery ended `sent`."
    )
    split_rows = []
    for r in runs:
        for part, seconds in r.time_split.items():
            share = f"{seconds / r.wall:.0%}" if r.wall else ""
            split_rows.append([r.destination, part, f"{seconds:.1f} s", share])
        split_rows.append(
            [r.destination, "CPU time of this process (all threads)", f"{r.process_cpu:.1f} s", ""]
        )
        split_rows.append(
            [
                r.destination,
                "CPU time of the stand-ins' process (moto, proxy, platforms)",
                f"{r.standins_cpu:.1f} s",
                "",
            ]
        )
    split_table = common.table(["destination", "wall time with ...", "seconds", "share"], split_rows)
    dynamo_rows = []
    for r in runs:
        pages = -(-r.seeded // r.batch_size)  # a Query per page of due deliveries
        expected = {"Query": pages, "UpdateItem": 2 * r.seeded}  # a claim and a record each
        for target, n in sorted(r.dynamodb["counts"].items()):
            seconds = r.dynamodb["seconds"].get(target, 0.0)
            dynamo_rows.append(
                [
                    r.destination,
                    target,
                    n,
                    expected.get(target, 0),
                    r.dynamodb["abandoned"].get(target, 0),
                    f"{n / r.seeded:.3f}",
                    common.ms(seconds / n) if n else "-",
                ]
            )
    dynamo_table = common.table(
        [
            "destination",
            "DynamoDB request (at the proxy)",
            "count",
            "expected",
            "answers the client gave up on",
            "per delivery",
            "mean at the proxy",
        ],
        dynamo_rows,
    )
    dynamo_note = (
        "Expected: one Query per page of due deliveries and two UpdateItems per delivery (its claim "
        f"and its record). More means botocore retried after its read timeout ({read_timeout:g} s "
        "here; the proxy counts the answers it could no longer deliver). A retried Query reads the "
        "same page; a retried claim recognises its own token; a retried record finds the claim gone "
        "and is dropped with a warning. moto's Query of a 500-item page of RedriveIndex reads, sorts "
        "and serialises the whole partition in Python (0.4 to 1.8 s at 10,000 items here; DynamoDB "
        "answers in tens of milliseconds), which can exceed the product's 1.5 s read timeout; and "
        "since moto serialises its requests, each retry waits behind the Query it abandoned and times "
        "out too, so with the product's timeout a run can end on its first Query with a StoreError "
        "(`--product-read-timeout` shows it). Hence the longer read timeout here."
    )
    default, single = _side(default_runs, comparison), _side(single_runs, comparison)
    comparison_table = common.table(
        [
            "TikTok, new deliveries",
            "REDRIVE_BATCH_SIZE",
            "runs",
            "platform requests",
            "events (distinct)",
            "requests per 100",
            "seconds per 100",
            "sent / queued after",
        ],
        [
            [
                comparison,
                label,
                side["runs"],
                side["requests"],
                f"{side['events']} ({side['distinct']})",
                f"{side['requests_per_100']:.2f}",
                f"{side['seconds_per_100']:.2f} s",
                f"{side['sent']} / {side['in_queue_after']}",
            ]
            for label, side in (("default (500)", default), ("1", single))
        ]
        + [
            [
                "ratio (1 / default)",
                "",
                "",
                "",
                "",
                common.times(common.ratio(single["requests_per_100"], default["requests_per_100"])),
                common.times(common.ratio(single["seconds_per_100"], default["seconds_per_100"])),
                "",
            ]
        ],
    )
    notes = (
        f"{runs[0].seeded if runs else 0} deliveries per destination ({sum(r.seeded for r in runs)} "
        f"items), live paid checkouts paid over the last {SPREAD_SECONDS // 86400} days (the newest "
        f"{NEWEST_SECONDS // 3600} h ago) and recorded as the webhook records them, all due; seeded "
        f"straight to moto from {SEED_THREADS} threads in {seeding:.1f} s (not timed, not counted). "
        f"One redrive run per destination (`redrive_due_deliveries`, event "
        f'`{{"destination": ...}}`), TikTok first, with the product\'s DynamoDB client configuration '
        f"(through the counting proxy; read timeout {read_timeout:g} s, the product's being 1.5 s: "
        f"moto's Query is slow, see the note on DynamoDB requests), `http.new_client()` and a context "
        f"counting down "
        f"DeliveryRedriveFunction's Timeout ({timeout_seconds:g} s) in real time; the stand-ins "
        f"answer at once. REDRIVE_BATCH_SIZE at its default. Target: every delivery sent, exactly "
        f"once, in one run, with at most {TARGET_REQUESTS_PER_100:g} platform request per 100 "
        f"deliveries. The redrive starts a page only while more than {STOP_MARGIN_SECONDS:g} s plus "
        f"one request's worst case are left, builds more events only while that much is left, and "
        f"POSTs while the request and the records fit (else what it claimed goes back unsent, due "
        f"again at once: `released` in the tally): with this "
        f"{timeout_seconds:g} s timeout its pages must be started by about "
        f"{timeout_seconds - STOP_MARGIN_SECONDS - (runs[0].stop_budget if runs else 0):.0f} s."
    )
    split_note = (
        "Where each run's wall time went, from this process: spans of the ledger's calls (a DynamoDB "
        "request with its retries: Query for `due`, UpdateItem for the claims and the records, up to 8 "
        "at once) and of the POSTs (until the answer's headers), merged so that overlapping calls count "
        "once. 'Neither' is our own code between them: building each event, the request's JSON, the log "
        "lines and metrics, the thread pools. moto serialises its operations (one lock), so while the "
        "claims and records run it works one UpdateItem at a time and the 8 writers mostly wait for it: "
        "the mean at the proxy includes that wait."
    )
    comparison_note = (
        f"For context, within this run: TikTok again, {comparison} new deliveries each side. "
        f"REDRIVE_BATCH_SIZE=1 sends one delivery per request, and a run reads at most MAX_PAGES "
        f"({MAX_PAGES}) pages, so at most {MAX_PAGES} deliveries per run: its runs were repeated until "
        f"none was left ({single['runs']} runs, where the schedule would take "
        f"{5 * single['runs']} minutes). Seconds per 100 are the runs' wall times summed."
    )
    markdown = "\n\n".join(
        [
            notes,
            main_table,
            check_table,
            timeline,
            not_sent_table,
            split_note,
            split_table,
            dynamo_table,
            dynamo_note,
            comparison_note,
            comparison_table,
            f"Load average at the end: {', '.join(f'{v:.2f}' for v in load)}.",
        ]
    )
    data = {
        "target_requests_per_100": TARGET_REQUESTS_PER_100,
        "timeout_seconds": timeout_seconds,
        "read_timeout_seconds": read_timeout,
        "seeding_seconds": seeding,
        "runs": [
            {
                "destination": r.destination,
                "deliveries": r.seeded,
                "wall": r.wall,
                "remaining_at_end": r.remaining_at_end,
                "requests": len(r.requests),
                "events": r.events,
                "distinct": r.distinct,
                "exactly_once": r.exactly_once,
                "requests_per_100": r.per_100_requests,
                "seconds_per_100": r.per_100_seconds,
                "due_after": r.due_after,
                "in_queue_after": r.stored.in_queue,
                "statuses": dict(r.stored.statuses),
                "not_sent": dict(r.stored.not_sent),
                "post_offsets": r.post_offsets,
                "tally": r.tally,
                "error": r.error,
                "dynamodb": r.dynamodb,
                "time_split": r.time_split,
                "process_cpu": r.process_cpu,
                "standins_cpu": r.standins_cpu,
            }
            for r in runs
        ],
        "comparison": {"default": default, "batch_size_1": single},
        "checks": [{"check": c, "counted": a, "target": t, "ok": p} for c, a, t, p in checks],
    }
    title = "7. Drain a backlog (one redrive run per destination)"
    return common.Section("drain_backlog", title, markdown, data, ok=ok)


def _sizes(requests: list[list[str]]) -> list[str]:
    """Events per request in order, a run of equal sizes shortened (`1, 499, 500 x9`)."""
    groups: list[list[int]] = []
    for ids in requests:
        if groups and groups[-1][0] == len(ids):
            groups[-1][1] += 1
        else:
            groups.append([len(ids), 1])
    return [f"{size}" if n == 1 else f"{size} x{n}" for size, n in groups]


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__)
    parser.add_argument(
        "--deliveries", type=int, help=f"per destination; default {DELIVERIES}, --quick {QUICK_DELIVERIES}"
    )
    parser.add_argument(
        "--comparison", type=int, help=f"per side; default {COMPARISON}, --quick {QUICK_COMPARISON}"
    )
    parser.add_argument(
        "--product-read-timeout",
        action="store_true",
        help=f"the product's DynamoDB read timeout (1.5 s), not {READ_TIMEOUT_SECONDS:g} s (see the module)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        help="the redrive's Lambda timeout in seconds, instead of template.yaml's (to see what a "
        "run does when its time runs out)",
    )
    args = parser.parse_args(argv)
    deliveries = args.deliveries or (QUICK_DELIVERIES if args.quick else DELIVERIES)
    comparison = args.comparison or (QUICK_COMPARISON if args.quick else COMPARISON)
    read_timeout = None if args.product_read_timeout else READ_TIMEOUT_SECONDS
    section = common.timed(run, deliveries, comparison, read_timeout, args.timeout)
    common.emit(section, args.json_out)
    return 0 if section.ok else 1


if __name__ == "__main__":
    sys.exit(main())
