"""Function URL / HTTP API payload 2.0 events to raw request bytes (stripe-webhooks.md, Signature):
stripe_side/request.py, and the webhook's answer to a request that is no webhook at all."""

import base64
import json

import pytest

from checkout_conversions.stripe_side.request import (
    MAX_BODY_BYTES,
    BadHttpRequest,
    HttpRequest,
    HttpResponse,
    parse_request,
)
from checkout_conversions.webhook import handle_webhook


def http_event(method="POST", body="{}", is_base64=False, headers=None, **extra):
    event = {
        "version": "2.0",
        "rawPath": "/",
        "headers": headers if headers is not None else {"content-type": "application/json"},
        "requestContext": {"http": {"method": method, "path": "/"}},
        "body": body,
        "isBase64Encoded": is_base64,
    }
    event.update(extra)
    return event


def rejected(event, **kwargs) -> BadHttpRequest:
    with pytest.raises(BadHttpRequest) as caught:
        parse_request(event, **kwargs)
    return caught.value


def lambda_answer(event) -> dict:
    """What the webhook answers Lambda for a request parse_request refuses (before any setting,
    secret or table is read)."""
    return handle_webhook(event, dynamodb=None, remaining_seconds=lambda: 10.0).to_lambda()


def test_post_is_parsed():
    request = parse_request(http_event(body='{"id":"evt_1"}', headers={"Stripe-Signature": "t=1,v1=ab"}))
    assert request == HttpRequest(
        method="POST", headers={"stripe-signature": "t=1,v1=ab"}, body=b'{"id":"evt_1"}'
    )
    assert request.header("Stripe-Signature") == "t=1,v1=ab"
    assert request.header("STRIPE-SIGNATURE") == "t=1,v1=ab"
    assert request.header("x-missing") is None


@pytest.mark.parametrize("method", ["post", "Post"])
def test_method_case_does_not_matter(method):
    assert parse_request(http_event(method=method)).method == "POST"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "get"])
def test_other_methods_are_405_with_allow_header(method):
    bad = rejected(http_event(method=method))
    assert bad.status == 405
    assert bad.headers == {"allow": "POST"}
    answer = lambda_answer(http_event(method=method))
    assert answer["statusCode"] == 405
    assert answer["headers"]["allow"] == "POST"
    assert answer["headers"]["content-type"] == "application/json"
    assert json.loads(answer["body"]) == {"error": "method not allowed"}


@pytest.mark.parametrize(
    "event",
    [
        {"body": "{}", "headers": {}},
        {"requestContext": None, "body": "{}"},
        {"requestContext": "POST", "body": "{}"},
        {"requestContext": {}, "body": "{}"},
        {"requestContext": {"http": None}, "body": "{}"},
        {"requestContext": {"http": {}}, "body": "{}"},
        {"requestContext": {"http": {"method": None}}, "body": "{}"},
        {"requestContext": {"http": {"method": 1}}, "body": "{}"},
        # REST API v1 shape, not payload 2.0
        {"httpMethod": "POST", "requestContext": {"httpMethod": "POST"}, "body": "{}"},
    ],
    ids=repr,
)
def test_missing_request_context_is_400(event):
    assert rejected(event).status == 400


@pytest.mark.parametrize("event", [None, [], "POST", 42, b"{}", [http_event()]], ids=repr)
def test_non_dict_event_is_400(event):
    bad = rejected(event)
    assert bad.status == 400
    assert lambda_answer(event)["statusCode"] == 400


def test_headers_are_lower_cased():
    request = parse_request(
        http_event(headers={"Stripe-Signature": "sig", "Content-Type": "application/json", "X-Custom": "A"})
    )
    assert request.headers == {"stripe-signature": "sig", "content-type": "application/json", "x-custom": "A"}


@pytest.mark.parametrize("headers", [None, [], "x"], ids=repr)
def test_missing_or_odd_headers_give_no_headers(headers):
    event = http_event()
    event["headers"] = headers
    assert parse_request(event).headers == {}


def test_event_without_headers_key():
    event = http_event()
    del event["headers"]
    assert parse_request(event).headers == {}


@pytest.mark.parametrize(
    "raw",
    [b'{"id":"evt_1","type":"checkout.session.completed"}', b"\x00\xff\xfe binary", "ü €".encode()],
)
def test_base64_body_is_decoded_to_the_exact_bytes(raw):
    request = parse_request(http_event(body=base64.b64encode(raw).decode("ascii"), is_base64=True))
    assert request.body == raw


