"""Match quality, what was bought, and the buyer's consent (issue 9), end to end through the outbox:
the webhook stores the platform-neutral purchase, the Sessions stream hands it to the sender,
which reads the session's line items from Stripe's API (a stand-in on loopback, with Stripe's
shapes) and sends TikTok's event; the redrive finishes what the sender could not.

Covers `properties.contents` (ids, names, quantities, unit prices with Stripe's exponents, the
configurable content id, pagination), Stripe's API down (retried later by the redrive) or
refusing (sent without contents, said once), currencies TikTok does not take, ad consent and
limited data use, the match keys recorded and counted, a delivery stored before the purchase was
(sent as it was built), and that the stored purchase goes once sent and never reaches a log.
"""

import copy
import hashlib
import json
import time

import pytest

from checkout_conversions.outbox import sending as outbox_sending
from devtools.stripe_standin import line_item
from tests.factories import checkout_session, stripe_event
from tests.integration.conftest import PIXEL_ID, STRIPE_API_KEY, TIKTOK_TOKEN, WEBHOOK_SECRET

pytest_plugins = ("tests.integration.redrive_fixtures",)

PENDING = {"status": "pending"}
NOTHING_TO_RETRY = {"batchItemFailures": []}
DAY = 86400
SENDER = "DeliverySenderFunction"
# Each phase of a Stripe request is bounded by STRIPE_API_TIMEOUT_SECONDS (1 s here, the fixture's),
# without retries, and a whole read within 5 of them: a hanging Stripe holds the sender seconds.
STRIPE_HANG_BOUND_SECONDS = 6.0


def sha256(normalised: str) -> str:
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def only_event(tiktok_server):
    [request] = tiktok_server.requests
    [event] = request.json()["data"]
    return event


def line_items_requests(stripe_api, session_id):
    return [request for request in stripe_api.requests if request["path"] == line_items_path(session_id)]


def line_items_path(session_id):
    return f"/v1/checkout/sessions/{session_id}/line_items"


def expanded(request):
    return [
        value for key, values in request["query"].items() if key.startswith("expand[") for value in values
    ]


def assert_batch_succeeded(stream):
    assert stream.invocations, "the stream invoked the sender"
    assert [invocation.error for invocation in stream.invocations] == [None] * len(stream.invocations)
    assert [invocation.answer for invocation in stream.invocations] == [NOTHING_TO_RETRY] * len(
        stream.invocations
    )
    assert stream.given_up == []


def refusal_warnings(logs):
    return [
        line
        for line in logs()
        if line.get("message", "").startswith("Stripe's API refused to list line items")
    ]


# ---------------------------------------------------------------------- contents


def test_contents_list_every_line_item_with_its_price_id_name_quantity_and_unit_price(
    env, stripe_api, deliver, stream, tiktok_server, db
):
    session = checkout_session(amount_total=2 * 1999 + 1250, amount_subtotal=2 * 1999 + 1250)
    stripe_api.set_line_items(
        session["id"],
        [
            line_item("price_tee_black_m", "prod_tee", "Black T-shirt, M", quantity=2, unit_amount=1999),
            line_item("price_mug", "prod_mug", "Mug", quantity=1, unit_amount=1250),
        ],
    )

    answer = deliver(stripe_event(session=session))

    # The webhook answers without reading Stripe's API: the line items are the sender's business.
    assert answer.status == 200 and answer.body["deliveries"]["tiktok"] == PENDING
    assert stripe_api.requests == []

    stream.drain()

    assert_batch_succeeded(stream)
    properties = only_event(tiktok_server)["properties"]
    assert properties["contents"] == [
        {
            "content_id": "price_tee_black_m",
            "content_type": "product",
            "content_name": "Black T-shirt, M",
            "quantity": 2,
            "price": 19.99,  # per unit, not the line's 39.98
        },
        {
            "content_id": "price_mug",
            "content_type": "product",
            "content_name": "Mug",
            "quantity": 1,
            "price": 12.5,
        },
    ]
    assert properties["content_type"] == "product"
    assert properties["num_items"] == 3  # the quantities, not the lines
    assert (properties["value"], properties["currency"]) == (52.48, "USD")  # the session's total
    # Stripe was asked once, as its API wants it: the restricted key as a Bearer token, 100 a page,
    # each price's product expanded (for its name, id and metadata).
    [request] = stripe_api.requests
    assert request["path"] == line_items_path(session["id"])
    assert request["headers"]["authorization"] == f"Bearer {STRIPE_API_KEY}"
    assert request["query"]["limit"] == ["100"]
    assert expanded(request) == ["data.price.product"]
    assert "starting_after" not in request["query"]
    assert db.delivery(session["id"])["delivery_status"] == "sent"


