"""The Flask example's session_params() against the webhook's own reading of the metadata:
every key it writes is one stripe_side/checkout.py reads, and purchase() finds the buyer's signals in it."""

import hashlib
from decimal import Decimal

import pytest

from checkout_conversions import values
from checkout_conversions.destinations import match_keys
from checkout_conversions.destinations.meta import match_keys as meta_match_keys
from checkout_conversions.destinations.tiktok import match_keys as tiktok_match_keys
from checkout_conversions.stripe_side.checkout import METADATA_KEYS, purchase

SESSION_CREATED = 1767225600

BROWSER = {
    "cookies": {
        "ttclid": "E.C.P.CqgBzBAt-Case",
        "_ttp": "2gTtpCookie.tt.1",
        "_fbp": "fb.1.1767225000000.1234567890",
        "_fbc": "fb.1.1767225100000.IwAR-Case_Kept",
        "session": "flask-login-cookie",
    },
    "headers": {
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0",
        "Referer": "https://shop.example.com/product",
        "X-Forwarded-For": "6.6.6.6, 198.51.100.20",
    },
    "form": {
        "ad_consent": "granted",
        "locale": "en-US",
        "page_url": "https://shop.example.com/product?ttclid=E.C.P.CqgBzBAt-Case",
        "page_referrer": "https://www.tiktok.com/",
    },
    "remote_addr": "10.0.0.2",
    "user_id": "user_42",
}


@pytest.fixture
def settings(backend):
    return backend.Settings(price_id="price_123", base_url="https://shop.example.com")


def paid_session(params, session_id="cs_test_kit", customer="cus_kit"):
    """The session Stripe sends the webhook, from the params the backend created it with."""
    return {
        "id": session_id,
        "object": "checkout.session",
        "created": SESSION_CREATED,
        "amount_total": 1999,
        "currency": "usd",
        "payment_status": "paid",
        "customer": customer,
        "client_reference_id": params.get("client_reference_id"),
        "customer_details": {"email": "Buyer@Example.com", "name": "Ada Lovelace"},
        "metadata": params["metadata"],
    }


def test_the_metadata_has_exactly_the_keys_the_webhook_reads(backend, settings):
    params = backend.session_params(BROWSER, settings)
    assert params["metadata"] == {
        "ttclid": "E.C.P.CqgBzBAt-Case",
        "ttp": "2gTtpCookie.tt.1",
        "fbp": "fb.1.1767225000000.1234567890",
        "fbc": "fb.1.1767225100000.IwAR-Case_Kept",
        "client_ip": "198.51.100.20",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0",
        "page_url": "https://shop.example.com/product?ttclid=E.C.P.CqgBzBAt-Case",
        "page_referrer": "https://www.tiktok.com/",
        "locale": "en-US",
        "ad_consent": "granted",
    }
    assert set(params["metadata"]) <= set(METADATA_KEYS)
    assert params["client_reference_id"] == "user_42"
    assert "customer_creation" not in params
    assert params["success_url"] == "https://shop.example.com/success?session_id={CHECKOUT_SESSION_ID}"
    assert params["line_items"] == [{"price": "price_123", "quantity": 1}]


def test_the_webhook_finds_every_browser_signal_in_the_session(backend, settings):
    params = backend.session_params(BROWSER, settings)
    bought = purchase(paid_session(params), {"id": "evt_1", "created": SESSION_CREATED + 60})
    buyer = bought.buyer
    assert (buyer.ttclid, buyer.ttp, buyer.fbp, buyer.fbc) == (
        "E.C.P.CqgBzBAt-Case",
        "2gTtpCookie.tt.1",
        "fb.1.1767225000000.1234567890",
        "fb.1.1767225100000.IwAR-Case_Kept",
    )
    assert buyer.ip == "198.51.100.20"
    assert buyer.user_agent == "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0"
    assert buyer.locale == "en-US"
    assert buyer.external_id == "user_42"
    assert bought.page_url == "https://shop.example.com/product?ttclid=E.C.P.CqgBzBAt-Case"
    assert bought.page_referrer == "https://www.tiktok.com/"
    assert bought.value == Decimal("19.99")


def test_the_success_page_names_the_buyer_and_the_value_as_both_server_events_do(backend, settings):
    params = backend.session_params(BROWSER, settings)
    session = paid_session(params)
    bought = purchase(session, {"id": "evt_1", "created": SESSION_CREATED + 60})
    page = backend.success_page_data(session, settings)
    assert page["externalId"] == tiktok_match_keys.build_user(bought.buyer)["external_id"]
    assert page["externalId"] == meta_match_keys.build_user_data(bought.buyer)["external_id"]
    assert page["externalId"] == hashlib.sha256(b"user_42").hexdigest()
    assert page["sessionId"] == bought.event_id == "cs_test_kit"
    assert (Decimal(str(page["value"])), page["currency"]) == (bought.value, bought.currency)


@pytest.mark.parametrize(
    ("client_reference_id", "customer"),
    [(" user_42 ", "cus_1"), (None, "cus_1"), ("", {"id": "cus_2", "object": "customer"}), ("A" * 64, None)],
)
def test_the_external_id_is_hashed_as_the_server_hashes_it(backend, client_reference_id, customer):
    session = {"id": "cs_1", "client_reference_id": client_reference_id, "customer": customer}
    bought = purchase(session, {"id": "evt_1", "created": SESSION_CREATED})
    assert backend.hashed_external_id(session) == match_keys.hashed_external_id(bought.buyer.external_id)


def test_a_guest_gets_a_stripe_customer_for_the_external_id(backend, settings):
    params = backend.session_params({**BROWSER, "user_id": None}, settings)
    assert "client_reference_id" not in params
    assert params["customer_creation"] == "always"


