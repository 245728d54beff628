"""Fuzzing the webhook and the stream sender.

The webhook: whatever arrives, the answer is a 2xx or 4xx JSON body, never a crash; nothing
unsigned or refused is ever written, and once the Sessions stream is drained into the sender,
TikTok has received exactly the sessions the webhook answered "provisioned" with a pending
delivery, each once. The sender: whatever stream records it is invoked with, the invocation
answers (no crash), sends nothing it has not claimed, and fails only records that are pending
deliveries.

Each test runs Hypothesis inside the test function (the fixtures are set up once for all its
examples), derandomised. Note: Hypothesis also draws literal constants from the project modules
already imported (sys.modules), so the examples tried depend on which tests were collected
before; what every run must cover is pinned with @example.
"""

import base64
import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from checkout_conversions.stripe_side.request import MAX_BODY_BYTES
from devtools.function_url import LambdaContext, function_url_event, stripe_signature
from tests.factories import checkout_session, stripe_event
from tests.integration.conftest import WEBHOOK_SECRET

pytestmark = pytest.mark.slow  # property-based: hundreds of generated events per test

pytest_plugins = ("tests.integration.redrive_fixtures",)

# No shrinking: a failing example is reported as found (each bug found so far is pinned down in
# its own minimal test at the end of this file), and a failure costs seconds, not a minute.
FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=list(HealthCheck),
)
COMPLETED = "checkout.session.completed"
ASYNC_SUCCEEDED = "checkout.session.async_payment_succeeded"


def call(app, event):
    """The handler's answer, checked: 2xx or 4xx, a JSON object, no traceback. An exception here
    would be a Lambda error, which the Function URL turns into a 502."""
    result = app.lambda_handler(event, LambdaContext(10.0))
    status, text = result["statusCode"], result["body"]
    assert 200 <= status < 300 or 400 <= status < 500, (status, text[:500])
    assert "Traceback" not in text and 'File "' not in text
    assert isinstance(json.loads(text), dict)
    return status, json.loads(text)


class Provisioned:
    """What the webhook answered "provisioned" for, by session id (its TikTok state)."""

    def __init__(self):
        self.tiktok: dict[str, dict[str, Any]] = {}

    def note(self, body: dict[str, Any]) -> None:
        if body.get("status") == "provisioned":
            self.tiktok[body["session_id"]] = body["deliveries"]["tiktok"]


def assert_only_provisioned_sessions_reach_tiktok(provisioned, stream, db, tiktok_server):
    """Drain the Sessions stream into the sender: the tables hold only what the webhook said it
    provisioned, and TikTok gets one request for each of those whose delivery was pending,
    nothing for anything refused, ignored or skipped."""
    stream.drain()

    assert {item["session_id"] for item in db.markers()} == set(provisioned.tiktok)
    checkout_records = [
        item for item in db.customers() if not item["checkout_session_id"].startswith("subscription#")
    ]
    assert {item["checkout_session_id"] for item in checkout_records} == set(provisioned.tiktok)
    # A subscription record is linked only for a real subscription id of a subscription checkout.
    for item in db.customers():
        if item["checkout_session_id"].startswith("subscription#"):
            assert (
                item["checkout_session_id"].startswith("subscription#sub_")
                and item["checkout_session"] in provisioned.tiktok
            )
    pending = [session for session, state in provisioned.tiktok.items() if state == {"status": "pending"}]
    assert sorted(event["event_id"] for event in tiktok_server.events()) == sorted(pending)
    assert all(invocation.error is None for invocation in stream.invocations)
    assert all(invocation.answer == {"batchItemFailures": []} for invocation in stream.invocations)
    assert stream.given_up == []


# --- Unsigned requests -----------------------------------------------------------------------

