"""The JavaScript side with Node's own test runner (node --test): examples/landing/attribution.js
in a fake page, and the Express example (examples/node), whose tests need its node_modules."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE_EXAMPLE = ROOT / "examples" / "node"


def node_test(*files):
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the JavaScript tests were skipped (apt-get install nodejs)")
    result = subprocess.run(
        [node, "--test", *map(str, files)], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_attribution_js_cookies():
    node_test(*sorted((ROOT / "tests" / "browser" / "js").glob("*.test.js")))


def test_express_example():
    if shutil.which("node") is None:
        pytest.skip(
            "Node.js is not installed: the Express example's tests were skipped (apt-get install nodejs)"
        )
    if not (NODE_EXAMPLE / "node_modules" / "express").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip(
                "npm is missing, and so is examples/node/node_modules: the Express tests were skipped"
            )
        # Exactly the versions of package-lock.json; node_modules stays out of git (.gitignore).
        install = subprocess.run(
            [npm, "ci", "--prefix", str(NODE_EXAMPLE), "--no-audit", "--no-fund"],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        if install.returncode != 0:
            pytest.skip(
                f"npm ci --prefix examples/node failed: the Express tests were skipped\n{install.stderr}"
            )
    node_test(*sorted((NODE_EXAMPLE / "test").glob("*.test.js")))
