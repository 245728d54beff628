"""Burst: 2,000 deliveries, 30 % of them redeliveries, from 16 threads; then the stream drained.

About 1,400 distinct paid sessions; the other 600 deliveries are redeliveries of randomly chosen
ones (the same event, signed again), all shuffled, so a redelivery can come before, after or at
the same moment as its first delivery. 16 threads call the webhook's lambda_handler in one
process (the handler and its client imported once) against the stand-ins (moto behind the
counting proxy). Then devtools/stream_mapping.LocalStreamMapping drains the Sessions table's
stream into the real sender (delivery_sender.app.lambda_handler, TikTok stand-in answering at
once), as Lambda's event source mapping would: the template's filter, batches of 10. Correctness
is read back from the tables and the TikTok stand-in.

Note: on Lambda one container handles one invocation at a time; 16 threads in one process share
the webhook's boto3 client (10 connections) and Powertools' global logger and metrics, which
Lambda never does. Throughput here is that of one process on this machine with moto as
DynamoDB, not a Lambda figure.
"""

import json
import os
import random
import threading
import time
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchmarks import common
from benchmarks.standins import StandIns, diff

DELIVERIES = 2000
QUICK_DELIVERIES = 300
DUPLICATE_SHARE = 0.30
THREADS = 16
SEED = 20251122
DRAIN_TIMEOUT_SECONDS = 900.0  # drain() stops polling after this; the first poll hands over everything


def plan(deliveries: int, duplicate_share: float, seed: int) -> tuple[list[dict[str, Any]], int]:
    """The Stripe events in delivery order, and the number of distinct sessions."""
    rng = random.Random(seed)
    distinct = round(deliveries * (1 - duplicate_share))
    firsts = [common.paid_session_event(index) for index in range(distinct)]
    again = [rng.choice(firsts) for _ in range(deliveries - distinct)]
    order = firsts + again
    rng.shuffle(order)
    return order, distinct


