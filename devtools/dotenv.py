"""A minimal `.env` reader for the development tools (no dependency).

Lines are `KEY=VALUE`; blank lines and `# comments` are skipped, an `export ` prefix is allowed,
and a value wrapped in matching single or double quotes is unwrapped (no escapes, no expansion).
A variable already in the real environment always wins over the file.
"""

import os
import re
from collections.abc import MutableMapping
from pathlib import Path

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, separator, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not separator or not _KEY.match(key):
            raise ValueError(f"line {number}: expected KEY=VALUE")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:  # an unquoted value ends at an inline comment
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


def load(path: Path, environ: MutableMapping[str, str] = os.environ) -> list[str]:
    """Set the file's variables that the environment does not already have; return their names.
    A missing file is not an error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    try:
        values = parse(text)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    loaded = [key for key in values if key not in environ]
    for key in loaded:
        environ[key] = values[key]
    return loaded
