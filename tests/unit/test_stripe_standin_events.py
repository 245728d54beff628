"""The Stripe stand-in's Events API list (`GET /v1/events`, devtools/stripe_standin.py), read with
the real `stripe` library over loopback: newest first, its filters, both cursors, Stripe's own event
fixtures parsed back, and Stripe's refusals (a wrong key, a restricted key without the Events
permission, a bad parameter) raised as the library's errors."""

import json
import random
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from devtools.stripe_standin import StripeStandIn

pytestmark = pytest.mark.loopback  # post() and the stand-in talk over 127.0.0.1

STRIPE_FIXTURES = Path("/work/shared/fixtures/external/stripe")
KEY = "rk_test_standin_events_key_0001"
T0 = 1_735_689_600


@pytest.fixture(scope="module")
def standin():
    server = StripeStandIn().start()
    yield server
    server.stop()


@pytest.fixture
def stripe_api(standin):
    standin.reset()
    standin.api_key = None
    yield standin
    standin.release_hung()


@pytest.fixture
def client(stripe_api):
    return stripe.StripeClient(KEY, base_addresses={"api": stripe_api.url}, max_network_retries=0)


def event(event_id: str, created: int, type_: str = "checkout.session.completed", **extra: Any) -> dict:
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": created,
        "data": {"object": {"id": f"cs_test_{event_id}", "object": "checkout.session"}},
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None},
        "type": type_,
        **extra,
    }


def ids(events) -> list[str]:
    return [item.id if hasattr(item, "id") else item["id"] for item in events]


def raw_get(standin: StripeStandIn, path_and_query: str, key: str | None = KEY) -> tuple[int, dict]:
    """A request as curl would send it, outside the stripe library."""
    request = urllib.request.Request(standin.url + path_and_query)  # noqa: S310 (loopback)
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 (loopback)
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as refused:
        return refused.code, json.load(refused)


# ---------------------------------------------------------------- order and paging


