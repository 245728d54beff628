"""Reading TikTok's answer: business errors come back as HTTP 200 (tiktok-events-api.md, Response)."""

import json
from dataclasses import replace

import pytest

from checkout_conversions.destinations.base import Answer, Verdict
from checkout_conversions.destinations.tiktok.client import TikTok, classify, is_transient_code
from checkout_conversions.settings import load_settings


def answer(code, message="msg", request_id="202501010000000000abcdef") -> bytes:
    return json.dumps({"code": code, "message": message, "request_id": request_id, "data": {}}).encode()


@pytest.mark.parametrize(
    ("code", "verdict"),
    [(0, Verdict.ACCEPTED), (20001, Verdict.PARTIAL), (40050, Verdict.ACCEPTED)],
    ids=["ok", "partial-success", "duplicated-request-already-received"],
)
def test_http_200_success_codes_are_sent(code, verdict):
    """Partial success is taken for a request of one event; for several, it is split
    (tests/unit/outbox/test_batches.py)."""
    outcome = classify(200, answer(code, "OK", "req-1"))
    assert outcome.verdict is verdict
    assert outcome.accepted is True
    assert outcome.retryable is False
    assert outcome.code == code
    assert outcome.request_id == "req-1"
    assert outcome.http_status == 200


@pytest.mark.parametrize(
    "code", [40000, 40002, 40003, 40006, 40007, 40051, 40061, 40062, 40063, 40102, 40104]
)
def test_http_200_configuration_or_payload_errors_fail_without_retry(code):
    outcome = classify(200, answer(code, "Invalid field"))
    assert not outcome.accepted
    assert outcome.accepted is False
    assert outcome.retryable is False
    assert outcome.verdict is Verdict.REFUSED and not outcome.unauthorized
    assert outcome.code == code
    assert outcome.message == "Invalid field"


@pytest.mark.parametrize(
    ("code", "meaning"),
    [(40001, "no rights on the pixel"), (40105, "access token expired, empty or invalid")],
)
def test_http_200_refusals_of_the_token_are_unauthorized_not_permanent(code, meaning):
    """Issue 17: the token is read again, and the destination pauses if it is refused again."""
    outcome = classify(200, answer(code, meaning))
    assert outcome.verdict is Verdict.UNAUTHORIZED and outcome.unauthorized
    assert outcome.accepted is False and outcome.retryable is False
    assert outcome.code == code and outcome.message == meaning


@pytest.mark.parametrize(
    "code",
    [40100, 40132, 50000, 50002, 51000, 51010, 51099, 52000, 52500, 52999, 60001, 61000],
)
def test_http_200_transient_errors_fail_and_retry(code):
    outcome = classify(200, answer(code, "Too many requests"))
    assert not outcome.accepted
    assert outcome.retryable is True
    assert outcome.code == code


@pytest.mark.parametrize("http_status", [500, 502, 503, 504, 429])
@pytest.mark.parametrize(
    "body",
    [b"", b"<html>Bad Gateway</html>", answer(0), answer(40001)],
    ids=["empty", "html", "json-code-0", "json-code-40001"],
)
def test_http_5xx_and_429_retry_whatever_the_body(http_status, body):
    outcome = classify(http_status, body)
    assert not outcome.accepted
    assert outcome.retryable is True
    assert outcome.http_status == http_status


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html>gateway</html>",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b"null",
        b"0",
        b'"OK"',
        b'{"message": "OK"}',
        b'{"code": null}',
        b'{"code": "0"}',
        b'{"code": 0.0}',
        b'{"code": [0]}',
        b'{"code": false}',
        b'{"code": true}',
    ],
    ids=repr,
)
def test_http_200_without_an_integer_code_is_retryable(body):
    outcome = classify(200, body)
    assert not outcome.accepted
    assert outcome.accepted is False
    assert outcome.retryable is True


@pytest.mark.parametrize("http_status", [301, 302, 400, 401, 403, 404, 405, 413])
@pytest.mark.parametrize("body", [b"", b"Unauthorized", b"<html>Not Found</html>", b"[]"], ids=repr)
def test_http_3xx_or_4xx_without_tiktok_json_is_a_permanent_configuration_failure(http_status, body):
    """Not TikTok's own answer: TIKTOK_API_URL points at something else (a wrong path answering
    404, a redirect). Retrying that for days cannot help; the operator has to fix the URL."""
    outcome = classify(http_status, body)
    assert not outcome.accepted
    assert outcome.retryable is False
    assert outcome.http_status == http_status
    assert "TIKTOK_API_URL" in outcome.message