@pytest.mark.parametrize(
    ("forwarded_for", "trusted_proxies", "expected"),
    [
        ("6.6.6.6, 198.51.100.20", 1, "198.51.100.20"),  # the client's own claim is ignored
        ("6.6.6.6, 198.51.100.20, 203.0.113.5", 2, "198.51.100.20"),  # CDN + load balancer
        ("198.51.100.20", 3, "198.51.100.20"),  # entered behind the outermost proxy
        ("6.6.6.6", 0, "10.0.0.2"),  # nothing in front: the connection's address
        ("", 1, "10.0.0.2"),
        ("[2001:db8::7]:443", 1, "2001:db8::7"),
        ("203.0.113.5:5555", 1, "203.0.113.5"),
        ("unknown", 1, None),
    ],
)
def test_client_ip_is_the_hop_the_trusted_proxies_wrote(backend, forwarded_for, trusted_proxies, expected):
    request_data = {**BROWSER, "headers": {"X-Forwarded-For": forwarded_for}}
    assert backend.checkout_metadata(request_data, trusted_proxies).get("client_ip") == expected


def test_denied_consent_passes_nothing_of_the_browser_on_and_the_webhook_reports_nothing(backend, settings):
    params = backend.session_params(
        {**BROWSER, "form": {**BROWSER["form"], "ad_consent": "DENIED"}}, settings
    )
    assert params["metadata"] == {"ad_consent": "denied"}
    from checkout_conversions.stripe_side.checkout import ad_consent

    assert ad_consent(paid_session(params)) == "denied"
    assert backend.success_page_data(paid_session(params), settings)["report"] is False


def test_without_a_consent_choice_the_webhooks_setting_decides(backend, settings):
    params = backend.session_params({**BROWSER, "form": {"locale": "en-US"}}, settings)
    assert "ad_consent" not in params["metadata"]
    session = paid_session(params)
    assert backend.success_page_data(session, settings)["report"] is True
    strict = backend.Settings(price_id="price_123", require_ad_consent=True)
    assert backend.success_page_data(session, strict)["report"] is False
    cookie_choice = {**BROWSER, "form": {}, "cookies": {"ad_consent": "granted"}}
    assert backend.session_params(cookie_choice, settings)["metadata"]["ad_consent"] == "granted"


def test_an_unpaid_session_fires_no_pixel(backend, settings):
    session = {**paid_session(backend.session_params(BROWSER, settings)), "payment_status": "unpaid"}
    assert backend.success_page_data(session, settings)["report"] is False


def test_a_bare_fbclid_becomes_the_webhooks_fbc_only_without_an_fbc_cookie(backend, settings):
    cookies = {"fbclid": "IwAR-Case_Kept"}
    params = backend.session_params({**BROWSER, "cookies": cookies}, settings)
    assert params["metadata"]["fbclid"] == "IwAR-Case_Kept"
    bought = purchase(paid_session(params), {"id": "evt_1", "created": SESSION_CREATED + 60})
    assert bought.buyer.fbc == f"fb.1.{SESSION_CREATED * 1000}.IwAR-Case_Kept"
    with_fbc = backend.session_params({**BROWSER, "cookies": {**cookies, "_fbc": "fb.1.1.IwAR-x"}}, settings)
    assert "fbclid" not in with_fbc["metadata"]


def test_values_stripe_would_refuse_are_cut_or_dropped(backend, settings):
    request_data = {
        "cookies": {"ttclid": "x" * 501, "_ttp": "  "},
        "headers": {"User-Agent": "U" * 600, "Referer": "javascript:alert(1)"},
        "form": {"locale": "not a locale", "page_referrer": "ftp://example.com/", "limited_data_use": "true"},
        "remote_addr": "10.0.0.2",
    }
    metadata = backend.session_params(request_data, settings)["metadata"]
    assert metadata == {"client_ip": "10.0.0.2", "user_agent": "U" * 500, "limited_data_use": "true"}
    bought = purchase(paid_session({"metadata": metadata}), {"id": "evt_1", "created": SESSION_CREATED})
    assert bought.buyer.user_agent == "U" * 500
    assert bought.limited_data_use is True


def test_the_currency_table_is_the_servers(backend):
    assert backend.ZERO_DECIMAL == values.ZERO_DECIMAL
    assert backend.THREE_DECIMAL == values.THREE_DECIMAL
    for code in ["USD", "jpy", "KWD", "ISK", "UGX", "BHD", "EUR"]:
        for amount in [0, 1, 5, 1500, 1999, 12340, 12345, 10**12]:
            assert backend.decimal_amount(amount, code) == values.to_decimal_amount(amount, code)


@pytest.mark.parametrize(
    ("amount", "code", "value"),
    [(1999, "usd", 19.99), (1500, "jpy", 1500), (12345, "kwd", 12.345), (1000, "isk", 10)],
)
def test_the_success_page_value_is_a_json_number_in_the_currencys_units(
    backend, settings, amount, code, value
):
    session = {"id": "cs_1", "amount_total": amount, "currency": code, "payment_status": "paid"}
    data = backend.success_page_data(session, settings)
    assert data["value"] == value
    assert data["currency"] == code.upper()


def test_the_rendered_page_keeps_the_data_inside_its_script(backend, settings):
    session = {"id": "cs_1", "amount_total": 1, "currency": "usd", "client_reference_id": "</script><b>"}
    html = backend.render_success_page(
        {**backend.success_page_data(session, settings), "sessionId": "</script>"}
    )
    assert "__PURCHASE_JSON__" not in html
    assert '"sessionId": "\\u003c/script\\u003e"' in html
