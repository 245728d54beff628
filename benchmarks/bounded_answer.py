"""TikTok hanging: the webhook's answer is the same whether TikTok answers at once or never.

The webhook never calls TikTok (the stream sender does), so its answer must not depend on TikTok.
One warm process; each round, in alternating order (ABBA), one new paid session through
lambda_handler with the TikTok stand-in answering at once (`ok`) and one with it hanging (`hang`:
accepts each POST and never answers). A probe first checks that `hang` really hangs. PASS when the
p99 with TikTok hanging is within 1.1x of the p99 with TikTok answering, every answer is 200
provisioned with TikTok pending, and every call made 1 TransactWriteItems and no TikTok request.
"""

import json
import time
from collections import Counter, defaultdict

import httpx

from benchmarks import common
from benchmarks.standins import StandIns, diff

RUNS = 300
QUICK_RUNS = 30
WARMUP = 10
COLLECT_EVERY = 50
TARGET_RATIO = 1.1
MODES = ("ok", "hang")
LABELS = {"ok": "TikTok answering at once (`ok`)", "hang": "TikTok hanging (`hang`)"}
PROBE_TIMEOUT_SECONDS = 0.5


def run(runs: int = RUNS, warmup: int = WARMUP) -> common.Section:
    samples: dict[str, list[float]] = defaultdict(list)
    problems: Counter = Counter()
    requests: dict[str, Counter] = defaultdict(Counter)
    with StandIns() as standins:
        admin = common.dynamodb_admin(standins.moto_url)
        tables = common.create_tables(admin, prefix="bounded-")
        environment = common.function_environment(standins.proxy_url, tables, standins.tiktok_url)
        app = common.load_handler(environment)
        probe = _probe(standins)

        with common.quiet_stdout():
            for round_number in range(warmup + runs):
                record = round_number >= warmup
                if round_number % COLLECT_EVERY == 0:
                    standins.call("collect")  # moto's garbage, collected outside the measurements
                order = MODES if round_number % 4 in (0, 3) else MODES[::-1]
                for offset, mode in enumerate(order):
                    standins.call("behave", mode)
                    stripe_event = common.paid_session_event(2 * round_number + offset)
                    event, context = common.signed(stripe_event), common.context()
                    before = standins.snapshot()
                    started = time.perf_counter()
                    answer = app.lambda_handler(event, context)
                    elapsed = time.perf_counter() - started
                    change = diff(standins.snapshot(), before)
                    _check(mode, answer, change, problems)
                    if record:
                        samples[mode].append(elapsed)
                        requests[mode].update(change["counts"])
                        requests[mode]["TikTok POST"] += change["tiktok"]
                        requests[mode]["calls"] += 1
        standins.call("release")
        stored = Counter(common.scan_attribute(admin, tables["SESSIONS_TABLE_NAME"], "delivery_status"))
    return _section(runs, warmup, samples, requests, problems, probe, stored)


def _probe(standins: StandIns) -> dict[str, str]:
    """What the stand-in does with a POST in each mode (so `hang` is known to hang)."""
    seen = {}
    for mode in MODES:
        standins.call("behave", mode)
        try:
            answer = httpx.post(standins.tiktok_url, content=b"{}", timeout=PROBE_TIMEOUT_SECONDS)
            seen[mode] = f"HTTP {answer.status_code}"
        except httpx.TimeoutException as error:
            seen[mode] = f"no answer within {PROBE_TIMEOUT_SECONDS:g} s ({type(error).__name__})"
        standins.call("release")
    return seen


def _check(mode: str, answer: dict, change: dict, problems: Counter) -> None:
    body = json.loads(answer["body"])
    if answer["statusCode"] != 200 or body.get("status") != "provisioned":
        problems[f"{mode}: answered {answer['statusCode']} {body}"] += 1
    elif body.get("deliveries", {}).get("tiktok", {}).get("status") != "pending":
        problems[f"{mode}: TikTok state {body.get('deliveries')}"] += 1
    if change["counts"] != {"TransactWriteItems": 1} or change["tiktok"] != 0:
        problems[f"{mode}: requests {change['counts']} + {change['tiktok']} TikTok"] += 1


