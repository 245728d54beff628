"""Replay Stripe's record: report what was missed, exactly once.

    make replay SINCE=2026-12-01T00:00Z                  # dry run: what it would do, nothing written
    make replay SINCE=2026-12-01 UNTIL=2026-12-03 DESTINATION=meta
    make replay SINCE=2026-12-01 STACK=stripe-tiktok-conversions APPLY=1

Reads Stripe's Events API (checkout.session.completed, checkout.session.async_payment_succeeded,
then invoice.paid: checkouts first, so that a renewal finds the buyer's consent its checkout
recorded) and decides for each event with the functions' own code (checkout_conversions/replay.py):
provision a session never provisioned here, record a delivery missing, requeue one never sent
that the platform would take now, or nothing, and why. Prints ids only, never buyers' data.

The deployment's settings and secrets come from the stack's DeliverySenderFunction (--stack-name)
or, locally, from the environment (.env) and a running `make run`'s DynamoDB. Stripe's key: the
operator's STRIPE_API_KEY when set, else the deployment's (STRIPE_API_KEY_NAME); a restricted key
needs Events: Read (and Checkout Sessions: Read for the line items the sender reads).
"""

import argparse
import contextlib
import os
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

if __name__ == "__main__":  # the command: the functions' log lines would break up its table
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "functions") not in sys.path:  # `python -m devtools.replay` from the repository
    sys.path.insert(0, str(ROOT / "functions"))

from checkout_conversions import secrets  # noqa: E402
from checkout_conversions.observability import metrics  # noqa: E402
from checkout_conversions.outbox.model import StoreError  # noqa: E402
from checkout_conversions.replay import Action, EventPlan, Replay, ReplayFailed, Switch  # noqa: E402
from checkout_conversions.settings import Settings, load_settings  # noqa: E402
from checkout_conversions.stripe_side import events_api  # noqa: E402
from devtools import deliveries, local_run  # noqa: E402
from devtools.deliveries import UsageError  # noqa: E402

SENDER_FUNCTION = "DeliverySenderFunction"
REDRIVE_FUNCTION = "DeliveryRedriveFunction"
COLUMNS = ("EVENT", "TYPE", "CREATED (UTC)", "SESSION / INVOICE", "DESTINATION", "ACTION", "WHY / RESULT")
SENDS = "to send"  # the totals' last row: deliveries the actions above leave to send
WIDTHS = (28, 40, 19, 66, 11, 9)  # Stripe's ids are not cut: an operator copies them


def parse_time(text: str) -> int:
    """Epoch seconds from an ISO 8601 date or time (UTC unless it says otherwise) or epoch seconds."""
    value = text.strip()
    if value.isdigit() and len(value) >= 9:  # epoch seconds (20261201 is a date)
        return int(value)
    if value.isdigit() and len(value) == 8:
        value = f"{value[:4]}-{value[4:6]}-{value[6:]}"
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{text!r} is not a time: write 2026-12-01, 2026-12-01T00:00Z or epoch seconds"
        ) from None
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp())


def window(since: str, until: str | None, now: int) -> tuple[int, int]:
    start, end = parse_time(since), parse_time(until) if until else now
    oldest = now - events_api.RETENTION_DAYS * 86400
    if start >= end:
        raise UsageError("SINCE must be before UNTIL (and before now)")
    if start < oldest:
        print(
            f"Stripe keeps events for {events_api.RETENTION_DAYS} days: reading from {_iso(oldest)}.",
            file=sys.stderr,
        )
        start = oldest
    end = min(end, now)
    if start >= end:
        raise UsageError(
            f"nothing to read between {_iso(start)} and {_iso(end)}: Stripe keeps "
            f"{events_api.RETENTION_DAYS} days of events, up to now"
        )
    return start, end


# ---------------------------------------------------------------------- the deployment


def deployment(stack_name: str | None) -> tuple[dict[str, str], str | None]:
    """The settings' environment and, for a stack, its redrive function's name."""
    if not stack_name:
        environ = dict(os.environ)
        if not environ.get("SESSIONS_TABLE_NAME"):
            running = local_run.read()  # a running `make run`: its tables and its functions' settings
            if running is None:
                raise UsageError(
                    "pass --stack-name (make replay STACK=...), set SESSIONS_TABLE_NAME, or start `make run`"
                )
            sessions, customers = deliveries.use_local_run(running)
            environ = {
                **dict(running.get("environment") or {}),
                **_stripe_access(),
                "AWS_ENDPOINT_URL_DYNAMODB": running["endpoint"],
            }
            environ.update(SESSIONS_TABLE_NAME=sessions, CUSTOMERS_TABLE_NAME=customers)
        return environ, None
    import boto3

    try:
        resources = boto3.client("cloudformation")
        sender = _physical_id(resources, stack_name, SENDER_FUNCTION)
        redrive = _physical_id(resources, stack_name, REDRIVE_FUNCTION)
        configuration = boto3.client("lambda").get_function_configuration(FunctionName=sender)
    except Exception as error:  # noqa: BLE001 - any AWS or credentials problem: say it plainly
        raise UsageError(f"cannot read stack {stack_name!r}: {error}") from None
    environ = {**configuration.get("Environment", {}).get("Variables", {}), **_stripe_access()}
    return environ, redrive