def test_plain_body_is_utf8_encoded():
    assert parse_request(http_event(body='{"name":"Zoë €"}')).body == '{"name":"Zoë €"}'.encode()


def test_body_not_flagged_base64_is_not_decoded():
    encoded = base64.b64encode(b"{}").decode()
    assert parse_request(http_event(body=encoded, is_base64=False)).body == encoded.encode()


@pytest.mark.parametrize("body", ["not base64!", "e30", "e3=0", "{}", "e30=\n", "e30=e30="], ids=repr)
def test_invalid_base64_is_400(body):
    bad = rejected(http_event(body=body, is_base64=True))
    assert bad.status == 400


@pytest.mark.parametrize("is_base64", [False, True])
def test_none_body_is_empty_bytes(is_base64):
    assert parse_request(http_event(body=None, is_base64=is_base64)).body == b""


def test_missing_body_key_is_empty_bytes():
    event = http_event()
    del event["body"]
    assert parse_request(event).body == b""


@pytest.mark.parametrize("body", [b"{}", 42, {"id": "evt"}, ["{}"], True], ids=repr)
def test_non_string_body_is_400(body):
    assert rejected(http_event(body=body)).status == 400


def test_lone_surrogate_in_body_is_400():
    assert rejected(http_event(body='{"x":"\ud800"}')).status == 400


def test_max_body_bytes_is_256_kib():
    assert MAX_BODY_BYTES == 256 * 1024


@pytest.mark.parametrize(
    ("size", "accepted"),
    [
        (MAX_BODY_BYTES - 1, True),
        (MAX_BODY_BYTES, True),
        (MAX_BODY_BYTES + 1, False),
        (4 * MAX_BODY_BYTES, False),
    ],
)
def test_plain_body_size_limit(size, accepted):
    event = http_event(body="x" * size)
    if accepted:
        assert len(parse_request(event).body) == size
    else:
        assert rejected(event).status == 413


@pytest.mark.parametrize(
    ("size", "accepted"),
    [
        (MAX_BODY_BYTES - 2, True),
        (MAX_BODY_BYTES - 1, True),
        (MAX_BODY_BYTES, True),
        (MAX_BODY_BYTES + 1, False),  # same base64 length as MAX_BODY_BYTES - 1: caught after decoding
        (MAX_BODY_BYTES + 3, False),
        (4 * MAX_BODY_BYTES, False),
    ],
)
def test_base64_body_size_limit(size, accepted):
    raw = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    event = http_event(body=base64.b64encode(raw).decode("ascii"), is_base64=True)
    if accepted:
        assert parse_request(event).body == raw
    else:
        bad = rejected(event)
        assert bad.status == 413
        assert lambda_answer(event)["statusCode"] == 413


def test_multibyte_plain_body_is_measured_in_bytes():
    # MAX_BODY_BYTES characters would pass a character count, but are more bytes than allowed.
    exactly = "é" * (MAX_BODY_BYTES // 2)
    assert len(parse_request(http_event(body=exactly)).body) == MAX_BODY_BYTES
    assert rejected(http_event(body=exactly + "x")).status == 413


def test_huge_invalid_base64_is_refused_as_too_large():
    assert rejected(http_event(body="!" * (2 * MAX_BODY_BYTES), is_base64=True)).status == 413


@pytest.mark.parametrize(
    ("body", "is_base64", "limit", "accepted"),
    [
        ("abcd", False, 4, True),
        ("abcde", False, 4, False),
        (base64.b64encode(b"abcd").decode(), True, 4, True),
        (base64.b64encode(b"abcde").decode(), True, 4, False),
        ("", False, 0, True),
    ],
)
def test_custom_limit(body, is_base64, limit, accepted):
    event = http_event(body=body, is_base64=is_base64)
    if accepted:
        parse_request(event, max_body_bytes=limit)
    else:
        assert rejected(event, max_body_bytes=limit).status == 413


def test_response_to_lambda():
    answer = HttpResponse(200, {"status": "provisioned", "session_id": "cs_test_1"}).to_lambda()
    assert answer == {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": '{"status":"provisioned","session_id":"cs_test_1"}',
    }