@pytest.mark.parametrize(
    ("currency", "unit_amount", "price", "value"),
    [
        ("jpy", 1500, 1500, 3000),  # zero-decimal: 1500 yen is 1500, not 15.00
        ("kwd", 12345, 12.345, 24.69),  # three decimals
    ],
)
def test_unit_prices_use_stripe_currency_exponents(
    env, stripe_api, checkout, tiktok_server, currency, unit_amount, price, value
):
    session = checkout_session(
        currency=currency, amount_total=2 * unit_amount, amount_subtotal=2 * unit_amount
    )
    stripe_api.set_line_items(
        session["id"], [line_item("price_1", "prod_1", "Gift box", 2, unit_amount, currency=currency)]
    )

    checkout(stripe_event(session=session))

    properties = only_event(tiktok_server)["properties"]
    [content] = properties["contents"]
    assert content["price"] == price
    assert type(content["price"]) is type(price)  # 1500, not 1500.0
    assert properties["value"] == value and properties["currency"] == currency.upper()


@pytest.mark.parametrize(
    ("source", "content_ids"),
    [
        ("product", ["prod_tee", "prod_mug"]),
        # the merchant's catalogue id from the product's metadata; a product without it: the price id
        ("metadata:sku", ["SKU-TEE-001", "price_mug"]),
    ],
)
def test_content_id_is_the_configured_catalogue_id(
    env, stripe_api, checkout, tiktok_server, monkeypatch, source, content_ids
):
    monkeypatch.setenv("CONTENT_ID_SOURCE", source)
    session = checkout_session()
    stripe_api.set_line_items(
        session["id"],
        [
            line_item("price_tee", "prod_tee", "T-shirt", metadata={"sku": "SKU-TEE-001", "colour": "black"}),
            line_item("price_mug", "prod_mug", "Mug", metadata={"colour": "white"}),
        ],
    )

    checkout(stripe_event(session=session))

    contents = only_event(tiktok_server)["properties"]["contents"]
    assert [content["content_id"] for content in contents] == content_ids
    assert [content["content_name"] for content in contents] == ["T-shirt", "Mug"]


def test_a_session_of_230_line_items_is_read_in_three_pages(env, stripe_api, checkout, tiktok_server):
    session = checkout_session()
    items = [
        line_item(
            f"price_{index:03d}",
            f"prod_{index:03d}",
            f"Item {index}",
            quantity=1 + index % 3,
            unit_amount=100,
        )
        for index in range(230)
    ]
    stripe_api.set_line_items(session["id"], items)

    checkout(stripe_event(session=session))

    properties = only_event(tiktok_server)["properties"]
    assert [content["content_id"] for content in properties["contents"]] == [
        f"price_{i:03d}" for i in range(230)
    ]
    assert properties["num_items"] == sum(1 + index % 3 for index in range(230))
    # Stripe's pagination: 100, 100, 30, each page after the last item of the one before.
    pages = line_items_requests(stripe_api, session["id"])
    assert len(pages) == 3
    assert [page["query"].get("starting_after") for page in pages] == [
        None,
        [items[99]["id"]],
        [items[199]["id"]],
    ]
    assert all(
        page["query"]["limit"] == ["100"] and expanded(page) == ["data.price.product"] for page in pages
    )


# ---------------------------------------------------------------------- Stripe's API failing


