"""Warm latency: one new paid session and one duplicate through lambda_handler, against a floor.

One process, the handler imported once (a warm container). Each round, in alternating order:
  * new session: a freshly signed checkout.session.completed for a new session, end to end
    (signature, provisioning transaction, TikTok POST to the stand-in answering at once, outcome
    recorded);
  * duplicate: the same event delivered again (what Stripe's retries look like);
  * floor: one conditional PutItem and one POST of the same TikTok body, with clients made by the
    product's own checkout_conversions.clients (same kind, same settings).
DynamoDB requests are counted at the HTTP boundary by the counting proxy (benchmarks/standins.py)
between boto3 and moto, per call, with the time moto took for each.
"""

import json
import time
from collections import Counter, defaultdict
from typing import Any

from benchmarks import common
from benchmarks.standins import StandIns, diff

RUNS = 500
QUICK_RUNS = 60
WARMUP = 20
COLLECT_EVERY = 50


def run(runs: int = RUNS, warmup: int = WARMUP, moto_as_is: bool = False) -> common.Section:
    with StandIns(moto_as_is=moto_as_is) as standins:
        admin = common.dynamodb_admin(standins.moto_url)
        tables = common.create_tables(admin, prefix="warm-")
        environment = common.function_environment(standins.proxy_url, tables, standins.tiktok_url)
        app = common.load_handler(environment)

        import stripe

        from checkout_conversions.clients import dynamodb_client, http_client

        floor_dynamodb, floor_http = dynamodb_client(), http_client()
        sessions_table = tables["SESSIONS_TABLE_NAME"]
        headers = {"Access-Token": common.TIKTOK_TOKEN, "Content-Type": "application/json"}

        def floor(stripe_event: dict[str, Any], body: bytes) -> None:
            session_id = stripe_event["data"]["object"]["id"]
            floor_dynamodb.put_item(
                TableName=sessions_table,
                Item=_floor_item(session_id, stripe_event, body),
                ConditionExpression="attribute_not_exists(session_id)",
            )
            answer = floor_http.post(standins.tiktok_url, content=body, headers=headers, timeout=3.0)
            if answer.status_code != 200 or answer.json().get("code") != 0:
                raise RuntimeError(f"floor POST failed: {answer.status_code}")

        samples: dict[str, list[float]] = defaultdict(list)
        cpu_time: dict[str, list[float]] = defaultdict(list)  # per call: CPU of the calling thread
        at_moto: dict[str, list[float]] = defaultdict(list)  # per call: seconds at moto, all requests
        per_request: dict[tuple[str, str], list[float]] = defaultdict(list)  # (path, target) -> s
        requests: dict[str, Counter] = defaultdict(Counter)
        problems: Counter = Counter()

        def measure(path: str, call: Any, record: bool) -> Any:
            before = standins.snapshot()
            cpu = time.thread_time()
            started = time.perf_counter()
            result = call()
            elapsed = time.perf_counter() - started
            cpu = time.thread_time() - cpu
            change = diff(standins.snapshot(), before)
            if record:
                samples[path].append(elapsed)
                cpu_time[path].append(cpu)
                at_moto[path].append(sum(change["seconds"].values()))
                for target, seconds in change["seconds"].items():
                    if change["counts"].get(target) == 1:
                        per_request[(path, target)].append(seconds)
                requests[path].update(change["counts"])
                requests[path]["TikTok POST"] += change["tiktok"]
                requests[path]["calls"] += 1
            return result

        with common.quiet_stdout():
            for round_number in range(warmup + runs):
                record = round_number >= warmup
                if round_number % COLLECT_EVERY == 0:
                    standins.call("collect")  # moto's garbage, collected outside the measurements
                stripe_event = common.paid_session_event(round_number)
                floor_event = common.paid_session_event(round_number)
                floor_body = common.tiktok_body(floor_event)
                first_delivery = common.signed(stripe_event)
                context = common.context()

                def new(event: dict = first_delivery, ctx: Any = context) -> dict:
                    return app.lambda_handler(event, ctx)

                if round_number % 2:
                    measure("floor", lambda e=floor_event, b=floor_body: floor(e, b), record)
                answer = measure("new", new, record)
                _check(answer, "provisioned", "sent", problems)

                signed_event = common.signed(stripe_event)
                context = common.context()
                answer = measure(
                    "duplicate", lambda e=signed_event, c=context: app.lambda_handler(e, c), record
                )
                _check(answer, "duplicate", "sent", problems)
                if not round_number % 2:
                    measure("floor", lambda e=floor_event, b=floor_body: floor(e, b), record)

                if record:  # the Stripe signature check alone, a part of both product paths
                    payload = first_delivery["body"].encode()
                    signature = first_delivery["headers"]["stripe-signature"]
                    started = time.perf_counter()
                    stripe.WebhookSignature.verify_header(payload, signature, common.WEBHOOK_SECRET, 300)
                    samples["signature"].append(time.perf_counter() - started)
                    started = time.perf_counter()
                    json.loads(payload)
                    samples["json"].append(time.perf_counter() - started)

        stored = Counter(common.scan_attribute(admin, sessions_table, "delivery_status"))
        stored.pop(None, None)  # the floor's items

    return _section(
        runs, warmup, samples, cpu_time, at_moto, per_request, requests, problems, stored, moto_as_is
    )


