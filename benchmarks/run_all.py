"""Run every benchmark, print its tables, and append a dated section to benchmarks/RESULTS.md.

Each benchmark runs in a fresh process of its own (its own stand-ins, its own import of the
handler), one after the other, so none inherits another's state or warm caches.

    python -m benchmarks.run_all              # the full run (the figures in RESULTS.md)
    python -m benchmarks.run_all --quick      # a smoke test with few runs
    python -m benchmarks.run_all --only warm_latency,burst --no-record
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import common

BENCHMARKS = (
    "cold_start",
    "warm_latency",
    "bounded_answer",
    "sender_latency",
    "burst",
    "package_size",
    "drain_backlog",
)
RESULTS = common.REPO / "benchmarks" / "RESULTS.md"
HEADER = """# Benchmark results

Appended by `python -m benchmarks.run_all` (`make bench`), newest last. benchmarks/README.md says
what each benchmark does and how to read these tables. Compare figures within one section (one
run, one machine): across runs and machines only the ratios mean much.
"""


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",")] if args.only else list(BENCHMARKS)
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    started_at = datetime.now(UTC)
    started = time.perf_counter()
    machine = common.machine()
    print(_machine_table(machine), "\n", flush=True)
    sections: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        for name in chosen:
            out = Path(scratch) / f"{name}.json"
            command = [sys.executable, "-m", f"benchmarks.{name}", "--json-out", str(out)]
            if args.quick:
                command.append("--quick")
            print(f"--- {name} ---", flush=True)
            result = subprocess.run(command, cwd=common.REPO)
            if out.exists():  # written last: a benchmark that missed its target exits 1 after it
                section = json.loads(out.read_text())
                if result.returncode != 0:
                    section["ok"] = False
                sections.append(section)
            else:
                sections.append(
                    {
                        "name": name,
                        "title": name,
                        "ok": False,
                        "seconds": 0,
                        "data": {},
                        "markdown": f"**The benchmark failed (exit {result.returncode}); see its output.**",
                    }
                )
    total = time.perf_counter() - started

    summary = _summary(sections, total)
    print(summary, flush=True)
    if not args.no_record:
        _record(started_at, machine, sections, summary, args.quick, total)
        print(f"\nAppended to {RESULTS.relative_to(common.REPO)}", flush=True)
    return 0 if all(section.get("ok") is not False for section in sections) else 1


def _machine_table(machine: dict[str, str]) -> str:
    return common.table(["machine", ""], [[key, value] for key, value in machine.items()])


def _summary(sections: list[dict[str, Any]], total: float) -> str:
    rows = []
    for section in sections:
        data = section.get("data") or {}
        rows.append([section["title"], _headline(section["name"], data), _verdict(section.get("ok"))])
    rows.append(["Total run time", f"{total:.0f} s", ""])
    return "#### Summary\n\n" + common.table(["benchmark", "headline", "verdict"], rows)


def _verdict(ok: bool | None) -> str:
    return {True: "PASS", False: "**FAIL**", None: ""}[ok]


def _headline(name: str, data: dict[str, Any]) -> str:
    try:
        if name == "cold_start":
            answer, floor = data["to_answer"]["product"], data["to_answer"]["floor"]
            traced = data["to_answer"]["product_traced"]
            return (
                f"spawn to answer: product p50 {common.ms(answer['median'])} / p99 "
                f"{common.ms(answer['p99'])} vs floor p50 {common.ms(floor['median'])} / p99 "
                f"{common.ms(floor['p99'])}: {data['answer_ratio_p50']:.2f}x / "
                f"{data['answer_ratio_p99']:.2f}x "
                f"(target <= {data['target']:g}x, judged on p50); spawn to exit {data['ratio_p50']:.2f}x / "
                f"{data['ratio_p99']:.2f}x; tracing on: p50 {common.ms(traced['median'])} "
                f"({data['traced_answer_ratio_p50']:.2f}x the floor)"
            )
        if name == "warm_latency":
            stats = data["stats"]
            return (
                f"new p50 {common.ms(stats['new']['median'])} / p99 {common.ms(stats['new']['p99'])} "
                f"({data['ratio_new_p50']:.2f}x / {data['ratio_new_p99']:.2f}x), duplicate "
                f"{common.ms(stats['duplicate']['median'])} / {common.ms(stats['duplicate']['p99'])} "
                f"({data['ratio_duplicate_p50']:.2f}x / {data['ratio_duplicate_p99']:.2f}x), floor "
                f"{common.ms(stats['floor']['median'])} / {common.ms(stats['floor']['p99'])} (target <= "
                f"{data['target']:g}x); requests as expected (1 TransactWriteItems + 0 TikTok new, 1 "
                f"duplicate): {'yes' if data['expected_requests'] else 'NO'}"
            )
        if name == "bounded_answer":
            ok, hang = data["stats"]["ok"], data["stats"]["hang"]
            return (
                f"webhook answer, TikTok hanging p50 {common.ms(hang['median'])} / p99 "
                f"{common.ms(hang['p99'])} vs answering {common.ms(ok['median'])} / {common.ms(ok['p99'])}: "
                f"p99 {data['ratio_p99']:.2f}x (target <= {data['target']:g}x), p50 {data['ratio_p50']:.2f}x"
            )
        if name == "sender_latency":
            latency = data["latency"]
            per_record = ", ".join(
                f"{target} {n:.2f}" for target, n in sorted(data["sender_requests_per_record"].items())
            )
            return (
                f"answer to TikTok over {data['delivered']}/{data['sessions']} sessions: p50 "
                f"{common.ms(latency['median'])}, p99 {common.ms(latency['p99'])}, max "
                f"{common.ms(latency['max'])}; sender requests per record: {per_record or 'none'} "
                f"(expected UpdateItem 2.00)"
            )
        if name == "burst":
            checks = "; ".join(f"{c['counted']}/{c['expected']}" for c in data["checks"])
            return (
                f"{data['throughput']:.0f} deliveries/s, p50 {common.ms(data['latency']['median'])}, p99 "
                f"{common.ms(data['latency']['p99'])}; drain {data['drain']['records']} records in "
                f"{data['drain']['wall']:.1f} s; checks (counted/expected): {checks}; "
                f"409s: {data['conflicts']}"
            )
        if name == "drain_backlog":
            runs = "; ".join(
                f"{run['destination']} {run['deliveries']} in {run['wall']:.1f} s, "
                f"{run['requests']} requests ({run['requests_per_100']:.2f} per 100), "
                f"{run['distinct']} distinct ids, {run['statuses'].get('sent', 0)} sent, "
                f"{run['in_queue_after']} left"
                for run in data["runs"]
            )
            single, default = data["comparison"]["batch_size_1"], data["comparison"]["default"]
            requests = common.ratio(single["requests_per_100"], default["requests_per_100"])
            seconds = common.ratio(single["seconds_per_100"], default["seconds_per_100"])
            return (
                f"one redrive run each: {runs} (target <= {data['target_requests_per_100']:g} request "
                f"per 100, all sent once); REDRIVE_BATCH_SIZE=1 vs default: {requests:.0f}x the "
                f"requests, {seconds:.1f}x the seconds per 100"
            )
        if name == "package_size":
            return (
                f"{data['total_bytes'] / 1024 / 1024:.1f} MB unzipped of 250 MB "
                f"({data['total_bytes'] / data['limit_bytes']:.1%}); code {data['code_bytes'] / 1024:.0f} KB"
            )
    except (KeyError, TypeError, ZeroDivisionError):
        pass
    return "see the section"


def _record(
    started_at: datetime,
    machine: dict[str, str],
    sections: list[dict[str, Any]],
    summary: str,
    quick: bool,
    total: float,
) -> None:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=common.REPO, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "functions", "layers", "template.yaml"],
        cwd=common.REPO,
        capture_output=True,
        text=True,
    ).stdout.strip()
    kind = "quick run (--quick: too few runs for figures)" if quick else "full run"
    parts = [
        f"## {started_at:%Y-%m-%d %H:%M} UTC, {kind}",
        f"Commit {commit or 'unknown'}{' with uncommitted changes to the function' if dirty else ''}; "
        f"total run time {total:.0f} s; load average at the end "
        f"{', '.join(f'{value:.2f}' for value in os.getloadavg())} (other work on the machine shows there).",
        _machine_table(machine),
        summary,
        *(_render(section) for section in sections),
    ]
    text = "\n\n".join(part.strip() for part in parts) + "\n"
    existing = RESULTS.read_text() if RESULTS.exists() else HEADER
    RESULTS.write_text(existing.rstrip("\n") + "\n\n" + text)


def _render(section: dict[str, Any]) -> str:
    return f"### {section['title']}\n\n{section['markdown'].strip()}\n\n_Took {section['seconds']:.0f} s._"


if __name__ == "__main__":
    sys.exit(main())