@pytest.mark.parametrize("behaviour", ["http:500", "hang"])
def test_stripe_api_unavailable_fails_the_delivery_for_the_redrive_which_sends_it_with_contents(
    env, stripe_api, deliver, stream, tiktok_server, db, redrive, behaviour
):
    stripe_api.behave(behaviour)
    session = checkout_session()
    stripe_api.set_line_items(session["id"], [line_item("price_tee", "prod_tee", "T-shirt", 2, 1999)])

    answer = deliver(stripe_event(session=session))
    started = time.monotonic()
    stream.drain()
    drain_seconds = time.monotonic() - started
    stripe_api.release_hung()

    # The webhook answered before anything was sent: Stripe's API never changes its answer.
    assert answer.status == 200
    assert answer.body == {
        "status": "provisioned",
        "session_id": session["id"],
        "duplicate": False,
        "deliveries": {"tiktok": PENDING},
    }
    # Nothing goes to TikTok without the contents: the delivery fails, to be retried later.
    assert tiktok_server.requests == []
    assert drain_seconds < STRIPE_HANG_BOUND_SECONDS
    assert len(line_items_requests(stripe_api, session["id"])) == 1  # no retry: the redrive retries
    assert_batch_succeeded(stream)  # the item's business, not Lambda's
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "failed"
    assert record["delivery_retryable"] is True
    assert record["delivery_message"].startswith("Stripe API unavailable")
    assert record["delivery_attempts"] == 1
    assert record["redrive_queue"] == "tiktok"
    assert record["next_attempt_at"] > time.time() + 30  # REDRIVE_BACKOFF_BASE_SECONDS, 60 by default
    assert "purchase" in record and "claim_token" not in record

    # Stripe is back: the redrive, once the backoff has passed, sends it once, with its contents.
    stripe_api.behave("ok")
    assert redrive(at=record["next_attempt_at"] - 1) == {}
    assert redrive(at=record["next_attempt_at"] + 1) == {"sent": 1}

    event = only_event(tiktok_server)
    assert event["event_id"] == session["id"]
    assert event["properties"]["contents"] == [
        {
            "content_id": "price_tee",
            "content_type": "product",
            "content_name": "T-shirt",
            "quantity": 2,
            "price": 19.99,
        }
    ]
    assert event["properties"]["num_items"] == 2
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "sent" and record["delivery_attempts"] == 2
    assert "purchase" not in record
    assert redrive(at=time.time() + DAY) == {}
    assert len(tiktok_server.requests) == 1


def test_a_long_stripe_outage_never_costs_the_conversion_it_goes_without_contents(
    env, stripe_api, deliver, stream, tiktok_server, db, redrive, emf
):
    """The contents are an enrichment: after CONTENTS_ATTEMPTS attempts the purchase is reported
    without them, rather than expire unreported at the maximum age."""
    stripe_api.behave("http:503")
    session = checkout_session()
    stripe_api.set_line_items(session["id"], [line_item("price_tee", "prod_tee", "T-shirt")])
    deliver(stripe_event(session=session))
    stream.drain()

    for attempt in range(1, outbox_sending.CONTENTS_ATTEMPTS):
        record = db.delivery(session["id"])
        assert record["delivery_attempts"] == attempt and record["delivery_status"] == "failed"
        assert tiktok_server.requests == []
        last = attempt + 1 == outbox_sending.CONTENTS_ATTEMPTS
        assert redrive(at=record["next_attempt_at"] + 1) == {"sent" if last else "failed_retryable": 1}

    event = only_event(tiktok_server)
    assert "contents" not in event["properties"] and event["properties"]["value"] == 19.99
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "sent"
    assert record["delivery_attempts"] == outbox_sending.CONTENTS_ATTEMPTS
    emf.flush()  # the redrive ran outside a Lambda handler: publish what it counted
    assert emf.total("StripeLineItemsUnavailable") == outbox_sending.CONTENTS_ATTEMPTS
    assert emf.total("StripeLineItemsGivenUp") == 1


@pytest.mark.parametrize("status", [401, 403])
def test_stripe_api_refusing_sends_without_contents_counts_it_and_says_so_once(
    env, stripe_api, checkout, tiktok_server, db, emf, logs, monkeypatch, status
):
    monkeypatch.setattr(outbox_sending, "_refusal_reported", False)  # a fresh container
    stripe_api.behave(f"http:{status}")  # a bad key, or a key without read access to Checkout Sessions
    sessions = [checkout_session(), checkout_session()]
    for session in sessions:
        stripe_api.set_line_items(session["id"], [line_item("price_tee", "prod_tee", "T-shirt")])

    answers = [checkout(stripe_event(session=session)) for session in sessions]

    # Both conversions are sent, as they would be without a key: a wrong key never stops them.
    assert [answer.body["deliveries"]["tiktok"] for answer in answers] == [PENDING, PENDING]
    assert [event["event_id"] for event in tiktok_server.events()] == [session["id"] for session in sessions]
    for event in tiktok_server.events():
        assert "contents" not in event["properties"] and "num_items" not in event["properties"]
        assert event["properties"]["value"] == 19.99 and event["properties"]["currency"] == "USD"
    assert [db.delivery(session["id"])["delivery_status"] for session in sessions] == ["sent", "sent"]
    # A refusal is not worth retrying: one request per delivery, no retry.
    assert [len(line_items_requests(stripe_api, session["id"])) for session in sessions] == [1, 1]
    # Counted every time, said once per container, and the key is never in the log.
    assert emf.total("StripeLineItemsRefused") == 2
    [warning] = refusal_warnings(logs)
    assert warning["level"] == "WARNING"
    assert "STRIPE_API_KEY" in warning["message"]
    assert str(status) in warning["reason"]
    assert warning["function_name"] == SENDER
    assert STRIPE_API_KEY not in logs.text() and "rk_test_" not in logs.text()