def _stripe_access() -> dict[str, str]:
    """The operator's own Stripe key and API base, when set: they go before the deployment's."""
    return {name: os.environ[name] for name in ("STRIPE_API_KEY", "STRIPE_API_BASE") if os.environ.get(name)}


def _physical_id(client: Any, stack_name: str, logical_id: str) -> str:
    answer = client.describe_stack_resource(StackName=stack_name, LogicalResourceId=logical_id)
    return str(answer["StackResourceDetail"]["PhysicalResourceId"])


def stripe_key(settings: Settings, environ: Mapping[str, str]) -> str:
    own = os.environ.get("STRIPE_API_KEY", "").strip()
    key = own or secrets.read_optional(settings.stripe_api.key, settings.secrets, environ)
    if not key:
        raise UsageError(
            "set STRIPE_API_KEY to a restricted key with Events: Read (or configure the deployment's "
            "STRIPE_API_KEY_NAME): the replay reads Stripe's Events API"
        )
    return key


def open_replay(environ: Mapping[str, str], destination: str | None, now: int) -> Replay:
    from checkout_conversions.aws import dynamodb_client
    from checkout_conversions.store.deliveries import DynamoDeliveries
    from checkout_conversions.store.provisioning import DynamoProvisioning
    from checkout_conversions.store.subscriptions import DynamoSubscriptions

    settings = load_settings(environ)
    settings.tables.require()
    chosen = tuple(
        known
        for known in settings.configured_destinations
        if destination is None or known.name == destination
    )
    if destination and not chosen:
        raise UsageError(f"{destination} is not part of this deployment: its pixel is not set")
    switches = {known.name: _switch(known, settings, environ) for known in chosen}
    for other in settings.configured_destinations:  # a session provisioned here gets them all
        if other not in chosen:
            # Not replayed here: unreadable, its rows are judged without its secrets.
            with contextlib.suppress(secrets.ConfigurationError):
                switches[other.name] = _switch(other, settings, environ)
    client = dynamodb_client()
    tables = settings.tables
    return Replay(
        settings=settings,
        dynamodb=client,
        ledger=DynamoDeliveries(client, tables.sessions),
        provisioning=DynamoProvisioning(client, tables.sessions, tables.customers),
        subscriptions=DynamoSubscriptions(client, tables.customers),
        destinations=chosen,
        switches=switches,
        now=now,
    )


def _switch(destination: Any, settings: Settings, environ: Mapping[str, str]) -> Switch:
    return Switch(
        secrets.read_switch(destination.access_token, settings.secrets, environ),
        secrets.read_optional(destination.test_event_code, settings.secrets, environ),
    )


# ---------------------------------------------------------------------- output


class Progress:
    """A bar on a terminal (stderr), a plain line every so often otherwise."""

    def __init__(self, out: TextIO, since: int, until: int, every: int = 100):
        self.out, self.since, self.until, self.every = out, since, until, every
        self.terminal = out.isatty()
        self.label, self.seen = "", 0

    def start(self, label: str) -> None:
        self.label, self.seen = label, 0

    def update(self, created: int) -> None:
        self.seen += 1
        share = (self.until - created) / max(self.until - self.since, 1)  # Stripe lists newest first
        if self.terminal:
            filled = int(30 * min(max(share, 0.0), 1.0))
            bar = "#" * filled + "." * (30 - filled)
            self.out.write(f"\r{self.label:<10} [{bar}] {share:4.0%} {self.seen} events, at {_iso(created)}")
            self.out.flush()
        elif self.seen % self.every == 0:
            print(
                f"{self.label}: {self.seen} events read, back to {_iso(created)}", file=self.out, flush=True
            )

    def clear(self) -> None:
        if self.terminal:
            self.out.write("\r\033[K")
            self.out.flush()


def print_header(out: TextIO) -> None:
    print(
        "  ".join(name.ljust(width) for name, width in zip(COLUMNS, (*WIDTHS, 0), strict=True)).rstrip(),
        file=out,
    )


def print_plan(plan: EventPlan, results: Sequence[str] | None, out: TextIO) -> None:
    for index, step in enumerate(plan.steps):
        why = results[index] if results is not None else step.reason
        cells = (
            plan.event_id,
            plan.event_type,
            _iso(plan.created),
            plan.subject_id or "-",
            step.destination,
            step.action.value,
        )
        line = "  ".join(_cell(cell, width) for cell, width in zip(cells, WIDTHS, strict=True))
        print(f"{line}  {why}", file=out)


