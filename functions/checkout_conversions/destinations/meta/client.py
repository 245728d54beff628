"""Meta's send side: the request of a purchase, its POST to the Graph API, and what the answer
means."""

# The access token travels as `access_token` in the JSON body: never in the URL (URLs end up in
# proxy and load balancer logs) nor in a header, and it is never logged.
#
# Error codes are the Graph API's: its Handling Errors guide for 1, 2, 4, 17, 341, 368 and the
# permanent ones, the Marketing API rate-limiting page for 613; 32 and 80000-80014 are the page and
# Business Use Case throttling codes. An error Meta marks `is_transient` is retried whatever its code.
#
# Meta requires `client_user_agent` for website events. A purchase without one is still sent, as a
# website event with the keys it has: dropping it would lose a conversion the Pixel may have
# missed. Its delivery record and the log say why it will match poorly (MetaMissingUserAgent).

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import httpx

from checkout_conversions.destinations import http
from checkout_conversions.destinations.base import Answer, DestinationSettings, Prepared, Verdict
from checkout_conversions.destinations.meta import payload
from checkout_conversions.destinations.meta.settings import MetaSettings
from checkout_conversions.observability import count, logger
from checkout_conversions.purchase import Content, Purchase, PurchaseKind
from checkout_conversions.values import encode_json

_MESSAGE_LIMIT = 300
# 1 unknown and 2 service (temporary downtime), 4, 17, 32, 613 and the Business Use Case range
# (throttling), 341 (application limit reached), 368 (temporarily blocked): wait and retry.
TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 341, 368, 613, *range(80000, 80015)})
# 190 token, 102 session, 100 invalid parameter, 3 capability, 10 and 200-299 permissions,
# 803 unknown object (a wrong pixel id): retrying cannot help until the operator fixes something.
# Listed so that a 5xx carrying one of them is not retried; any other unlisted code is permanent
# on a 4xx too, but retried on a 5xx.
PERMANENT_CODES = frozenset({3, 10, 100, 102, 190, 803, *range(200, 300)})
# Of those, the token's: 190 invalid or expired, 102 session, 10 and 200-299 permissions. The token
# is read again; refused again, the destination pauses (outbox/attempt.py). 100 and 803 (the
# payload, the pixel id) stay permanent.
UNAUTHORIZED_CODES = frozenset({10, 102, 190, *range(200, 300)})
TRANSIENT_HTTP_STATUSES = frozenset({408, 425, 429})
NO_USER_AGENT = (
    "no client_user_agent: Meta requires it for website events and will match this one poorly; "
    "put the buyer's User-Agent in the Checkout Session's user_agent metadata"
)


def platform(settings: DestinationSettings, test_event_code: str = "") -> "Meta":
    assert isinstance(settings, MetaSettings)
    return Meta(settings, test_event_code)


class Meta:
    max_events_per_request = 500  # Meta takes up to 1,000 events in `data`, refusing all if one is bad

    def __init__(self, settings: MetaSettings, test_event_code: str = ""):
        self.settings = settings
        self.test_event_code = test_event_code  # read at send time ("": none, a live event)

    def prepare(self, purchase: Purchase, contents: list[Content] | None, kind: PurchaseKind) -> Prepared:
        """The request, and the names of the match keys it carries."""
        settings = self.settings
        event = payload.build_event(purchase, settings.event_name, settings.default_phone_country, contents)
        note = None
        if payload.missing_user_agent(event):
            note = NO_USER_AGENT
            count("MetaMissingUserAgent")
            logger.warning(
                "Meta event without client_user_agent: it will match poorly", extra={"reason": note}
            )
        return Prepared(event, tuple(payload.match_key_names(event)), note)

    def prepare_stored(self, event_json: str) -> Prepared:
        raise ValueError("Meta has no events stored whole: only TikTok's predate the outbox")

    def body(self, events: Sequence[Prepared]) -> bytes:
        """One request with the events in its `data`, without the access token."""
        return encode_json(
            payload.build_request([prepared.event for prepared in events], self.test_event_code)
        )

    def post(self, client: httpx.Client, access_token: str, body: bytes) -> Answer:
        """POST one request body with the token added to it."""
        try:
            content = with_access_token(body, access_token)
        except (ValueError, TypeError) as error:
            return Answer.failure(
                f"request body is not a JSON object: {type(error).__name__}", retryable=False
            )
        headers = {"Content-Type": "application/json"}
        return http.post(
            client, self.settings.events_url, content, headers, self.settings.timeout_seconds, classify
        )


def with_access_token(body: bytes, access_token: str) -> bytes:
    """The body with `access_token` added at the top level. Numbers are read back as Decimal so
    that re-encoding keeps them exactly as the payload wrote them."""
    request = json.loads(body, parse_float=Decimal)
    if not isinstance(request, dict):
        raise TypeError("not a JSON object")
    return encode_json({**request, "access_token": access_token})


def classify(http_status: int, body: bytes) -> Answer:
    """Read the Graph API's answer: an `error` object, or `events_received` on success."""
    answer = _json(body)
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        return _error_answer(http_status, answer["error"])
    if _server_side(http_status):
        return Answer.failure(f"HTTP {http_status}", http_status=http_status)
    if not 200 <= http_status < 300:
        # Not the Graph API's own answer: META_API_BASE_URL points at something else (a wrong
        # path answering 404, a redirect). Retrying that for days cannot help.
        return Answer.failure(
            f"HTTP {http_status}, not a Graph API answer: check META_API_BASE_URL",
            retryable=False,
            http_status=http_status,
        )
    if not isinstance(answer, dict):
        # A 2xx that is not JSON: a proxy or a firewall in between. Try again later.
        return Answer.failure(f"HTTP {http_status}, not a Graph API answer", http_status=http_status)
    request_id = answer.get("fbtrace_id") if isinstance(answer.get("fbtrace_id"), str) else None
    received = answer.get("events_received")
    if not isinstance(received, int) or isinstance(received, bool) or received < 1:
        return Answer.failure("no events received", request_id=request_id, http_status=http_status)
    return Answer(
        Verdict.ACCEPTED,
        message=f"events_received={received}",
        received=received,
        request_id=request_id,
        http_status=http_status,
    )


def is_transient_code(code: int) -> bool:
    return code in TRANSIENT_CODES


def _error_answer(http_status: int, error: dict[str, Any]) -> Answer:
    code = error.get("code") if _is_integer(error.get("code")) else None
    subcode = error.get("error_subcode") if _is_integer(error.get("error_subcode")) else None
    request_id = error.get("fbtrace_id") if isinstance(error.get("fbtrace_id"), str) else None
    # Meta's own text can quote rejected values: the log prints a message only when there is no
    # code, so without a code the message is ours.
    text = str(error.get("message") or "") if code is not None else "Graph API error without a code"
    message = (f"subcode {subcode}: {text}" if subcode else text)[:_MESSAGE_LIMIT]
    return Answer(
        _verdict(http_status, code, error.get("is_transient") is True),
        code=code,
        message=message,
        request_id=request_id,
        http_status=http_status,
    )


def _verdict(http_status: int, code: int | None, marked_transient: bool) -> Verdict:
    if not marked_transient and code in UNAUTHORIZED_CODES:
        return Verdict.UNAUTHORIZED
    return Verdict.RETRY if _retryable(http_status, code, marked_transient) else Verdict.REFUSED


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


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