def test_without_a_stripe_api_key_stripe_is_never_called_and_no_contents_are_sent(
    env, stripe_server, checkout, tiktok_server, db, monkeypatch
):
    # Given: Stripe's API reachable, the session's line items there, but no key configured
    stripe_server.reset()
    monkeypatch.setenv("STRIPE_API_BASE", stripe_server.url)
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    session = checkout_session()
    stripe_server.set_line_items(session["id"], [line_item("price_tee", "prod_tee", "T-shirt")])

    checkout(stripe_event(session=session))

    assert stripe_server.requests == []
    properties = only_event(tiktok_server)["properties"]
    assert "contents" not in properties and "num_items" not in properties
    assert properties["value"] == 19.99
    assert db.delivery(session["id"])["delivery_status"] == "sent"


# ---------------------------------------------------------------------- currencies TikTok does not take


# The East Caribbean dollar and the Albanian lek: Stripe takes them, TikTok does not.
@pytest.mark.parametrize("currency", ["xcd", "all"])
def test_a_currency_tiktok_does_not_take_is_sent_without_value_and_counted(
    env, stripe_api, checkout, tiktok_server, db, emf, currency
):
    session = checkout_session(currency=currency, amount_total=2500, amount_subtotal=2500)
    stripe_api.set_line_items(
        session["id"], [line_item("price_tee", "prod_tee", "T-shirt", 1, 2500, currency=currency)]
    )

    answer = checkout(stripe_event(session=session))

    assert answer.body["deliveries"]["tiktok"] == PENDING
    event = only_event(tiktok_server)
    properties = event["properties"]
    assert "value" not in properties and "currency" not in properties
    # What was bought still goes, without a price in a currency TikTok would reject.
    assert properties["contents"] == [
        {"content_id": "price_tee", "content_type": "product", "content_name": "T-shirt", "quantity": 1}
    ]
    assert properties["order_id"] == session["id"]
    assert db.delivery(session["id"])["delivery_status"] == "sent"
    assert emf.total("TikTokUnsupportedCurrency") == 1


# ---------------------------------------------------------------------- consent


BROWSER_SIGNALS = ("E.C.P.test-ttclid", "2abcDEFttpCookie", "203.0.113.7", "Mozilla/5.0", "shop.example.com")


def test_ad_consent_denied_is_skipped_at_the_webhook_and_nothing_of_the_buyer_is_kept(
    env, checkout, stream, tiktok_server, db, redrive
):
    base = checkout_session()
    session = checkout_session(metadata={**base["metadata"], "ad_consent": "denied"})

    answer = checkout(stripe_event(session=session))

    # The purchase is provisioned; its conversion is not reported, and the webhook says why.
    assert answer.status == 200
    assert answer.body["status"] == "provisioned"
    assert answer.body["deliveries"]["tiktok"] == {
        "status": "skipped",
        "reason": "the buyer denied ad measurement (ad_consent=denied)",
    }
    assert len(db.customers()) == 1
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "skipped"
    assert record["delivery_reason"] == "the buyer denied ad measurement (ad_consent=denied)"
    # No purchase stored, so none of the buyer's browser signals (click id, cookie, IP, UA, page).
    assert "purchase" not in record and "tiktok_event" not in record
    assert "redrive_queue" not in record and "next_attempt_at" not in record
    kept = json.dumps(db.sessions() + db.customers(), default=str)
    for signal in BROWSER_SIGNALS:
        assert signal not in kept
    # Nothing to send, now or later.
    assert stream.invocations == []  # the stream's filter passes only pending deliveries
    assert tiktok_server.requests == []
    assert redrive(at=time.time() + DAY) == {}
    assert tiktok_server.requests == []