def print_totals(totals: Counter[tuple[str, str]], applied: bool, out: TextIO) -> None:
    """Per action and destination, how many events; and how many deliveries that makes to send."""
    destinations = sorted({destination for destination, _ in totals})
    print(f"\nTotals ({'done' if applied else 'would do'}), events per action and destination:", file=out)
    print("  " + "ACTION".ljust(10) + "".join(name.rjust(10) for name in destinations), file=out)
    for action in (*(action.value for action in Action), SENDS):
        counts = [totals[(name, action)] for name in destinations]
        print("  " + action.ljust(10) + "".join(str(count).rjust(10) for count in counts), file=out)


def _cell(text: str, width: int) -> str:
    return text.ljust(width)


def _iso(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


# ---------------------------------------------------------------------- the run


def run(
    replay: Replay,
    client: Any,
    since: int,
    until: int,
    apply: bool,
    out: TextIO,
    progress: Progress,
) -> int:
    """Checkouts first, then renewals; each event planned and, with `apply`, done. The exit code."""
    totals: Counter[tuple[str, str]] = Counter()
    failures = 0
    print_header(out)
    for label, types in (("checkouts", events_api.CHECKOUT_TYPES), ("renewals", events_api.RENEWAL_TYPES)):
        progress.start(label)
        for event in events_api.list_events(client, types, since, until):
            plan: EventPlan | None = None
            try:
                plan = replay.plan(event)
                results = replay.apply(plan) if apply and plan.acts() else None
            except (ReplayFailed, StoreError) as error:
                failures += 1
                note = f"not done: {error}; run the replay again"
                if plan is None:  # not even read: the store refused (its permissions?)
                    print(f"{event.get('id')}  {note}", file=out)
                    continue
                results = tuple(note for _ in plan.steps)
            progress.clear()
            print_plan(plan, results, out)
            progress.update(plan.created)
            metrics.clear_metrics()  # the webhook's counts, as in Lambda, but never printed here
            totals.update((step.destination, step.action.value) for step in plan.steps)
            totals.update((step.destination, SENDS) for step in plan.steps if step.sends)
        progress.clear()
    print_totals(totals, apply, out)
    if failures:
        print(f"\n{failures} events could not be replayed: run the same command again.", file=out)
    return 1 if failures else 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.replay",
        description="Report what was missed, from Stripe's own record, exactly once (--apply does it).",
    )
    parser.add_argument("--since", required=True, help="from this time (UTC unless it says otherwise)")
    parser.add_argument("--until", help="up to this time (default: now)")
    parser.add_argument("--stack-name", help="the deployed stack (default: the local `make run`)")
    parser.add_argument("--destination", help="replay only this destination (tiktok, meta)")
    parser.add_argument("--apply", action="store_true", help="do it (default: print what it would do)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = parse_args(argv)
    now = int(time.time())
    try:
        since, until = window(args.since, args.until, now)
        environ, redrive = deployment(args.stack_name)
        replay = open_replay(environ, args.destination, now)
        key = stripe_key(replay.settings, environ)
        api = replay.settings.stripe_api
        client = events_api.new_client(key, api.base, max(api.timeout_seconds, 20.0))
        mode = "Replaying" if args.apply else "Dry run (nothing is written; APPLY=1 does it)"
        mode += f", Stripe {_stripe_mode(key)}"
        names = ", ".join(destination.name for destination in replay.destinations) or "none"
        print(
            f"{mode}: Stripe events from {_iso(since)} to {_iso(until)} UTC, destinations: {names}\n",
            file=out,
        )
        code = run(replay, client, since, until, args.apply, out, Progress(sys.stderr, since, until))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (secrets.ConfigurationError, events_api.EventsUnreadable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.apply:
        print(_next_steps(redrive, [destination.name for destination in replay.destinations]), file=out)
    return code


def _stripe_mode(key: str) -> str:
    """The mode the key reads (its prefix says it: sk_live_, rk_test_ ...), never the key."""
    if "_live_" in key[:8]:
        return "live mode"
    return "test mode" if "_test_" in key[:8] else "key of unknown mode"


def _next_steps(redrive: str | None, destinations: Sequence[str]) -> str:
    """What sends the requeued deliveries: the stack's redrive, now (asynchronously, one
    invocation per destination), or `make run`'s own schedule."""
    if not redrive:
        return "\nProvisioned deliveries go out through the stream; requeued ones at make run's next redrive."
    commands = "".join(
        f"\n  aws lambda invoke --function-name {redrive} --invocation-type Event "
        f'--cli-binary-format raw-in-base64-out --payload \'{{"destination": "{name}"}}\' /dev/null'
        for name in destinations
    )
    return (
        "\nProvisioned and recorded deliveries go out through the stream within seconds; requeued "
        f"ones at the redrive's next run (every 5 minutes), or now:{commands}"
    )


if __name__ == "__main__":
    from devtools import dotenv

    dotenv.load(ROOT / ".env")
    sys.exit(main())