@pytest.mark.parametrize("http_status", [408, 425, 429, 500, 502, 503, 504])
@pytest.mark.parametrize("body", [b"", b"<html>Bad Gateway</html>"], ids=repr)
def test_timeouts_throttling_and_5xx_without_tiktok_json_are_retried(http_status, body):
    outcome = classify(http_status, body)
    assert not outcome.accepted
    assert outcome.retryable is True


@pytest.mark.parametrize("http_status", [400, 401, 403, 404, 409])
@pytest.mark.parametrize("code", [0, 20001, 40050])
def test_http_4xx_with_a_success_code_is_not_success(http_status, code):
    outcome = classify(http_status, answer(code))
    assert not outcome.accepted
    assert outcome.accepted is False
    assert outcome.http_status == http_status


@pytest.mark.parametrize(("http_status", "retryable"), [(401, False), (400, False)])
def test_http_4xx_with_tiktok_code_uses_the_code(http_status, retryable):
    outcome = classify(http_status, answer(40105, "Access token expired", "req-9"))
    assert not outcome.accepted
    assert outcome.retryable is retryable
    assert outcome.verdict is Verdict.UNAUTHORIZED
    assert outcome.code == 40105
    assert outcome.message == "Access token expired"
    assert outcome.request_id == "req-9"


def test_request_id_and_message_are_captured():
    outcome = classify(200, answer(40002, "event_id: must be a string", "2025010112000011223344"))
    assert outcome == Answer(
        Verdict.REFUSED,
        code=40002,
        message="event_id: must be a string",
        request_id="2025010112000011223344",
        http_status=200,
    )


def test_long_message_is_truncated_to_300_characters():
    outcome = classify(200, answer(40002, "x" * 299 + "yz" + "w" * 5000))
    assert len(outcome.message) == 300
    assert outcome.message == "x" * 299 + "y"


@pytest.mark.parametrize(
    ("body", "message", "request_id"),
    [
        (b'{"code": 40002}', "", None),
        (b'{"code": 40002, "message": null, "request_id": null}', "", None),
        (b'{"code": 40002, "message": 12, "request_id": 12}', "12", None),
    ],
)
def test_missing_message_or_request_id(body, message, request_id):
    outcome = classify(200, body)
    assert not outcome.accepted
    assert outcome.message == message
    assert outcome.request_id == request_id


@pytest.mark.parametrize(
    ("code", "transient"),
    [
        # Listed as "retry later" in the reference
        (40100, True),
        (40132, True),
        (50000, True),
        (50002, True),
        (51000, True),
        (51099, True),
        (52000, True),
        (52999, True),
        (60001, True),
        (61000, True),
        # Listed as "do not retry"
        (40000, False),
        (40001, False),
        (40002, False),
        (40003, False),
        (40006, False),
        (40007, False),
        (40051, False),
        (40061, False),
        (40062, False),
        (40063, False),
        (40102, False),
        (40104, False),
        (40105, False),
        # Neighbours of the listed transient 4xxxx codes are configuration/payload errors
        (40099, False),
        (40101, False),
        (40131, False),
        (40133, False),
        # Success codes are not transient errors
        (0, False),
        (20001, False),
        (40050, False),
    ],
)
def test_is_transient_code_per_reference(code, transient):
    assert is_transient_code(code) is transient


@pytest.mark.parametrize(
    ("code", "transient"),
    [
        # Product policy (destinations/tiktok/client.py): unlisted 5xxxx/6xxxx codes are server-side
        # and retried; everything outside 50000-69999 that is not listed is not.
        (49999, False),
        (50001, True),
        (50999, True),
        (51100, True),
        (53000, True),
        (69999, True),
        (70000, False),
        (-1, False),
        (1, False),
    ],
)
def test_is_transient_code_unlisted_codes(code, transient):
    assert is_transient_code(code) is transient


def test_send_never_raises_even_for_a_token_or_url_httpx_refuses():
    """A token with a character HTTP headers cannot carry, or a malformed TIKTOK_API_URL, is a
    failed delivery (recorded, retried), never an exception after provisioning."""
    import httpx

    client = httpx.Client()
    tiktok = load_settings({}).destination("tiktok")
    for url, token in (("http://[::1/track", "token"), ("http://127.0.0.1:9/", "t\u00f6ken\u2603")):
        outcome = TikTok(replace(tiktok, api_url=url, timeout_seconds=0.5)).post(client, token, b"{}")
        assert not outcome.accepted
        assert outcome.retryable is True
