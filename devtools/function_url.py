"""Build what Lambda receives from a Function URL, and sign Stripe payloads like Stripe does."""

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any


def stripe_signature(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """`Stripe-Signature` header: t=<unix seconds>,v1=HMAC-SHA256(secret, "t.payload")."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def function_url_event(
    body: bytes,
    headers: dict[str, str] | None = None,
    method: str = "POST",
    path: str = "/",
    query: str = "",
    source_ip: str = "127.0.0.1",
    base64_body: bool = False,
) -> dict[str, Any]:
    """A payload-format-2.0 event as a Lambda Function URL delivers it (headers lower-cased)."""
    headers = {name.lower(): value for name, value in (headers or {}).items()}
    try:
        text = body.decode("utf-8")
        binary = base64_body
    except UnicodeDecodeError:
        text, binary = "", True
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": headers.get("host", "localhost"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": base64.b64encode(body).decode("ascii") if binary else text,
        "isBase64Encoded": binary,
    }


def signed_webhook_event(
    stripe_event: dict[str, Any] | bytes,
    secret: str,
    timestamp: int | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    """A Function URL event carrying `stripe_event` as Stripe would POST it, signed now."""
    payload = stripe_event if isinstance(stripe_event, bytes) else json.dumps(stripe_event, indent=2).encode()
    headers = {
        "content-type": "application/json; charset=utf-8",
        "stripe-signature": stripe_signature(payload, secret, timestamp),
        "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }
    return function_url_event(payload, headers, base64_body=base64_body, source_ip="54.187.174.169")


class LambdaContext:
    """Enough of Lambda's context object for Powertools and the time budget."""

    def __init__(self, timeout_seconds: float = 10.0, function_name: str = "StripeWebhookFunction"):
        self._deadline = time.monotonic() + timeout_seconds
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - time.monotonic()) * 1000), 0)
