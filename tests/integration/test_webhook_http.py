"""HTTP in, signature, configuration: bad input gets a clear answer and changes nothing."""

import base64
import json
import time

from devtools.function_url import function_url_event, signed_webhook_event, stripe_signature
from tests.factories import stripe_event
from tests.integration.conftest import WEBHOOK_SECRET

pytest_plugins = ("tests.integration.redrive_fixtures",)


def assert_nothing_written(db, stream, tiktok_server):
    """No item, and nothing for the sender: the stream, drained, hands it nothing to send."""
    assert db.sessions() == []
    assert db.customers() == []
    stream.drain()
    assert stream.invocations == []
    assert tiktok_server.requests == []


def rejections(logs, message):
    return [line for line in logs() if line.get("message") == message]


def test_non_post_gets_405_with_allow_header(env, invoke, db, stream, tiktok_server, logs, emf):
    event = signed_webhook_event(stripe_event(), WEBHOOK_SECRET)
    event["requestContext"]["http"]["method"] = "GET"

    answer = invoke(event)

    assert answer.status == 405
    assert answer.headers["allow"] == "POST"
    assert_nothing_written(db, stream, tiktok_server)
    [line] = rejections(logs, "Rejected a request")
    assert (line["level"], line["status"], line["reason"]) == ("WARNING", 405, "method not allowed")
    assert emf.total("RejectedRequests") == 1 and emf.total("SignatureFailures") == 0


def test_body_over_the_limit_gets_413(env, invoke, db, stream, tiktok_server, logs, emf):
    huge = stripe_event()
    huge["data"]["object"]["metadata"]["padding"] = "x" * 300_000

    assert invoke(signed_webhook_event(huge, WEBHOOK_SECRET)).status == 413
    assert invoke(signed_webhook_event(huge, WEBHOOK_SECRET, base64_body=True)).status == 413
    assert_nothing_written(db, stream, tiktok_server)
    # A flood of oversized bodies is visible, and never mistaken for a wrong signing secret.
    assert [line["status"] for line in rejections(logs, "Rejected a request")] == [413, 413]
    assert emf.total("RejectedRequests") == 2 and emf.total("SignatureFailures") == 0


def test_base64_body_is_verified_on_the_decoded_bytes(env, deliver, db):
    answer = deliver(stripe_event(), base64_body=True)

    assert answer.status == 200
    assert answer.body["status"] == "provisioned"
    assert len(db.customers()) == 1


def test_invalid_base64_gets_400(env, invoke, db, stream, tiktok_server):
    event = function_url_event(b"{}", {"stripe-signature": "t=1,v1=00"})
    event["body"], event["isBase64Encoded"] = "not*base64!", True

    assert invoke(event).status == 400
    assert_nothing_written(db, stream, tiktok_server)


def test_header_names_are_case_insensitive(env, invoke, db):
    payload = json.dumps(stripe_event()).encode()
    event = function_url_event(payload, {"Stripe-Signature": stripe_signature(payload, WEBHOOK_SECRET)})
    event["headers"] = {"Stripe-Signature": event["headers"]["stripe-signature"]}

    assert invoke(event).status == 200
    assert len(db.customers()) == 1


def test_missing_signature_gets_400_and_changes_nothing(env, invoke, db, stream, tiktok_server):
    event = function_url_event(json.dumps(stripe_event()).encode(), {"content-type": "application/json"})

    answer = invoke(event)

    assert answer.status == 400
    assert "Stripe-Signature" in answer.body["error"]
    assert_nothing_written(db, stream, tiktok_server)


def test_wrong_secret_gets_400_and_changes_nothing(env, deliver, db, stream, tiktok_server):
    answer = deliver(stripe_event(), secret="whsec_someone_else")

    assert answer.status == 400
    assert answer.body == {"error": "signature does not match"}
    assert_nothing_written(db, stream, tiktok_server)


def test_signature_older_than_300_seconds_gets_400(env, deliver, db, stream, tiktok_server):
    answer = deliver(stripe_event(), timestamp=int(time.time()) - 301)

    assert answer.status == 400
    assert answer.body == {"error": "signature timestamp too old"}
    assert_nothing_written(db, stream, tiktok_server)


def test_tampered_body_gets_400(env, invoke, db, stream, tiktok_server):
    event = signed_webhook_event(stripe_event(), WEBHOOK_SECRET)
    event["body"] = event["body"].replace('"amount_total": 1999', '"amount_total": 1')

    assert invoke(event).status == 400
    assert_nothing_written(db, stream, tiktok_server)


def test_signed_body_that_is_not_json_gets_400(env, deliver, db, stream, tiktok_server, logs, emf):
    answer = deliver(b"this is not json")

    assert answer.status == 400
    assert answer.body == {"error": "body is not JSON"}
    assert_nothing_written(db, stream, tiktok_server)
    [line] = rejections(logs, "Signed event is malformed")
    assert line["reason"] == "body is not JSON"
    assert emf.total("RejectedRequests") == 1


def test_signed_non_utf8_body_gets_400(env, invoke, db, stream, tiktok_server):
    payload = b"\xff\xfe{}"
    event = function_url_event(payload, {"stripe-signature": stripe_signature(payload, WEBHOOK_SECRET)})

    assert invoke(event).status == 400
    assert_nothing_written(db, stream, tiktok_server)


def test_any_of_several_secrets_is_accepted_during_rotation(env, deliver, monkeypatch, db):
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", f"whsec_old_secret_0001, {WEBHOOK_SECRET}")

    assert deliver(stripe_event(), secret="whsec_old_secret_0001").status == 200
    assert deliver(stripe_event(), secret=WEBHOOK_SECRET).status == 200
    assert deliver(stripe_event(), secret="whsec_retired").status == 400
    assert len(db.customers()) == 2
    assert len(db.markers()) == 2


def test_header_with_one_v1_per_active_secret_is_accepted(env, invoke, db):
    payload = json.dumps(stripe_event()).encode()
    ours = stripe_signature(payload, WEBHOOK_SECRET)
    theirs = stripe_signature(payload, "whsec_next_secret")
    timestamp, our_v1 = ours.split(",")
    header = f"{timestamp},{theirs.split(',')[1]},{our_v1},v0=deadbeef"

    assert invoke(function_url_event(payload, {"stripe-signature": header})).status == 200
    assert len(db.customers()) == 1


def test_missing_webhook_secret_is_a_500_never_an_accepted_event(
    env, deliver, monkeypatch, db, stream, tiktok_server, logs
):
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET")

    answer = deliver(stripe_event())

    assert answer.status == 500
    assert_nothing_written(db, stream, tiktok_server)
    assert any(
        line.get("level") == "ERROR" and "STRIPE_WEBHOOK_SECRET" in line.get("problem", "") for line in logs()
    )


def test_event_that_is_not_http_gets_400(env, invoke, db, stream, tiktok_server):
    assert invoke({"type": "checkout.session.completed"}).status == 400
    assert_nothing_written(db, stream, tiktok_server)


def test_body_is_decoded_exactly_as_sent(env, invoke, db):
    """Verification runs on the raw bytes: whitespace and key order that JSON re-serialising would
    change still verify."""
    payload = json.dumps(stripe_event(), indent=4, sort_keys=True).encode() + b"\n\n"
    event = function_url_event(payload, {"stripe-signature": stripe_signature(payload, WEBHOOK_SECRET)})
    event["body"] = base64.b64encode(payload).decode()
    event["isBase64Encoded"] = True

    assert invoke(event).status == 200
