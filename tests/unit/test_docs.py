"""The README is the front door and docs/ the reference: what they name must exist, every link
must lead somewhere, and every setting must be in the configuration reference. (Every command they
show is run or checked by tests/integration/test_documented_commands.py.)"""

import re
from pathlib import Path

import pytest

from devtools.template_tables import load_template

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
DOCUMENTS = {path: path.read_text() for path in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))}
REFERENCE = (ROOT / "docs" / "configuration.md").read_text()


def test_every_setting_the_code_reads_is_documented():
    package = ROOT / "functions/checkout_conversions"
    # settings.py, and each platform's own settings (destinations/<platform>/settings.py)
    modules = [package / "settings.py", *sorted(package.glob("destinations/*/settings.py"))]
    assert len(modules) >= 3
    source = "\n".join(module.read_text() for module in modules)
    read = set(re.findall(r'(?:text|integer|seconds|flag)\(\s*"([A-Z][A-Z0-9_]+)"', source))
    read |= set(
        re.findall(r'SecretRef\(\s*"([A-Z][A-Z0-9_]+)"', source)
    )  # secrets: STRIPE_WEBHOOK_SECRET ...
    assert {"STRIPE_WEBHOOK_SECRET", "TIKTOK_ACCESS_TOKEN", "TIKTOK_TIMEOUT_SECONDS"} <= read
    missing = sorted(name for name in read if f"`{name}`" not in REFERENCE)
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
    missing = sorted(name for name in variables if not re.search(rf"\b{name}\b", REFERENCE))
    assert missing == []


def test_every_make_target_the_docs_show_exists():
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", (ROOT / "Makefile").read_text(), re.M))
    shown = {
        target for text in DOCUMENTS.values() for target in re.findall(r"\bmake ([a-z][a-z0-9-]*)", text)
    }
    assert {"run", "test", "deliveries"} <= shown
    assert sorted(shown - targets) == []


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower-cased, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_of_the_readme_and_docs_leads_to_a_file_and_heading_that_exist():
    links = 0
    for path, text in DOCUMENTS.items():
        prose = re.sub(r"```.*?```", "", text, flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", prose):
            if target.startswith(("http://", "https://")):
                continue
            links += 1
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            assert linked.exists(), f"{path.name}: {target}"
            if anchor:
                headings = re.findall(r"^#+ (.*)$", linked.read_text(), re.M)
                assert anchor in {github_anchor(heading) for heading in headings}, f"{path.name}: {target}"
    assert links > 15


def test_the_readme_is_a_front_door_not_the_reference():
    assert len(README.splitlines()) <= 200
    for section in ("## Quick start", "## Go-live checklist", "## Configuration", "## Operating it"):
        assert section in README
    for document in (
        "how-it-works",
        "events",
        "configuration",
        "deploy",
        "runbook",
        "local-development",
        "performance",
    ):
        assert f"(docs/{document}.md" in README


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


def test_every_product_module_says_what_it_is_in_one_to_three_lines_that_stay_in_the_repository():
    """The architecture is told once, in docs/how-it-works.md; each module names its own concern."""
    import ast

    modules = sorted((ROOT / "functions").rglob("*.py"))
    assert len(modules) > 40
    for module in modules:
        docstring = ast.get_docstring(ast.parse(module.read_text()), clean=False)
        assert docstring, f"{module} has no docstring"
        assert 1 <= len(docstring.strip().splitlines()) <= 3, module
        assert "../" not in module.read_text(), f"{module} points outside the repository"
