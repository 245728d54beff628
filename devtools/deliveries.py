"""The operator's view of the deliveries, per destination (TikTok, Meta): counts by status, the
recent ones, match-key coverage, and a requeue.

    make deliveries                          # python -m devtools.deliveries
    make deliveries COVERAGE=500             # match-key coverage over the newest 500 sent
    make deliveries REQUEUE=cs_live_...      # python -m devtools.deliveries --requeue cs_live_...
    make deliveries REQUEUE=cs_live_... DESTINATION=meta
    python -m devtools.deliveries --stack-name stripe-tiktok-conversions --status failed --limit 20

The Sessions table comes from the stack's SessionsTableName output with --stack-name, or from
SESSIONS_TABLE_NAME (environment or .env), or else from a running `make run` (its local DynamoDB,
found through devtools/local_run.py: nothing to set). AWS credentials, region and endpoint come the standard
way (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL_DYNAMODB ...).

Listing reads the whole Sessions table (a Scan of a few small attributes, paginated): fine for an
operator now and then, not for a schedule. It prints ids, states, codes and times, and which match
keys the sent events carried (names, never values): never the stored purchase (the buyer's
details, IP, User-Agent) nor the customer key (an email address for guest checkouts).
"""

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "functions") not in sys.path:  # `python -m devtools.deliveries` from the repository
    sys.path.insert(0, str(ROOT / "functions"))

from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402

from checkout_conversions.destinations.base import DestinationSettings  # noqa: E402
from checkout_conversions.destinations.meta.match_keys import USER_DATA_KEYS  # noqa: E402
from checkout_conversions.destinations.tiktok.match_keys import USER_KEYS  # noqa: E402
from checkout_conversions.outbox import attempt  # noqa: E402
from checkout_conversions.outbox.model import DeliveryStatus, StoreError  # noqa: E402
from checkout_conversions.secrets import ConfigurationError  # noqa: E402
from checkout_conversions.settings import load_settings  # noqa: E402
from checkout_conversions.store.deliveries import DynamoDeliveries  # noqa: E402
from checkout_conversions.store.items import from_item  # noqa: E402
from devtools import local_run  # noqa: E402

STATUSES = tuple(status.value for status in DeliveryStatus)
# Shown even before it has any delivery, the --requeue default, and the destination of an item
# that names none (recorded before there were two).
FIRST_DESTINATION = "tiktok"
# The match keys each destination's events can carry, in its reporting order.
MATCH_KEYS = {"tiktok": USER_KEYS, "meta": USER_DATA_KEYS}
# Only these attributes are read: nothing that identifies the buyer.
SHOWN_FIELDS = (
    "session_id",
    "event_id",
    "destination",
    "delivery_note",
    "provisioned_at",
    "livemode",
    "event_time",
    "delivery_status",
    "delivery_attempts",
    "delivery_retryable",
    "delivery_code",
    "delivery_message",
    "delivery_reason",
    "delivery_http_status",
    "delivery_updated_at",
    "next_attempt_at",
    "claim_expires_at",
    "delivery_match_keys",
)
MESSAGE_WIDTH = 60


class UsageError(Exception):
    pass


def all_destinations(environ: Mapping[str, str] = os.environ) -> tuple[DestinationSettings, ...]:
    """Every platform's settings, configured or not: their names, labels and age limits."""
    try:
        return load_settings(environ).destinations
    except ConfigurationError:  # an unknown SECRETS_SOURCE: no secret is read here anyway
        return load_settings({**environ, "SECRETS_SOURCE": "env"}).destinations


def dynamodb_client() -> Any:
    import boto3

    return boto3.client("dynamodb")


def cloudformation_client() -> Any:
    import boto3

    return boto3.client("cloudformation")


def table_names(stack_name: str | None) -> tuple[str, str]:
    """(sessions table, customers table) from the stack's outputs or the environment."""
    if stack_name:
        try:
            stacks = cloudformation_client().describe_stacks(StackName=stack_name)["Stacks"]
        except Exception as error:  # noqa: BLE001 - any AWS or credentials problem: say it plainly
            raise UsageError(f"cannot read stack {stack_name!r}: {error}") from None
        outputs = {item["OutputKey"]: item["OutputValue"] for item in stacks[0].get("Outputs", [])}
        if "SessionsTableName" not in outputs:
            raise UsageError(f"stack {stack_name!r} has no SessionsTableName output")
        return outputs["SessionsTableName"], outputs.get("CustomersTableName", "")
    sessions = os.environ.get("SESSIONS_TABLE_NAME", "").strip()
    if sessions:
        return sessions, os.environ.get("CUSTOMERS_TABLE_NAME", "").strip()
    running = local_run.read()
    if running is None:
        raise UsageError(
            "set SESSIONS_TABLE_NAME or pass --stack-name (make deliveries STACK=...), "
            "or start `make run` to list its local deliveries"
        )
    return use_local_run(running)


