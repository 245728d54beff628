"""`make run` / `make demo`: the whole flow on 127.0.0.1, as it runs in AWS.

    python -m devtools.local_server [--port 3000] [--demo] [--manifest events/samples.json]

In one process: moto's DynamoDB with the template's tables (the Sessions table with its stream),
the real `stripe_webhook.app` handler behind a server that turns each request into the Function
URL event Lambda would send, Lambda's stream event source mapping (devtools/stream_mapping.py)
invoking the real `delivery_sender.app` handler, and local stand-ins for TikTok and Meta (unless
TIKTOK_ACCESS_TOKEN / META_ACCESS_TOKEN is set). It POSTs every sample event of the manifest to
itself, signed now, waits for the stream to deliver each new session, and prints the webhook's
answer and each destination's outcome. Without --demo it keeps serving (for `stripe listen
--forward-to`), with its state in .local/make-run.json for `make deliveries` (devtools/local_run.py);
with --demo it exits 0 only if every answer is the one the manifest expects. Nothing here is
deployed; product code is untouched.
"""

import argparse
import base64
import http.client
import json
import logging
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from devtools import dotenv, local_run
from devtools.function_url import LambdaContext, function_url_event, stripe_signature
from devtools.sign_event import (
    DOTENV,
    LOCAL_WEBHOOK_SECRET,
    MANIFEST,
    REPO,
    as_sent_now,
    load_event,
    payload,
)

HOST = "127.0.0.1"
TABLE_PREFIX = "local-"
LAMBDA_TIMEOUT_SECONDS = 10.0  # template.yaml: StripeWebhookFunction Timeout
DELIVERY_WAIT_SECONDS = 20.0  # the stream is polled 4 times a second; a send takes at most ~4x its timeout
MAX_REQUEST_BYTES = 6 * 1024 * 1024  # a Function URL's request payload limit
STRIPE_USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
# The webhook's `status`: checkouts are provisioned (or duplicate); a subscription's invoices and
# status changes are recorded (or unchanged: a state as new or newer is recorded).
OUTCOMES = ("provisioned", "duplicate", "recorded", "unchanged", "ignored")
JSON_TYPE = ("content-type", "application/json")
STOPPED = "Stopped."  # the last line, however the server is stopped (Ctrl-C, SIGTERM)
FAKE_AWS_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}

Handler = Callable[[dict[str, Any], Any], Any]


# --------------------------------------------------------------------------- the Function URL


class FunctionUrlServer(ThreadingHTTPServer):
    """Serves `handler` on 127.0.0.1 the way a Lambda Function URL (payload 2.0, BUFFERED) does."""

    daemon_threads = True

    def __init__(
        self,
        handler: Handler,
        port: int = 0,
        timeout_seconds: float = LAMBDA_TIMEOUT_SECONDS,
        on_request: Callable[[str, str, int, bytes], None] | None = None,
    ):
        self.lambda_handler = handler
        # One invocation at a time, as in one Lambda execution environment: Powertools' logger
        # keys and metric set belong to the one invocation in flight.
        self.invocation_lock = threading.Lock()
        self.timeout_seconds = timeout_seconds
        self.on_request = on_request
        self._thread: threading.Thread | None = None
        super().__init__((HOST, port), _FunctionUrlRequest)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    @property
    def port(self) -> int:
        return self.server_address[1]

    def start(self) -> "FunctionUrlServer":
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.1}, name="function-url", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.server_close()

    def __enter__(self) -> "FunctionUrlServer":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