def _section(
    runs: int,
    warmup: int,
    samples: dict[str, list[float]],
    requests: dict[str, Counter],
    problems: Counter,
    probe: dict[str, str],
    stored: Counter,
) -> common.Section:
    stats = {mode: common.Summary.of(samples[mode]) for mode in MODES}
    ok, hang = stats["ok"], stats["hang"]
    ratio_p50 = common.ratio(hang.median, ok.median)
    ratio_p99 = common.ratio(hang.p99, ok.p99)
    probe_ok = probe.get("ok", "").startswith("HTTP 200") and probe.get("hang", "").startswith("no answer")
    passed = ratio_p99 <= TARGET_RATIO and not problems and probe_ok
    rows = []
    for mode in MODES:
        s = stats[mode]
        rows.append(
            [
                LABELS[mode],
                s.n,
                common.ms(s.median),
                common.ms(s.p99),
                common.ms(s.max),
                common.ms(s.min),
                common.ms(s.mean),
                probe.get(mode, "?"),
            ]
        )
    rows.append(["hanging / answering", "", common.times(ratio_p50), common.times(ratio_p99), "", "", "", ""])
    table = common.table(
        ["webhook answer (lambda_handler)", "runs", "p50", "p99", "max", "min", "mean", "probe"],
        rows,
    )

    def per_call(mode: str) -> str:
        counts = requests[mode]
        calls = counts["calls"] or 1
        return ", ".join(f"{t} {n / calls:.2f}" for t, n in sorted(counts.items()) if t != "calls")

    verdict = (
        f"Target: p99 with TikTok hanging <= {TARGET_RATIO}x the p99 with TikTok answering: "
        f"**{common.times(ratio_p99)}: {'PASS' if passed else 'FAIL'}** (p50 {common.times(ratio_p50)})."
        + ("" if probe_ok else " **The probe did not see the stand-in behave as set.**")
    )
    notes = (
        f"{runs} rounds after {warmup} warm-up rounds, each one new paid session with the stand-in set to "
        f"`ok` and one with it set to `hang`, in ABBA order, in one warm process; each call timed from call "
        f"to return. The environment is template.yaml's for the webhook (tracing off). A probe (one POST "
        f"with a {PROBE_TIMEOUT_SECONDS:g} s timeout in each mode, before the rounds) shows what the "
        f"stand-in does in each mode. Both distributions should be the same: the webhook makes no TikTok "
        f"request, and the ratio is the noise of this machine. The stand-ins collect their garbage every "
        f"{COLLECT_EVERY} rounds, outside the measurements."
    )
    lines = [
        "- Requests per call: "
        + "; ".join(f"{LABELS[mode]}: {per_call(mode)}" for mode in MODES)
        + " (expected TransactWriteItems 1.00, TikTok POST 0.00)",
        f"- Answers or requests not as expected (200 provisioned, TikTok pending, 1 TransactWriteItems, "
        f"no TikTok request): **{sum(problems.values())}**"
        + "".join(f"\n  - {count} x {text}" for text, count in problems.most_common(5)),
        f"- Session items by delivery_status: {dict(stored)} (no sender runs here: every delivery stays "
        f"pending for the stream)",
    ]
    markdown = "\n\n".join([notes, table, verdict, "\n".join(lines)])
    data = {
        "stats": {mode: vars(s) for mode, s in stats.items()},
        "ratio_p50": ratio_p50,
        "ratio_p99": ratio_p99,
        "target": TARGET_RATIO,
        "probe": probe,
        "problems": dict(problems),
        "requests": {mode: dict(c) for mode, c in requests.items()},
    }
    return common.Section(
        "bounded_answer", "3. TikTok hanging: the webhook's answer", markdown, data, ok=passed
    )


def main(argv: list[str] | None = None) -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--runs", type=int, help=f"rounds (default {RUNS}, --quick {QUICK_RUNS})")
    args = parser.parse_args(argv)
    runs = args.runs or (QUICK_RUNS if args.quick else RUNS)
    section = common.timed(run, runs, 3 if args.quick else WARMUP)
    common.emit(section, args.json_out)


if __name__ == "__main__":
    main()
