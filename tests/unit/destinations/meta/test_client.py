"""Reading the Graph API's answer (Handling Errors, https://developers.facebook.com/docs/graph-api/guides/error-handling),
and one POST against the local stand-in (devtools/meta_standin.py) on 127.0.0.1."""

import json
from dataclasses import replace

import httpx
import pytest

from checkout_conversions.destinations.base import Answer, Verdict
from checkout_conversions.destinations.meta.client import (
    PERMANENT_CODES,
    TRANSIENT_CODES,
    Meta,
    classify,
    is_transient_code,
)
from checkout_conversions.destinations.meta.payload import build_event, build_request
from checkout_conversions.destinations.meta.settings import MetaSettings
from checkout_conversions.purchase import Buyer, Content, Purchase
from checkout_conversions.settings import load_settings
from checkout_conversions.values import encode_json as encode
from devtools.meta_standin import FBTRACE_ID, MetaStandIn

pytestmark = pytest.mark.loopback  # post() and the stand-in talk over 127.0.0.1

TOKEN = "EAAstandinTokenValue123"


def meta_settings(**changes) -> MetaSettings:
    settings = load_settings({}).destination("meta")
    assert isinstance(settings, MetaSettings)
    return replace(settings, **changes)


def events_url(api_base_url: str, api_version: str, pixel_id: str) -> str:
    """The URL Meta's settings give (META_API_BASE_URL, META_API_VERSION, META_PIXEL_ID)."""
    return meta_settings(api_base_url=api_base_url, api_version=api_version, pixel_id=pixel_id).events_url


def post(
    client, api_base_url, access_token, body, timeout_seconds, api_version="v21.0", pixel_id="1234567890"
):
    """One POST by Meta's client, configured to reach `api_base_url`."""
    settings = meta_settings(
        api_base_url=api_base_url, api_version=api_version, pixel_id=pixel_id, timeout_seconds=timeout_seconds
    )
    return Meta(settings).post(client, access_token, body)


def error_body(code, message="msg", fbtrace_id="AbCdEfTrace", **extra) -> bytes:
    return json.dumps(
        {
            "error": {
                "message": message,
                "type": "OAuthException",
                "code": code,
                "fbtrace_id": fbtrace_id,
                **extra,
            }
        }
    ).encode()


def success_body(received=1, fbtrace_id="AbCdEfTrace") -> bytes:
    return json.dumps({"events_received": received, "messages": [], "fbtrace_id": fbtrace_id}).encode()


# ---------------------------------------------------------------- classify: success


def test_events_received_is_sent():
    outcome = classify(200, success_body(1, "Trace-1"))
    assert outcome == Answer(
        Verdict.ACCEPTED,
        code=None,
        message="events_received=1",
        request_id="Trace-1",
        http_status=200,
        received=1,  # a request of several that Meta took fewer of is split (outbox/batch.py)
    )
    assert outcome.accepted is True
    assert outcome.retryable is False


def test_events_received_without_fbtrace_id():
    outcome = classify(200, b'{"events_received": 3}')
    assert outcome.accepted is True
    assert outcome.request_id is None
    assert outcome.message == "events_received=3"


@pytest.mark.parametrize(
    "body",
    [
        b'{"events_received": 0, "messages": []}',
        b'{"messages": []}',
        b"{}",
        b'{"events_received": "1"}',
        b'{"events_received": true}',
        b'{"events_received": 1.0}',
    ],
    ids=repr,
)
def test_2xx_json_without_events_received_is_a_transient_failure(body):
    outcome = classify(200, body)
    assert not outcome.accepted
    assert outcome.retryable is True
    assert outcome.message == "no events received"


# ---------------------------------------------------------------- classify: Graph API errors


@pytest.mark.parametrize("code", [100, 803, 3])
def test_configuration_and_payload_errors_are_permanent(code):
    outcome = classify(400, error_body(code, "Invalid OAuth access token.", "AzTrace190"))
    assert not outcome.accepted
    assert outcome.retryable is False
    assert outcome.verdict is Verdict.REFUSED
    assert outcome.code == code
    assert outcome.request_id == "AzTrace190"
    assert outcome.message == "Invalid OAuth access token."
    assert outcome.http_status == 400


@pytest.mark.parametrize("code", [190, 102, 10, 200, 294, 299])
def test_refusals_of_the_token_are_unauthorized_not_permanent(code):
    """Issue 17 (replacing the Meta issue's rule for 190): the token is read again, and the
    destination pauses if it is refused again."""
    outcome = classify(400, error_body(code, "Invalid OAuth access token.", "AzTrace190"))
    assert not outcome.accepted
    assert outcome.retryable is False
    assert outcome.verdict is Verdict.UNAUTHORIZED and outcome.unauthorized
    assert outcome.code == code
    assert outcome.request_id == "AzTrace190"
    assert outcome.message == "Invalid OAuth access token."
    assert outcome.http_status == 400


@pytest.mark.parametrize("code", [1, 2, 4, 17, 32, 341, 368, 613, 80000, 80004, 80014])
def test_temporary_and_throttling_errors_are_transient(code):
    outcome = classify(400, error_body(code, "(#4) Application request limit reached"))
    assert not outcome.accepted
    assert outcome.retryable is True
    assert outcome.code == code
    assert outcome.request_id == "AbCdEfTrace"


