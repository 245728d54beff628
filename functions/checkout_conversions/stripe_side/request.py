"""The webhook's HTTP envelope: Function URL / API Gateway HTTP API (payload format 2.0) requests,
and the shape of an answer (webhook/ decides which answer to give)."""

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

MAX_BODY_BYTES = 256 * 1024


@dataclass(frozen=True)
class HttpRequest:
    method: str
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def to_lambda(self) -> dict[str, Any]:
        return {
            "statusCode": self.status,
            "headers": {"content-type": "application/json", **self.headers},
            "body": json.dumps(self.body, separators=(",", ":")),
        }


class BadHttpRequest(Exception):
    """Not a webhook request at all: the status and headers to answer with, and why."""

    def __init__(self, status: int, error: str, headers: dict[str, str] | None = None):
        super().__init__(error)
        self.status = status
        self.headers = headers or {}


def parse_request(event: Any, max_body_bytes: int = MAX_BODY_BYTES) -> HttpRequest:
    """The method, lower-cased headers and raw body bytes of an HTTP event, or BadHttpRequest."""
    if not isinstance(event, dict):
        raise BadHttpRequest(400, "not an HTTP event")
    context = event.get("requestContext")
    http_context = context.get("http") if isinstance(context, dict) else None
    method = http_context.get("method") if isinstance(http_context, dict) else None
    if not isinstance(method, str):
        raise BadHttpRequest(400, "not an HTTP event")
    if method.upper() != "POST":
        raise BadHttpRequest(405, "method not allowed", {"allow": "POST"})

    raw_headers = event.get("headers") or {}
    headers = (
        {str(k).lower(): str(v) for k, v in raw_headers.items()} if isinstance(raw_headers, dict) else {}
    )
    return HttpRequest(method="POST", headers=headers, body=_raw_body(event, max_body_bytes))


def _raw_body(event: dict[str, Any], max_body_bytes: int) -> bytes:
    body = event.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise BadHttpRequest(400, "body is not a string")
    if event.get("isBase64Encoded"):
        # Base64 is 4/3 of the data: reject a huge body before decoding it.
        if len(body) > (max_body_bytes + 2) // 3 * 4 + 4:
            raise BadHttpRequest(413, "payload too large")
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadHttpRequest(400, "body is not valid base64") from None
    else:
        if len(body) > max_body_bytes:  # characters <= bytes: a cheap first check
            raise BadHttpRequest(413, "payload too large")
        try:
            raw = body.encode("utf-8")
        except UnicodeEncodeError:
            raise BadHttpRequest(400, "body is not valid UTF-8") from None
    if len(raw) > max_body_bytes:
        raise BadHttpRequest(413, "payload too large")
    return raw
