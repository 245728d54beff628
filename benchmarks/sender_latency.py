"""Sender latency: from the webhook's answer to TikTok receiving the purchase, through the stream.

One process, as `make run` does it: the webhook (stripe_webhook.app) answers in the main thread;
devtools/stream_mapping.LocalStreamMapping polls the Sessions table's stream in a thread of its
own (`mapping.start()`: a poll 0.25 s after the last one ended, as Lambda polls a shard about
four times a second) and invokes the real sender (delivery_sender.app.lambda_handler) with the
template's filter and batch size. Each session: a random pause of up to one poll interval (so
the answer falls at a random point of the poll cycle), the webhook's answer, then a wait until the
sender has been invoked with it. The TikTok stand-in (answering at once) notes when each POST
arrived, on CLOCK_MONOTONIC, which every process on the machine shares.

Where requests go: the webhook's and the sender's DynamoDB clients and the mapping's Streams
client all go through the counting proxy (AWS_ENDPOINT_URL_DYNAMODB, and the Streams client's
endpoint_url), so each is counted: the sender's as UpdateItem etc., the poller's as
`Streams.GetRecords` etc. (in AWS those are Lambda's own requests, not billed to the function).
Only the mapping's one DescribeTable at set-up goes straight to moto.
"""

import json
import random
import threading
import time
from collections import Counter
from typing import Any

from benchmarks import common
from benchmarks.standins import StandIns, diff

SESSIONS = 100
QUICK_SESSIONS = 10
WARMUP = 3
SEED = 20251201
WAIT_SECONDS = 15.0
EXPECTED_SENDER_REQUESTS = {"UpdateItem": 2}  # claim + record, per sent delivery


def run(sessions: int = SESSIONS, warmup: int = WARMUP, seed: int = SEED) -> common.Section:
    from devtools.stream_mapping import POLL_INTERVAL_SECONDS

    rng = random.Random(seed)
    answered: dict[str, float] = {}
    problems: Counter = Counter()
    invocations: list[dict[str, Any]] = []  # the sender's, timed here
    invoked = threading.Condition()

    with StandIns() as standins:
        admin = common.dynamodb_admin(standins.moto_url)
        tables = common.create_tables(admin, prefix="sender-")
        sessions_table = tables["SESSIONS_TABLE_NAME"]
        environment = common.function_environment(
            standins.proxy_url,
            tables,
            standins.tiktok_url,
            functions=(common.WEBHOOK_FUNCTION, common.SENDER_FUNCTION),
        )
        webhook = common.load_handler(environment)
        sender = common.load_sender(environment)

        def sender_handler(event: dict[str, Any], context: Any) -> Any:
            started = time.perf_counter()
            try:
                return sender.lambda_handler(event, context)
            finally:
                ended = time.perf_counter()
                ids = [_session_of(record) for record in event.get("Records", [])]
                with invoked:
                    invocations.append({"started": started, "ended": ended, "sessions": ids})
                    invoked.notify_all()

        mapping = common.stream_mapping(standins.proxy_url, admin, sessions_table, sender_handler)
        standins.call("behave", "ok")

        def one_session(index: int) -> str:
            time.sleep(rng.uniform(0, POLL_INTERVAL_SECONDS))  # a random phase of the poll cycle
            stripe_event = common.paid_session_event(index)
            session_id = common.session_id(stripe_event)
            answer = webhook.lambda_handler(common.signed(stripe_event), common.context())
            answered[session_id] = time.perf_counter()
            body = json.loads(answer["body"])
            started = body.get("deliveries", {}).get("tiktok", {})
            if answer["statusCode"] != 200 or started.get("status") != "pending":
                problems[f"webhook answered {answer['statusCode']} {body}"] += 1
            deadline = time.monotonic() + WAIT_SECONDS
            with invoked:
                while not any(session_id in i["sessions"] for i in invocations):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        problems["a session was not handed to the sender in time"] += 1
                        break
                    invoked.wait(left)
            return session_id

        with common.quiet_stdout():
            mapping.start(POLL_INTERVAL_SECONDS)
            try:
                for index in range(warmup):  # the sender's first invocation loads its clients' models
                    one_session(-1 - index)
                standins.call("collect")
                time.sleep(POLL_INTERVAL_SECONDS * 2)  # the warm-up's MODIFY records read and dropped
                before = standins.snapshot()
                first_invocation = len(invocations)
                measured_from = time.perf_counter()
                measured = [one_session(index) for index in range(sessions)]
                with invoked:  # the last invocation has recorded its outcome: nothing in flight
                    measured_until = max(i["ended"] for i in invocations)
                change = diff(standins.snapshot(), before)
            finally:
                mapping.stop()
        arrivals = standins.call("tiktok_arrivals")
        durations = standins.call("durations")
        at_moto = {  # the measured part of each request kind's times at moto (at the proxy)
            target: values[before["counts"].get(target, 0) :] for target, values in durations.items()
        }
        stored = Counter(common.scan_attribute(admin, sessions_table, "delivery_status"))

    failed_invocations = [i for i in mapping.invocations if i.error is not None or i.failed_ids()]
    return _section(
        measured=measured,
        answered=answered,
        arrivals=arrivals,
        invocations=invocations[first_invocation:],
        change=change,
        at_moto=at_moto,
        seconds=measured_until - measured_from,
        problems=problems,
        stored=stored,
        failed_invocations=len(failed_invocations),
        given_up=len(mapping.given_up),
        poll_interval=POLL_INTERVAL_SECONDS,
        seed=seed,
        warmup=warmup,
    )


