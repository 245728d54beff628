"""`make event E=NAME`: a sample Stripe event, signed now, as the Function URL event Lambda receives.

    python -m devtools.sign_event NAME [--secret S] [--out PATH]

Writes events/generated/NAME.invoke.json (for `sam local invoke -e`) and events/generated/env.json
(for `--env-vars`: the signing secret, and TIKTOK_* from the environment or .env). Also holds what
the local server shares with it: where the samples live, the local secret, and how a sample's
timestamps are moved to "now" before it is sent.
"""

import argparse
import copy
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devtools import dotenv
from devtools.function_url import signed_webhook_event

REPO = Path(__file__).resolve().parent.parent
EVENTS_DIR = REPO / "events"
GENERATED_DIR = EVENTS_DIR / "generated"
MANIFEST = EVENTS_DIR / "samples.json"
DOTENV = REPO / ".env"

# Accepted by `make run` / `make demo` next to any STRIPE_WEBHOOK_SECRET of your own. Never a real one.
LOCAL_WEBHOOK_SECRET = "whsec_local_development_only"
SIGNATURE_TOLERANCE_SECONDS = 300  # Stripe's default, and the function's
TIKTOK_VARIABLES = ("TIKTOK_ACCESS_TOKEN", "TIKTOK_PIXEL_ID", "TIKTOK_TEST_EVENT_CODE")
FUNCTION_LOGICAL_ID = "StripeWebhookFunction"
TABLE_VARIABLES = ("SESSIONS_TABLE_NAME", "CUSTOMERS_TABLE_NAME")
_FUNCTION_URL_HOST = "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws"

# Unix-time fields of events, checkout sessions and invoices, moved together when a sample is sent.
_TIMESTAMP_KEYS = frozenset(
    {
        "created", "expires_at", "effective_at", "period_start", "period_end", "start", "end",
        "finalized_at", "paid_at", "webhooks_delivered_at", "next_payment_attempt", "due_date",
    }
)


def sample_names(directory: Path = EVENTS_DIR) -> list[str]:
    return sorted(path.stem for path in directory.glob("*.json") if path.name != MANIFEST.name)


def load_event(path: Path) -> dict[str, Any]:
    event = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(event, dict) or event.get("object") != "event" or "type" not in event:
        raise ValueError(f"{path} is not a Stripe event object")
    return event


def as_sent_now(event: dict[str, Any], now: int | None = None) -> dict[str, Any]:
    """A copy whose `created` is now, every other timestamp moved by the same amount.

    The sample files keep fixed times; the function uses the event's `created` as the TikTok
    event_time, which must be recent."""
    now = int(time.time()) if now is None else now
    shift = now - int(event["created"])

    def move(value: Any, key: str | None = None) -> Any:
        if isinstance(value, dict):
            return {name: move(item, name) for name, item in value.items()}
        if isinstance(value, list):
            return [move(item) for item in value]
        if key in _TIMESTAMP_KEYS and isinstance(value, int) and not isinstance(value, bool):
            return value + shift
        return value

    return move(copy.deepcopy(event))


def payload(event: dict[str, Any]) -> bytes:
    """The body as Stripe sends it: pretty-printed JSON, UTF-8."""
    return json.dumps(event, indent=2, ensure_ascii=False).encode("utf-8")


def invoke_event(event: dict[str, Any], secret: str, now: int | None = None) -> dict[str, Any]:
    """The Function URL event (body as text, not base64) carrying `event` signed with `secret`."""
    invocation = signed_webhook_event(payload(event), secret, timestamp=now)
    invocation["headers"].update(
        {
            "host": _FUNCTION_URL_HOST,
            "x-forwarded-for": invocation["requestContext"]["http"]["sourceIp"],
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
        }
    )
    invocation["requestContext"]["domainName"] = _FUNCTION_URL_HOST
    invocation["requestContext"]["domainPrefix"] = _FUNCTION_URL_HOST.split(".", 1)[0]
    return invocation


def env_vars(secret: str, environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """`sam local invoke --env-vars` file: values for the function's declared variables."""
    variables = {"STRIPE_WEBHOOK_SECRET": secret, "SECRETS_SOURCE": "env"}
    variables.update({name: environ.get(name, "") for name in TIKTOK_VARIABLES})
    # A deployed stack's tables (its outputs SessionsTableName, CustomersTableName), if given.
    variables.update({name: environ[name] for name in TABLE_VARIABLES if environ.get(name)})
    return {FUNCTION_LOGICAL_ID: variables}


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _write_private(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # may hold the TikTok token
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(data, file, indent=2, ensure_ascii=False)
        file.write("\n")
    os.chmod(path, 0o600)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.sign_event",
        description="Sign a sample event from events/ now and write it as a Function URL event "
        "for `sam local invoke`.",
    )
    parser.add_argument("name", help="a sample in events/, e.g. checkout_session_completed")
    parser.add_argument("--secret", default=LOCAL_WEBHOOK_SECRET, help="signing secret (%(default)s)")
    parser.add_argument("--out", type=Path, help="event file to write (events/generated/NAME.invoke.json)")
    args = parser.parse_args(argv)

    name = Path(args.name).name.removesuffix(".json")
    names = sample_names()
    if name not in names:
        print(f"Unknown sample event {args.name!r}. Available (events/*.json):", file=sys.stderr)
        for available in names:
            print(f"  {available}", file=sys.stderr)
        return 2
    if not args.secret.strip():
        parser.error("--secret must not be empty")

    try:
        dotenv.load(DOTENV)
    except ValueError as error:
        print(f"Cannot read .env: {error}", file=sys.stderr)
        return 2
    now = int(time.time())
    event = as_sent_now(load_event(EVENTS_DIR / f"{name}.json"), now)
    out = args.out or GENERATED_DIR / f"{name}.invoke.json"
    env_file = out.parent / "env.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(invoke_event(event, args.secret, now), indent=2) + "\n", encoding="utf-8")
    _write_private(env_file, env_vars(args.secret))

    tiktok = "TIKTOK_* from your environment" if os.environ.get("TIKTOK_ACCESS_TOKEN") else "TikTok off"
    secret_note = "the local secret" if args.secret == LOCAL_WEBHOOK_SECRET else "your --secret"
    expires = time.strftime("%H:%M:%S", time.localtime(now + SIGNATURE_TOLERANCE_SECONDS))
    print(f"Signed {name} ({event['type']}, {event['id']}) with {secret_note}.")
    print(f"  {_shown(out)}  the Function URL event (body as text, not base64)")
    print(f"  {_shown(env_file)}  --env-vars for {FUNCTION_LOGICAL_ID}: STRIPE_WEBHOOK_SECRET, {tiktok}")
    print()
    print("Invoke it (AWS SAM CLI, with Docker running):")
    print("  sam build")
    print(f"  sam local invoke {FUNCTION_LOGICAL_ID} -e {_shown(out)} --env-vars {_shown(env_file)}")
    print()
    print(
        f"The signature expires after {SIGNATURE_TOLERANCE_SECONDS} s (at {expires}): the function then "
        f"answers 400 \"signature timestamp too old\"; run `make event E={name}` again."
    )
    print(
        "Inside Docker the function uses real DynamoDB with your AWS credentials: set SESSIONS_TABLE_NAME "
        "and CUSTOMERS_TABLE_NAME (your stack's outputs) in the environment or .env before `make event`. "
        "`make run` needs neither Docker nor AWS."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
