"""Warm latency: one new paid session and one duplicate through lambda_handler, against a floor.

One process, the handler imported once (a warm container). Each round, the floor alternately
before and after the two product calls:
  * new session: a freshly signed checkout.session.completed for a new session, end to end
    (signature, decision, one TransactWriteItems writing the customer record and the session item
    with its pending TikTok delivery, the answer). No TikTok request: the sender does that later;
  * duplicate: the same event delivered again (what Stripe's retries look like);
  * floor: one `stripe.WebhookSignature.verify_header` of the same payload and one
    TransactWriteItems of the same Puts (the product's own items, captured from its first
    call, with new keys), with a client made by the product's own checkout_conversions.aws.
DynamoDB requests are counted at the HTTP boundary by the counting proxy (benchmarks/standins.py)
between boto3 and moto, per call, with the time moto took for each.
"""

import copy
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
TARGET_RATIO = 1.3
PATHS = ("new", "duplicate", "floor")
EXPECTED = {"new": {"TransactWriteItems": 1}, "duplicate": {"TransactWriteItems": 1}}


def run(runs: int = RUNS, warmup: int = WARMUP, moto_as_is: bool = False) -> common.Section:
    with StandIns(moto_as_is=moto_as_is) as standins:
        admin = common.dynamodb_admin(standins.moto_url)
        tables = common.create_tables(admin, prefix="warm-")
        environment = common.function_environment(standins.proxy_url, tables, standins.tiktok_url)
        app = common.load_handler(environment)

        import stripe

        from checkout_conversions.aws import dynamodb_client

        floor_dynamodb = dynamodb_client()
        sessions_table = tables["SESSIONS_TABLE_NAME"]
        # The product's own Puts, captured from its first call (a warm-up round).
        template = _capture_transaction(app, common.signed(common.paid_session_event(-1)))

        def floor(delivery: dict[str, Any], items: list[dict[str, Any]]) -> None:
            payload = delivery["body"].encode("utf-8")
            signature = delivery["headers"]["stripe-signature"]
            stripe.WebhookSignature.verify_header(payload, signature, common.WEBHOOK_SECRET, 300)
            floor_dynamodb.transact_write_items(TransactItems=items)

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
                first_delivery = common.signed(stripe_event)
                floor_event = common.paid_session_event(round_number)
                floor_delivery = common.signed(floor_event)
                floor_items = _floor_items(template, common.session_id(floor_event), sessions_table)

                def floor_call(d: dict = floor_delivery, i: list = floor_items) -> None:
                    floor(d, i)

                if round_number % 2:
                    measure("floor", floor_call, record)
                context = common.context()
                answer = measure("new", lambda e=first_delivery, c=context: app.lambda_handler(e, c), record)
                _check(answer, "provisioned", "pending", problems)

                signed_event = common.signed(stripe_event)
                context = common.context()
                answer = measure(
                    "duplicate", lambda e=signed_event, c=context: app.lambda_handler(e, c), record
                )
                _check(answer, "duplicate", None, problems)
                if not round_number % 2:
                    measure("floor", floor_call, record)

                if record:  # the Stripe signature check alone: a part of every path here
                    payload = first_delivery["body"].encode()
                    signature = first_delivery["headers"]["stripe-signature"]
                    started = time.perf_counter()
                    stripe.WebhookSignature.verify_header(payload, signature, common.WEBHOOK_SECRET, 300)
                    samples["signature"].append(time.perf_counter() - started)
                    started = time.perf_counter()
                    json.loads(payload)
                    samples["json"].append(time.perf_counter() - started)

        stored = Counter(common.scan_attribute(admin, sessions_table, "delivery_status"))

    return _section(
        runs, warmup, samples, cpu_time, at_moto, per_request, requests, problems, stored, moto_as_is
    )