def use_local_run(running: dict[str, Any]) -> tuple[str, str]:
    """Point boto3 at a running `make run`'s DynamoDB (moto: throwaway credentials, its region)."""
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = running["endpoint"]
    os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"] = running["region"]
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(name, None)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        os.environ[name] = "testing"
    print(f"make run's local DynamoDB at {running['endpoint']} (serving {running['url']})", file=sys.stderr)
    return running["sessions_table"], running["customers_table"]


def read_deliveries(client: Any, table: str) -> list[dict[str, Any]]:
    names = {f"#f{index}": field for index, field in enumerate(SHOWN_FIELDS)}
    request: dict[str, Any] = {
        "TableName": table,
        "ProjectionExpression": ", ".join(names),
        "ExpressionAttributeNames": names,
    }
    items: list[dict[str, Any]] = []
    while True:
        answer = client.scan(**request)
        items += [from_item(item) for item in answer.get("Items", [])]
        if "LastEvaluatedKey" not in answer:
            break
        request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
    # Markers carry no delivery state; an item with one but no destination predates Meta: TikTok's.
    items = [item for item in items if "delivery_status" in item]
    for item in items:
        item.setdefault("destination", FIRST_DESTINATION)
        item.setdefault("event_id", item["session_id"])
    items.sort(key=lambda item: str(item.get("provisioned_at") or ""), reverse=True)
    return items


def describe_status(item: dict[str, Any]) -> str:
    status = str(item.get("delivery_status") or "unknown")
    if status == DeliveryStatus.FAILED:
        return "failed (retrying)" if item.get("delivery_retryable") else "failed (permanent)"
    return status


def last_result(item: dict[str, Any]) -> str:
    code = item.get("delivery_code")
    message = item.get("delivery_message") or item.get("delivery_reason") or ""
    http_status = item.get("delivery_http_status")
    parts = []
    if code is not None:
        parts.append(str(code))
    elif http_status is not None and not message.startswith("HTTP"):
        parts.append(f"HTTP {http_status}")
    if message:
        text = " ".join(str(message).split())
        parts.append(text if len(text) <= MESSAGE_WIDTH else text[: MESSAGE_WIDTH - 1] + "…")
    return " ".join(parts) or "-"


def next_attempt(item: dict[str, Any], now: int) -> str:
    due = item.get("next_attempt_at")
    if due is None:
        return "-"
    when = _iso(int(due))
    held = item.get("claim_expires_at")
    if held is not None and int(held) >= now:
        return f"{when} (being sent)"
    return f"{when} (due)" if int(due) <= now else when


def match_key_coverage(
    items: list[dict[str, Any]], newest: int, destination: str = FIRST_DESTINATION
) -> tuple[int, list[tuple[str, float]]]:
    """Over a destination's newest `newest` sent deliveries (items newest first): how many, and
    the share of them that carried each match key, the figure merchants compare with the
    platform's Event Match Quality."""
    sent = [
        item
        for item in items
        if item.get("delivery_status") == DeliveryStatus.SENT and item.get("destination") == destination
    ][:newest]
    counts = Counter(key for item in sent for key in set(item.get("delivery_match_keys") or ()))
    return len(sent), [(key, counts[key] / len(sent)) for key in MATCH_KEYS[destination] if sent]


def format_coverage(sent: int, shares: list[tuple[str, float]]) -> str:
    if not sent:
        return "no sent deliveries yet"
    return ", ".join(f"{key} {share:.0%}" for key, share in shares)


def print_listing(
    items: list[dict[str, Any]],
    table: str,
    status: str | None,
    limit: int,
    out: TextIO,
    now: int,
    coverage_of: int = 200,
) -> None:
    """One section per destination that has deliveries (TikTok's alone when Meta is not used)."""
    shown_any = False
    for destination in all_destinations():
        mine = [item for item in items if item.get("destination") == destination.name]
        if mine or destination.name == FIRST_DESTINATION:
            if shown_any:
                print(file=out)
            _print_destination(destination, mine, table, status, limit, out, now, coverage_of)
            shown_any = True