HUGE = st.builds(
    lambda size, fill: fill * size,
    st.sampled_from([MAX_BODY_BYTES - 1, MAX_BODY_BYTES, MAX_BODY_BYTES + 1, MAX_BODY_BYTES + 4096]),
    st.sampled_from([b"a", b"{", b"\xff", b"\x00"]),
)
BODIES = st.one_of(
    st.binary(max_size=2000),
    st.text(max_size=2000).map(str.encode),
    st.just(b""),
    st.just(b"\xff\xfe{}"),
    st.builds(lambda: json.dumps(stripe_event()).encode()),  # a real paid event, badly signed
    HUGE,
)
BODY_FIELD = st.one_of(
    BODIES.map(lambda raw: base64.b64encode(raw).decode()),
    BODIES.map(lambda raw: raw.decode("utf-8", "surrogateescape")),  # invalid bytes: lone surrogates
    st.one_of(st.none(), st.integers(), st.lists(st.integers(), max_size=3), st.text(max_size=30)),
)
BASE64_FLAG = st.one_of(st.booleans(), st.sampled_from(["true", "false", 0, 1, None, "yes"]))
METHODS = st.one_of(
    st.sampled_from(["POST", "post", "Post", "GET", "PUT", "DELETE", "OPTIONS", "HEAD", ""]),
    st.text(max_size=10),
    st.none(),
    st.integers(),
)
HEX64 = st.text("0123456789abcdef", min_size=64, max_size=64)
SIGNATURE_NAMES = st.sampled_from(
    ["stripe-signature", "Stripe-Signature", "STRIPE-SIGNATURE", "stripe_signature", "x-stripe-signature"]
)
SIGNATURE_KINDS = st.sampled_from(
    ["random", "garbled", "several_v1", "wrong_secret", "stale", "other_body", "v0_only", "no_timestamp"]
)


def bad_signature(kind, body_bytes, text, stamp, hexes):
    now = int(time.time())
    right = stripe_signature(body_bytes, WEBHOOK_SECRET, now)
    if kind == "random":
        return text
    if kind == "garbled":
        return f"t={stamp}," + ",".join(f"v1={value}" for value in hexes)
    if kind == "several_v1":
        return f"t={now}," + ",".join(f"v1={value}" for value in hexes or ["0" * 64])
    if kind == "wrong_secret":
        return stripe_signature(body_bytes, "whsec_not_ours", now)
    if kind == "stale":
        return stripe_signature(body_bytes, WEBHOOK_SECRET, now - 301)
    if kind == "other_body":
        return stripe_signature(body_bytes + b" ", WEBHOOK_SECRET, now)
    if kind == "v0_only":
        return right.replace("v1=", "v0=")
    return right.split(",", 1)[1]  # v1 without t=


@st.composite
def unsigned_requests(draw):
    body_field = draw(BODY_FIELD)
    flag = draw(BASE64_FLAG)
    body_bytes = body_field.encode("utf-8", "surrogateescape") if isinstance(body_field, str) else b""
    headers = draw(st.dictionaries(st.text(max_size=20), st.text(max_size=60), max_size=4))
    if draw(st.booleans()):
        kind = draw(SIGNATURE_KINDS)
        headers[draw(SIGNATURE_NAMES)] = bad_signature(
            kind,
            body_bytes,
            draw(st.text(max_size=120)),
            draw(st.one_of(st.integers(), st.text(max_size=12))),
            draw(st.lists(HEX64, max_size=4)),
        )
    event = function_url_event(b"", {})
    event["headers"] = draw(st.one_of(st.just(headers), st.just(headers), st.none(), st.lists(st.text())))
    event["requestContext"]["http"]["method"] = draw(METHODS)
    event["isBase64Encoded"] = flag
    if draw(st.integers(0, 9)) == 0:
        del event["body"]
    else:
        event["body"] = body_field
    return event


def test_unsigned_requests_are_refused_and_change_nothing(env, app, db, stream, tiktok_server, logs):
    answers = []

    @FUZZ
    @given(unsigned_requests())
    def check(event):
        status, body = call(app, event)
        assert 400 <= status < 500
        assert "error" in body
        answers.append(status)

    check()

    assert {400, 405, 413} <= set(answers)
    assert db.sessions() == [] and db.customers() == []
    assert stream.drain() == 0 and stream.invocations == []
    assert tiktok_server.requests == []


def test_nonsense_http_events_get_a_4xx(env, app, db, stream):
    @FUZZ
    @given(
        st.one_of(
            st.none(),
            st.integers(),
            st.text(max_size=50),
            st.lists(st.integers(), max_size=3),
            st.dictionaries(st.text(max_size=15), st.recursive(st.none() | st.text(), st.lists), max_size=5),
            st.fixed_dictionaries(
                {
                    "requestContext": st.one_of(
                        st.none(), st.text(), st.fixed_dictionaries({"http": st.text()})
                    )
                }
            ),
        )
    )
    def check(event):
        status, _ = call(app, event)
        assert 400 <= status < 500

    check()
    assert db.sessions() == []
    assert stream.drain() == 0


