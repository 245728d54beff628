"""TikTok Events API 2.0: building a purchase event and sending it within a time budget.

Knows nothing of Stripe. Business errors come back as HTTP 200 with a non-zero `code`, so the
outcome is read from the body, never from the status alone.
"""

import json
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

import httpx

MAX_RESPONSE_BYTES = 64 * 1024
_MESSAGE_LIMIT = 300

SUCCESS_CODES = frozenset({0, 20001})  # 20001: partial success
ALREADY_RECEIVED_CODES = frozenset({40050})  # duplicated request: TikTok has it
TRANSIENT_CODES = frozenset({40100, 40132, 50000, 50002, 60001, 61000})


@dataclass(frozen=True)
class User:
    """Match keys: email, phone and external_id already SHA-256 hashed; the rest raw."""

    email: str | None = None
    phone: str | None = None
    external_id: str | None = None
    ttclid: str | None = None
    ttp: str | None = None
    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class Purchase:
    event_id: str
    event_time: int
    order_id: str
    value: Decimal | None
    currency: str | None
    user: User
    page_url: str | None = None
    page_referrer: str | None = None


def build_event(purchase: Purchase, event_name: str) -> dict[str, Any]:
    """One element of the request's `data[]`; missing keys are left out, never sent empty."""
    properties: dict[str, Any] = {"order_id": purchase.order_id, "content_type": "product"}
    if purchase.value is not None and purchase.currency:
        properties["value"] = purchase.value
        properties["currency"] = purchase.currency.upper()
    event: dict[str, Any] = {
        "event": event_name,
        "event_time": int(purchase.event_time),
        "event_id": str(purchase.event_id),
        "user": _present(asdict(purchase.user)),
        "properties": properties,
    }
    page = _present({"url": purchase.page_url, "referrer": purchase.page_referrer})
    if page:
        event["page"] = page
    return event


def build_request(events: list[dict[str, Any]], pixel_id: str, test_event_code: str = "") -> dict:
    body: dict[str, Any] = {"event_source": "web", "event_source_id": pixel_id, "data": events}
    if test_event_code:
        body["test_event_code"] = test_event_code
    return body


def encode(body: dict[str, Any]) -> bytes:
    """JSON with Decimal values as JSON numbers (19.99, not "19.99" and not 19.990000000000002)."""
    return json.dumps(body, separators=(",", ":"), default=_decimal_as_number).encode("utf-8")


def _decimal_as_number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value not in (None, "")}


@dataclass(frozen=True)
class Outcome:
    """What one attempt to send came to. `status` is 'sent' or 'failed'."""

    status: str
    retryable: bool = False
    code: int | None = None
    message: str = ""
    request_id: str | None = None
    http_status: int | None = None

    @property
    def sent(self) -> bool:
        return self.status == "sent"


# Runs the POST so that the caller can stop waiting at the deadline whatever the network does
# (a name with many unreachable addresses, an answer trickled byte by byte). A POST still running
# then finishes or times out in the background; if it reaches TikTok after all, the redrive's
# repeat carries the same event_id and TikTok deduplicates it.
_sender = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tiktok-send")


def send(client: httpx.Client, url: str, access_token: str, body: bytes, budget_seconds: float) -> Outcome:
    """POST within `budget_seconds` in all; every outcome is returned, nothing is raised."""
    deadline = time.monotonic() + budget_seconds
    try:
        return _sender.submit(_post, client, url, access_token, body, deadline).result(timeout=budget_seconds)
    except FutureTimeout:
        return Outcome("failed", retryable=True, message=f"timed out after {budget_seconds:g}s")
    except Exception as error:  # noqa: BLE001 - a TikTok problem must never fail provisioning
        return Outcome("failed", retryable=True, message=f"unexpected error: {type(error).__name__}")


def _post(client: httpx.Client, url: str, access_token: str, body: bytes, deadline: float) -> Outcome:
    budget = deadline - time.monotonic()
    try:
        request = client.build_request(
            "POST",
            url,
            content=body,
            headers={"Access-Token": access_token, "Content-Type": "application/json"},
            timeout=httpx.Timeout(budget),
        )
        request.extensions["trace"] = _within(deadline, request.extensions["timeout"])
        response = client.send(request, stream=True)
        try:
            received = bytearray()
            for chunk in response.iter_bytes():
                received += chunk
                if time.monotonic() > deadline:
                    return Outcome("failed", retryable=True, message="timed out reading the answer")
                if len(received) > MAX_RESPONSE_BYTES:
                    break
            return classify(response.status_code, bytes(received))
        finally:
            response.close()
    except httpx.TimeoutException:
        return Outcome("failed", retryable=True, message=f"timed out after {budget:.3g}s")
    except httpx.HTTPError as error:
        return Outcome("failed", retryable=True, message=f"connection error: {type(error).__name__}")
    except Exception as error:  # noqa: BLE001 - a TikTok problem must never fail provisioning
        return Outcome("failed", retryable=True, message=f"unexpected error: {type(error).__name__}")


def _within(deadline: float, timeouts: dict[str, float | None]):
    """An httpcore trace hook that gives each phase (connect, TLS, send, wait for the answer,
    read it) only what is left of one deadline: httpx's own timeouts apply per phase, so a slow
    connect followed by a slow answer would otherwise keep the background POST going for
    several budgets."""

    def trace(event_name: str, info: dict[str, Any]) -> None:
        if not event_name.endswith(".started"):
            return
        left = max(deadline - time.monotonic(), 0.001)
        timeouts["read"] = timeouts["write"] = left
        if "timeout" in info:  # connect_tcp, start_tls: their timeout is passed in `info`
            info["timeout"] = left

    return trace


def classify(http_status: int, body: bytes) -> Outcome:
    """Read TikTok's answer: HTTP 200 with a non-zero `code` is a failure too."""
    if http_status == 429 or http_status >= 500:
        return Outcome("failed", retryable=True, http_status=http_status, message=f"HTTP {http_status}")
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or not _is_integer(answer.get("code")):
        # Not TikTok's own answer (a proxy's or a firewall's error page, an empty body): transient.
        return Outcome(
            "failed", retryable=True, http_status=http_status, message=f"HTTP {http_status}, not TikTok JSON"
        )

    code = answer["code"]
    message = str(answer.get("message") or "")[:_MESSAGE_LIMIT]
    request_id = answer.get("request_id") if isinstance(answer.get("request_id"), str) else None
    fields = {"code": code, "message": message, "request_id": request_id, "http_status": http_status}
    if (code in SUCCESS_CODES or code in ALREADY_RECEIVED_CODES) and 200 <= http_status < 300:
        return Outcome("sent", **fields)
    return Outcome("failed", retryable=is_transient_code(code), **fields)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_transient_code(code: int) -> bool:
    if code in TRANSIENT_CODES or 51000 <= code <= 51099 or 52000 <= code <= 52999:
        return True
    # Unlisted 5xxxx/6xxxx codes are server-side; 4xxxx are configuration or payload errors.
    return 50000 <= code <= 69999
