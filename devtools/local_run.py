"""Where a running `make run` keeps its local DynamoDB, for `make deliveries` to find it.

`make run` writes a small JSON file (git-ignored, `.local/make-run.json`, readable by you only;
LOCAL_RUN_FILE names another) once its tables exist, and removes it when it stops: the moto
endpoint, the region, the table names, the server's process id and the functions' settings (for
`make replay`). `make deliveries` without STACK= reads it while that
process is alive, so the local listing needs no port, table name, region or credentials typed in.
"""

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_FILE = REPO / ".local" / "make-run.json"


def state_file() -> Path:
    return Path(os.environ.get("LOCAL_RUN_FILE") or DEFAULT_FILE)


# The functions' settings `make replay` decides with, as `make run` set them (its stand-ins' URLs
# and tokens included); never the webhook's signing secret.
SETTINGS_PREFIXES = ("TIKTOK_", "META_", "STRIPE_API_", "REDRIVE_", "DELIVERY_", "RECORD_", "SECRETS_")
SETTINGS_NAMES = ("REQUIRE_AD_CONSENT", "RENEWAL_EVENT_NAME", "DEFAULT_PHONE_COUNTRY", "CONTENT_ID_SOURCE")


def write(
    endpoint: str,
    region: str,
    sessions_table: str,
    customers_table: str,
    url: str,
    environ: Mapping[str, str] = os.environ,
) -> Path:
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "pid": os.getpid(),
        "url": url,
        "endpoint": endpoint,
        "region": region,
        "sessions_table": sessions_table,
        "customers_table": customers_table,
        "environment": {
            name: value
            for name, value in environ.items()
            if name.startswith(SETTINGS_PREFIXES) or name in SETTINGS_NAMES
        },
    }
    path.unlink(missing_ok=True)
    # Readable by its owner only, from its first byte: it holds the local run's tokens.
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as file:
        file.write(json.dumps(state, indent=2) + "\n")
    return path


def remove() -> None:
    """Forget this process's state (another `make run` started since keeps its own)."""
    current = read(alive_only=False)
    if current is not None and current.get("pid") == os.getpid():
        state_file().unlink(missing_ok=True)


def read(alive_only: bool = True) -> dict[str, Any] | None:
    """The running `make run`'s state; None when there is none (or its process has ended)."""
    try:
        state = json.loads(state_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not isinstance(state.get("pid"), int):
        return None
    if alive_only and not _alive(state["pid"]):
        return None
    return state


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True