@pytest.mark.parametrize("code", [5, 506, 2500, 79999, 80015, 1487390])
def test_unlisted_codes_are_permanent_on_a_4xx(code):
    assert classify(400, error_body(code)).retryable is False


@pytest.mark.parametrize("code", [100, 190, 5, 2500])
def test_is_transient_true_is_retried_whatever_the_code(code):
    outcome = classify(400, error_body(code, is_transient=True))
    assert outcome.retryable is True
    assert outcome.code == code


def test_is_transient_false_or_truthy_non_boolean_does_not_override():
    assert classify(400, error_body(4, is_transient=False)).retryable is True  # the code still says so
    assert classify(400, error_body(190, is_transient="true")).retryable is False


def test_subcode_is_kept_in_the_message():
    outcome = classify(400, error_body(100, "Invalid parameter", error_subcode=2804003))
    assert outcome.code == 100
    assert outcome.message == "subcode 2804003: Invalid parameter"


def test_subcode_zero_is_not_reported():
    assert classify(400, error_body(100, "Invalid parameter", error_subcode=0)).message == "Invalid parameter"


def test_long_message_is_truncated_to_300_characters():
    outcome = classify(400, error_body(100, "x" * 299 + "yz" + "w" * 5000))
    assert outcome.message == "x" * 299 + "y"


@pytest.mark.parametrize(
    ("error", "code", "message", "request_id"),
    [
        # Without a code the message is ours: Meta's text, which may quote values, would be logged.
        ({}, None, "Graph API error without a code", None),
        ({"code": "190", "message": None, "fbtrace_id": 12}, None, "Graph API error without a code", None),
        (
            {"code": True, "message": "rejected jane@example.com"},
            None,
            "Graph API error without a code",
            None,
        ),
    ],
)
def test_error_without_usable_fields(error, code, message, request_id):
    outcome = classify(400, json.dumps({"error": error}).encode())
    assert not outcome.accepted
    assert outcome.retryable is False
    assert (outcome.code, outcome.message, outcome.request_id) == (code, message, request_id)


# ---------------------------------------------------------------- classify: HTTP status


@pytest.mark.parametrize("http_status", [500, 502, 503, 504, 408, 425, 429])
@pytest.mark.parametrize(
    "body", [b"", b"<html>Bad Gateway</html>", b"[]", b'{"events_received": 1}'], ids=repr
)
def test_5xx_and_throttling_statuses_without_a_meta_error_are_transient(http_status, body):
    outcome = classify(http_status, body)
    assert not outcome.accepted
    assert outcome.retryable is True
    assert outcome.http_status == http_status


@pytest.mark.parametrize(
    ("code", "verdict"),
    [
        (2, Verdict.RETRY),
        (1, Verdict.RETRY),
        (5, Verdict.RETRY),
        (190, Verdict.UNAUTHORIZED),
        (100, Verdict.REFUSED),
    ],
)
def test_5xx_with_a_meta_error_is_transient_unless_the_code_is_permanent(code, verdict):
    outcome = classify(500, error_body(code, fbtrace_id="Trace500"))
    assert outcome.verdict is verdict
    assert outcome.code == code
    assert outcome.request_id == "Trace500"


@pytest.mark.parametrize("http_status", [301, 302, 400, 401, 403, 404, 405, 413])
@pytest.mark.parametrize(
    "body", [b"", b"Not Found", b"<html><body>404 Not Found</body></html>", b"[]"], ids=repr
)
def test_3xx_or_4xx_without_a_graph_answer_is_a_permanent_configuration_failure(http_status, body):
    outcome = classify(http_status, body)
    assert not outcome.accepted
    assert outcome.retryable is False
    assert outcome.http_status == http_status
    assert outcome.message == f"HTTP {http_status}, not a Graph API answer: check META_API_BASE_URL"


@pytest.mark.parametrize(
    "body", [b"<html>gateway</html>", b"", b"\xff\xfe", b"[]", b"null", b'"OK"'], ids=repr
)
def test_2xx_garbage_is_transient(body):
    outcome = classify(200, body)
    assert not outcome.accepted
    assert outcome.retryable is True
    assert "META_API_BASE_URL" not in outcome.message


def test_code_sets():
    assert TRANSIENT_CODES.isdisjoint(PERMANENT_CODES)
    assert {1, 2, 4, 17, 32, 341, 368, 613, 80004} <= TRANSIENT_CODES
    assert set(range(80000, 80015)) <= TRANSIENT_CODES
    assert {10, 100, 102, 190, 803} | set(range(200, 300)) <= PERMANENT_CODES
    assert is_transient_code(613) is True
    assert is_transient_code(190) is False


def test_events_url():
    assert events_url("https://graph.facebook.com/", "v21.0", "1234567890") == (
        "https://graph.facebook.com/v21.0/1234567890/events"
    )
    assert events_url("http://127.0.0.1:8080", "v21.0", "42") == "http://127.0.0.1:8080/v21.0/42/events"


