"""The Flask example's routes against a local stand-in for Stripe's API: what Stripe receives
when the buyer clicks "pay", and what the success page carries once the session is paid."""

import json
import re

import pytest

from checkout_conversions.destinations import match_keys
from checkout_conversions.stripe_side.checkout import METADATA_KEYS, purchase


@pytest.fixture
def client(backend, stripe_standin):
    stripe_standin.set_price("price_kit", 12345, "kwd")
    settings = backend.Settings(
        price_id="price_kit",
        base_url="https://shop.example.com",
        trusted_proxies=1,
        tiktok_pixel_id="CTTPIXEL",
        tiktok_event_name="Purchase",
        meta_pixel_id="1234567890",
    )
    app = backend.create_app(settings)
    app.testing = True
    with app.test_client() as client:
        with client.session_transaction() as login:
            login["user_id"] = "user_42"
        yield client


def purchase_json(html: str) -> dict:
    return json.loads(
        re.search(r'<script type="application/json" id="purchase">(.*?)</script>', html, re.S)[1]
    )


def test_pay_creates_the_session_with_the_browser_signals_and_redirects_to_stripe(client, stripe_standin):
    client.set_cookie("ttclid", "E.C.P.abc")
    client.set_cookie("_ttp", "ttp-cookie")
    client.set_cookie("_fbp", "fb.1.1767225000000.42")
    client.set_cookie("_fbc", "fb.1.1767225100000.IwAR-Case_Kept")
    response = client.post(
        "/create-checkout-session",
        data={"ad_consent": "granted", "locale": "pt_BR", "page_referrer": "https://www.tiktok.com/"},
        headers={
            "User-Agent": "Mozilla/5.0 Kit",
            "Referer": "https://shop.example.com/product?ttclid=E.C.P.abc",
            "X-Forwarded-For": "6.6.6.6, 198.51.100.20",
        },
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "https://checkout.stripe.com/c/pay/cs_test_standin1"

    [params] = stripe_standin.created
    assert params["metadata"] == {
        "ttclid": "E.C.P.abc",
        "ttp": "ttp-cookie",
        "fbp": "fb.1.1767225000000.42",
        "fbc": "fb.1.1767225100000.IwAR-Case_Kept",
        "client_ip": "198.51.100.20",
        "user_agent": "Mozilla/5.0 Kit",
        "page_url": "https://shop.example.com/product?ttclid=E.C.P.abc",
        "page_referrer": "https://www.tiktok.com/",
        "locale": "pt_BR",
        "ad_consent": "granted",
    }
    assert set(params["metadata"]) <= set(METADATA_KEYS)
    assert params["client_reference_id"] == "user_42"
    assert params["mode"] == "payment"
    assert params["line_items"] == [{"price": "price_kit", "quantity": "1"}]  # form-encoded
    assert params["success_url"] == "https://shop.example.com/success?session_id={CHECKOUT_SESSION_ID}"
    assert params["phone_number_collection"] == {"enabled": "true"}

    session = stripe_standin.complete("cs_test_standin1", customer="cus_kit")
    bought = purchase(session, {"id": "evt_1", "created": session["created"]})
    assert bought.buyer.locale == "pt-BR"
    assert bought.buyer.ip == "198.51.100.20"


def test_a_json_request_gets_the_checkout_url(client, stripe_standin):
    response = client.post("/create-checkout-session", json={"locale": "de-DE"})
    assert response.get_json() == {"url": "https://checkout.stripe.com/c/pay/cs_test_standin1"}
    assert stripe_standin.created[0]["metadata"]["locale"] == "de-DE"


def test_the_success_page_carries_the_paid_sessions_value_id_and_external_id(client, stripe_standin):
    client.post("/create-checkout-session", data={"ad_consent": "granted"})
    stripe_standin.complete("cs_test_standin1", customer="cus_kit")

    response = client.get("/success?session_id=cs_test_standin1")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert stripe_standin.retrieved == ["cs_test_standin1"]
    data = purchase_json(response.get_data(as_text=True))
    assert data == {
        "sessionId": "cs_test_standin1",
        "value": 12.345,  # KWD: three decimals
        "currency": "KWD",
        "externalId": match_keys.hashed_external_id("user_42"),
        "report": True,
        "tiktok": {"pixelId": "CTTPIXEL", "eventName": "Purchase"},
        "meta": {"pixelId": "1234567890", "eventName": "Purchase"},
        "stubPixels": False,
    }


def test_an_open_session_renders_without_reporting(client, stripe_standin):
    client.post("/create-checkout-session", data={})
    data = purchase_json(client.get("/success?session_id=cs_test_standin1").get_data(as_text=True))
    assert data["report"] is False


def test_a_bad_or_unknown_session_id(client, stripe_standin):
    assert client.get("/success?session_id=../v1/customers").status_code == 400
    assert client.get("/success").status_code == 400
    client.application.testing = False  # Stripe's 404 is the app's 500, as any unhandled error
    assert client.get("/success?session_id=cs_test_unknown").status_code == 500
