"""TikTok's send side: the request of a purchase, its POST, and what TikTok's answer means."""

# Business errors come back as HTTP 200 with a non-zero `code`, so the answer is read from the body,
# never from the status alone.

import json
from collections.abc import Sequence
from typing import Any

import httpx

from checkout_conversions.destinations import http
from checkout_conversions.destinations.base import Answer, DestinationSettings, Prepared, Verdict
from checkout_conversions.destinations.tiktok import payload
from checkout_conversions.destinations.tiktok.settings import TikTokSettings
from checkout_conversions.observability import count, logger
from checkout_conversions.purchase import Content, Purchase, PurchaseKind
from checkout_conversions.values import encode_json

_MESSAGE_LIMIT = 300
SUCCESS_CODES = frozenset({0})
PARTIAL_SUCCESS_CODES = frozenset({20001})  # some events of the request refused: which, it does not say
ALREADY_RECEIVED_CODES = frozenset({40050})  # duplicated request: TikTok has it
TRANSIENT_CODES = frozenset({40100, 40132, 50000, 50002, 60001, 61000})
TRANSIENT_HTTP_STATUSES = frozenset({408, 425, 429})
# The token: 40001 has no rights on the pixel, 40105 expired, empty or invalid. Read it again;
# refused again, the destination pauses (outbox/attempt.py).
UNAUTHORIZED_CODES = frozenset({40001, 40105})


def platform(settings: DestinationSettings, test_event_code: str = "") -> "TikTok":
    assert isinstance(settings, TikTokSettings)
    return TikTok(settings, test_event_code)


class TikTok:
    max_events_per_request = 500  # TikTok takes up to 1,000 events in `data`

    def __init__(self, settings: TikTokSettings, test_event_code: str = ""):
        self.settings = settings
        self.test_event_code = test_event_code  # read at send time ("": none, a live event)

    def prepare(self, purchase: Purchase, contents: list[Content] | None, kind: PurchaseKind) -> Prepared:
        """The request, and the names of the match keys it carries."""
        settings = self.settings
        if purchase.currency and not payload.supported_currency(purchase.currency):
            count("TikTokUnsupportedCurrency")
            logger.info(
                "Currency TikTok does not take: sent without value", extra={"currency": purchase.currency}
            )
        event_name = settings.renewal_event_name if kind is PurchaseKind.RENEWAL else settings.event_name
        event = payload.build_event(
            purchase, event_name, settings.default_phone_country, contents, settings.limited_data_use
        )
        return self._prepared(event)

    def prepare_stored(self, event_json: str) -> Prepared:
        """A TikTok event stored whole before the outbox kept the purchase: sent as it was built."""
        return self._prepared(json.loads(event_json))

    def _prepared(self, event: dict[str, Any]) -> Prepared:
        return Prepared(event, tuple(payload.match_key_names(event)))

    def body(self, events: Sequence[Prepared]) -> bytes:
        """One request with the events in its `data`, the test event code when one is set."""
        request = payload.build_request(
            [prepared.event for prepared in events], self.settings.pixel_id, self.test_event_code
        )
        return encode_json(request)

    def post(self, client: httpx.Client, access_token: str, body: bytes) -> Answer:
        """POST one request body, the token in TikTok's Access-Token header."""
        headers = {"Access-Token": access_token, "Content-Type": "application/json"}
        return http.post(
            client, self.settings.api_url, body, headers, self.settings.timeout_seconds, classify
        )


def classify(http_status: int, body: bytes) -> Answer:
    """Read TikTok's answer: HTTP 200 with a non-zero `code` is a failure too."""
    if http_status in TRANSIENT_HTTP_STATUSES or http_status >= 500:
        return Answer.failure(f"HTTP {http_status}", http_status=http_status)
    answer = _json_object(body)
    if answer is None or not _is_integer(answer.get("code")):
        return _not_tiktok(http_status)
    code: int = answer["code"]
    request_id = answer.get("request_id")
    return Answer(
        _verdict(code, http_status),
        code=code,
        message=str(answer.get("message") or "")[:_MESSAGE_LIMIT],
        request_id=request_id if isinstance(request_id, str) else None,
        http_status=http_status,
    )


def _not_tiktok(http_status: int) -> Answer:
    """Not TikTok's own answer. On a 2xx, a proxy or a firewall in between: try again later. On a
    3xx or 4xx, TIKTOK_API_URL points at something that is not the Events API (a wrong path
    answering 404, a redirect): retrying for days cannot help."""
    transient = 200 <= http_status < 300
    return Answer.failure(
        f"HTTP {http_status}, not TikTok JSON" + ("" if transient else ": check TIKTOK_API_URL"),
        retryable=transient,
        http_status=http_status,
    )


def _verdict(code: int, http_status: int) -> Verdict:
    if 200 <= http_status < 300:
        if code in SUCCESS_CODES or code in ALREADY_RECEIVED_CODES:
            return Verdict.ACCEPTED
        if code in PARTIAL_SUCCESS_CODES:
            return Verdict.PARTIAL
    if code in UNAUTHORIZED_CODES:
        return Verdict.UNAUTHORIZED
    return Verdict.RETRY if is_transient_code(code) else Verdict.REFUSED


def is_transient_code(code: int) -> bool:
    if code in TRANSIENT_CODES or 51000 <= code <= 51099 or 52000 <= code <= 52999:
        return True
    # Unlisted 5xxxx/6xxxx codes are server-side; 4xxxx are configuration or payload errors.
    return 50000 <= code <= 69999


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