@pytest.mark.parametrize(
    ("consent", "sent"),
    [(None, False), ("granted", True), ("maybe", False)],
    ids=["absent", "granted", "not-a-choice"],
)
def test_require_ad_consent_sends_only_what_the_buyer_granted(
    env, checkout, tiktok_server, db, monkeypatch, consent, sent
):
    monkeypatch.setenv("REQUIRE_AD_CONSENT", "true")
    metadata = dict(checkout_session()["metadata"])
    if consent is not None:
        metadata["ad_consent"] = consent
    session = checkout_session(metadata=metadata)

    answer = checkout(stripe_event(session=session))

    record = db.delivery(session["id"])
    if sent:
        assert answer.body["deliveries"]["tiktok"] == PENDING
        assert only_event(tiktok_server)["event_id"] == session["id"]
        assert record["delivery_status"] == "sent"
    else:
        reason = "no ad consent given (REQUIRE_AD_CONSENT is true, ad_consent is not granted)"
        assert answer.body["deliveries"]["tiktok"] == {"status": "skipped", "reason": reason}
        assert tiktok_server.requests == []
        assert record["delivery_status"] == "skipped" and record["delivery_reason"] == reason
        assert "purchase" not in record


# ---------------------------------------------------------------------- limited data use


@pytest.mark.parametrize(
    ("setting", "metadata", "limited"),
    [
        ("true", None, True),  # the merchant's choice, for every event
        ("true", "false", True),  # a session cannot switch it off
        ("", "true", True),  # a session can ask for it
        ("", None, False),
    ],
    ids=["setting-on", "metadata-false-cannot-switch-it-off", "metadata-true", "neither"],
)
def test_limited_data_use_from_the_setting_or_the_purchase(
    env, checkout, tiktok_server, monkeypatch, setting, metadata, limited
):
    monkeypatch.setenv("TIKTOK_LIMITED_DATA_USE", setting)
    session_metadata = dict(checkout_session()["metadata"])
    if metadata is not None:
        session_metadata["limited_data_use"] = metadata
    session = checkout_session(metadata=session_metadata)

    checkout(stripe_event(session=session))

    event = only_event(tiktok_server)
    if limited:
        assert event["limited_data_use"] is True
    else:
        assert "limited_data_use" not in event  # off: the key is left out, never sent false


# ---------------------------------------------------------------------- match quality


def test_sent_deliveries_record_and_count_the_match_keys_they_carried(env, checkout, tiktok_server, db, emf):
    full = checkout_session(
        customer_details={
            "email": "Ana.Lima@Example.com",
            "name": "Ana Maria de Lima",
            "phone": "(415) 555-0199",
            "address": {
                "line1": "1 Market St",
                "city": "San Francisco",
                "state": "CA",
                "postal_code": "94105-1804",
                "country": "US",
            },
        },
        metadata={**checkout_session()["metadata"], "locale": "en-US"},
    )
    email_only = checkout_session(
        customer=None, client_reference_id=None, customer_details={"email": "guest@example.com"}, metadata={}
    )

    checkout(stripe_event(session=full))
    checkout(stripe_event(session=email_only))

    # What TikTok got for the full buyer, normalised by TikTok's rules.
    full_event, email_only_event = tiktok_server.events()
    assert full_event["user"] == {
        "email": sha256("ana.lima@example.com"),
        "phone": sha256("+14155550199"),
        "external_id": sha256("user-42"),
        "first_name": sha256("ana"),  # the first word of the name
        "last_name": sha256("lima"),  # the last word
        "zip_code": sha256("94105"),  # a US ZIP+4 keeps its first five digits
        "city": "sanfrancisco",  # lower-cased, letters and digits only, not hashed
        "state": "ca",
        "country": "us",
        "ttclid": "E.C.P.test-ttclid",
        "ttp": "2abcDEFttpCookie",
        "ip": "203.0.113.7",
        "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
        "locale": "en-US",
    }
    assert email_only_event["user"] == {"email": sha256("guest@example.com")}
    # The item keeps the names of the keys (for the coverage report), never their values.
    all_keys = [
        "email", "phone", "external_id", "first_name", "last_name", "zip_code", "city", "state",
        "country", "ttclid", "ttp", "ip", "user_agent", "locale",
    ]  # fmt: skip
    assert db.delivery(full["id"])["delivery_match_keys"] == all_keys
    assert db.delivery(email_only["id"])["delivery_match_keys"] == ["email"]
    # Counted per present key: the email twice, every other key once.
    metrics = {
        "TikTokMatchKeyEmail": 2,
        "TikTokMatchKeyPhone": 1,
        "TikTokMatchKeyExternalId": 1,
        "TikTokMatchKeyFirstName": 1,
        "TikTokMatchKeyLastName": 1,
        "TikTokMatchKeyZipCode": 1,
        "TikTokMatchKeyCity": 1,
        "TikTokMatchKeyState": 1,
        "TikTokMatchKeyCountry": 1,
        "TikTokMatchKeyTtclid": 1,
        "TikTokMatchKeyTtp": 1,
        "TikTokMatchKeyIp": 1,
        "TikTokMatchKeyUserAgent": 1,
        "TikTokMatchKeyLocale": 1,
    }
    assert {name: emf.total(name) for name in metrics} == metrics
    assert emf.total("TikTokSent") == 2


