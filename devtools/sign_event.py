"""`make event`: events for `sam local invoke`, as Lambda delivers them.

    python -m devtools.sign_event NAME [--secret S] [--out PATH]     # make event E=NAME
    python -m devtools.sign_event --stream-for cs_... [--destination meta] [--out PATH]
                                                  # make event SESSION=cs_... [DESTINATION=meta]

NAME: a sample Stripe event, signed now, as the Function URL event of StripeWebhookFunction
(events/generated/NAME.invoke.json). --stream-for: the DynamoDB stream event that hands that
session's new delivery to DeliverySenderFunction (events/generated/stream.invoke.json). Both also
write events/generated/env.json for `--env-vars`: each function's variables (the signing secret
for the webhook; TIKTOK_* and META_* from the environment or .env for the sender, the pixel ids
for both: without a destination's pixel id the webhook creates no delivery for it; your stack's
tables if set). Also holds what the local server shares with it: where the samples live, the local secret,
and how a sample's timestamps are moved to "now" before it is sent.
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
PLATFORM_SETTINGS = ("TIKTOK_PIXEL_ID", "TIKTOK_TEST_EVENT_CODE", "META_PIXEL_ID", "META_TEST_EVENT_CODE")
FUNCTION_LOGICAL_ID = "StripeWebhookFunction"
SENDER_LOGICAL_ID = "DeliverySenderFunction"
TABLE_VARIABLES = ("SESSIONS_TABLE_NAME", "CUSTOMERS_TABLE_NAME")
DESTINATIONS = {"tiktok": "TikTok", "meta": "Meta"}  # name: label
# The stream ARN in a generated stream event, unless SESSIONS_STREAM_ARN names your stack's.
EXAMPLE_STREAM_ARN = (
    "arn:aws:dynamodb:us-east-1:123456789012:table/stripe-tiktok-conversions-SessionsTable/stream/"
    "2026-01-01T00:00:00.000"
)
_FUNCTION_URL_HOST = "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws"

# Unix-time fields of events, checkout sessions and invoices, moved together when a sample is sent.
_TIMESTAMP_KEYS = frozenset(
    {
        "created",
        "expires_at",
        "effective_at",
        "period_start",
        "period_end",
        "start",
        "end",
        "finalized_at",
        "paid_at",
        "webhooks_delivered_at",
        "next_payment_attempt",
        "due_date",
    }
)


def sample_names(directory: Path = EVENTS_DIR) -> list[str]:
    """The Stripe samples (events/*.json); the sender's stream events live in events/stream/."""
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
    """`sam local invoke --env-vars` file: values for each function's declared variables (the
    webhook never gets the TikTok token, the sender never the Stripe secret)."""
    shared = {"SECRETS_SOURCE": "env", **{name: environ.get(name, "") for name in PLATFORM_SETTINGS}}
    # A deployed stack's tables (its outputs SessionsTableName, CustomersTableName), if given.
    shared.update({name: environ[name] for name in TABLE_VARIABLES if environ.get(name)})
    return {
        FUNCTION_LOGICAL_ID: {"STRIPE_WEBHOOK_SECRET": secret, **shared},
        SENDER_LOGICAL_ID: {
            "TIKTOK_ACCESS_TOKEN": environ.get("TIKTOK_ACCESS_TOKEN", ""),
            "META_ACCESS_TOKEN": environ.get("META_ACCESS_TOKEN", ""),
            **shared,
        },
    }


def stream_event(
    session_id: str, environ: Mapping[str, str] = os.environ, destination: str = "tiktok"
) -> dict[str, Any]:
    """The event the stream's event source mapping sends DeliverySenderFunction for a new delivery of
    this session (or renewal invoice)."""
    from devtools.stream_mapping import new_delivery_record

    arn = environ.get("SESSIONS_STREAM_ARN") or EXAMPLE_STREAM_ARN
    return {"Records": [new_delivery_record(f"{session_id}#{destination}", arn, destination=destination)]}


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _say_missing_tables(env_file: Path, environ: Mapping[str, str] = os.environ) -> None:
    missing = [name for name in TABLE_VARIABLES if not environ.get(name)]
    if missing:
        print(
            f"Not in {_shown(env_file)}: {' and '.join(missing)}. Set them to your deployed stack's "
            "outputs (SessionsTableName, CustomersTableName: `aws cloudformation describe-stacks "
            "--stack-name <stack> --query 'Stacks[0].Outputs'`) in the environment or .env and run "
            "`make event` again; without them the function answers 500 "
            '"webhook endpoint is not configured".'
        )


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
    parser.add_argument("name", nargs="?", help="a sample in events/, e.g. checkout_session_completed")
    parser.add_argument("--secret", default=LOCAL_WEBHOOK_SECRET, help="signing secret (%(default)s)")
    parser.add_argument(
        "--stream-for", metavar="SESSION_ID", help="write the sender's stream event for this checkout session"
    )
    parser.add_argument(
        "--destination",
        choices=("tiktok", "meta"),
        default="tiktok",
        help="with --stream-for: whose delivery the stream event hands over (default tiktok)",
    )
    parser.add_argument("--out", type=Path, help="event file to write (events/generated/NAME.invoke.json)")
    args = parser.parse_args(argv)
    if args.stream_for:
        return _write_stream_event(args.stream_for.strip(), args.out, args.destination)
    if not args.name:
        parser.error("name a sample event (or --stream-for SESSION_ID)")

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

    secret_note = "the local secret" if args.secret == LOCAL_WEBHOOK_SECRET else "your --secret"
    expires = time.strftime("%H:%M:%S", time.localtime(now + SIGNATURE_TOLERANCE_SECONDS))
    print(f"Signed {name} ({event['type']}, {event['id']}) with {secret_note}.")
    print(f"  {_shown(out)}  the Function URL event (body as text, not base64)")
    notes = "; ".join(_sender_note(name) for name in DESTINATIONS)
    print(f"  {_shown(env_file)}  --env-vars: the secret for {FUNCTION_LOGICAL_ID}; {notes}")
    print()
    print("Invoke it (AWS SAM CLI, with Docker running):")
    print("  sam build")
    print(f"  sam local invoke {FUNCTION_LOGICAL_ID} -e {_shown(out)} --env-vars {_shown(env_file)}")
    print()
    print(
        f"The signature expires after {SIGNATURE_TOLERANCE_SECONDS} s (at {expires}): the function then "
        f'answers 400 "signature timestamp too old"; run `make event E={name}` again.'
    )
    print(
        "Inside Docker the function uses real DynamoDB with your AWS credentials. `make run` needs "
        "neither Docker nor AWS."
    )
    _say_missing_tables(env_file)
    session_id = event["data"]["object"].get("id")
    with_pixel = [name for name in DESTINATIONS if os.environ.get(f"{name.upper()}_PIXEL_ID", "").strip()]
    if with_pixel:
        choices = {("tiktok",): "", ("meta",): " DESTINATION=meta", ("tiktok", "meta"): " [DESTINATION=meta]"}
        destination = choices[tuple(with_pixel)]
        print(f"Then hand its deliveries to the sender: make event SESSION={session_id}{destination}")
    else:
        print(
            "No delivery will be created: neither TIKTOK_PIXEL_ID nor META_PIXEL_ID is set (environment or "
            ".env; a destination is part of the deployment only with its pixel id). Set your stack's to "
            "hand deliveries to the sender with make event SESSION=..."
        )
    return 0


def _sender_note(destination: str) -> str:
    """What env.json makes of one destination (its settings come from the environment or .env)."""
    label, prefix = DESTINATIONS[destination], destination.upper()
    if not os.environ.get(f"{prefix}_PIXEL_ID", "").strip():
        return f"{label} not part of it (no {prefix}_PIXEL_ID: the webhook creates no {label} delivery)"
    if os.environ.get(f"{prefix}_ACCESS_TOKEN"):
        return f"{prefix}_* from your environment for {SENDER_LOGICAL_ID}"
    return (
        f"{label} off for {SENDER_LOGICAL_ID} (no {prefix}_ACCESS_TOKEN: its deliveries are recorded skipped)"
    )


def _write_stream_event(session_id: str, out: Path | None, destination: str = "tiktok") -> int:
    if not session_id.startswith(("cs_", "in_")):
        print(
            f"{session_id!r} is neither a checkout session id (cs_test_..., cs_live_...) nor, for a "
            "renewal, an invoice id (in_...)",
            file=sys.stderr,
        )
        return 2
    try:
        dotenv.load(DOTENV)
    except ValueError as error:
        print(f"Cannot read .env: {error}", file=sys.stderr)
        return 2
    out = out or GENERATED_DIR / "stream.invoke.json"
    env_file = out.parent / "env.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(stream_event(session_id, destination=destination), indent=2) + "\n", encoding="utf-8"
    )
    _write_private(env_file, env_vars(LOCAL_WEBHOOK_SECRET))
    print(
        f"Wrote the stream event that hands {session_id}'s new {destination} delivery to {SENDER_LOGICAL_ID}."
    )
    print(f"  {_shown(out)}  one INSERT record, as Lambda's event source mapping delivers it")
    print(f"  {_shown(env_file)}  --env-vars: {_sender_note(destination)}")
    print()
    print("Invoke it (AWS SAM CLI, with Docker running):")
    print("  sam build")
    print(f"  sam local invoke {SENDER_LOGICAL_ID} -e {_shown(out)} --env-vars {_shown(env_file)}")
    print()
    print(
        "The sender claims the delivery in the Sessions table named by SESSIONS_TABLE_NAME (your stack's; "
        "set it in the environment or .env), sends it once and records the outcome. A session that is not "
        "there, or whose delivery is already sent, is left alone: the answer lists no failure."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