def _print_destination(
    destination: DestinationSettings,
    items: list[dict[str, Any]],
    table: str,
    status: str | None,
    limit: int,
    out: TextIO,
    now: int,
    coverage_of: int,
) -> None:
    counts = Counter(str(item.get("delivery_status") or "unknown") for item in items)
    failed = [item for item in items if item.get("delivery_status") == DeliveryStatus.FAILED]
    retrying = sum(1 for item in failed if item.get("delivery_retryable"))
    summary = ", ".join(f"{name} {counts.get(name, 0)}" for name in STATUSES)
    others = sorted(set(counts) - set(STATUSES))
    summary += "".join(f", {name} {counts[name]}" for name in others)
    print(f"{destination.label} deliveries in {table}: {len(items)}", file=out)
    print(f"  {summary} ({retrying} of the failed will be retried)", file=out)
    sent, shares = match_key_coverage(items, coverage_of, destination.name)
    print(f"\nMatch keys of the newest {sent} sent events (share that carried each):", file=out)
    print(f"  {format_coverage(sent, shares)}", file=out)

    shown = [item for item in items if status is None or item.get("delivery_status") == status][:limit]
    print(f"\nNewest {len(shown)}{f' {status}' if status else ''} deliveries, newest first:", file=out)
    if not shown:
        print("  none", file=out)
        return
    rows = [("SESSION / INVOICE", "STATUS", "ATTEMPTS", "LAST CODE / MESSAGE", "NEXT ATTEMPT (UTC)")]
    rows += [
        (
            str(item["event_id"]),
            describe_status(item),
            str(item.get("delivery_attempts", 0)),
            last_result(item),
            next_attempt(item, now),
        )
        for item in shown
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  " + "  ".join([*cells, row[-1]]).rstrip(), file=out)


def requeue(
    client: Any,
    tables: tuple[str, str],
    event_id: str,
    out: TextIO,
    now: int,
    destination_name: str = FIRST_DESTINATION,
) -> int:
    ledger = DynamoDeliveries(client, tables[0])
    [destination] = [known for known in all_destinations() if known.name == destination_name]
    keys = [destination.delivery_key(event_id)]
    if destination.name == FIRST_DESTINATION:
        keys.append(event_id)  # a delivery recorded before there were two destinations
    requeued = None
    for key in keys:
        try:
            requeued = attempt.requeue(ledger, destination, key, now)
            break
        except LookupError:
            continue
        except ValueError as refused:
            print(f"Not requeued: {refused}.", file=out)
            return 1
    if requeued is None:
        print(
            f"Not requeued: there is no {destination.label} delivery of {event_id} in {tables[0]}.", file=out
        )
        return 1
    print(
        f"Requeued {destination.label}'s delivery of {event_id}: pending, due now (attempts so far: "
        f"{requeued.attempts}). The next redrive run (every 5 minutes) sends it.",
        file=out,
    )
    max_age_days = destination.max_age_days
    event_time = requeued.facts.event_time  # 0: not recorded
    if event_time > 0 and (now - event_time) / 86400 > max_age_days:
        print(
            f"Warning: the payment is {(now - event_time) / 86400:.0f} days old, more than the "
            f"{max_age_days} days {destination.label}'s deliveries may take: the redrive will mark it "
            "expired instead of sending it.",
            file=out,
        )
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.deliveries",
        description="List the deliveries (TikTok, Meta) by status, or put one back in the redrive queue.",
    )
    parser.add_argument("--stack-name", help="read the table name from this stack's outputs")
    parser.add_argument("--status", choices=STATUSES, help="list only deliveries in this state")
    parser.add_argument("--limit", type=int, default=50, help="how many to list (default 50)")
    parser.add_argument(
        "--coverage", type=int, default=200, help="match-key coverage over the newest N sent (default 200)"
    )
    parser.add_argument("--requeue", metavar="SESSION_ID", help="send this session's delivery again")
    parser.add_argument(
        "--destination",
        choices=[destination.name for destination in all_destinations()],
        default=FIRST_DESTINATION,
        help="whose delivery --requeue sends again (default tiktok)",
    )
    args = parser.parse_args(argv)
    if args.limit < 1 or args.coverage < 1:
        parser.error("--limit and --coverage must be at least 1")
    return args


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = parse_args(argv)
    now = int(time.time())
    try:
        tables = table_names(args.stack_name)
        client = dynamodb_client()
        if args.requeue:
            return requeue(client, tables, args.requeue.strip(), out, now, args.destination)
        items = read_deliveries(client, tables[0])
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (StoreError, BotoCoreError, ClientError) as error:  # AWS errors: one line, no traceback
        print(f"error: DynamoDB: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print_listing(items, tables[0], args.status, args.limit, out, now, args.coverage)
    return 0


def _iso(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


if __name__ == "__main__":
    from devtools import dotenv

    dotenv.load(ROOT / ".env")
    sys.exit(main())