def test_a_delivery_that_is_not_sent_records_no_match_keys(env, checkout, tiktok_server, db, emf):
    tiktok_server.behave("code:40002")  # TikTok rejects the event
    session = checkout_session()

    checkout(stripe_event(session=session))

    record = db.delivery(session["id"])
    assert record["delivery_status"] == "failed"
    assert "delivery_match_keys" not in record
    assert emf.total("TikTokMatchKeyEmail") == 0


# ---------------------------------------------------------------------- deliveries stored before


def legacy_event(session, created):
    """The TikTok event as the webhook built and stored it before the purchase was stored instead:
    match keys hashed then, no name or address keys, no contents."""
    return {
        "event": "CompletePayment",
        "event_time": created,
        "event_id": session["id"],
        "user": {
            "email": sha256("jane.doe@example.com"),
            "phone": sha256("+14155550123"),
            "external_id": sha256("user-42"),
            "ttclid": "E.C.P.test-ttclid",
            "ttp": "2abcDEFttpCookie",
            "ip": "203.0.113.7",
            "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
        },
        "properties": {
            "order_id": session["id"],
            "content_type": "product",
            "value": 19.99,
            "currency": "USD",
        },
        "page": {"url": "https://shop.example.com/checkout", "referrer": "https://www.tiktok.com/"},
    }


@pytest.mark.parametrize("sent_by", ["stream", "redrive"])
def test_a_delivery_stored_the_old_way_is_sent_as_it_was_built_once(
    env, stripe_api, deliver, stream, dynamodb, tables, tiktok_server, sent_by_event, db, redrive, sent_by
):
    # Given: a delivery provisioned now, and one stored by the previous version: its item a copy
    # of a real pending one, holding the built `tiktok_event` instead of a `purchase`.
    new = checkout_session()
    event = stripe_event(session=new)
    assert deliver(event).body["deliveries"]["tiktok"] == PENDING
    table = tables["SESSIONS_TABLE_NAME"]
    provisioned = dynamodb.get_item(TableName=table, Key={"session_id": {"S": f"{new['id']}#tiktok"}})["Item"]
    old = checkout_session()
    stored = legacy_event(old, event["created"])
    item = copy.deepcopy(provisioned)
    del item["purchase"]
    item["session_id"] = {"S": f"{old['id']}#tiktok"}
    item["event_id"] = {"S": old["id"]}
    item["tiktok_event"] = {"S": json.dumps(stored, separators=(",", ":"))}
    dynamodb.put_item(TableName=table, Item=item)  # an INSERT, pending: what the stream's filter passes
    for session in (new, old):
        stripe_api.set_line_items(session["id"], [line_item("price_tee", "prod_tee", "T-shirt")])

    # When: the stream hands both to the sender, or, never drained, the redrive takes them
    if sent_by == "stream":
        assert stream.drain() == 2
        assert_batch_succeeded(stream)
    else:
        assert redrive(at=int(provisioned["next_attempt_at"]["N"]) + 1) == {"sent": 2}

    # Then: the old one is sent exactly as it was stored, once; the new one built at send time
    by_event = sent_by_event()
    assert sorted(by_event) == sorted([new["id"], old["id"]])
    [old_body] = by_event[old["id"]]
    assert {name: value for name, value in old_body.items() if name != "data"} == {
        "event_source": "web",
        "event_source_id": PIXEL_ID,
        "test_event_code": "TEST12345",
    }
    sent = {event["event_id"]: event for event in tiktok_server.events()}
    assert sorted(tiktok_server.event_ids()) == sorted([new["id"], old["id"]])  # each once
    assert sent[old["id"]] == stored
    assert "contents" in sent[new["id"]]["properties"]
    assert line_items_requests(stripe_api, old["id"]) == []  # nothing added to what was built
    record = db.delivery(old["id"])
    assert record["delivery_status"] == "sent" and record["delivery_attempts"] == 1
    assert "tiktok_event" not in record and "redrive_queue" not in record
    assert record["delivery_match_keys"] == [
        "email",
        "phone",
        "external_id",
        "ttclid",
        "ttp",
        "ip",
        "user_agent",
    ]
    # Nothing more: a replay of the stream, a later redrive.
    for invocation in list(stream.invocations):
        assert stream.invoke(invocation.event).answer == NOTHING_TO_RETRY
    assert redrive(at=time.time() + DAY) == {}
    # The stream's batch in one request; the redrive's run a probe of one, then the other.
    assert len(tiktok_server.requests) == (1 if sent_by == "stream" else 2)