def _capture_transaction(app: Any, delivery: dict[str, Any]) -> list[dict[str, Any]]:
    """The TransactItems of the product's TransactWriteItems for one new session (botocore's
    provide-client-params event, on the product's own client, for this one call only)."""
    captured: list[list[dict[str, Any]]] = []
    event_name = "provide-client-params.dynamodb.TransactWriteItems"

    def capture(params: dict[str, Any], **_: Any) -> None:
        captured.append(copy.deepcopy(params["TransactItems"]))

    events = app.dynamodb.meta.events
    events.register(event_name, capture, unique_id="benchmark-capture")
    try:
        with common.quiet_stdout():
            answer = app.lambda_handler(delivery, common.context())
    finally:
        events.unregister(event_name, unique_id="benchmark-capture")
    if answer["statusCode"] != 200 or len(captured) != 1:
        raise RuntimeError(f"could not capture the product's transaction: {answer}")
    return captured[0]


def _floor_items(template: list[dict[str, Any]], session_id: str, sessions_table: str) -> list:
    """The product's Puts with new keys: the session marker, its delivery items (`<id>#tiktok`)
    and the customer record (whose sort key is the session id) of `floor-<session id>`, the same
    size as the product's."""
    items = copy.deepcopy(template)
    for item in items:
        put = item["Put"]
        key = "session_id" if put["TableName"] == sessions_table else "checkout_session_id"
        _, hash_sign, destination = put["Item"][key]["S"].partition("#")
        put["Item"][key] = {"S": f"floor-{session_id}{hash_sign}{destination}"}
    return items