# --- Signed, hostile JSON --------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=25,
)


def signed(stripe_payload):
    payload = stripe_payload if isinstance(stripe_payload, bytes) else json.dumps(stripe_payload).encode()
    return function_url_event(payload, {"stripe-signature": stripe_signature(payload, WEBHOOK_SECRET)})


def test_signed_json_of_any_shape_never_crashes(env, app, db, stream, tiktok_server):
    provisioned = Provisioned()

    @FUZZ
    @given(JSON)
    def check(value):
        _, body = call(app, signed(value))
        provisioned.note(body)

    check()
    assert_only_provisioned_sessions_reach_tiktok(provisioned, stream, db, tiktok_server)


def or_hostile(valid):
    return st.one_of(valid, valid, JSON)


ID_LIKE = st.one_of(st.text(max_size=40), st.integers(), st.none(), JSON)
HUGE_METADATA = st.one_of(
    st.builds(
        lambda keys, size: {f"key_{index}": "x" * size for index in range(keys)},
        st.integers(1, 400),
        st.sampled_from([1, 500, 5000]),
    ),
    st.builds(
        lambda size: {key: "é" * size for key in ("ttclid", "ttp", "client_ip", "user_agent", "page_url")},
        st.sampled_from([499, 500, 501, 20_000]),
    ),
)
SESSIONS = st.fixed_dictionaries(
    {
        "id": st.one_of(
            st.text(max_size=40).map(lambda text: f"cs_test_{text}"),
            st.text(min_size=250, max_size=260).map(lambda text: f"cs_{text}"),
            st.just("cs_"),
            ID_LIKE,
        ),
    },
    optional={
        "object": or_hostile(st.just("checkout.session")),
        "mode": or_hostile(st.sampled_from(["payment", "subscription", "setup"])),
        "payment_status": or_hostile(st.sampled_from(["paid", "no_payment_required", "unpaid"])),
        "livemode": JSON,
        "amount_total": st.one_of(
            st.integers(),
            st.integers(min_value=10**12, max_value=10**40),
            st.integers(max_value=-1),
            st.floats(),
            st.text(max_size=12),
            JSON,
        ),
        "currency": or_hostile(
            st.sampled_from(["usd", "jpy", "kwd", "isk", "xyz", "", "USD", "us", "dollars", "€€€", "usd "])
        ),
        "customer": st.one_of(ID_LIKE, st.fixed_dictionaries({"id": ID_LIKE})),
        "customer_email": ID_LIKE,
        "customer_details": or_hostile(
            st.fixed_dictionaries(
                {},
                optional={
                    "email": ID_LIKE,
                    "name": st.one_of(ID_LIKE, st.text(min_size=1000, max_size=1100)),
                    "phone": ID_LIKE,
                },
            )
        ),
        "client_reference_id": ID_LIKE,
        "subscription": st.one_of(ID_LIKE, st.fixed_dictionaries({"id": ID_LIKE})),
        "metadata": st.one_of(
            JSON,
            st.dictionaries(st.text(max_size=20), st.one_of(st.text(), JSON), max_size=30),
            HUGE_METADATA,
        ),
    },
)
DATA = st.one_of(
    st.fixed_dictionaries({"object": SESSIONS}),
    st.fixed_dictionaries({"object": SESSIONS}),
    st.fixed_dictionaries({"object": SESSIONS}),
    st.just({}),
    JSON,
)
EVENTS = st.builds(
    lambda event, missing: {key: value for key, value in event.items() if key not in missing},
    st.fixed_dictionaries(
        {
            "id": st.one_of(st.text(max_size=30).map(lambda text: f"evt_{text}"), ID_LIKE),
            "type": or_hostile(
                st.sampled_from([COMPLETED, ASYNC_SUCCEEDED, "checkout.session.async_payment_failed"])
            ),
            # Bounded to DynamoDB's 38 digits: larger ones are test_created_beyond_dynamodb_precision.
            "created": or_hostile(st.integers(min_value=-(10**30), max_value=10**30)),
            "data": DATA,
        },
        optional={"livemode": JSON, "object": JSON},
    ),
    st.one_of(
        st.just(()), st.just(()), st.sets(st.sampled_from(["id", "type", "created", "data"]), max_size=2)
    ),
)