# ---------------------------------------------------------------------- the stored purchase


def test_the_stored_purchase_is_deleted_once_sent_and_never_logged(
    env, stripe_api, deliver, stream, tiktok_server, db, redrive, logs, monkeypatch
):
    monkeypatch.setenv("DEFAULT_PHONE_COUNTRY", "")  # the billing address's country decides
    session = checkout_session(
        customer_details={
            "email": "  Zoe.Mueller@Example.DE ",
            "name": "Zoë Müller-Lüdenscheidt",
            "phone": "030 12345678",
            "address": {
                "line1": "Unter den Linden 1",
                "city": "Berlin",
                "state": "BE",
                "postal_code": "10117",
                "country": "DE",
            },
        },
        currency="eur",
    )
    stripe_api.set_line_items(session["id"], [line_item("price_tee", "prod_tee", "T-shirt", 1, 1999, "eur")])

    # The first attempt meets Stripe's API down (logged: a failure), the redrive then sends it.
    stripe_api.behave("http:503")
    assert deliver(stripe_event(session=session)).body["deliveries"]["tiktok"] == PENDING
    assert "Zoë" in db.delivery(session["id"])["purchase"]  # stored, for the send
    stream.drain()
    assert db.delivery(session["id"])["delivery_status"] == "failed"
    assert "Zoë" in db.delivery(session["id"])["purchase"]  # kept for the retry
    stripe_api.behave("ok")
    assert redrive(at=db.delivery(session["id"])["next_attempt_at"] + 1) == {"sent": 1}

    user = only_event(tiktok_server)["user"]
    assert user["first_name"] == sha256("zoë")  # accents kept, lower-cased
    assert user["last_name"] == sha256("müllerlüdenscheidt")  # no punctuation: the hyphen goes (issue 18)
    assert user["phone"] == sha256("+493012345678")  # national number, region from the address
    assert (user["zip_code"], user["city"], user["state"], user["country"]) == (
        sha256("10117"),
        "berlin",
        "be",
        "de",
    )
    record = db.delivery(session["id"])
    assert record["delivery_status"] == "sent"
    assert "purchase" not in record and "tiktok_event" not in record
    assert "Zoë" not in json.dumps(db.sessions(), default=str)  # (the customer record keeps the name)

    text = logs.text()
    assert any(line.get("message") == "TikTok delivery failed" for line in logs())
    assert any(line.get("message") == "TikTok delivery sent" for line in logs())
    for never in (
        "Zoe.Mueller",
        "zoe.mueller",
        "Example.DE",
        "Zoë",
        "Zo\\u00eb",  # JSON-escaped
        "Müller",
        "M\\u00fcller",
        "Lüdenscheidt",
        "12345678",
        "Unter den Linden",
        "10117",
        "Berlin",
        "203.0.113.7",
        "Mozilla/5.0",
        "E.C.P.test-ttclid",
        "2abcDEFttpCookie",
        sha256("zoe.mueller@example.de"),
        STRIPE_API_KEY,
        TIKTOK_TOKEN,
        WEBHOOK_SECRET,
    ):
        assert never not in text, never