# ---------------------------------------------------------------- post() against the stand-in


@pytest.fixture(scope="module")
def standin():
    server = MetaStandIn().start()
    yield server
    server.stop()


@pytest.fixture
def meta(standin):
    standin.behave("ok")
    yield standin
    standin.release_hung()


@pytest.fixture
def client():
    with httpx.Client() as http:
        yield http


def request_body(test_event_code: str = "TEST123") -> dict:
    buyer = Buyer(email="jane@example.com", ip="203.0.113.7", user_agent="Mozilla/5.0", fbp="fb.1.2.3")
    purchase = Purchase("cs_test_1", 1735689600, "cs_test_1", buyer, 1999, "USD", "https://shop.example.com/")
    event = build_event(purchase, "Purchase", "US", [Content("price_1", "T", 1, 1999, "USD")])
    return build_request([event], test_event_code)


def url_of(meta: MetaStandIn) -> str:
    return events_url(meta.url_base, "v21.0", "1234567890")


def test_post_sends_the_token_only_in_the_body(meta, client):
    body = request_body()
    outcome = post(client, meta.url_base, TOKEN, encode(body), 2.0)
    assert outcome.accepted is True
    assert outcome.request_id == FBTRACE_ID
    assert outcome.message == "events_received=1"
    assert meta.access_tokens() == [TOKEN]
    assert meta.paths() == ["/v21.0/1234567890/events"]
    recorded = meta.requests[0]
    assert TOKEN not in recorded.path
    assert "?" not in recorded.path
    assert all(TOKEN not in name and TOKEN not in value for name, value in recorded.headers.items())
    assert "authorization" not in recorded.headers
    assert recorded.headers["content-type"] == "application/json"


def test_post_body_is_what_build_request_gave_plus_the_token(meta, client):
    body = request_body("TEST999")
    post(client, meta.url_base, TOKEN, encode(body), 2.0)
    recorded = meta.requests[0].json()
    expected = json.loads(encode(body))
    assert recorded["data"][0] == expected["data"][0]
    assert meta.events() == expected["data"]
    assert recorded["test_event_code"] == "TEST999"
    assert recorded["data"][0]["custom_data"]["value"] == 19.99
    assert set(recorded) == {"data", "test_event_code", "access_token"}


def test_post_hang_is_a_retryable_timeout(meta, client):
    meta.behave("hang")
    outcome = post(client, meta.url_base, TOKEN, encode(request_body()), 0.2)
    assert not outcome.accepted
    assert outcome.retryable is True
    assert outcome.message == "timed out (ReadTimeout, 0.2s)"
    assert TOKEN not in outcome.message


@pytest.mark.parametrize(
    ("behaviour", "retryable", "code", "http_status"),
    [
        ("error:190", False, 190, 400),
        ("error:100", False, 100, 400),
        ("error:613", True, 613, 400),
        ("error:17", True, 17, 400),
        ("http:503", True, None, 503),
        ("http:404", False, None, 404),
        ("garbage", True, None, 200),
    ],
)
def test_post_reads_each_stand_in_answer(meta, client, behaviour, retryable, code, http_status):
    meta.behave(behaviour)
    outcome = post(client, meta.url_base, TOKEN, encode(request_body()), 2.0)
    assert not outcome.accepted
    assert (outcome.retryable, outcome.code, outcome.http_status) == (retryable, code, http_status)
    if code is not None:
        assert outcome.request_id == FBTRACE_ID


def test_stand_in_refuses_a_token_sent_anywhere_but_the_body(meta, client):
    url = url_of(meta) + f"?access_token={TOKEN}"
    response = client.post(url, content=encode(request_body()), headers={"Authorization": f"Bearer {TOKEN}"})
    outcome = classify(response.status_code, response.content)
    assert (outcome.code, outcome.retryable, outcome.http_status) == (100, False, 400)
    assert meta.access_tokens() == [None]


def test_stand_in_wrong_path_is_a_permanent_failure(meta, client):
    # A META_API_BASE_URL with a path of its own: the stand-in answers 404 for any path but its events'.
    outcome = post(client, f"{meta.url_base}/track", TOKEN, encode(request_body()), 2.0)
    assert meta.paths() == ["/track/v21.0/1234567890/events"]
    assert not outcome.accepted
    assert outcome.retryable is False
    assert outcome.http_status == 404


def test_post_never_raises_for_a_body_or_url_it_cannot_use(client):
    # Meta's URL is built from its settings: http://127.0.0.1:9/v21.0/1/events, http://[::1/v21.0/1/events
    assert post(client, "http://127.0.0.1:9", TOKEN, b"[]", 0.5, pixel_id="1") == Answer.failure(
        "request body is not a JSON object: TypeError", retryable=False
    )
    assert post(client, "http://127.0.0.1:9", TOKEN, b"not json", 0.5, pixel_id="1").retryable is False
    for base in ("http://[::1", "http://127.0.0.1:9"):
        outcome = post(client, base, TOKEN, b'{"data": []}', 0.5, pixel_id="1")
        assert not outcome.accepted
        assert outcome.retryable is True
        assert TOKEN not in outcome.message