def test_signed_hostile_checkout_events_never_crash(env, app, db, stream, tiktok_server):
    seen = []
    provisioned = Provisioned()

    @FUZZ
    @given(EVENTS)
    @example(event=stripe_event())
    @example(event=stripe_event(ASYNC_SUCCEEDED, checkout_session(amount_total="1999", currency=7)))
    def check(event):
        status, body = call(app, signed(event))
        seen.append(body.get("status", status))
        provisioned.note(body)

    check()
    assert "provisioned" in seen, "some hostile sessions are still valid enough to provision"
    assert_only_provisioned_sessions_reach_tiktok(provisioned, stream, db, tiktok_server)


def test_signed_valid_sessions_with_hostile_fields_never_crash(env, app, db, stream, tiktok_server):
    """Closer to a real event: a well-formed event whose session has one or more hostile fields."""
    provisioned = Provisioned()

    @FUZZ
    @given(SESSIONS.filter(lambda session: isinstance(session.get("id"), str)), st.booleans())
    @example(overrides={"id": "cs_test_fuzz_example", "metadata": {"ttclid": "x" * 100_000}}, completed=True)
    def check(overrides, completed):
        session = {**checkout_session(), **overrides}
        event = stripe_event(COMPLETED if completed else ASYNC_SUCCEEDED, session)
        _, body = call(app, signed(event))
        provisioned.note(body)

    check()
    assert db.customers(), "some sessions provisioned"
    assert_only_provisioned_sessions_reach_tiktok(provisioned, stream, db, tiktok_server)


# --- What the fuzzing found, pinned down -----------------------------------------------------


def test_created_beyond_dynamodb_precision_is_refused_not_a_crash(env, app, db, stream, tiktok_server):
    """A signed event whose `created` has more than 38 digits: DynamoDB cannot store it as a number.

    Expected: a 4xx answer (or any non-5xx answer), nothing provisioned.
    """
    event = stripe_event(created=10**38)

    status, _ = call(app, signed(event))

    assert status == 400
    assert db.customers() == []
    assert stream.drain() == 0 and tiktok_server.requests == []


@pytest.mark.parametrize("payment_status", [[], ["paid"], {"status": "paid"}])
def test_payment_status_of_the_wrong_type_is_refused_not_a_crash(env, app, db, stream, payment_status):
    """A signed checkout.session.completed whose payment_status is a list or an object:
    `payment_status not in PROVISIONING_PAYMENT_STATUSES` (a frozenset) raises TypeError
    (unhashable type). Expected: a 4xx or an 'ignored' 200, nothing provisioned."""
    event = stripe_event(session=checkout_session(payment_status=payment_status))

    status, _ = call(app, signed(event))

    assert status < 500
    assert db.customers() == []
    assert stream.drain() == 0


def test_signed_deeply_nested_json_is_refused_not_a_crash(env, app, db):
    """A signed body of 50,000 nested arrays (100 KB, under the size limit): json.loads raises
    RecursionError, which is not a ValueError. Expected: 400 'body is not JSON'."""
    payload = b"[" * 50_000 + b"]" * 50_000

    status, _ = call(app, signed(payload))

    assert status == 400
    assert db.sessions() == []


def test_lone_surrogate_in_a_signed_event_is_refused_not_a_500(env, app, db, stream, tiktok_server):
    """JSON may escape a lone UTF-16 surrogate ("\\ud800"); json.loads turns it into a str that
    cannot be encoded as UTF-8. DynamoDB refuses such a string (moto cancels the transaction with
    UnicodeEncodeError), so the webhook answers 500 on every retry, for days.
    Expected: a 4xx (the event is malformed), nothing provisioned, nothing sent."""
    event = stripe_event(session=checkout_session(id="cs_test_\ud800"))
    payload = json.dumps(event).encode()  # ASCII: the surrogate is written as the escape \ud800

    status, _ = call(app, signed(payload))

    assert status < 500
    assert db.customers() == []
    assert stream.drain() == 0 and tiktok_server.requests == []


# --- The stream sender, invoked with arbitrary stream records --------------------------------