def _session_of(record: dict[str, Any]) -> str:
    """The checkout session a stream record's delivery is of (its key is `<session id>#tiktok`)."""
    key = str(record.get("dynamodb", {}).get("NewImage", {}).get("session_id", {}).get("S"))
    return key.rpartition("#")[0] or key


def _section(
    measured: list[str],
    answered: dict[str, float],
    arrivals: list[tuple[float, list[str]]],
    invocations: list[dict[str, Any]],
    change: dict[str, Any],
    at_moto: dict[str, list[float]],
    seconds: float,
    problems: Counter,
    stored: Counter,
    failed_invocations: int,
    given_up: int,
    poll_interval: float,
    seed: int,
    warmup: int,
) -> common.Section:
    arrived: dict[str, list[float]] = {}
    for at, event_ids in arrivals:
        for event_id in event_ids:
            arrived.setdefault(event_id, []).append(at)
    by_session = {}
    for invocation in invocations:
        for session_id in invocation["sessions"]:
            by_session.setdefault(session_id, invocation)

    total, to_invocation, to_tiktok, after_tiktok = [], [], [], []
    for session_id in measured:
        times = arrived.get(session_id)
        if not times:
            problems["a session never reached TikTok"] += 1
            continue
        if len(times) > 1:
            problems["a session reached TikTok more than once"] += 1
        total.append(times[0] - answered[session_id])
        invocation = by_session.get(session_id)
        if invocation:
            to_invocation.append(invocation["started"] - answered[session_id])
            to_tiktok.append(times[0] - invocation["started"])
            after_tiktok.append(invocation["ended"] - times[0])

    delivered = len(total)
    counts = change["counts"]
    sender_counts = {
        t: n for t, n in counts.items() if not t.startswith("Streams.") and t != "TransactWriteItems"
    }
    poller_counts = {t: n for t, n in counts.items() if t.startswith("Streams.")}
    webhook_counts = {t: n for t, n in counts.items() if t == "TransactWriteItems"}
    per_record = {t: n / delivered for t, n in sender_counts.items()} if delivered else {}
    expected_sender = bool(delivered) and sender_counts == {
        t: n * delivered for t, n in EXPECTED_SENDER_REQUESTS.items()
    }
    tiktok_requests = change["tiktok"]
    sent = stored.get("sent", 0)
    checks = [
        ("sessions whose purchase reached TikTok", delivered, len(measured)),
        ("TikTok requests during the run", tiktok_requests, len(measured)),
        ("session items sent (warm-up included)", sent, len(measured) + warmup),
        ("sender invocations that failed or reported a failed record", failed_invocations, 0),
        ("records given up (the on-failure destination)", given_up, 0),
        ("other problems", sum(problems.values()), 0),
    ]
    ok = expected_sender and all(actual == expected for _, actual, expected in checks)

    def row(label: str, values: list[float]) -> list[Any]:
        s = common.Summary.of(values)
        return [label, s.n, common.ms(s.median), common.ms(s.p99), common.ms(s.max), common.ms(s.min)]

    latency = common.table(
        ["from the webhook's answer", "sessions", "p50", "p99", "max", "min"],
        [
            row("**to TikTok receiving the POST**", total),
            row("of which: to the sender's invocation (waiting for the poll, GetRecords)", to_invocation),
            row("of which: invocation to TikTok (token, claim UpdateItem, POST)", to_tiktok),
            row(
                "after TikTok received it: answer, record UpdateItem, logs, EMF (not in the total)",
                after_tiktok,
            ),
        ],
    )
    batch_sizes = Counter(len(invocation["sessions"]) for invocation in invocations)
    request_rows = [
        [
            f"sender: {target}",
            n,
            f"{n / delivered:.2f}" if delivered else "n/a",
            f"{EXPECTED_SENDER_REQUESTS.get(target, 0)}",
        ]
        for target, n in sorted(sender_counts.items())
    ]
    request_rows += [
        [f"webhook: {target}", n, f"{n / delivered:.2f}" if delivered else "n/a", "1"]
        for target, n in sorted(webhook_counts.items())
    ]
    request_rows += [
        [
            f"poller (Lambda's own in AWS, unbilled): {target}",
            n,
            f"{n / delivered:.2f}" if delivered else "n/a",
            f"{n / seconds:.1f}/s" if seconds else "",
        ]
        for target, n in sorted(poller_counts.items())
    ]
    request_rows.append(["TikTok POST", tiktok_requests, f"{tiktok_requests / max(delivered, 1):.2f}", "1"])
    requests_table = common.table(
        ["requests during the run (at the counting proxy)", "count", "per delivered record", "expected"],
        request_rows,
    )
    check_table = common.table(
        ["check", "counted", "expected", ""],
        [
            [name, actual, expected, "ok" if actual == expected else "**MISMATCH**"]
            for name, actual, expected in checks
        ]
        + [
            [
                "sender DynamoDB requests per delivered record == 2 UpdateItems (claim + record)",
                ", ".join(f"{t} {n:.2f}" for t, n in sorted(per_record.items())) or "none",
                "UpdateItem 2.00",
                "ok" if expected_sender else "**MISMATCH**",
            ]
        ],
    )
    summary = common.Summary.of(total)
    notes = (
        f"{len(measured)} sessions after {warmup} warm-up sessions, one at a time: a random pause of 0 to "
        f"{poll_interval:g} s (seed {seed}), the webhook's answer, then the wait for the sender. The mapping "
        f"polls {poll_interval:g} s after its last poll ended (`LocalStreamMapping.start()`), with "
        f"template.yaml's filter and batch size; the sender was invoked {len(invocations)} times, with "
        f"{', '.join(f'{n} x {size} record(s)' for size, n in sorted(batch_sizes.items()))}. Webhook and "
        f"sender share this process (as in `make run`; on Lambda they are separate containers), the "
        f"environment being template.yaml's for both, parameters at their defaults (tracing off) but the "
        f"secrets, pixel, test event code and phone country. The webhook's and the sender's DynamoDB "
        f"clients (AWS_ENDPOINT_URL_DYNAMODB) and the mapping's Streams client all go through the counting "
        f"proxy (only the mapping's DescribeTable at set-up goes to moto directly), so the requests below "
        f"are counted by who made them, over {seconds:.1f} s, from the first measured session to the last "
        f"invocation's end."
    )
    poll_kinds = ("Streams.DescribeStream", "Streams.GetShardIterator", "Streams.GetRecords")
    poll_at_moto = sum(common.Summary.of(at_moto.get(kind) or [0.0]).median for kind in poll_kinds)
    reading = (
        f"The wait for the poll dominates (p50 {common.ms(common.Summary.of(to_invocation).median)}): a poll "
        f"starts {poll_interval:g} s after the previous one ended and makes a DescribeStream, a "
        f"GetShardIterator and a GetRecords ({common.ms(poll_at_moto)} at moto, p50 each, summed), and one "
        f"GetRecords more when it finds records; the poll right after an invocation reads that "
        f"invocation's own MODIFY records (the claim and the outcome) and drops them, so a poll cycle "
        f"lasts somewhat more than {poll_interval:g} s. Then the sender's claim and POST (p50 "
        f"{common.ms(common.Summary.of(to_tiktok).median)}). On Lambda the stream adds its own propagation "
        f"delay before a record can be read (moto has none), and Lambda's poller works outside the "
        f"function. p50 {common.ms(summary.median)}, p99 {common.ms(summary.p99)}, max "
        f"{common.ms(summary.max)}."
    )
    updates = at_moto.get("UpdateItem", [])  # one record per invocation: claim, record, claim, ...

    def moto_p50(values: list[float]) -> str:
        return common.ms(common.Summary.of(values).median) if values else "-"

    moto_line = (
        f"Time at moto (p50, at the proxy): the claim UpdateItem {moto_p50(updates[0::2])}, the record "
        f"UpdateItem {moto_p50(updates[1::2])} (moto parses update expressions slowly, the record's long "
        f"SET/REMOVE one most), GetRecords {moto_p50(at_moto.get('Streams.GetRecords', []))}, "
        f"GetShardIterator {moto_p50(at_moto.get('Streams.GetShardIterator', []))}, DescribeStream "
        f"{moto_p50(at_moto.get('Streams.DescribeStream', []))}; the webhook's TransactWriteItems "
        f"{moto_p50(at_moto.get('TransactWriteItems', []))}."
    )
    session_states = f"Session items by delivery_status at the end: {dict(stored)}."
    markdown = "\n\n".join([notes, latency, reading, requests_table, moto_line, check_table, session_states])
    data = {
        "latency": vars(summary),
        "to_invocation": vars(common.Summary.of(to_invocation)),
        "to_tiktok": vars(common.Summary.of(to_tiktok)),
        "after_tiktok": vars(common.Summary.of(after_tiktok)),
        "delivered": delivered,
        "sessions": len(measured),
        "sender_requests_per_record": per_record,
        "poller_requests": poller_counts,
        "poller_requests_per_second": {t: n / seconds for t, n in poller_counts.items()} if seconds else {},
        "seconds": seconds,
        "checks": [{"check": c, "counted": a, "expected": e} for c, a, e in checks],
        "expected_sender_requests": expected_sender,
        "problems": dict(problems),
    }
    return common.Section(
        "sender_latency", "4. Sender latency (webhook's answer to TikTok)", markdown, data, ok=ok
    )


def main(argv: list[str] | None = None) -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--sessions", type=int, help=f"default {SESSIONS}, --quick {QUICK_SESSIONS}")
    args = parser.parse_args(argv)
    sessions = args.sessions or (QUICK_SESSIONS if args.quick else SESSIONS)
    section = common.timed(run, sessions, 2 if args.quick else WARMUP)
    common.emit(section, args.json_out)


if __name__ == "__main__":
    main()