class _FunctionUrlRequest(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FunctionUrlServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request is printed by the server's on_request, not here

    def __getattr__(self, name: str) -> Any:
        # http.server dispatches to do_<METHOD>: every method goes to the function (it answers 405).
        if name.startswith("do_"):
            return self._forward
        raise AttributeError(name)

    def _forward(self) -> None:
        # Read once, before the answer goes out: the demo's samples, answered before the main
        # thread turns request logging on, must not print a line after the "Serving" banner.
        on_request = self.server.on_request
        body = self._read_body()
        if body is None:
            return
        path, _, query = self.path.partition("?")
        event = function_url_event(
            body,
            _joined_headers(self.headers.items()),
            method=self.command,
            path=path or "/",
            query=query,
            source_ip=self.client_address[0],
        )
        try:
            with self.server.invocation_lock:
                result = self.server.lambda_handler(event, LambdaContext(self.server.timeout_seconds))
            status, headers, raw = _http_answer(result)
        except Exception:  # noqa: BLE001 - an unhandled function error is what Lambda turns into a 502
            traceback.print_exc()
            status, headers, raw = 502, [JSON_TYPE], b'{"message":"Internal Server Error"}'
        self._reply(status, headers, raw)
        if on_request:
            on_request(self.command, self.path, status, raw)

    def _read_body(self) -> bytes | None:
        """The request body, or None once an error answer has been sent."""
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            body = self._read_chunked()
        else:
            try:
                length = int(self.headers.get("content-length") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self.close_connection = True
                self._reply(400, [JSON_TYPE], b'{"message":"Bad Request"}')
                return None
            body = self.rfile.read(length) if length <= MAX_REQUEST_BYTES else None
        if body is None:
            self.close_connection = True  # the unread body must not be taken for the next request
            self._reply(413, [JSON_TYPE], b'{"message":"Request Entity Too Large"}')
        return body

    def _read_chunked(self) -> bytes | None:
        body = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(body)
            if len(body) + size > MAX_REQUEST_BYTES:
                return None
            body += self.rfile.read(size)
            self.rfile.readline()

    def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def _joined_headers(items: Any) -> dict[str, str]:
    """Lower-cased names; repeated headers joined with commas, as Function URLs do."""
    headers: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    return headers


def _http_answer(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body from what the function returned (Function URL response rules)."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # Anything else is the JSON body of a 200, as a Function URL does.
        return 200, [JSON_TYPE], json.dumps(result).encode()
    headers = [(str(name), str(value)) for name, value in (result.get("headers") or {}).items()]
    headers += [("set-cookie", str(cookie)) for cookie in result.get("cookies") or []]
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
    return int(result["statusCode"]), headers, raw


# --------------------------------------------------------------------------- the samples


@dataclass(frozen=True)
class Sample:
    file: str
    path: Path
    shows: str
    status: int
    outcome: str
    tiktok: str
    delivery: str
    meta: str = "-"
    meta_delivery: str = "-"
    created_offset: int = 0  # seconds: the sample's created is now + this (keeps samples in order)

    def expected(self, destination: str) -> tuple[str, str]:
        """(state in the webhook's answer, state the sender recorded) for a destination."""
        return (self.tiktok, self.delivery) if destination == "tiktok" else (self.meta, self.meta_delivery)


@dataclass(frozen=True)
class Result:
    sample: Sample
    event_type: str
    status: int
    outcome: str
    tiktok: str
    detail: str
    delivery: str = "-"
    session_id: str | None = None
    meta: str = "-"
    meta_delivery: str = "-"

    def got(self, destination: str) -> tuple[str, str]:
        return (self.tiktok, self.delivery) if destination == "tiktok" else (self.meta, self.meta_delivery)

    def matches(self, compared: tuple[str, ...]) -> bool:
        """Status and outcome always; the destinations in `compared` (those talking to a local
        stand-in, whose outcomes the manifest knows) too."""
        expected = self.sample
        return (
            self.status == expected.status
            and self.outcome == expected.outcome
            and all(self.got(name) == expected.expected(name) for name in compared)
        )

    def shown(self, compared: tuple[str, ...]) -> str:
        return " ".join([str(self.status), self.outcome, *(" ".join(self.got(name)) for name in compared)])


def load_manifest(path: Path) -> list[Sample]:
    """The samples in order; their files are read relative to the manifest's folder."""
    data = json.loads(path.read_text(encoding="utf-8"))
    entries = data.get("samples") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError(f'{path}: expected {{"samples": [...]}}')
    samples = []
    for number, entry in enumerate(entries, start=1):
        try:
            sample = Sample(
                file=str(entry["file"]),
                path=path.parent / str(entry["file"]),
                shows=str(entry.get("shows", "")),
                status=int(entry["status"]),
                outcome=str(entry["outcome"]),
                tiktok=str(entry.get("tiktok", "-")),
                delivery=str(entry.get("delivery", "-")),
                meta=str(entry.get("meta", "-")),
                meta_delivery=str(entry.get("meta_delivery", "-")),
                created_offset=int(entry.get("created_offset", 0)),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{path}: sample {number} needs file, status and outcome ({error})") from None
        if sample.outcome not in (*OUTCOMES, "error"):
            raise ValueError(f"{path}: sample {number}: outcome must be one of {', '.join(OUTCOMES)}, error")
        if not sample.path.is_file():
            raise ValueError(f"{path}: sample {number}: {sample.path} does not exist")
        samples.append(sample)
    return samples


def post(port: int, body: bytes, headers: dict[str, str], method: str = "POST") -> tuple[int, bytes]:
    """One request over real HTTP to the local server (no proxy, whatever the environment says)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=LAMBDA_TIMEOUT_SECONDS + 5)
    try:
        connection.request(method, "/", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class DeliveryState:
    """A destination's delivery status recorded for a session (or an invoice), waiting while it is
    pending."""

    def __init__(self, dynamodb: Any, table: str):
        self._dynamodb = dynamodb
        self._table = table

    def __call__(self, event_id: str, destination: str = "tiktok", wait: bool = True) -> str:
        deadline = time.monotonic() + (DELIVERY_WAIT_SECONDS if wait else 0)
        key = f"{event_id}#{destination}"
        while True:
            item = self._dynamodb.get_item(
                TableName=self._table, Key={"session_id": {"S": key}}, ConsistentRead=True
            ).get("Item", {})
            status = item.get("delivery_status", {}).get("S", "-")
            if status != "pending" or time.monotonic() >= deadline:
                return status
            time.sleep(0.05)


def send_samples(
    port: int,
    samples: list[Sample],
    delivery_state: DeliveryState | None = None,
    secret: str = LOCAL_WEBHOOK_SECRET,
) -> list[Result]:
    """POST each sample as Stripe would: signed now. A sample sent twice is sent with the same bytes
    (a redelivery), with a new signature. After each answer, `delivery_state(session_id)` (which
    waits while the delivery is pending) gives what the stream's sender made of it."""
    now = int(time.time())
    prepared: dict[Path, tuple[dict[str, Any], bytes]] = {}
    results = []
    for sample in samples:
        if sample.path not in prepared:
            event = as_sent_now(load_event(sample.path), now + sample.created_offset)
            prepared[sample.path] = event, payload(event)
        event, body = prepared[sample.path]
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": stripe_signature(body, secret),
            "User-Agent": STRIPE_USER_AGENT,
        }
        try:
            status, raw = post(port, body, headers)
        except OSError as error:
            results.append(Result(sample, event["type"], 0, "error", "-", f"no answer: {error}"))
            continue
        result = _result(sample, event["type"], status, raw)
        if delivery_state and result.session_id:
            if result.tiktok != "-":
                result = replace(result, delivery=delivery_state(result.session_id, "tiktok"))
            if result.meta != "-":
                result = replace(result, meta_delivery=delivery_state(result.session_id, "meta"))
        results.append(result)
    return results


def _result(sample: Sample, event_type: str, status: int, raw: bytes) -> Result:
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = {}
    answer = answer if isinstance(answer, dict) else {}
    outcome = answer.get("status") if 200 <= status < 300 and answer.get("status") in OUTCOMES else "error"
    started = answer.get("deliveries") if isinstance(answer.get("deliveries"), dict) else {}
    tiktok = started.get("tiktok") or answer.get("renewal")  # a renewal's delivery is keyed by its invoice
    meta = started.get("meta")
    states = [state if isinstance(state, dict) else {} for state in (tiktok, meta)]
    detail = str(answer.get("error") or answer.get("reason") or states[0].get("reason") or "")
    session_id = (answer.get("session_id") or answer.get("invoice_id")) if tiktok or meta else None
    return Result(
        sample,
        event_type,
        status,
        outcome,
        str(states[0].get("status", "-")),
        detail,
        session_id=session_id,
        meta=str(states[1].get("status", "-")),
    )


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def print_results(results: list[Result], check: bool, compared: tuple[str, ...]) -> None:
    header = [
        "#",
        "sample",
        "event type",
        "HTTP",
        "outcome",
        "TikTok answer",
        "TikTok sender",
        "Meta answer",
        "Meta sender",
    ]
    header += ["check"] if check else []
    rows = [header]
    for number, result in enumerate(results, start=1):
        row = [
            str(number),
            result.sample.file.removesuffix(".json"),
            result.event_type,
            str(result.status),
            result.outcome,
            result.tiktok,
            result.delivery,
            result.meta,
            result.meta_delivery,
        ]
        if check:
            row.append("ok" if result.matches(compared) else "MISMATCH")
        rows.append(row)
    print("\n".join(_table(rows)))
    for number, result in enumerate(results, start=1):
        if result.outcome == "error" or (check and not result.matches(compared)):
            expected = result.sample
            want = " ".join(
                [
                    str(expected.status),
                    expected.outcome,
                    *(" ".join(expected.expected(name)) for name in compared),
                ]
            )
            got = result.shown(compared)
            line = f"  #{number} {result.sample.file}: "
            line += f"expected {want}, got {got}" if check else f"answered {got}"
            print(line + (f" ({result.detail})" if result.detail else ""))


# --------------------------------------------------------------------------- the environment


@dataclass(frozen=True)
class Environment:
    dotenv_loaded: list[str]
    own_secret: bool
    notes: list[str]
    tiktok_standin: bool  # no TIKTOK_ACCESS_TOKEN of your own: the sender talks to a local stand-in
    meta_standin: bool = False  # the same for META_ACCESS_TOKEN


# The local stand-ins' settings (obviously fake; the stand-ins accept any token).
STANDIN_TIKTOK = {
    "TIKTOK_ACCESS_TOKEN": "local-standin-token",
    "TIKTOK_PIXEL_ID": "CLOCALSTANDINPIXEL",
    "TIKTOK_TEST_EVENT_CODE": "TEST_LOCAL",
}
STANDIN_META = {
    "META_ACCESS_TOKEN": "local-standin-meta-token",
    "META_PIXEL_ID": "100000000000001",
    "META_TEST_EVENT_CODE": "TEST_LOCAL_META",
}


def prepare_environment(demo: bool, env_file: Path | None) -> Environment:
    """Everything the function reads, set before it is imported (its clients are made at import)."""
    loaded = dotenv.load(env_file) if env_file else []
    notes = []
    os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"  # no X-Ray daemon here
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # EMF lines go nowhere locally
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "checkout-conversions")
    if demo:
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    if os.environ.get("SECRETS_SOURCE", "env").strip().lower() not in ("", "env"):
        notes.append(
            f"SECRETS_SOURCE={os.environ['SECRETS_SOURCE']} ignored: the local server reads secrets "
            "from the environment"
        )
    os.environ["SECRETS_SOURCE"] = "env"
    configured = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
    secrets = [part.strip() for part in configured.split(",") if part.strip()]
    own_secret = any(secret != LOCAL_WEBHOOK_SECRET for secret in secrets)
    if LOCAL_WEBHOOK_SECRET not in secrets:
        secrets.append(LOCAL_WEBHOOK_SECRET)
    os.environ["STRIPE_WEBHOOK_SECRET"] = ",".join(secrets)
    # Never AWS: fake credentials, no profile (the endpoint is set once moto is up).
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(name, None)
    os.environ.update(FAKE_AWS_CREDENTIALS)
    return Environment(
        loaded,
        own_secret,
        notes,
        tiktok_standin="TIKTOK_ACCESS_TOKEN" not in os.environ,
        meta_standin="META_ACCESS_TOKEN" not in os.environ,
    )


def _quiet_libraries() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    warnings.filterwarnings("ignore", message="No application metrics to publish")


def _destination_line(name: str, standin_url: str | None) -> tuple[bool, str]:
    """Whether the demo can expect the manifest's outcomes for a destination (only with its
    stand-in), and a line saying where the sender's requests go (never the token)."""
    from checkout_conversions import secrets
    from checkout_conversions.outbox.model import ReportFacts
    from checkout_conversions.outbox.policy import skip_reason
    from checkout_conversions.purchase import Consent, PurchaseKind
    from checkout_conversions.settings import load_settings

    settings = load_settings()
    destination = settings.destination(name)
    prefix = destination.variable_prefix
    if standin_url:
        return True, (
            f"local stand-in at {standin_url}: the sender's requests go there, "
            f"never to {destination.label}.\n"
            f"             To send real test events, set {prefix}_ACCESS_TOKEN, {prefix}_PIXEL_ID and "
            f"{prefix}_TEST_EVENT_CODE (e.g. in .env)."
        )
    # What the sender decides for a test-mode checkout paid just now, whatever the buyer's consent.
    now = int(time.time())
    facts = ReportFacts(PurchaseKind.CHECKOUT, livemode=False, event_time=now, consent=Consent.GRANTED)
    token = secrets.read_switch(destination.access_token, settings.secrets, os.environ)
    code = secrets.read_optional(destination.test_event_code, settings.secrets, os.environ)
    reason = skip_reason(destination, facts, False, now, access_token=token, test_event_code=code)
    if reason is None:
        return False, (
            f"ON: sends real test events to pixel {destination.pixel_id} with test_event_code "
            f"{code} (Events Manager > Test Events)"
        )
    return False, f"disabled ({reason.describe(destination)}): {destination.label} outcomes are 'skipped'"


def _log_sender(delivery_state: "DeliveryState") -> Callable[[Any], None]:
    """One line per invocation of the sender: the deliveries it was given and how each ended."""

    def log(invocation: Any) -> None:
        keys = [
            record["dynamodb"].get("Keys", {}).get("session_id", {}).get("S", "?")
            for record in invocation.event["Records"]
        ]
        failed = len(invocation.failed_ids())
        states = ", ".join(
            f"{key} {delivery_state(*key.rsplit('#', 1), wait=False)}" if "#" in key else key for key in keys
        )
        retry = f" ({failed} to retry)" if failed else ""
        print(f"{time.strftime('%H:%M:%S')}  stream -> DeliverySenderFunction  {states}{retry}", flush=True)

    return log


def _subscription_records(dynamodb: Any, table: str) -> list[str]:
    """One line per subscription record in the Customers table: what the webhook made of the
    subscription's invoices and status changes."""
    items = dynamodb.scan(TableName=table).get("Items", [])
    lines = []
    for item in items:
        if not item["checkout_session_id"]["S"].startswith("subscription#"):
            continue
        value = {name: next(iter(typed.values())) for name, typed in item.items()}
        paid_through = value.get("paid_through")
        until = time.strftime("%Y-%m-%d", time.gmtime(int(paid_through))) if paid_through else "-"
        lines.append(
            f"{value.get('subscription_id')}: status {value.get('status', '-')}, paid through {until}, "
            f"last paid invoice {value.get('last_paid_invoice', '-')}, "
            f"checkout {value.get('checkout_session', 'none (not provisioned here)')}"
        )
    return lines


def _log_request(method: str, path: str, status: int, raw: bytes) -> None:
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = {}
    answer = answer if isinstance(answer, dict) else {}
    parts = [str(answer.get(key)) for key in ("status", "event_type", "session_id") if answer.get(key)]
    started = answer.get("deliveries") if isinstance(answer.get("deliveries"), dict) else {}
    for name, state in started.items():
        if isinstance(state, dict):
            parts.append(f"{name}={state.get('status')}")
    if answer.get("error"):
        parts.append(f"error: {answer['error']}")
    if answer.get("reason"):
        parts.append(f"({answer['reason']})")
    print(f"{time.strftime('%H:%M:%S')}  {method} {path} -> {status}  {' '.join(parts)}", flush=True)


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.local_server",
        description="Run the Stripe webhook and the delivery sender locally (Function URL on 127.0.0.1, "
        "DynamoDB and its stream in moto, TikTok and Meta stand-ins unless TIKTOK_ACCESS_TOKEN / "
        "META_ACCESS_TOKEN is set) and send the sample events.",
    )
    parser.add_argument("--port", type=int, default=3000, help="port on 127.0.0.1; 0 = any free port")
    parser.add_argument(
        "--demo", action="store_true", help="exit after the samples: 0 only if every answer is as expected"
    )
    parser.add_argument(
        "--manifest", type=Path, default=MANIFEST, help="the samples and their expected answers (%(default)s)"
    )
    parser.add_argument(
        "--env-file", type=Path, default=DOTENV, help="KEY=VALUE file read if present (%(default)s)"
    )
    args = parser.parse_args(argv)

    try:
        samples = load_manifest(args.manifest)
        environment = prepare_environment(args.demo, args.env_file)
    except (OSError, ValueError) as error:
        print(f"local_server: {error}", file=sys.stderr)
        return 2
    _quiet_libraries()
    functions = str(REPO / "functions")
    if functions not in sys.path:
        sys.path.insert(0, functions)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        # Started in the background (`make run &`, a CI script's job), Ctrl-C is ignored from the
        # start and Python installs no handler: the server still stops on it, as it says.
        signal.signal(signal.SIGINT, signal.default_int_handler)

    import boto3

    from devtools.local_dynamodb import moto_dynamodb, point_boto3_at
    from devtools.meta_standin import MetaStandIn
    from devtools.template_tables import create_tables
    from devtools.tiktok_standin import TikTokStandIn

    started = time.monotonic()
    standins = {}
    if environment.tiktok_standin:
        standins["tiktok"] = TikTokStandIn().start()
        os.environ.update(STANDIN_TIKTOK, TIKTOK_API_URL=standins["tiktok"].url)
        os.environ.setdefault("RENEWAL_EVENT_NAME", "Subscribe")  # show renewals reported too
    if environment.meta_standin:
        standins["meta"] = MetaStandIn().start()
        os.environ.update(STANDIN_META, META_API_BASE_URL=standins["meta"].url_base)
    try:
        with moto_dynamodb() as endpoint:
            point_boto3_at(endpoint)
            os.environ.update(create_tables(boto3.client("dynamodb"), prefix=TABLE_PREFIX))
            return _run(args, samples, environment, endpoint, started, standins)
    except KeyboardInterrupt:
        print(f"\n{STOPPED}")
        return 130
    finally:
        for standin in standins.values():
            standin.stop()


def _run(
    args: argparse.Namespace,
    samples: list[Sample],
    environment: Environment,
    endpoint: str,
    started: float,
    standins: dict[str, Any],
) -> int:
    import boto3

    from checkout_conversions.observability import logger
    from checkout_conversions.secrets import ConfigurationError
    from delivery_redrive import app as redrive
    from delivery_sender import app as sender
    from devtools.stream_mapping import LocalStreamMapping
    from stripe_webhook import app

    try:
        lines = {}
        for name in ("tiktok", "meta"):
            standin = standins.get(name)
            lines[name] = _destination_line(name, standin.base_url if standin else None)
    except ConfigurationError as error:
        print(f"local_server: the function's settings are invalid: {error}", file=sys.stderr)
        return 2
    try:
        server = FunctionUrlServer(app.lambda_handler, args.port)
    except OSError as error:
        print(f"local_server: cannot listen on {HOST}:{args.port}: {error}", file=sys.stderr)
        if args.port:
            print(
                f"  Is another `make run` serving on {args.port}? Stop it, or pick another port: "
                f"make run PORT={8080 if args.port != 8080 else 3001}",
                file=sys.stderr,
            )
        return 2

    def sender_handler(event: dict[str, Any], context: Any) -> Any:
        with server.invocation_lock:  # one invocation at a time in this process, as in Lambda
            return sender.lambda_handler(event, context)

    dynamodb = boto3.client("dynamodb")
    table = os.environ["SESSIONS_TABLE_NAME"]
    delivery_state = DeliveryState(dynamodb, table)
    streams = boto3.client("dynamodbstreams", endpoint_url=endpoint)
    mapping = LocalStreamMapping.for_table(streams, dynamodb, table, sender_handler)

    compared = tuple(name for name, (known, _) in lines.items() if known)
    with server:
        mapping.start()
        ready = time.monotonic() - started
        print(f"Stripe webhook (StripeWebhookFunction) on {server.url}  (ready in {ready:.1f} s)")
        print(
            f"  DynamoDB   moto at {endpoint} (in memory, empty at each start): "
            f"{table}, {os.environ['CUSTOMERS_TABLE_NAME']}"
        )
        print(
            f"  Stream     {table}'s stream -> DeliverySenderFunction, polled 4 times a second with "
            "template.yaml's filter, batch size and retries"
        )
        secrets = LOCAL_WEBHOOK_SECRET + (" and your STRIPE_WEBHOOK_SECRET" if environment.own_secret else "")
        print(f"  Secret     {secrets}")
        print(f"  TikTok     {lines['tiktok'][1]}")
        print(f"  Meta       {lines['meta'][1]}")
        if environment.dotenv_loaded:
            print(f"  .env       {', '.join(sorted(environment.dotenv_loaded))} from {args.env_file}")
        for note in environment.notes:
            print(f"  Note       {note}")
        print(f"\nSending {len(samples)} sample events from {_shown(args.manifest)}, signed now:", flush=True)

        quiet_samples = "POWERTOOLS_LOG_LEVEL" not in os.environ
        level = logger.log_level
        if quiet_samples:
            logger.setLevel(logging.WARNING)  # a readable table; the function's logs come back after it
        try:
            results = send_samples(server.port, samples, delivery_state)
        finally:
            logger.setLevel(level)
        print_results(results, check=args.demo, compared=compared)
        from devtools.deliveries import format_coverage, match_key_coverage, read_deliveries

        recorded = read_deliveries(dynamodb, table)
        for name, label in (("tiktok", "TikTok"), ("meta", "Meta")):
            sent, shares = match_key_coverage(recorded, newest=len(results), destination=name)
            print(
                f"\nMatch keys of the {sent} events sent to {label} (share that carried each; "
                f"`make deliveries` shows the same for a deployed stack):\n  {format_coverage(sent, shares)}"
            )
        first_answers = [result for result in results if result.outcome in ("provisioned", "recorded")]
        for name, standin in standins.items():
            events = standin.events()
            delivered = sum(1 for result in first_answers if result.got(name)[1] == "sent")
            distinct = len({event["event_id"] for event in events})
            label = "TikTok" if name == "tiktok" else "Meta"
            # Renewals are reported to TikTok only.
            ids = (
                "its checkout session id, a renewal's its invoice id"
                if name == "tiktok"
                else "its checkout session id"
            )
            print(
                f"\nThe {label} stand-in received {len(standin.requests)} requests: {len(events)} events, "
                f"{distinct} distinct event ids for {delivered} deliveries sent (a purchase's event_id is "
                f"{ids})."
            )
        for record in _subscription_records(dynamodb, os.environ["CUSTOMERS_TABLE_NAME"]):
            print(f"Subscription record {record}")

        if args.demo:
            mapping.stop()
            return _verdict(results, compared, args.manifest)

        stop_redrive = threading.Event()
        try:  # from the banner on, Ctrl-C (or SIGTERM) ends here, whenever it comes
            threading.Thread(
                target=_redrive_on_schedule,
                args=(redrive.lambda_handler, server.invocation_lock, stop_redrive),
                daemon=True,
            ).start()
            local_run.write(
                endpoint,
                os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
                table,
                os.environ["CUSTOMERS_TABLE_NAME"],
                server.url,
            )
            _print_banner(server.url)
            server.on_request = _log_request
            mapping.on_invocation = _log_sender(delivery_state)
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print(f"\n{STOPPED}")  # Ctrl-C and SIGTERM alike
            return 0
        finally:
            stop_redrive.set()
            local_run.remove()
            mapping.stop()


def _print_banner(url: str) -> None:
    print(
        f"""
Serving {url} until Ctrl-C. Each request is printed below, after the function's JSON logs.
Real test-mode events from Stripe, with the Stripe CLI (two terminals):
  stripe listen --forward-to {url}
    prints "Your webhook signing secret is whsec_...". It stays the same across restarts: put
    STRIPE_WEBHOOK_SECRET=whsec_... in .env (or export it) and restart `make run` once.
  stripe trigger checkout.session.completed
Events signed with {LOCAL_WEBHOOK_SECRET} are accepted too; restart to empty DynamoDB and resend the samples.
This server's deliveries, in another terminal: make deliveries  (without STACK=, it finds this server)
Its redrive runs every {os.environ.get("LOCAL_REDRIVE_SECONDS", "60")} s. What it missed of Stripe's record:
  make replay SINCE=2026-12-01T00:00Z   (a dry run; APPLY=1 does it)
""",
        flush=True,
    )


def _redrive_on_schedule(handler: Callable[..., Any], invocation_lock: Any, stop: threading.Event) -> None:
    """The redrive's schedule (template.yaml: every 5 minutes per destination), every
    LOCAL_REDRIVE_SECONDS here (60 by default): what a replay requeues goes out while you watch.
    Its handler is imported by the main thread: an import under way in this daemon thread when
    Ctrl-C comes could hold a module lock the main thread's shutdown needs."""
    every = float(os.environ.get("LOCAL_REDRIVE_SECONDS", "60"))
    while not stop.wait(every):
        with invocation_lock:  # one invocation at a time in this process, as in Lambda
            tallies = handler({}, LambdaContext(120.0, function_name="DeliveryRedriveFunction"))
        done = {name: tally for name, tally in tallies.items() if tally and "disabled" not in tally}
        if done:
            print(f"{time.strftime('%H:%M:%S')}  schedule -> DeliveryRedriveFunction  {done}", flush=True)


def _verdict(results: list[Result], compared_destinations: tuple[str, ...], manifest: Path) -> int:
    wrong = [result for result in results if not result.matches(compared_destinations)]
    labels = {"tiktok": "TikTok", "meta": "Meta"}
    if compared_destinations:
        shown = " and ".join(labels[name] for name in compared_destinations)
        compared = f"status, outcome and the {shown} columns compared"
    else:
        compared = "no destination is a local stand-in: status and outcome compared"
    sys.stdout.flush()  # the table first, then the verdict, even when both go to one pipe
    if wrong:
        print(
            f"\nDemo FAILED: {len(wrong)} of {len(results)} samples did not answer as {_shown(manifest)} "
            f"expects ({compared}).",
            file=sys.stderr,
        )
        return 1
    print(f"\nDemo OK: all {len(results)} samples answered as expected ({compared}).")
    return 0


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