SENDER_FUZZ = settings(FUZZ, max_examples=100)
STREAM_ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/fuzz-SessionsTable/stream/2026-01-01T00:00:00.000"
NUMBERS = st.integers(min_value=-(10**30), max_value=10**30).map(str)
# Well-formed DynamoDB attribute values of every type, as a stream record carries them.
DYNAMODB_VALUES = st.recursive(
    st.one_of(
        st.text(max_size=20).map(lambda text: {"S": text}),
        NUMBERS.map(lambda number: {"N": number}),
        st.binary(max_size=8).map(lambda raw: {"B": base64.b64encode(raw).decode()}),
        st.booleans().map(lambda flag: {"BOOL": flag}),
        st.just({"NULL": True}),
        st.lists(st.text(max_size=5), min_size=1, max_size=3).map(lambda texts: {"SS": texts}),
        st.lists(NUMBERS, min_size=1, max_size=3).map(lambda values: {"NS": values}),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(lambda items: {"L": items}),
        st.dictionaries(st.text(max_size=8), children, max_size=3).map(lambda fields: {"M": fields}),
    ),
    max_leaves=6,
)
ATTRIBUTES = st.dictionaries(st.text(max_size=12), DYNAMODB_VALUES, max_size=3)
STATUSES = st.one_of(
    st.just("pending"),
    st.sampled_from(["sent", "failed", "skipped", "expired", "PENDING", "pending ", ""]),
    st.text(max_size=10),
)
STATUS_VALUES = st.one_of(STATUSES.map(lambda text: {"S": text}), DYNAMODB_VALUES)
STORED_EVENT = {"S": json.dumps({"event": "CompletePayment", "event_id": "cs_test_forged"})}
STORED_PURCHASE = {
    "S": json.dumps(
        {"event_id": "cs_test_forged", "event_time": 1735689600, "order_id": "cs_test_forged", "buyer": {}}
    )
}


@st.composite
def stream_records(draw, session_ids):
    """A stream record of any shape Lambda could hand over: any event name DynamoDB writes (or
    none), keys or not, a new image with any attributes of any type, session ids that exist,
    do not, or cannot be (empty, longer than a key may be, not a string), any delivery status."""
    image = draw(ATTRIBUTES)
    # Half of them shaped like a new pending delivery (the filter lets only those through), the
    # other half anything at all.
    pending = draw(st.booleans())
    if pending:
        image.update(session_id={"S": draw(session_ids)}, delivery_status={"S": "pending"})
        # Its destination: TikTok's or Meta's, none (recorded before there were two), or junk.
        destination = draw(st.sampled_from(["tiktok", "meta", None, "google", ""]))
        if destination is not None:
            image["destination"] = draw(st.sampled_from([{"S": destination}, {"N": "1"}]))
    else:
        if draw(st.integers(0, 3)):
            image["session_id"] = draw(st.one_of(session_ids.map(lambda text: {"S": text}), DYNAMODB_VALUES))
        if draw(st.integers(0, 3)):
            image["delivery_status"] = draw(STATUS_VALUES)
    # What the item stores to send (the purchase; `tiktok_event` on items stored before it): a
    # record's image is never what the sender sends, the item it claims is.
    if draw(st.booleans()):
        image["purchase"] = draw(st.one_of(st.just(STORED_PURCHASE), DYNAMODB_VALUES))
    if draw(st.booleans()):
        image["tiktok_event"] = draw(st.one_of(st.just(STORED_EVENT), DYNAMODB_VALUES))
    stream_record: dict[str, Any] = {
        "StreamViewType": draw(st.sampled_from(["NEW_IMAGE", "KEYS_ONLY", "NEW_AND_OLD_IMAGES"]))
    }
    if pending or draw(st.integers(0, 3)):
        stream_record["NewImage"] = image
    if draw(st.booleans()):
        stream_record["Keys"] = {"session_id": image.get("session_id") or {"S": draw(session_ids)}}
    if draw(st.booleans()):
        stream_record["OldImage"] = draw(ATTRIBUTES)
    if draw(st.booleans()):
        stream_record["ApproximateCreationDateTime"] = draw(st.integers(0, 2**40))
        stream_record["SizeBytes"] = draw(st.integers(0, 400_000))
    record = {
        "eventID": draw(st.text(max_size=32)),
        "eventName": "INSERT" if pending else draw(st.sampled_from(["INSERT", "MODIFY", "REMOVE", None])),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": stream_record,
        "eventSourceARN": STREAM_ARN,
    }
    if record["eventName"] is None:
        del record["eventName"]
    for key in draw(st.sets(st.sampled_from(["eventID", "awsRegion", "eventSourceARN"]))):
        del record[key]
    return record


