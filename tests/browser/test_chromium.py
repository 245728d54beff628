"""The pages in a real browser: headless Chromium (--dump-dom) on loopback only.

attribution.js on a landing URL with click ids (examples/browser-check/ shows document.cookie in
<pre id="result">), and the success page rendered by the Flask example with the Pixels stubbed
(their calls recorded in <pre id="pixel-calls">; TikTok's and Meta's scripts are never loaded)."""

import functools
import html
import json
import re
import shutil
import subprocess
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from checkout_conversions.destinations import match_keys

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def chromium():
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("Chromium is not installed: the browser test was skipped (apt-get install chromium)")
    return binary


@pytest.fixture
def dump_dom(chromium, tmp_path):
    """The DOM of `url` once its scripts ran, in a fresh profile (no cookies of earlier runs)."""

    def dump(url: str) -> str:
        profile = tmp_path / f"profile-{time.monotonic_ns()}"
        result = subprocess.run(
            [
                chromium, "--headless", "--disable-gpu", "--no-sandbox", f"--user-data-dir={profile}",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
                "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
                "--virtual-time-budget=2000", "--dump-dom", url,
            ],
            capture_output=True, text=True, timeout=90, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    return dump


def serve(server) -> str:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return f"http://{host}:{port}"


@pytest.fixture(scope="module")
def examples_url():
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(EXAMPLES)))
    yield serve(server)
    server.shutdown()
    server.server_close()


def pre(dom: str, element_id: str) -> str:
    match = re.search(rf'<pre id="{element_id}"[^>]*>(.*?)</pre>', dom, re.S)
    assert match, dom[-3000:]
    return html.unescape(match[1])


def cookies(result: dict) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in result["cookie"].split("; ") if pair)


def test_attribution_js_keeps_the_click_ids_in_cookies(dump_dom, examples_url):
    before = int(time.time() * 1000)
    url = f"{examples_url}/browser-check/index.html?ttclid=abc&fbclid=IwAR-Case_Kept"
    result = json.loads(pre(dump_dom(url), "result"))
    jar = cookies(result)
    assert jar["ttclid"] == "abc"
    match = re.fullmatch(r"fb\.1\.(\d{13})\.IwAR-Case_Kept", jar["_fbc"])
    assert match, jar
    # Chromium's virtual time may run ahead of the wall clock by the budget.
    assert before - 1000 <= int(match[1]) <= int(time.time() * 1000) + 5000
    assert result["read"]["ttclid"] == "abc"
    assert result["read"]["fbc"] == jar["_fbc"]
    assert result["read"]["page_url"] == url
    assert result["read"]["locale"]


def test_attribution_js_keeps_an_existing_fbc_for_the_same_fbclid_and_replaces_it_for_a_new_one(
    dump_dom, examples_url
):
    existing = "fb.1.1700000000000.IwAR-Case_Kept"
    same = f"{examples_url}/browser-check/index.html?fbclid=IwAR-Case_Kept&existing_fbc={existing}"
    assert cookies(json.loads(pre(dump_dom(same), "result")))["_fbc"] == existing
    new = f"{examples_url}/browser-check/index.html?fbclid=IwAR-New&existing_fbc={existing}"
    assert re.fullmatch(r"fb\.1\.\d{13}\.IwAR-New", cookies(json.loads(pre(dump_dom(new), "result")))["_fbc"])


def test_the_success_page_fires_both_pixels_with_the_session_as_event_id(backend, stripe_standin, dump_dom):
    stripe_standin.set_price("price_kit", 1999, "usd")
    settings = backend.Settings(
        price_id="price_kit",
        tiktok_pixel_id="CTTPIXEL",
        tiktok_event_name="Purchase",  # TikTok's newer name, configured instead of CompletePayment
        meta_pixel_id="1234567890",
        stub_pixels=True,
    )
    app = backend.create_app(settings)
    with app.test_client() as client:
        with client.session_transaction() as login:
            login["user_id"] = "user_42"
        client.post("/create-checkout-session", data={"ad_consent": "granted"})
    session = stripe_standin.complete("cs_test_standin1")

    server = make_server("127.0.0.1", 0, app, threaded=True)
    try:
        base = serve(server)
        dom = dump_dom(f"{base}/success?session_id={session['id']}")
    finally:
        server.shutdown()

    calls = [json.loads(line) for line in pre(dom, "pixel-calls").splitlines()]
    external_id = match_keys.hashed_external_id("user_42")
    assert calls == [
        {"call": "ttq.load", "args": ["CTTPIXEL"]},
        {"call": "ttq.page", "args": []},
        {"call": "ttq.identify", "args": [{"external_id": external_id}]},
        {
            "call": "ttq.track",
            "args": [
                "Purchase",
                {"content_type": "product", "value": 19.99, "currency": "USD"},
                {"event_id": "cs_test_standin1"},
            ],
        },
        {"call": "fbq", "args": ["init", "1234567890", {"external_id": external_id}]},
        {"call": "fbq", "args": ["track", "PageView"]},
        {
            "call": "fbq",
            "args": [
                "track",
                "Purchase",
                {"value": 19.99, "currency": "USD"},
                {"eventID": "cs_test_standin1"},
            ],
        },
    ]
    assert "Paid 19.99 USD" in dom
    assert not re.search(r"<script[^>]+src=", dom), "a Pixel script was loaded"
