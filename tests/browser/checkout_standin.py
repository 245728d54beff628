"""Stripe's API stand-in (devtools/stripe_standin.py) with what the example checkout backends call
as well: `POST /v1/checkout/sessions` and `GET /v1/checkout/sessions/{id}`.

Created sessions are open and unpaid, priced from `set_price`; `complete` pays one, as a buyer
finishing the Checkout page would. Each create is recorded in `created`, its form-encoded
parameters decoded into the nested values the caller passed (`metadata[ttclid]` -> metadata), and
each retrieved session's id in `retrieved`."""

import json
import re
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from devtools.stripe_standin import StripeStandIn, _error


def decode_form(body: str) -> dict[str, Any]:
    """Stripe's form encoding (`a[b][0][c]=v`) back into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        names = re.findall(r"[^\[\]]+", key)
        node = root
        for name in names[:-1]:
            node = node.setdefault(name, {})
        node[names[-1]] = value
    return _lists(root)


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(key.isdigit() for key in node):
        return [_lists(node[key]) for key in sorted(node, key=int)]
    return {key: _lists(value) for key, value in node.items()}


class CheckoutStandIn(StripeStandIn):
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.created: list[dict[str, Any]] = []
        self.retrieved: list[str] = []
        self._sessions: dict[str, dict[str, Any]] = {}
        self._prices: dict[str, tuple[int, str]] = {}
        super().__init__(host, port)

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.created.clear()
            self.retrieved.clear()
            self._sessions.clear()
            self._prices.clear()

    def set_price(self, price_id: str, unit_amount: int, currency: str) -> None:
        with self._lock:
            self._prices[price_id] = (unit_amount, currency)

    def complete(self, session_id: str, customer: str | None = "cus_standin") -> dict[str, Any]:
        with self._lock:
            session = self._sessions[session_id]
            session.update(status="complete", payment_status="paid", customer=customer)
            return session

    def _create(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        amount, currency = 0, None
        for item in params.get("line_items") or []:
            if item.get("price") not in self._prices:
                return 400, _error(400, f"No such price: '{item.get('price')}'", "resource_missing")
            unit_amount, currency = self._prices[item["price"]]
            amount += unit_amount * int(item.get("quantity", 1))
        session_id = f"cs_test_standin{len(self.created) + 1}"
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_total": amount,
            "currency": currency,
            "client_reference_id": params.get("client_reference_id"),
            "created": int(time.time()),
            "customer": None,
            "livemode": False,
            "metadata": params.get("metadata") or {},
            "mode": params.get("mode"),
            "payment_status": "unpaid",
            "status": "open",
            "success_url": params.get("success_url"),
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
        }
        self.created.append(params)
        self._sessions[session_id] = session
        return 200, session

    def _handler_class(self):
        standin = self
        base = super()._handler_class()

        class Handler(base):
            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
                if parts.path != "/v1/checkout/sessions":
                    self._answer(404, _error(404, f"Unrecognized request URL (POST: {parts.path})"))
                    return
                with standin._lock:
                    status, answer = standin._create(decode_form(body))
                self._answer(status, answer)

            def do_GET(self) -> None:
                segments = urlsplit(self.path).path.strip("/").split("/")
                if len(segments) != 4 or segments[:3] != ["v1", "checkout", "sessions"]:
                    super().do_GET()  # line items, as the base stand-in serves them
                    return
                with standin._lock:
                    standin.retrieved.append(segments[3])
                    session = standin._sessions.get(segments[3])
                    answer = json.loads(json.dumps(session)) if session else None
                if answer is None:
                    self._answer(
                        404, _error(404, f"No such checkout.session: '{segments[3]}'", "resource_missing")
                    )
                else:
                    self._answer(200, answer)

        return Handler