def is_pending_delivery(record):
    """What the sender may work on, and so may fail: an INSERT whose new image says pending and
    names the session by a string."""
    image = record["dynamodb"].get("NewImage") or {}
    session_id = image.get("session_id")
    return (
        record.get("eventName") == "INSERT"
        and image.get("delivery_status") == {"S": "pending"}
        and isinstance(session_id, dict)
        and isinstance(session_id.get("S"), str)
    )


def with_sequence_numbers(records):
    for index, record in enumerate(records):
        record["dynamodb"]["SequenceNumber"] = f"{4_000_000_000_000_000_000 + index}"
    return records


def invoke_sender(sender_app, records):
    return sender_app.lambda_handler({"Records": records}, LambdaContext(60.0, "DeliverySenderFunction"))


def test_the_sender_survives_any_stream_records_and_sends_nothing_unclaimed(
    env, checkout, sender_app, db, tiktok_server
):
    # Given: one session provisioned and already sent (a forged or replayed record may name it)
    sent = checkout_session()
    assert checkout(stripe_event(session=sent)).status == 200
    assert len(tiktok_server.requests) == 1
    before = db.sessions()
    assert [item.get("delivery_status") for item in before if "destination" in item] == ["sent"]
    tiktok_server.behave("ok")  # forget that request
    session_ids = st.one_of(
        st.just(f"{sent['id']}#tiktok"),
        st.just(f"{sent['id']}#meta"),
        st.text(max_size=40).map(lambda text: f"cs_test_{text}#tiktok"),
        st.sampled_from(["", "cs_" + "x" * 3000]),
    )
    pending_seen = []

    @SENDER_FUZZ
    @given(st.lists(stream_records(session_ids), min_size=1, max_size=4).map(with_sequence_numbers))
    def check(records):
        # When: Lambda invokes the sender with these records
        answer = invoke_sender(sender_app, records)

        # Then: an answer, never a crash; only pending deliveries may be reported failed ...
        assert set(answer) == {"batchItemFailures"}
        failed = {failure["itemIdentifier"] for failure in answer["batchItemFailures"]}
        pending = {record["dynamodb"]["SequenceNumber"] for record in records if is_pending_delivery(record)}
        assert failed <= pending, (failed, records)
        pending_seen.extend(pending)
        # ... and nothing is sent: no record names a delivery that can be claimed
        assert tiktok_server.requests == []

    check()

    assert len(pending_seen) >= 20, "the sender tried to claim pending deliveries"
    assert db.sessions() == before  # nothing claimed, recorded or created
    assert tiktok_server.requests == []


# --- Records DynamoDB Streams never writes (left out of the fuzz above): each is not a pending
# delivery, so it is ignored, neither reported failed (Lambda would retry it, then hand it to the
# failure queue) nor failing the whole invocation.


def sent_image(**extra):
    return {"session_id": {"S": "cs_test_malformed"}, "delivery_status": {"S": "sent"}, **extra}


@pytest.mark.parametrize(
    "stream_record",
    [
        pytest.param(
            {"eventName": "UPSERT", "dynamodb": {"NewImage": sent_image()}},
            id="unknown-event-name",
        ),
        pytest.param(
            {"eventName": "INSERT", "dynamodb": {"NewImage": sent_image(note={"Q": "?"})}},
            id="unknown-attribute-type",
        ),
        pytest.param(
            {"eventName": "INSERT", "dynamodb": {"NewImage": sent_image(amount={"N": "twelve"})}},
            id="number-that-is-not-one",
        ),
        pytest.param(
            {"eventName": "INSERT", "dynamodb": {"NewImage": ["session_id", "cs_test_malformed"]}},
            id="image-not-an-object",
        ),
        pytest.param(
            {"eventName": "INSERT", "dynamodb": ["not", "an", "object"]},
            id="stream-record-not-an-object",
        ),
        pytest.param(
            {"eventName": "MODIFY", "dynamodb": {"NewImage": sent_image(note={"Q": "?"})}},
            id="not-an-insert-is-never-parsed",
        ),
    ],
)
def test_a_malformed_stream_record_that_is_not_a_pending_delivery_is_ignored(
    env, sender_app, tiktok_server, stream_record
):
    record = {"eventID": "1", "eventVersion": "1.1", "eventSource": "aws:dynamodb", **stream_record}
    if isinstance(record["dynamodb"], dict):
        record["dynamodb"]["SequenceNumber"] = "4000000000000000001"

    answer = invoke_sender(sender_app, [record])

    assert answer == {"batchItemFailures": []}
    assert tiktok_server.requests == []