def test_paging_250_events_by_100_returns_each_once_newest_first(stripe_api, client):
    # Added in a shuffled order, several per second: newest first, and of one second's events
    # the one added last first.
    created = {f"evt_{n:03d}": T0 + n // 4 for n in range(250)}
    added = list(created)
    random.Random(7).shuffle(added)
    stripe_api.add_events([event(event_id, created[event_id]) for event_id in added])
    expected = sorted(added, key=lambda event_id: (-created[event_id], -added.index(event_id)))

    first = client.v1.events.list(params={"limit": 100})
    assert first.object == "list" and first.url == "/v1/events" and first.has_more is True
    assert ids(first.data) == expected[:100]
    assert ids(first.auto_paging_iter()) == expected

    pages = [request["query"] for request in stripe_api.requests]
    assert pages == [
        {"limit": ["100"]},
        {"limit": ["100"], "starting_after": [expected[99]]},
        {"limit": ["100"], "starting_after": [expected[199]]},
    ]
    assert all(request["path"] == "/v1/events" for request in stripe_api.requests)
    assert stripe_api.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"


def test_default_limit_is_10_and_the_last_page_says_no_more(stripe_api, client):
    stripe_api.add_events([event(f"evt_{n:02d}", T0 + n) for n in range(12)])
    first = client.v1.events.list()
    assert ids(first.data) == [f"evt_{n:02d}" for n in range(11, 1, -1)] and first.has_more is True
    last = first.next_page()
    assert ids(last.data) == ["evt_01", "evt_00"] and last.has_more is False
    assert client.v1.events.list(params={"limit": 12}).has_more is False


def test_ending_before_pages_backwards_to_the_newest(stripe_api, client):
    stripe_api.add_events([event(f"evt_{n:02d}", T0 + n) for n in range(30)])

    page = client.v1.events.list(params={"limit": 5, "ending_before": "evt_10"})
    assert ids(page.data) == ["evt_15", "evt_14", "evt_13", "evt_12", "evt_11"]  # still newest first
    assert page.has_more is True  # newer ones than evt_15

    # stripe-python walks ending_before pages towards the newest, each page reversed.
    assert ids(page.auto_paging_iter()) == [f"evt_{n:02d}" for n in range(11, 30)]
    assert [request["query"].get("ending_before") for request in stripe_api.requests] == [
        ["evt_10"],
        ["evt_15"],
        ["evt_20"],
        ["evt_25"],
    ]

    newest = client.v1.events.list(params={"limit": 4, "ending_before": "evt_25"})
    assert ids(newest.data) == ["evt_29", "evt_28", "evt_27", "evt_26"] and newest.has_more is False
    assert ids(client.v1.events.list(params={"ending_before": "evt_29"}).data) == []


def test_cursors_keep_their_place_when_the_cursor_event_is_filtered_out(stripe_api, client):
    stripe_api.add_events(
        [
            event(f"evt_{n}", T0 + n, "invoice.paid" if n % 2 else "checkout.session.completed")
            for n in range(8)
        ]
    )
    after = client.v1.events.list(params={"type": "invoice.paid", "starting_after": "evt_6", "limit": 2})
    assert ids(after.data) == ["evt_5", "evt_3"] and after.has_more is True
    before = client.v1.events.list(params={"type": "invoice.paid", "ending_before": "evt_2", "limit": 2})
    assert ids(before.data) == ["evt_5", "evt_3"] and before.has_more is True


# ---------------------------------------------------------------- filters


@pytest.fixture
def mixed(stripe_api):
    """Twelve events a second apart, their types in turn."""
    kinds = ["checkout.session.completed", "checkout.session.expired", "invoice.paid", "customer.created"]
    stripe_api.add_events([event(f"evt_{n:02d}", T0 + n, kinds[n % 4]) for n in range(12)])
    return stripe_api


def listed(client: stripe.StripeClient, **params: Any) -> list[str]:
    return ids(client.v1.events.list(params={"limit": 100, **params}).auto_paging_iter())


def test_created_bounds_select_exactly_the_events_inside(mixed, client):
    assert listed(client, created={"gte": T0 + 3, "lt": T0 + 7}) == ["evt_06", "evt_05", "evt_04", "evt_03"]
    assert listed(client, created={"gt": T0 + 3, "lte": T0 + 7}) == ["evt_07", "evt_06", "evt_05", "evt_04"]
    assert listed(client, created=T0 + 5) == ["evt_05"]
    assert listed(client, created={"gte": T0 + 12}) == []
    assert mixed.requests[0]["query"] == {
        "limit": ["100"],
        "created[gte]": [str(T0 + 3)],
        "created[lt]": [str(T0 + 7)],
    }


def test_types_and_type_filters(mixed, client):
    assert (
        listed(client, types=["invoice.paid", "customer.created"])
        == "evt_11 evt_10 evt_07 evt_06 evt_03 evt_02".split()
    )
    assert mixed.requests[0]["query"]["types[0]"] == ["invoice.paid"]  # stripe-python's indexed arrays
    assert listed(client, type="invoice.paid") == ["evt_10", "evt_06", "evt_02"]
    assert listed(client, type="checkout.session.*") == "evt_09 evt_08 evt_05 evt_04 evt_01 evt_00".split()
    assert listed(client, type="checkout.session") == []  # exact, not a prefix
    assert listed(client, type="*.paid", created={"lt": T0 + 7}) == ["evt_06", "evt_02"]


def test_curl_style_arrays_are_read_too(mixed):
    status, body = raw_get(mixed, "/v1/events?types[]=invoice.paid&types[]=customer.created&limit=3")
    assert status == 200
    assert ids(body["data"]) == ["evt_11", "evt_10", "evt_07"] and body["has_more"] is True


def test_delivery_success_filters_on_pending_webhooks(stripe_api, client):
    stripe_api.add_events([event("evt_delivered", T0), event("evt_pending", T0 + 1, pending_webhooks=2)])
    assert listed(client, delivery_success=True) == ["evt_delivered"]
    assert listed(client, delivery_success=False) == ["evt_pending"]


# ---------------------------------------------------------------- Stripe's own fixtures


def stripe_fixture(name: str) -> dict:
    path = STRIPE_FIXTURES / name
    if not path.exists():
        pytest.skip(f"{path} is not here")
    return json.loads(path.read_text())


def decimals(value: Any, path: str = "") -> dict[str, Decimal]:
    """Where `value` holds Decimals, by dotted path."""
    if isinstance(value, Decimal):
        return {path: value}
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    return {
        found: d for key, item in items for found, d in decimals(item, f"{path}.{key}".strip(".")).items()
    }


def as_json(value: dict) -> dict:
    return json.loads(json.dumps(value, default=str))


def test_stripes_event_fixtures_round_trip_through_the_library(stripe_api, client):
    plan_created = stripe_fixture("fixtures3.event.json")
    completed = event("evt_1StandInCompleted0001", plan_created["created"] + 1)
    completed["data"]["object"] = stripe_fixture("fixtures3.checkout.session.json")
    stripe_api.add_events([plan_created, completed])

    newest, oldest = client.v1.events.list().data
    assert isinstance(newest, stripe.Event) and isinstance(newest.data.object, stripe.checkout.Session)
    assert isinstance(oldest.data.object, stripe.Plan)
    assert newest.type == "checkout.session.completed" and oldest.id == plan_created["id"]
    # The library's own JSON of what it parsed is what Stripe wrote.
    assert json.loads(str(newest)) == completed
    assert json.loads(str(oldest)) == plan_created
    # to_dict() is the same, but for Stripe's decimal strings, which 16.1.0 hands back as Decimals.
    assert decimals(newest.to_dict()) == {"data.object.currency_conversion.fx_rate": Decimal("291452898")}
    assert decimals(oldest.to_dict()) == {"data.object.amount_decimal": Decimal("2000")}
    assert as_json(newest.to_dict()) == completed
    assert as_json(oldest.to_dict()) == plan_created


# ---------------------------------------------------------------- refusals


def test_a_wrong_key_is_stripes_authentication_error_with_the_key_masked(stripe_api, client):
    stripe_api.api_key = "rk_test_the_right_key_9999"
    with pytest.raises(stripe.AuthenticationError) as refused:
        client.v1.events.list()
    assert refused.value.http_status == 401
    assert refused.value.user_message == "Invalid API Key provided: " + "*" * (len(KEY) - 4) + KEY[-4:]
    assert KEY[:-4] not in str(refused.value.json_body)
    assert refused.value.json_body["error"]["type"] == "invalid_request_error"

    right = stripe.StripeClient("rk_test_the_right_key_9999", base_addresses={"api": stripe_api.url})
    assert right.v1.events.list().data == []


def test_no_key_at_all_is_a_401(stripe_api):
    status, body = raw_get(stripe_api, "/v1/events", key=None)
    assert status == 401
    assert body["error"]["message"].startswith("You did not provide an API key.")


def test_refuse_events_is_stripes_permission_error_for_a_restricted_key(stripe_api, client):
    stripe_api.add_events([event("evt_1", T0)])
    stripe_api.refuse_events(True)
    with pytest.raises(stripe.PermissionError) as refused:
        client.v1.events.list()
    assert refused.value.http_status == 403
    error = refused.value.json_body["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"] == (
        f"The provided key '{'*' * (len(KEY) - 4)}{KEY[-4:]}' does not have the required permissions for "
        f"this endpoint on account '{stripe_api.account}'. Having the 'rak_event_read' permission would "
        "allow this request to continue."
    )
    stripe_api.refuse_events(False)
    assert ids(client.v1.events.list().data) == ["evt_1"]
    stripe_api.refuse_events(True)
    stripe_api.reset()  # forgets the refusal with the events
    assert client.v1.events.list().data == []


@pytest.mark.parametrize(
    ("params", "param", "message"),
    [
        ({"limit": 0}, "limit", "This value must be greater than or equal to 1."),
        ({"limit": 101}, "limit", "This value must be less than or equal to 100."),
        ({"type": "invoice.paid", "types": ["invoice.paid"]}, "type", "You may only specify one of these"),
        ({"starting_after": "evt_1", "ending_before": "evt_1"}, "ending_before", "You may only specify one"),
        ({"starting_after": "evt_nope"}, "starting_after", "No such event: 'evt_nope'"),
        ({"ending_before": "evt_nope"}, "ending_before", "No such event: 'evt_nope'"),
        ({"created": {"gte": "soon"}}, "created[gte]", "Invalid integer: soon"),
        ({"customer": "cus_1"}, "customer", "Received unknown parameter: customer"),
    ],
    ids=[
        "limit-0",
        "limit-101",
        "type-and-types",
        "both-cursors",
        "unknown-after",
        "unknown-before",
        "created-not-int",
        "unknown-parameter",
    ],
)
def test_bad_parameters_are_stripes_invalid_request_error(stripe_api, client, params, param, message):
    stripe_api.add_events([event("evt_1", T0)])
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.events.list(params=params)
    assert refused.value.http_status == 400
    assert refused.value.param == param
    assert refused.value.user_message.startswith(message)


# ---------------------------------------------------------------- behaviours


def test_http_behaviour_answers_the_events_list_too(stripe_api, client):
    stripe_api.add_events([event("evt_1", T0)])
    stripe_api.behave("http:500")
    with pytest.raises(stripe.APIError) as failed:
        client.v1.events.list()
    assert failed.value.http_status == 500
    stripe_api.behave("http:429")
    with pytest.raises(stripe.RateLimitError):
        client.v1.events.list()
    assert len(stripe_api.requests) == 2
    stripe_api.behave("ok")
    assert ids(client.v1.events.list().data) == ["evt_1"]


def test_hang_behaviour_holds_the_events_list(stripe_api):
    stripe_api.behave("hang")
    impatient = stripe.StripeClient(
        KEY,
        base_addresses={"api": stripe_api.url},
        max_network_retries=0,
        http_client=stripe.HTTPXClient(timeout=httpx.Timeout(0.3), allow_sync_methods=True),
    )
    with pytest.raises(stripe.APIConnectionError):
        impatient.v1.events.list()
    assert [request["path"] for request in stripe_api.requests] == ["/v1/events"]