def _floor_item(session_id: str, stripe_event: dict[str, Any], body: bytes) -> dict[str, Any]:
    """About the size of the function's session marker: keys, times and the TikTok event."""
    now = int(time.time())
    return {
        "session_id": {"S": f"floor-{session_id}"},
        "customer_id": {"S": stripe_event["data"]["object"]["customer"]},
        "stripe_event_id": {"S": stripe_event["id"]},
        "event_type": {"S": stripe_event["type"]},
        "event_time": {"N": str(stripe_event["created"])},
        "expires_at": {"N": str(now + 35 * 86400)},
        "tiktok_event": {"S": body.decode()},
    }


def _check(answer: dict, status: str, tiktok_status: str, problems: Counter) -> None:
    body = json.loads(answer["body"])
    if answer["statusCode"] != 200 or body.get("status") != status:
        problems[f"expected {status}, got {answer['statusCode']} {body}"] += 1
    elif body.get("tiktok", {}).get("status") != tiktok_status:
        problems[f"{status}: TikTok {body.get('tiktok')}"] += 1


def _section(
    runs: int,
    warmup: int,
    samples: dict[str, list[float]],
    cpu_time: dict[str, list[float]],
    at_moto: dict[str, list[float]],
    per_request: dict[tuple[str, str], list[float]],
    requests: dict[str, Counter],
    problems: Counter,
    stored: Counter,
    moto_as_is: bool,
) -> common.Section:
    stats = {path: common.Summary.of(values) for path, values in samples.items()}
    floor = stats["floor"]
    latency_rows = []
    labels = {
        "new": "new paid session (lambda_handler)",
        "duplicate": "duplicate delivery (lambda_handler)",
        "floor": "floor: conditional PutItem + TikTok POST",
        "signature": "stripe verify_header alone (in both product paths)",
        "json": "json.loads of the event alone (in both product paths)",
    }
    for path in ("new", "duplicate", "floor", "signature", "json"):
        s = stats[path]
        versus = path in ("new", "duplicate", "floor")
        latency_rows.append(
            [
                labels[path],
                s.n,
                common.ms(s.median),
                common.ms(s.p99),
                common.ms(s.max),
                common.times(common.ratio(s.median, floor.median)) if versus else "",
                common.times(common.ratio(s.p99, floor.p99)) if versus else "",
            ]
        )
    latency = common.table(
        ["path", "runs", "p50", "p99", "max", "p50 / floor p50", "p99 / floor p99"], latency_rows
    )

    def per_call(path: str, key: str) -> str:
        calls = requests[path]["calls"] or 1
        n = requests[path].get(key, 0) / calls
        return f"{n:.2f}" if n else "0"

    def moto_ms(path: str, target: str) -> str:
        values = per_request.get((path, target))
        return common.ms(common.Summary.of(values).median) if values else "-"

    targets = sorted({t for c in requests.values() for t in c if t not in ("calls", "TikTok POST")})
    request_rows = []
    for target in targets:
        request_rows.append(
            [
                f"DynamoDB {target}",
                *(f"{per_call(p, target)} ({moto_ms(p, target)})" for p in ("new", "duplicate", "floor")),
            ]
        )
    request_rows.append(["TikTok POST", *(per_call(p, "TikTok POST") for p in ("new", "duplicate", "floor"))])
    totals = []
    for path in ("new", "duplicate", "floor"):
        calls = requests[path]["calls"] or 1
        dynamodb_requests = sum(n for t, n in requests[path].items() if t not in ("calls", "TikTok POST"))
        totals.append(f"{dynamodb_requests / calls:.2f} + {requests[path]['TikTok POST'] / calls:.2f}")
    request_rows.append(["requests per call (DynamoDB + TikTok)", *totals])
    moto_stats = {path: common.Summary.of(at_moto[path]) for path in ("new", "duplicate", "floor")}
    rest = {
        path: common.Summary.of([t - m for t, m in zip(samples[path], at_moto[path], strict=True)])
        for path in ("new", "duplicate", "floor")
    }
    request_rows.append(
        [
            "p50 time at moto, all its requests",
            *(common.ms(moto_stats[p].median) for p in ("new", "duplicate", "floor")),
        ]
    )
    request_rows.append(
        [
            "p50 time outside moto (our process, HTTP, TikTok)",
            *(common.ms(rest[p].median) for p in ("new", "duplicate", "floor")),
        ]
    )
    request_rows.append(
        [
            "p99 time at moto / outside moto",
            *(
                f"{common.ms(moto_stats[p].p99)} / {common.ms(rest[p].p99)}"
                for p in ("new", "duplicate", "floor")
            ),
        ]
    )
    cpu = {path: common.Summary.of(cpu_time[path]) for path in ("new", "duplicate", "floor")}
    request_rows.append(
        [
            "p50 CPU time of the calling thread (of the time outside moto)",
            *(common.ms(cpu[p].median) for p in ("new", "duplicate", "floor")),
        ]
    )
    request_rows.append(
        ["p50 end to end", *(common.ms(stats[p].median) for p in ("new", "duplicate", "floor"))]
    )
    by_request = common.table(
        ["request (count per call, p50 time at moto)", "new session", "duplicate", "floor"], request_rows
    )

    new_counts = requests["new"]
    dup_counts = requests["duplicate"]
    calls_new = new_counts["calls"] or 1
    calls_dup = dup_counts["calls"] or 1
    expected_new = (
        new_counts.get("TransactWriteItems", 0) == calls_new
        and new_counts.get("UpdateItem", 0) == calls_new
        and new_counts["TikTok POST"] == calls_new
        and sum(n for t, n in new_counts.items() if t not in ("calls", "TikTok POST")) == 2 * calls_new
    )
    expected_dup = (
        dup_counts.get("TransactWriteItems", 0) == calls_dup
        and sum(n for t, n in dup_counts.items() if t != "calls") == calls_dup
    )
    twi = common.Summary.of(per_request.get(("new", "TransactWriteItems"), [])).median
    put = common.Summary.of(per_request.get(("floor", "PutItem"), [])).median
    update = common.Summary.of(per_request.get(("new", "UpdateItem"), [])).median
    explanation = (
        f"New session vs floor, request by request (p50): the floor's one PutItem "
        f"({common.ms(put)} at moto) becomes one TransactWriteItems of two Puts ({common.ms(twi)}), "
        f"the TikTok POST is the same, and one UpdateItem recording TikTok's answer is added "
        f"({common.ms(update)}). Outside moto the new session takes {common.ms(rest['new'].median)} "
        f"against the floor's {common.ms(rest['floor'].median)} (CPU {common.ms(cpu['new'].median)} against "
        f"{common.ms(cpu['floor'].median)}): the extra is the signature check "
        f"({common.ms(stats['signature'].median)}), parsing, one more botocore request, three JSON log "
        f"lines and the EMF metrics flush. A duplicate is one cancelled TransactWriteItems "
        f"({moto_ms('duplicate', 'TransactWriteItems')} at moto) and nothing else: no TikTok POST, "
        f"no UpdateItem."
    )
    checks = [
        f"- Requests per new session = 2 DynamoDB (TransactWriteItems + UpdateItem) + 1 TikTok POST: "
        f"**{'yes' if expected_new else 'NO'}**",
        "- Requests per duplicate = 1 (a cancelled TransactWriteItems): "
        f"**{'yes' if expected_dup else 'NO'}**",
        f"- Answers not as expected: **{sum(problems.values())}**"
        + "".join(f"\n  - {count} x {text}" for text, count in problems.most_common(5)),
        f"- The function's session markers in the table, by delivery_status: {dict(stored)}",
    ]
    notes = (
        f"{runs} measured rounds after {warmup} warm-up rounds; each round is one new session, its "
        f"duplicate and one floor call, the floor alternately before and after. DynamoDB is moto "
        f"{'as is' if moto_as_is else 'made atomic and O(1) per transaction'} behind the counting proxy "
        f"(benchmarks/standins.py), in its own process; TikTok is the stand-in answering at once. "
        f"'Time at moto' is measured at the proxy (moto plus one loopback hop), so moto's own speed "
        f"(a few ms per request; its UpdateItem, which parses the update expression, about twice its "
        f"PutItem) weighs on both product and floor. The stand-ins collect their garbage every "
        f"{COLLECT_EVERY} rounds, outside the measurements."
    )
    ok = expected_new and expected_dup and not problems
    markdown = "\n\n".join([notes, latency, by_request, explanation, "\n".join(checks)])
    data = {
        "stats": {path: vars(s) for path, s in stats.items()},
        "at_moto": {path: vars(s) for path, s in moto_stats.items()},
        "outside_moto": {path: vars(s) for path, s in rest.items()},
        "cpu": {path: vars(s) for path, s in cpu.items()},
        "requests": {path: dict(c) for path, c in requests.items()},
        "ratio_new_p50": common.ratio(stats["new"].median, floor.median),
        "ratio_new_p99": common.ratio(stats["new"].p99, floor.p99),
        "ratio_duplicate_p50": common.ratio(stats["duplicate"].median, floor.median),
        "problems": dict(problems),
        "expected_requests": expected_new and expected_dup,
    }
    return common.Section("warm_latency", "2. Warm latency", markdown, data, ok=ok)


def main(argv: list[str] | None = None) -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--runs", type=int, help=f"measured rounds (default {RUNS}, --quick {QUICK_RUNS})")
    parser.add_argument("--moto-as-is", action="store_true", help="do not fix moto (see standins.py)")
    args = parser.parse_args(argv)
    runs = args.runs or (QUICK_RUNS if args.quick else RUNS)
    section = common.timed(run, runs, 5 if args.quick else WARMUP, args.moto_as_is)
    common.emit(section, args.json_out)


if __name__ == "__main__":
    main()