def _check(answer: dict, status: str, tiktok_status: str | None, problems: Counter) -> None:
    """The answer expected; `tiktok_status` None: a duplicate, whose answer carries no delivery."""
    body = json.loads(answer["body"])
    if answer["statusCode"] != 200 or body.get("status") != status:
        problems[f"expected {status}, got {answer['statusCode']} {body}"] += 1
    elif body.get("deliveries", {}).get("tiktok", {}).get("status") != tiktok_status:
        problems[f"{status}: TikTok {body.get('deliveries')}"] += 1


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
    ratios = {
        path: (common.ratio(stats[path].median, floor.median), common.ratio(stats[path].p99, floor.p99))
        for path in ("new", "duplicate")
    }
    latency_rows = []
    labels = {
        "new": "new paid session (lambda_handler)",
        "duplicate": "duplicate delivery (lambda_handler)",
        "floor": "floor: verify_header + TransactWriteItems of the same Puts",
        "signature": "stripe verify_header alone (in every path here)",
        "json": "json.loads of the event alone (in both product paths)",
    }
    for path in (*PATHS, "signature", "json"):
        s = stats[path]
        versus = path in PATHS
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
    request_rows = [
        [f"DynamoDB {target}", *(f"{per_call(p, target)} ({moto_ms(p, target)})" for p in PATHS)]
        for target in targets
    ]
    request_rows.append(["TikTok POST", *(per_call(p, "TikTok POST") for p in PATHS)])
    totals = []
    for path in PATHS:
        calls = requests[path]["calls"] or 1
        dynamodb_requests = sum(n for t, n in requests[path].items() if t not in ("calls", "TikTok POST"))
        totals.append(f"{dynamodb_requests / calls:.2f} + {requests[path]['TikTok POST'] / calls:.2f}")
    request_rows.append(["requests per call (DynamoDB + TikTok)", *totals])
    moto_stats = {path: common.Summary.of(at_moto[path]) for path in PATHS}
    rest = {
        path: common.Summary.of([t - m for t, m in zip(samples[path], at_moto[path], strict=True)])
        for path in PATHS
    }
    cpu = {path: common.Summary.of(cpu_time[path]) for path in PATHS}
    request_rows += [
        ["p50 time at moto, all its requests", *(common.ms(moto_stats[p].median) for p in PATHS)],
        ["p50 time outside moto (our process, HTTP)", *(common.ms(rest[p].median) for p in PATHS)],
        [
            "p99 time at moto / outside moto",
            *(f"{common.ms(moto_stats[p].p99)} / {common.ms(rest[p].p99)}" for p in PATHS),
        ],
        [
            "p50 CPU time of the calling thread (of the time outside moto)",
            *(common.ms(cpu[p].median) for p in PATHS),
        ],
        ["p50 end to end", *(common.ms(stats[p].median) for p in PATHS)],
    ]
    by_request = common.table(
        ["request (count per call, p50 time at moto)", "new session", "duplicate", "floor"], request_rows
    )

    def as_expected(path: str, expected: dict[str, int]) -> bool:
        counts = requests[path]
        calls = counts["calls"]
        made = {target: n for target, n in counts.items() if target != "calls" and n}
        return bool(calls) and made == {target: n * calls for target, n in expected.items()}

    expected_new = as_expected("new", EXPECTED["new"])
    expected_dup = as_expected("duplicate", EXPECTED["duplicate"])
    twi_new = moto_ms("new", "TransactWriteItems")
    twi_floor = moto_ms("floor", "TransactWriteItems")
    explanation = (
        f"New session vs floor, request by request (p50): both make one TransactWriteItems of the same "
        f"Puts ({twi_new} at moto for the product, {twi_floor} for the floor) and verify one "
        f"signature ({common.ms(stats['signature'].median)}); neither calls TikTok. Outside moto the new "
        f"session takes {common.ms(rest['new'].median)} against the floor's "
        f"{common.ms(rest['floor'].median)} "
        f"(CPU {common.ms(cpu['new'].median)} against {common.ms(cpu['floor'].median)}): the extra is "
        f"parsing the event ({common.ms(stats['json'].median)}), deciding, building the customer record and "
        f"the TikTok event and serialising them, the JSON log lines and the EMF metrics flush. A duplicate "
        f"is one cancelled TransactWriteItems ({moto_ms('duplicate', 'TransactWriteItems')} at moto; moto "
        f"returns the existing item, which the answer reports) and nothing else."
    )
    verdicts = []
    passed = expected_new and expected_dup and not problems
    for path in ("new", "duplicate"):
        p50, p99 = ratios[path]
        ok = p50 <= TARGET_RATIO and p99 <= TARGET_RATIO
        passed = passed and ok
        verdicts.append(
            f"- {labels[path]}: p50 {common.times(p50)}, p99 {common.times(p99)} of the floor's "
            f"(target <= {TARGET_RATIO}x both): **{'PASS' if ok else 'FAIL'}**"
        )
    checks = [
        *verdicts,
        f"- Requests per new session = 1 DynamoDB (TransactWriteItems) + 0 TikTok POSTs: "
        f"**{'yes' if expected_new else 'NO'}**",
        "- Requests per duplicate = 1 (a cancelled TransactWriteItems): "
        f"**{'yes' if expected_dup else 'NO'}**",
        f"- Answers not as expected (200 provisioned or duplicate, TikTok pending): "
        f"**{sum(problems.values())}**"
        + "".join(f"\n  - {count} x {text}" for text, count in problems.most_common(5)),
        f"- Session items in the table (the product's and the floor's), by delivery_status: {dict(stored)}",
    ]
    notes = (
        f"{runs} measured rounds after {warmup} warm-up rounds; each round is one new session, its "
        f"duplicate and one floor call, the floor alternately before and after. DynamoDB is moto "
        f"{'as is' if moto_as_is else 'made atomic and O(1) per transaction'} behind the counting proxy "
        f"(benchmarks/standins.py), in its own process. 'Time at moto' is measured at the proxy (moto plus "
        f"one loopback hop), so moto's own speed weighs on product and floor alike. The environment is "
        f"template.yaml's for the webhook, parameters at their defaults (tracing off) but the secret, "
        f"pixel, test event code and phone country. The stand-ins collect their garbage every "
        f"{COLLECT_EVERY} rounds, outside the measurements."
    )
    markdown = "\n\n".join([notes, latency, by_request, explanation, "\n".join(checks)])
    data = {
        "stats": {path: vars(s) for path, s in stats.items()},
        "at_moto": {path: vars(s) for path, s in moto_stats.items()},
        "outside_moto": {path: vars(s) for path, s in rest.items()},
        "cpu": {path: vars(s) for path, s in cpu.items()},
        "requests": {path: dict(c) for path, c in requests.items()},
        "ratio_new_p50": ratios["new"][0],
        "ratio_new_p99": ratios["new"][1],
        "ratio_duplicate_p50": ratios["duplicate"][0],
        "ratio_duplicate_p99": ratios["duplicate"][1],
        "target": TARGET_RATIO,
        "problems": dict(problems),
        "expected_requests": expected_new and expected_dup,
    }
    return common.Section("warm_latency", "2. Warm latency", markdown, data, ok=passed)


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
