"""The merchant's checkout backend, in Flask: it creates the Stripe Checkout Session with the
buyer's browser signals in its metadata (docs/configuration.md: "Checkout Session metadata"), and renders the
success page that fires the browser Pixels with the same event id (examples/success/success.html).

    pip install flask==3.1.3 stripe==16.1.0
    STRIPE_SECRET_KEY=sk_test_... STRIPE_PRICE_ID=price_... PUBLIC_BASE_URL=http://127.0.0.1:5000 \
    TIKTOK_PIXEL_ID=... META_PIXEL_ID=... flask --app examples/python/checkout_backend.py run

The landing pages load examples/landing/attribution.js, which keeps the ad click ids in cookies.
Copy this file into your app as it suits you; it needs nothing from the rest of this repository.
"""

import hashlib
import ipaddress
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import stripe
from flask import Flask, Response, abort, jsonify, redirect, request
from flask import session as login_session

SUCCESS_TEMPLATE = Path(__file__).resolve().parent.parent / "success" / "success.html"
PURCHASE_PLACEHOLDER = "__PURCHASE_JSON__"

# Stripe's own table of currency exponents (it is not ISO 4217's: ISK and UGX have two decimals).
ZERO_DECIMAL = frozenset("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF VND VUV XAF XOF XPF".split())
THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())
PAID = ("paid", "no_payment_required")  # what the webhook reports; "unpaid" waits for async payment

METADATA_LIMIT = 500  # Stripe refuses a longer metadata value, and with it the whole session
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,3}$")
_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
_SESSION_ID = re.compile(r"^cs_[A-Za-z0-9_]{1,250}$")


@dataclass(frozen=True)
class Settings:
    price_id: str = ""
    base_url: str = "http://127.0.0.1:5000"  # where Stripe sends the buyer back
    # How many proxies you run in front of this app (load balancer, CDN, ...); see client_ip().
    trusted_proxies: int = 1
    # The same names as the webhook's settings, so one .env serves both.
    require_ad_consent: bool = False
    tiktok_pixel_id: str = ""
    tiktok_event_name: str = "CompletePayment"
    meta_pixel_id: str = ""
    meta_event_name: str = "Purchase"
    # Record the Pixel calls on the page instead of loading TikTok's and Meta's scripts (tests, debugging).
    stub_pixels: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Settings":
        def flag(name: str) -> bool:
            return env.get(name, "").strip().lower() in ("true", "1", "yes", "on")

        return cls(
            price_id=env.get("STRIPE_PRICE_ID", ""),
            base_url=env.get("PUBLIC_BASE_URL", cls.base_url).rstrip("/"),
            trusted_proxies=int(env.get("TRUSTED_PROXIES", "1")),
            require_ad_consent=flag("REQUIRE_AD_CONSENT"),
            tiktok_pixel_id=env.get("TIKTOK_PIXEL_ID", ""),
            tiktok_event_name=env.get("TIKTOK_EVENT_NAME") or cls.tiktok_event_name,
            meta_pixel_id=env.get("META_PIXEL_ID", ""),
            meta_event_name=env.get("META_EVENT_NAME") or cls.meta_event_name,
            stub_pixels=flag("STUB_PIXELS"),
        )


# --- the Checkout Session ----------------------------------------------------------------------


