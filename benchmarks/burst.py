"""Burst: 2,000 deliveries, 30 % of them redeliveries, from 16 threads in one process.

About 1,400 distinct paid sessions; the other 600 deliveries are redeliveries of randomly chosen
ones (the same event, signed again), all shuffled, so a redelivery can come before, after or at
the same moment as its first delivery. 16 threads call lambda_handler in one process (the handler
and its clients imported once) against the stand-ins (moto behind the counting proxy, TikTok
answering at once). Correctness is read back from the tables and the TikTok stand-in.

Note: on Lambda one container handles one invocation at a time; 16 threads in one process share
the function's clients (the httpx pool allows 4 connections, boto3's 10) and Powertools' global
logger and metrics, which Lambda never does. Throughput here is that of one process on this
machine with moto as DynamoDB, not a Lambda figure.
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
        environment = common.function_environment(standins.proxy_url, tables, standins.tiktok_url)
        app = common.load_handler(environment)

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
                tiktok = str((body.get("tiktok") or {}).get("status"))
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
            app.lambda_handler(common.signed(common.paid_session_event()), common.context())  # warm
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
            change = diff(standins.snapshot(), before)

        sessions = Counter(common.scan_attribute(admin, tables["SESSIONS_TABLE_NAME"], "delivery_status"))
        customers = common.count_items(admin, tables["CUSTOMERS_TABLE_NAME"])
        event_ids = standins.call("tiktok_event_ids")

    warm_session = 1  # the warm-up delivery provisioned one session and sent one TikTok event
    statuses = Counter(status for status, *_ in results)
    outcomes = Counter(outcome for _, outcome, _, _ in results)
    tiktok_states = Counter(tiktok for _, outcome, tiktok, _ in results if outcome == "provisioned")
    latency = common.Summary.of([elapsed for *_, elapsed in results])
    tiktok_posts = change["tiktok"]
    tiktok_distinct = len(set(event_ids)) - warm_session
    provisioned_customers = customers - warm_session
    server_errors = sum(n for status, n in statuses.items() if status >= 500)
    conflicts = statuses.get(409, 0)

    checks = [
        ("provisioned customers in the table == distinct sessions", provisioned_customers, distinct),
        (
            "session markers in the table == distinct sessions",
            sum(sessions.values()) - warm_session,
            distinct,
        ),
        ("'provisioned' answers == distinct sessions", outcomes.get("provisioned", 0), distinct),
        ("TikTok requests at the stand-in == distinct sessions", tiktok_posts, distinct),
        ("distinct TikTok event_ids sent == distinct sessions", tiktok_distinct, distinct),
        ("5xx answers (and crashes) == 0", server_errors, 0),
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
    notes = (
        f"{len(results)} deliveries ({distinct} distinct sessions, {len(results) - distinct} redeliveries, "
        f"shuffled with seed {seed}) from {threads} threads calling lambda_handler in one process; one "
        f"warm-up delivery first (excluded from the counts). DynamoDB requests during the burst, per "
        f"delivery: "
        f"{per_delivery} (expected TransactWriteItems 1.00 and UpdateItem {distinct / len(results):.2f}). "
        f"TikTok outcome of the provisioned deliveries: {dict(tiktok_states)}. Session markers by "
        f"delivery_status: {dict(sessions)}."
    )
    cpu_line = (
        f"CPU time during the burst ({wall:.1f} s of wall time, {common.machine()['nproc']} cores): the "
        f"function's process {cpu:.1f} s ({common.ms(cpu / len(results))} per delivery, {cpu / wall:.0%} of "
        f"one core); the stand-ins' process (moto, proxy, TikTok) {standins_cpu:.1f} s "
        f"({common.ms(standins_cpu / len(results))} per delivery, {standins_cpu / wall:.0%} of one core). "
        f"The stand-ins are one Python process whose threads share one GIL: they, not the function, set "
        f"the throughput here."
    )
    markdown = "\n\n".join([notes, summary, cpu_line, check_table, answers])
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
    }
    return common.Section("burst", "4. Burst", markdown, data, ok=ok)


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
