"""TikTok Events API 2.0 over HTTP: one POST with bounded timeouts, and what TikTok's answer means.

Business errors come back as HTTP 200 with a non-zero `code`, so the outcome is read from the
body, never from the status alone. Every outcome is returned; nothing is raised. Only the sender
and the redrive import this module: the webhook never calls TikTok.
"""

import json
from typing import Any

import httpx

from checkout_conversions import platform_http
from checkout_conversions.delivery import DeliveryStatus, Outcome

_MESSAGE_LIMIT = 300

SUCCESS_CODES = frozenset({0, 20001})  # 20001: partial success
ALREADY_RECEIVED_CODES = frozenset({40050})  # duplicated request: TikTok has it
TRANSIENT_CODES = frozenset({40100, 40132, 50000, 50002, 60001, 61000})
TRANSIENT_HTTP_STATUSES = frozenset({408, 425, 429})


def post(client: httpx.Client, url: str, access_token: str, body: bytes, timeout_seconds: float) -> Outcome:
    """POST one request body, the token in TikTok's Access-Token header (platform_http.post:
    bounded time, never raises)."""
    headers = {"Access-Token": access_token, "Content-Type": "application/json"}
    return platform_http.post(client, url, body, headers, timeout_seconds, classify)


def classify(http_status: int, body: bytes) -> Outcome:
    """Read TikTok's answer: HTTP 200 with a non-zero `code` is a failure too."""
    if http_status in TRANSIENT_HTTP_STATUSES or http_status >= 500:
        return Outcome.failure(f"HTTP {http_status}", http_status=http_status)
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or not _is_integer(answer.get("code")):
        # Not TikTok's own answer. On a 2xx, a proxy or a firewall in between: try again later.
        # On a 3xx or 4xx, TIKTOK_API_URL points at something that is not the Events API (a
        # wrong path answering 404, a redirect): retrying for days cannot help.
        transient = 200 <= http_status < 300
        return Outcome.failure(
            f"HTTP {http_status}, not TikTok JSON" + ("" if transient else ": check TIKTOK_API_URL"),
            retryable=transient,
            http_status=http_status,
        )

    code = answer["code"]
    message = str(answer.get("message") or "")[:_MESSAGE_LIMIT]
    request_id = answer.get("request_id") if isinstance(answer.get("request_id"), str) else None
    fields = {"code": code, "message": message, "request_id": request_id, "http_status": http_status}
    if (code in SUCCESS_CODES or code in ALREADY_RECEIVED_CODES) and 200 <= http_status < 300:
        return Outcome(DeliveryStatus.SENT, **fields)
    return Outcome(DeliveryStatus.FAILED, retryable=is_transient_code(code), **fields)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_transient_code(code: int) -> bool:
    if code in TRANSIENT_CODES or 51000 <= code <= 51099 or 52000 <= code <= 52999:
        return True
    # Unlisted 5xxxx/6xxxx codes are server-side; 4xxxx are configuration or payload errors.
    return 50000 <= code <= 69999
