"""Meta Conversions API over HTTP: one POST with bounded timeouts, and what the Graph API's answer
means.

The access token travels as `access_token` in the JSON body: never in the URL (URLs end up in
proxy and load balancer logs) nor in a header, and it is never logged. Every outcome is returned;
nothing is raised. Only the sender and the redrive import this module.

Error codes are the Graph API's: its Handling Errors guide for 1, 2, 4, 17, 341, 368 and the
permanent ones, the Marketing API rate-limiting page for 613; 32 and 80000-80014 are the page and
Business Use Case throttling codes. An error Meta marks `is_transient` is retried whatever its code.
"""

import json
from decimal import Decimal
from typing import Any

import httpx

from checkout_conversions import platform_http
from checkout_conversions.currency import encode_json
from checkout_conversions.delivery import DeliveryStatus, Outcome

_MESSAGE_LIMIT = 300

# 1 unknown and 2 service (temporary downtime), 4, 17, 32, 613 and the Business Use Case range
# (throttling), 341 (application limit reached), 368 (temporarily blocked): wait and retry.
TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 341, 368, 613, *range(80000, 80015)})
# 190 token, 102 session, 100 invalid parameter, 3 capability, 10 and 200-299 permissions,
# 803 unknown object (a wrong pixel id): retrying cannot help until the operator fixes something.
# Listed so that a 5xx carrying one of them is not retried; any other unlisted code is permanent
# on a 4xx too, but retried on a 5xx.
PERMANENT_CODES = frozenset({3, 10, 100, 102, 190, 803, *range(200, 300)})
TRANSIENT_HTTP_STATUSES = frozenset({408, 425, 429})


def events_url(api_base: str, api_version: str, pixel_id: str) -> str:
    return f"{api_base.rstrip('/')}/{api_version}/{pixel_id}/events"


def post(client: httpx.Client, url: str, access_token: str, body: bytes, timeout_seconds: float) -> Outcome:
    """POST one request body (currency.encode_json's), with the token added to it
    (platform_http.post: bounded time, never raises)."""
    try:
        content = with_access_token(body, access_token)
    except (ValueError, TypeError) as error:
        return Outcome.failure(f"request body is not a JSON object: {type(error).__name__}", retryable=False)
    headers = {"Content-Type": "application/json"}
    return platform_http.post(client, url, content, headers, timeout_seconds, classify)


def with_access_token(body: bytes, access_token: str) -> bytes:
    """The body with `access_token` added at the top level. Numbers are read back as Decimal so
    that re-encoding keeps them exactly as meta_payload wrote them."""
    payload = json.loads(body, parse_float=Decimal)
    if not isinstance(payload, dict):
        raise TypeError("not a JSON object")
    return encode_json({**payload, "access_token": access_token})


def classify(http_status: int, body: bytes) -> Outcome:
    """Read the Graph API's answer: an `error` object, or `events_received` on success."""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        return _error_outcome(http_status, answer["error"])
    if _server_side(http_status):
        return Outcome.failure(f"HTTP {http_status}", http_status=http_status)
    if not 200 <= http_status < 300:
        # Not the Graph API's own answer: META_API_BASE_URL points at something else (a wrong
        # path answering 404, a redirect). Retrying that for days cannot help.
        return Outcome.failure(
            f"HTTP {http_status}, not a Graph API answer: check META_API_BASE_URL",
            retryable=False,
            http_status=http_status,
        )
    if not isinstance(answer, dict):
        # A 2xx that is not JSON: a proxy or a firewall in between. Try again later.
        return Outcome.failure(f"HTTP {http_status}, not a Graph API answer", http_status=http_status)
    request_id = answer.get("fbtrace_id") if isinstance(answer.get("fbtrace_id"), str) else None
    received = answer.get("events_received")
    if not _is_integer(received) or received < 1:
        return Outcome.failure("no events received", request_id=request_id, http_status=http_status)
    return Outcome(
        DeliveryStatus.SENT,
        message=f"events_received={received}",
        request_id=request_id,
        http_status=http_status,
    )


def is_transient_code(code: int) -> bool:
    return code in TRANSIENT_CODES


def _error_outcome(http_status: int, error: dict[str, Any]) -> Outcome:
    code = error.get("code") if _is_integer(error.get("code")) else None
    subcode = error.get("error_subcode") if _is_integer(error.get("error_subcode")) else None
    request_id = error.get("fbtrace_id") if isinstance(error.get("fbtrace_id"), str) else None
    # Meta's own text can quote rejected values: the log prints a message only when there is no
    # code (delivery.record), so without a code the message is ours.
    text = str(error.get("message") or "") if code is not None else "Graph API error without a code"
    message = (f"subcode {subcode}: {text}" if subcode else text)[:_MESSAGE_LIMIT]
    return Outcome(
        DeliveryStatus.FAILED,
        retryable=_retryable(http_status, code, error.get("is_transient") is True),
        code=code,
        message=message,
        request_id=request_id,
        http_status=http_status,
    )


def _retryable(http_status: int, code: int | None, marked_transient: bool) -> bool:
    if marked_transient:
        return True
    if code is None:
        return _server_side(http_status)
    if _server_side(http_status):
        # Meta normally answers 190 or 100 with HTTP 400; on a 5xx only those stay permanent.
        return code not in PERMANENT_CODES
    return is_transient_code(code)


def _server_side(http_status: int) -> bool:
    return http_status >= 500 or http_status in TRANSIENT_HTTP_STATUSES


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
