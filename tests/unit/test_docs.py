"""The README is the front door: what it names must exist, and every setting must be in it."""

import re
from pathlib import Path

import pytest

from devtools.template_tables import load_template

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_every_setting_the_code_reads_is_documented():
    source = (ROOT / "functions/checkout_conversions/config.py").read_text()
    read = set(re.findall(r'(?:text|number)\(\s*"([A-Z][A-Z0-9_]+)"', source))
    read |= set(re.findall(r'read_secret\(\s*settings,\s*"([A-Z][A-Z0-9_]+)"', source))
    read |= set(re.findall(r'"([A-Z][A-Z0-9_]+_ACCESS_TOKEN)"', source))  # ACCESS_TOKEN_VARIABLES
    assert {"STRIPE_WEBHOOK_SECRET", "TIKTOK_ACCESS_TOKEN", "TIKTOK_TIMEOUT_SECONDS"} <= read
    missing = sorted(name for name in read if f"`{name}`" not in README)
    assert missing == []


def test_every_variable_the_template_sets_is_documented():
    """Globals set what every function reads; each function sets its own secrets' variables."""
    template = load_template()
    variables = set(template["Globals"]["Function"]["Environment"]["Variables"])
    functions = [
        resource["Properties"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
    ]
    for function in functions:
        variables |= set(function.get("Environment", {}).get("Variables", {}))
    assert {"STRIPE_WEBHOOK_SECRET", "TIKTOK_ACCESS_TOKEN_NAME", "SESSIONS_TABLE_NAME"} <= variables
    # Whole names: TIKTOK_ACCESS_TOKEN_NAME in the README does not document TIKTOK_ACCESS_TOKEN.
    missing = sorted(name for name in variables if not re.search(rf"\b{name}\b", README))
    assert missing == []


def test_every_make_target_the_readme_shows_exists():
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", (ROOT / "Makefile").read_text(), re.M))
    shown = set(re.findall(r"\bmake ([a-z][a-z0-9-]*)", README))
    assert shown, "the README shows make commands"
    assert sorted(shown - targets) == []


def test_quick_start_shows_exactly_the_two_commands():
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```sh\n(.*?)```", quick_start, re.S)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["make run", "make test"]


def test_make_help_lists_every_target():
    makefile = (ROOT / "Makefile").read_text()
    phony = set(re.search(r"^\.PHONY: (.*)$", makefile, re.M).group(1).split()) - {"help", "venv"}
    help_block = makefile.split("\nhelp:\n", 1)[1].split("\n\n", 1)[0]
    listed = set(re.findall(r'@echo "make ([a-z][a-z0-9-]*)', help_block))
    assert sorted(phony - listed) == []


def test_make_build_and_validate_say_how_to_install_the_sam_cli_when_it_is_missing():
    import os
    import shutil
    import subprocess

    if shutil.which("sam") and os.path.dirname(shutil.which("sam")) in ("/usr/bin", "/bin"):
        pytest.skip("a SAM CLI is installed where a stripped PATH still finds it")
    make = shutil.which("make")
    assert make, "make is needed to run the project's commands"
    for target in ("build", "validate"):
        run = subprocess.run(
            [make, "--no-print-directory", target],
            cwd=ROOT,
            env={"PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode != 0
        assert "The AWS SAM CLI is not installed" in run.stderr and "install-sam-cli" in run.stderr