def run(deliveries: int = DELIVERIES, threads: int = THREADS, seed: int = SEED) -> common.Section:
    events, distinct = plan(deliveries, DUPLICATE_SHARE, seed)
    with StandIns() as standins:
        admin = common.dynamodb_admin(standins.moto_url)
        tables = common.create_tables(admin, prefix="burst-")
        environment = common.function_environment(
            standins.proxy_url,
            tables,
            standins.tiktok_url,
            functions=(common.WEBHOOK_FUNCTION, common.SENDER_FUNCTION),
        )
        app = common.load_handler(environment)
        sender = common.load_sender(environment)
        mapping = common.stream_mapping(
            standins.proxy_url, admin, tables["SESSIONS_TABLE_NAME"], sender.lambda_handler
        )

        results: list[tuple[int, str, str, float]] = []
        lock = threading.Lock()

        def deliver(event: dict[str, Any]) -> None:
            context = common.context(10.0)  # its 10 s run from the call, as on Lambda
            started = time.perf_counter()
            try:
                answer = app.lambda_handler(event, context)
                status = answer["statusCode"]
                body = json.loads(answer["body"])
                outcome = str(body.get("status") or body.get("error"))
                tiktok = str(((body.get("deliveries") or {}).get("tiktok") or {}).get("status"))
            except Exception as error:  # a crash: Lambda would answer 502
                status, outcome, tiktok = 599, f"raised {type(error).__name__}: {error}", "-"
            elapsed = time.perf_counter() - started
            with lock:
                results.append((status, outcome, tiktok, elapsed))

        signed_events = [common.signed(stripe_event) for stripe_event in events]  # Stripe's side
        with common.quiet_stdout(), warnings.catch_warnings():
            # Threads share Powertools' global Metrics: one flush can take another's metrics, and
            # the other then warns that it has none. Lambda runs one invocation per process.
            warnings.filterwarnings("ignore", message="No application metrics to publish")
            # Warm-up: one delivery, and its stream record sent (excluded from the counts below).
            app.lambda_handler(common.signed(common.paid_session_event()), common.context())
            mapping.drain()
            standins.call("behave", "ok")  # clears the stand-in's list of requests
            standins.call("reset")
            standins.call("collect")
            before = standins.snapshot()
            cpu_before, standins_cpu_before = sum(os.times()[:2]), standins.call("cpu_seconds")
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=threads) as pool:
                list(pool.map(deliver, signed_events))
            wall = time.perf_counter() - started
            cpu = sum(os.times()[:2]) - cpu_before
            standins_cpu = standins.call("cpu_seconds") - standins_cpu_before
            after_burst = standins.snapshot()
            change = diff(after_burst, before)

            # The stream, drained to the sender: as Lambda would, once the burst is written.
            standins.call("collect")
            invocations_before = len(mapping.invocations)
            standins_cpu_before = standins.call("cpu_seconds")
            cpu_before = sum(os.times()[:2])
            started = time.perf_counter()
            drained_records = mapping.drain(timeout_seconds=DRAIN_TIMEOUT_SECONDS)
            drain_wall = time.perf_counter() - started
            drain_cpu = sum(os.times()[:2]) - cpu_before
            drain_standins_cpu = standins.call("cpu_seconds") - standins_cpu_before
            drain_change = diff(standins.snapshot(), after_burst)
            sender_invocations = mapping.invocations[invocations_before:]
            updates_before = after_burst["counts"].get("UpdateItem", 0)
            drain_updates = standins.call("durations").get("UpdateItem", [])[updates_before:]

        sessions = Counter(common.scan_attribute(admin, tables["SESSIONS_TABLE_NAME"], "delivery_status"))
        sessions_sent = sessions.get("sent", 0)
        customers = common.count_items(admin, tables["CUSTOMERS_TABLE_NAME"])
        event_ids = standins.call("tiktok_event_ids")

    warm_session = 1  # the warm-up delivery provisioned one session (the stand-in was cleared after it)
    statuses = Counter(status for status, *_ in results)
    outcomes = Counter(outcome for _, outcome, _, _ in results)
    tiktok_states = Counter(tiktok for _, outcome, tiktok, _ in results if outcome == "provisioned")
    latency = common.Summary.of([elapsed for *_, elapsed in results])
    tiktok_posts = change["tiktok"] + drain_change["tiktok"]
    tiktok_distinct = len(set(event_ids))
    failed_invocations = sum(1 for i in sender_invocations if i.error is not None or i.failed_ids())
    sender_counts = {t: n for t, n in drain_change["counts"].items() if not t.startswith("Streams.")}
    poller_counts = {t: n for t, n in drain_change["counts"].items() if t.startswith("Streams.")}
    provisioned_customers = customers - warm_session
    server_errors = sum(n for status, n in statuses.items() if status >= 500)
    conflicts = statuses.get(409, 0)

    checks = [
        ("provisioned customers in the table == distinct sessions", provisioned_customers, distinct),
        (
            "session markers in the table (no delivery_status) == distinct sessions",
            sessions.get(None, 0) - warm_session,
            distinct,
        ),
        ("'provisioned' answers == distinct sessions", outcomes.get("provisioned", 0), distinct),
        ("TikTok requests during the burst == 0 (the webhook never calls TikTok)", change["tiktok"], 0),
        # A stream batch's events go to TikTok in one request: events, not requests, per session.
        ("TikTok events at the stand-in, after the drain == distinct sessions", len(event_ids), distinct),
        (
            "TikTok requests <= TikTok events (a stream batch's go in one)",
            min(tiktok_posts, len(event_ids)),
            tiktok_posts,
        ),
        ("distinct TikTok event_ids sent == distinct sessions", tiktok_distinct, distinct),
        (
            "session items sent (delivery_status), warm-up excluded == distinct sessions",
            sessions_sent - warm_session,
            distinct,
        ),
        ("5xx answers (and crashes) == 0", server_errors, 0),
        ("sender invocations that failed or reported a failed record == 0", failed_invocations, 0),
        ("records the mapping gave up == 0", len(mapping.given_up), 0),
    ]
    ok = all(actual == expected for _, actual, expected in checks)
    summary = common.table(
        ["deliveries", "distinct sessions", "threads", "wall time", "throughput", "p50", "p99", "max"],
        [
            [
                len(results),
                distinct,
                threads,
                common.secs(wall),
                f"{len(results) / wall:.0f} deliveries/s",
                common.ms(latency.median),
                common.ms(latency.p99),
                common.ms(latency.max),
            ]
        ],
    )
    check_table = common.table(
        ["check", "counted", "expected", ""],
        [
            [name, actual, expected, "ok" if actual == expected else "**MISMATCH**"]
            for name, actual, expected in checks
        ]
        + [["409 answers (concurrent delivery of one session: Stripe retries)", conflicts, "any", ""]],
    )
    answers = common.table(
        ["answers", "count"],
        [
            [f"{status} {outcome}", n]
            for (status, outcome), n in Counter(
                (status, outcome) for status, outcome, _, _ in results
            ).most_common(8)
        ],
    )
    per_delivery = ", ".join(
        f"{target} {count / len(results):.2f}" for target, count in sorted(change["counts"].items())
    )
    per_record = ", ".join(
        f"{target} {count / max(drained_records, 1):.2f}" for target, count in sorted(sender_counts.items())
    )
    poller = ", ".join(f"{target} {count}" for target, count in sorted(poller_counts.items()))
    notes = (
        f"{len(results)} deliveries ({distinct} distinct sessions, {len(results) - distinct} redeliveries, "
        f"shuffled with seed {seed}) from {threads} threads calling lambda_handler in one process; one "
        f"warm-up delivery first (excluded from the counts). DynamoDB requests during the burst, per "
        f"delivery: "
        f"{per_delivery} (expected TransactWriteItems 1.00, nothing else). The webhook's answers' TikTok "
        f"state: {dict(tiktok_states)}. Session items by delivery_status after the drain: "
        f"{dict(sessions)}."
    )
    drain_line = (
        f"The drain: {drained_records} stream records passed the filter and were handed to the sender in "
        f"{len(sender_invocations)} invocations, in {drain_wall:.1f} s ({drained_records / drain_wall:.0f} "
        f"records/s, one invocation at a time, as one shard is processed). The sender's DynamoDB requests "
        f"per record: {per_record or 'none'} (expected UpdateItem 2.00: claim + record; p50 "
        f"{common.ms(common.Summary.of(drain_updates).median)} each at moto). The poller's "
        f"Streams requests (Lambda's own in AWS, unbilled): {poller or 'none'}. CPU during the drain: "
        f"this process {drain_cpu:.1f} s, the stand-ins' {drain_standins_cpu:.1f} s."
    )
    cpu_line = (
        f"CPU time during the burst ({wall:.1f} s of wall time, {common.machine()['nproc']} cores): the "
        f"function's process {cpu:.1f} s ({common.ms(cpu / len(results))} per delivery, {cpu / wall:.0%} of "
        f"one core); the stand-ins' process (moto, proxy, TikTok) {standins_cpu:.1f} s "
        f"({common.ms(standins_cpu / len(results))} per delivery, {standins_cpu / wall:.0%} of one core). "
        f"The stand-ins are one Python process whose threads share one GIL: they, not the function, set "
        f"the throughput here."
    )
    markdown = "\n\n".join([notes, summary, cpu_line, drain_line, check_table, answers])
    data = {
        "deliveries": len(results),
        "distinct": distinct,
        "wall": wall,
        "throughput": len(results) / wall,
        "latency": vars(latency),
        "statuses": {str(k): v for k, v in statuses.items()},
        "checks": [{"check": c, "counted": a, "expected": e} for c, a, e in checks],
        "conflicts": conflicts,
        "requests": change,
        "cpu_function": cpu,
        "cpu_standins": standins_cpu,
        "drain": {
            "records": drained_records,
            "invocations": len(sender_invocations),
            "wall": drain_wall,
            "requests": drain_change,
            "sender_requests_per_record": {
                target: count / max(drained_records, 1) for target, count in sender_counts.items()
            },
        },
    }
    return common.Section("burst", "5. Burst", markdown, data, ok=ok)


def main(argv: list[str] | None = None) -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--deliveries", type=int, help=f"default {DELIVERIES}, --quick {QUICK_DELIVERIES}")
    parser.add_argument("--threads", type=int, default=THREADS)
    args = parser.parse_args(argv)
    deliveries = args.deliveries or (QUICK_DELIVERIES if args.quick else DELIVERIES)
    section = common.timed(run, deliveries, args.threads)
    common.emit(section, args.json_out)


if __name__ == "__main__":
    main()
