"""Figures and claims the docs quote that can be checked against what they quote (issue 20,
section 3): the package sizes of the last `make bench`, and what `make test` covers of CI."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def last_package_size_table() -> dict[str, list[str]]:
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    section = results.rsplit("### 6. Package size", 1)[1]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and line.startswith("|"):
            rows[cells[0]] = cells
    return rows


def mb(cell: str) -> float:
    return float(cell.removesuffix(" MB"))


def test_the_performance_page_quotes_the_layer_the_code_and_their_sum_apart():
    rows = last_package_size_table()
    layer = mb(next(cells for name, cells in rows.items() if name.startswith("dependencies layer"))[2])
    total = mb(rows["total"][2])
    page = (ROOT / "docs" / "performance.md").read_text()
    [package] = [line for line in page.splitlines() if line.startswith("| package |")]
    assert f"layer {layer:.1f} MB unzipped" in package
    assert f"together {total:.1f} MB" in package
    share = rows["total"][4].strip("*")
    assert share.replace("%", " %") in package


def test_the_readme_says_what_ci_runs_beyond_make_test():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    [line] = [line for line in readme.splitlines() if line.startswith("make test ")]
    assert "everything CI runs" not in line
    assert re.search(r"^make test$", ci, re.M)
    if "make test-dynamodb-local" in ci:
        assert "DynamoDB Local" in line
    if "3.13" in ci:
        assert "3.13" in line