def session_params(request_data: Mapping[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """The arguments of stripe.checkout.Session.create for one buyer's request.

    `request_data` is plain data (see request_data()): `cookies`, `headers` (any case), `form`
    (the posted fields), `remote_addr`, and `user_id` (the merchant's, None for a guest)."""
    settings = settings or SETTINGS
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [{"price": settings.price_id, "quantity": 1}],  # your cart here
        "success_url": f"{settings.base_url}/success?session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{settings.base_url}/",
        "billing_address_collection": "required",  # zip, city, state, country: more match keys
        "phone_number_collection": {"enabled": True},
        "metadata": checkout_metadata(request_data, settings.trusted_proxies),
    }
    user_id = _value(request_data.get("user_id"), 200)
    if user_id:
        params["client_reference_id"] = user_id  # the webhook hashes it into external_id
    else:
        # A guest gets a Stripe customer, whose id then serves as the external id.
        params["customer_creation"] = "always"
    return params


def checkout_metadata(request_data: Mapping[str, Any], trusted_proxies: int = 1) -> dict[str, str]:
    """The metadata keys the webhook reads (conversion.METADATA_KEYS); missing ones left out."""
    cookies = request_data.get("cookies") or {}
    headers = {name.lower(): value for name, value in (request_data.get("headers") or {}).items()}
    form = request_data.get("form") or {}

    consent = _choice(form.get("ad_consent") or cookies.get("ad_consent"), ("granted", "denied"))
    if consent == "denied":
        # The webhook reports nothing then; nothing of the buyer's browser need reach Stripe either.
        return {"ad_consent": "denied"}
    fbc = _value(cookies.get("_fbc") or form.get("fbc"))
    metadata = {
        "ttclid": _value(cookies.get("ttclid") or form.get("ttclid")),
        "ttp": _value(cookies.get("_ttp") or form.get("ttp")),
        "fbp": _value(cookies.get("_fbp") or form.get("fbp")),
        "fbc": fbc,
        # Only for a landing page that kept the bare fbclid; the webhook builds fbc from it.
        "fbclid": None if fbc else _value(cookies.get("fbclid") or form.get("fbclid")),
        "client_ip": client_ip(
            headers.get("x-forwarded-for"), request_data.get("remote_addr"), trusted_proxies
        ),
        "user_agent": _cut(headers.get("user-agent")),
        # The page itself posts its full URL; the Referer may have lost its query to the page's policy.
        "page_url": _url(form.get("page_url")) or _url(headers.get("referer")),
        "page_referrer": _url(form.get("page_referrer")),
        "locale": _locale(form.get("locale")),
        # Without a choice the webhook's REQUIRE_AD_CONSENT decides.
        "ad_consent": consent,
        "limited_data_use": "true" if _choice(form.get("limited_data_use"), ("true", "1", "on")) else None,
    }
    return {key: value for key, value in metadata.items() if value}


def client_ip(forwarded_for: str | None, remote_addr: str | None, trusted_proxies: int = 1) -> str | None:
    """The buyer's address.

    Each proxy appends to X-Forwarded-For the address it got the request from, and the browser can
    send the header with anything in it: only the entries your own proxies appended are true. With
    N proxies in front of this app the Nth entry from the right was written by the outermost one,
    and is the address it saw: the buyer's. The default (1) fits one load balancer; the leftmost
    entry, which naive code takes, is whatever the client claimed. With 0 (nothing in front) the
    connection's own address is the buyer's."""
    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]
    if trusted_proxies <= 0 or not hops:
        return _ip(remote_addr)
    # Fewer entries than proxies: the request entered behind the outermost; its first entry is still
    # one a trusted proxy wrote.
    return _ip(hops[max(len(hops) - trusted_proxies, 0)])


