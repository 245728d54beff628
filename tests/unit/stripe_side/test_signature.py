"""Verifying Stripe's signature on the raw body, and the event it carries (stripe-webhooks.md)."""

import hashlib
import hmac
import json
import time

import pytest

from checkout_conversions.stripe_side.signature import InvalidSignature, MalformedEvent, verify_event

SECRET = "whsec_test_secret_0001"
OTHER_SECRET = "whsec_test_secret_0002"
SESSION_ID = "cs_test_a1B2c3D4e5F6"
PAYLOAD = json.dumps(
    {
        "id": "evt_test_1",
        "object": "event",
        "type": "checkout.session.completed",
        "created": 1735689600,
        "data": {"object": {"id": SESSION_ID}},
    }
).encode()


def v1(payload: bytes, secret: str, timestamp: int) -> str:
    """Stripe's scheme, computed independently: HMAC-SHA256(secret, "{t}.{raw body}")."""
    message = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def header(payload: bytes = PAYLOAD, secret: str = SECRET, age: int = 0) -> str:
    timestamp = int(time.time()) - age
    return f"t={timestamp},v1={v1(payload, secret, timestamp)}"


# ---------------------------------------------------------------- verify_event


def test_independent_signature_matches_a_known_vector():
    # Guards the test helper itself: HMAC-SHA256("whsec_test", "1700000000.{}").
    expected = hmac.new(b"whsec_test", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert v1(b"{}", "whsec_test", 1700000000) == expected


def test_correctly_signed_event_is_returned_as_plain_data():
    event = verify_event(PAYLOAD, header(), [SECRET])
    assert type(event) is dict
    assert event["id"] == "evt_test_1"
    assert event["type"] == "checkout.session.completed"
    assert event["data"]["object"]["id"] == SESSION_ID


def test_signature_covers_the_raw_bytes():
    spaced = b'{"id": "evt_test_1",   "type": "checkout.session.completed"}'
    assert verify_event(spaced, header(spaced), [SECRET])["id"] == "evt_test_1"
    reserialised = json.dumps(json.loads(spaced), separators=(",", ":")).encode()
    with pytest.raises(InvalidSignature):
        verify_event(reserialised, header(spaced), [SECRET])


def test_unicode_payload():
    payload = json.dumps(
        {"id": "evt_ü", "type": "checkout.session.completed", "name": "Zoë"}, ensure_ascii=False
    ).encode("utf-8")
    assert verify_event(payload, header(payload), [SECRET])["id"] == "evt_ü"


def test_wrong_secret_is_rejected():
    with pytest.raises(InvalidSignature):
        verify_event(PAYLOAD, header(secret=OTHER_SECRET), [SECRET])


def test_tampered_payload_is_rejected():
    tampered = PAYLOAD.replace(b"evt_test_1", b"evt_test_2")
    with pytest.raises(InvalidSignature):
        verify_event(tampered, header(PAYLOAD), [SECRET])


@pytest.mark.parametrize(
    "secrets",
    [
        ["whsec_old", SECRET],
        [SECRET, "whsec_old"],
        ["whsec_a", "whsec_b", SECRET],
    ],
)
def test_any_of_several_secrets_may_match(secrets):
    assert verify_event(PAYLOAD, header(), secrets)["id"] == "evt_test_1"


def test_no_secret_matches():
    with pytest.raises(InvalidSignature):
        verify_event(PAYLOAD, header(), ["whsec_a", "whsec_b"])


def test_no_secrets_at_all_rejects():
    with pytest.raises(InvalidSignature):
        verify_event(PAYLOAD, header(), [])


@pytest.mark.parametrize("signature_header", [None, ""], ids=repr)
def test_missing_header_is_rejected(signature_header):
    with pytest.raises(InvalidSignature):
        verify_event(PAYLOAD, signature_header, [SECRET])


@pytest.mark.parametrize(
    "signature_header",
    [
        "garbage",
        "t=,v1=",
        "t=abc,v1=00",
        "v1=" + "0" * 64,  # no timestamp
        "t=1700000000",  # no signature
        "t=1700000000,v0=" + "0" * 64,  # only v0
        "t=1700000000,v2=" + "0" * 64,
        ",,,",
    ],
)
def test_garbled_header_is_rejected(signature_header):
    with pytest.raises(InvalidSignature):
        verify_event(PAYLOAD, signature_header, [SECRET])


def test_header_with_the_signature_but_without_t_is_rejected():
    timestamp = int(time.time())
    with pytest.raises(InvalidSignature):
        verify_event(PAYLOAD, f"v1={v1(PAYLOAD, SECRET, timestamp)}", [SECRET])


@pytest.mark.parametrize("age", [0, 1, 60, 299])
def test_recent_timestamp_is_accepted(age):
    assert verify_event(PAYLOAD, header(age=age), [SECRET])["id"] == "evt_test_1"


@pytest.mark.parametrize("age", [301, 600, 3600, 86400 * 3])
def test_stale_timestamp_is_rejected(age):
    with pytest.raises(InvalidSignature) as caught:
        verify_event(PAYLOAD, header(age=age), [SECRET])
    assert "old" in str(caught.value)


def test_future_timestamp_is_not_rejected():
    # stripe-webhooks.md: "Future timestamps are not rejected."
    assert verify_event(PAYLOAD, header(age=-600), [SECRET])["id"] == "evt_test_1"


def test_v0_entries_are_ignored():
    timestamp = int(time.time())
    good = v1(PAYLOAD, SECRET, timestamp)
    # A correct v0 alone does not pass...
    with pytest.raises(InvalidSignature):
        verify_event(PAYLOAD, f"t={timestamp},v0={good}", [SECRET])
    # ...and a garbage v0 next to a correct v1 does not hurt.
    event = verify_event(PAYLOAD, f"t={timestamp},v1={good},v0={'0' * 64}", [SECRET])
    assert event["id"] == "evt_test_1"


@pytest.mark.parametrize("position", [0, 1, 2])
def test_any_of_several_v1_entries_may_match(position):
    timestamp = int(time.time())
    entries = [v1(PAYLOAD, "whsec_x", timestamp), v1(PAYLOAD, "whsec_y", timestamp)]
    entries.insert(position, v1(PAYLOAD, SECRET, timestamp))
    signature_header = f"t={timestamp}," + ",".join(f"v1={e}" for e in entries)
    assert verify_event(PAYLOAD, signature_header, [SECRET])["id"] == "evt_test_1"


def test_several_v1_entries_none_matching():
    timestamp = int(time.time())
    signature_header = (
        f"t={timestamp},v1={v1(PAYLOAD, 'whsec_x', timestamp)},v1={v1(PAYLOAD, 'whsec_y', timestamp)}"
    )
    with pytest.raises(InvalidSignature):
        verify_event(PAYLOAD, signature_header, [SECRET])


def test_rotation_header_matches_either_configured_secret():
    timestamp = int(time.time())
    signature_header = (
        f"t={timestamp},v1={v1(PAYLOAD, OTHER_SECRET, timestamp)},v1={v1(PAYLOAD, 'whsec_z', timestamp)}"
    )
    assert verify_event(PAYLOAD, signature_header, [SECRET, OTHER_SECRET])["id"] == "evt_test_1"


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"{", b"", b'{"id": "evt_1", "type": "x"'],
    ids=repr,
)
def test_signed_non_json_is_malformed(payload):
    with pytest.raises(MalformedEvent):
        verify_event(payload, header(payload), [SECRET])


