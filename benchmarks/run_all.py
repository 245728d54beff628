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

BENCHMARKS = ("cold_start", "warm_latency", "bounded_answer", "burst", "package_size")
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
            if result.returncode != 0 or not out.exists():
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
            else:
                sections.append(json.loads(out.read_text()))
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
            product, floor = data["stats"]["product"], data["stats"]["floor"]
            return (
                f"product p50 {common.ms(product['median'])} / p99 {common.ms(product['p99'])} vs floor "
                f"p50 {common.ms(floor['median'])} / p99 {common.ms(floor['p99'])}: "
                f"{data['ratio_p50']:.2f}x / {data['ratio_p99']:.2f}x (target <= 1.2x, judged on p50); "
                f"spawn to answer "
                f"{data['answer_ratio_p50']:.2f}x / {data['answer_ratio_p99']:.2f}x"
            )
        if name == "warm_latency":
            stats = data["stats"]
            return (
                f"new p50 {common.ms(stats['new']['median'])} / p99 {common.ms(stats['new']['p99'])}, "
                f"duplicate {common.ms(stats['duplicate']['median'])} / "
                f"{common.ms(stats['duplicate']['p99'])}, "
                f"floor {common.ms(stats['floor']['median'])} / {common.ms(stats['floor']['p99'])}; requests "
                f"as expected (2+1 new, 1 duplicate): {'yes' if data['expected_requests'] else 'NO'}"
            )
        if name == "bounded_answer":
            stats = data["stats"]
            return (
                f"TikTok hanging, budget {data['budget']:g} s: p50 {stats['median']:.3f} s, p99 "
                f"{stats['p99']:.3f} s, max {stats['max']:.3f} s (limit {data['limit']:g} s)"
            )
        if name == "burst":
            checks = "; ".join(f"{c['counted']}/{c['expected']}" for c in data["checks"])
            return (
                f"{data['throughput']:.0f} deliveries/s, p50 {common.ms(data['latency']['median'])}, p99 "
                f"{common.ms(data['latency']['p99'])}; customers/markers/provisioned/TikTok/event ids/5xx "
                f"(counted/expected): {checks}; 409s: {data['conflicts']}"
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