def _ip(value: str | None) -> str | None:
    text = (value or "").strip()
    if text.startswith("["):  # [2001:db8::1]:443
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # 203.0.113.7:443
        text = text.partition(":")[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _value(value: Any, limit: int = METADATA_LIMIT) -> str | None:
    """An id or cookie value: never cut (a cut id matches nothing), dropped when too long."""
    text = str(value).strip() if value is not None else ""
    return text if text and len(text) <= limit else None


def _cut(value: Any) -> str | None:
    return _value(str(value).strip()[:METADATA_LIMIT]) if value else None


def _url(value: Any) -> str | None:
    text = str(value or "").strip()
    return _cut(text) if text.startswith(("https://", "http://")) else None


def _locale(value: Any) -> str | None:
    text = str(value or "").strip()
    return text if _LOCALE.match(text) else None


def _choice(value: Any, choices: tuple[str, ...]) -> str | None:
    text = str(value or "").strip().lower()
    return text if text in choices else None


# --- the success page --------------------------------------------------------------------------


def decimal_amount(minor_units: int, currency: str) -> Decimal:
    """Stripe's amount in the currency's minor units as a decimal value: 1999 USD -> 19.99,
    1500 JPY -> 1500, 12345 KWD -> 12.345."""
    code = currency.upper()
    exponent = 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2
    amount = Decimal(minor_units).scaleb(-exponent)
    return amount.quantize(Decimal(1)) if amount == amount.to_integral() else amount.normalize()


def hashed_external_id(session: Mapping[str, Any]) -> str | None:
    """The external id exactly as the webhook sends it: SHA-256 (lower-case hex) of the trimmed
    client_reference_id, else of the Stripe customer id. Given hashed, both Pixels pass it on
    unchanged, so the browser's and the server's events name the same buyer."""
    customer = session.get("customer")
    if isinstance(customer, Mapping):  # expanded
        customer = customer.get("id")
    raw = (session.get("client_reference_id") or "").strip() or (customer or "").strip()
    if not raw:
        return None
    if _SHA256_HEX.match(raw):  # already a digest: the webhook passes it through too
        return raw.lower()
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def success_page_data(session: Mapping[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """What the success page's script needs, from the retrieved Checkout Session."""
    settings = settings or SETTINGS
    currency = str(session.get("currency") or "").upper() or None
    amount = session.get("amount_total")
    value = decimal_amount(amount, currency) if isinstance(amount, int) and currency else None
    consent = _choice((session.get("metadata") or {}).get("ad_consent"), ("granted", "denied"))
    # Fire the Pixels exactly when the webhook reports the purchase: paid, and not refused.
    report = session.get("payment_status") in PAID and (
        consent == "granted" or (consent is None and not settings.require_ad_consent)
    )
    return {
        "sessionId": session["id"],
        "value": None if value is None else int(value) if value == value.to_integral() else float(value),
        "currency": currency,
        "externalId": hashed_external_id(session),
        "report": report,
        "tiktok": {"pixelId": settings.tiktok_pixel_id, "eventName": settings.tiktok_event_name}
        if settings.tiktok_pixel_id
        else None,
        "meta": {"pixelId": settings.meta_pixel_id, "eventName": settings.meta_event_name}
        if settings.meta_pixel_id
        else None,
        "stubPixels": settings.stub_pixels,
    }


def render_success_page(data: Mapping[str, Any]) -> str:
    # JSON inside <script type="application/json">: escaping "<" keeps "</script>" out of it.
    payload = json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return SUCCESS_TEMPLATE.read_text(encoding="utf-8").replace(PURCHASE_PLACEHOLDER, payload)


# --- the Flask app -----------------------------------------------------------------------------


def current_user_id() -> str | None:
    """The signed-in buyer's id in your app (e.g. flask_login's current_user.get_id()); None: a guest."""
    return login_session.get("user_id")


def request_data() -> dict[str, Any]:
    """The parts of the Flask request that session_params() reads, as plain data."""
    posted = request.get_json(silent=True) if request.is_json else request.form.to_dict()
    return {
        "cookies": dict(request.cookies),
        "headers": {
            "user-agent": request.headers.get("User-Agent", ""),
            "referer": request.headers.get("Referer", ""),
            # Several X-Forwarded-For headers make one list, in order.
            "x-forwarded-for": ", ".join(request.headers.getlist("X-Forwarded-For")),
        },
        "form": posted if isinstance(posted, dict) else {},
        "remote_addr": request.remote_addr,
        "user_id": current_user_id(),
    }


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or SETTINGS
    app = Flask(__name__)
    app.secret_key = os.environ.get("FLASK_SECRET_KEY") or secrets.token_bytes(32)

    @app.post("/create-checkout-session")
    def create_checkout_session():
        checkout = stripe.checkout.Session.create(**session_params(request_data(), settings))
        if request.is_json or request.accept_mimetypes.best == "application/json":
            return jsonify(url=checkout.url)  # a fetch() from the page; it sets location itself
        return redirect(checkout.url, code=303)

    @app.get("/success")
    def success():
        session_id = request.args.get("session_id", "")
        if not _SESSION_ID.match(session_id):
            abort(400)
        checkout = stripe.checkout.Session.retrieve(session_id)
        page = render_success_page(success_page_data(checkout.to_dict(), settings))
        response = Response(page, mimetype="text/html")
        response.headers["Cache-Control"] = "no-store"  # a buyer's own purchase
        return response

    return app


SETTINGS = Settings.from_env()
if os.environ.get("STRIPE_SECRET_KEY"):
    stripe.api_key = os.environ["STRIPE_SECRET_KEY"]  # a key that may create Checkout Sessions
app = create_app()