def test_signed_non_utf8_is_malformed():
    payload = b'{"id": "evt_\xff", "type": "checkout.session.completed"}'
    timestamp = int(time.time())
    with pytest.raises(MalformedEvent):
        verify_event(payload, f"t={timestamp},v1={v1(payload, SECRET, timestamp)}", [SECRET])


@pytest.mark.parametrize(
    "document",
    [
        [],
        [{"id": "evt_1", "type": "checkout.session.completed"}],
        "evt_1",
        42,
        None,
        {},
        {"id": "evt_1"},
        {"type": "checkout.session.completed"},
        {"id": 1, "type": "checkout.session.completed"},
        {"id": "evt_1", "type": None},
        {"id": None, "type": "checkout.session.completed"},
    ],
    ids=repr,
)
def test_signed_json_that_is_not_a_stripe_event_is_malformed(document):
    payload = json.dumps(document).encode()
    with pytest.raises(MalformedEvent):
        verify_event(payload, header(payload), [SECRET])


def test_unsigned_garbage_is_a_signature_failure_not_a_parse_error():
    with pytest.raises(InvalidSignature):
        verify_event(b"not json", header(b"something else"), [SECRET])


@pytest.mark.parametrize("secrets", [[SECRET, OTHER_SECRET], [OTHER_SECRET, SECRET]])
def test_a_stale_signature_is_reported_as_stale_whatever_the_order_of_secrets(secrets):
    with pytest.raises(InvalidSignature, match="too old"):
        verify_event(PAYLOAD, header(age=301), secrets)
