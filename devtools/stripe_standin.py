"""A local HTTP server standing in for Stripe's API, as far as the sender reads it: a checkout
session's line items (`GET /v1/checkout/sessions/{id}/line_items`), paginated with `limit` and
`starting_after`, the price's product expanded on `expand[]=data.price.product`.

The objects have the shapes of Stripe's own (a `list` of `item`s, each with its `price` and its
`product`; errors as `{"error": {"type", "message"}}` with Stripe's status codes), so that the real
`stripe` library parses them. Behaviours: "ok", "http:N" (Stripe's error body with status N),
"hang" (accepts and never answers until released). Point STRIPE_API_BASE at `url`.
"""

import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devtools.loopback import LoopbackStandIn, QuietHandler

_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "invalid_request_error",
                404: "invalid_request_error", 429: "invalid_request_error"}  # fmt: skip


def line_item(
    price_id: str,
    product_id: str,
    name: str,
    quantity: int = 1,
    unit_amount: int = 1000,
    currency: str = "usd",
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One line item as Stripe's API returns it, its price's product expanded."""
    return {
        "id": f"li_{price_id.removeprefix('price_')}_{quantity}",
        "object": "item",
        "amount_discount": 0,
        "amount_subtotal": unit_amount * quantity,
        "amount_tax": 0,
        "amount_total": unit_amount * quantity,
        "currency": currency,
        "description": name,
        "price": {
            "id": price_id,
            "object": "price",
            "active": True,
            "billing_scheme": "per_unit",
            "created": 1735689600,
            "currency": currency,
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": None,
            "metadata": {},
            "nickname": None,
            "product": {
                "id": product_id,
                "object": "product",
                "active": True,
                "created": 1735689600,
                "description": None,
                "images": [],
                "livemode": False,
                "metadata": metadata or {},
                "name": name,
                "type": "service",
                "updated": 1735689600,
            },
            "recurring": None,
            "tax_behavior": "unspecified",
            "type": "one_time",
            "unit_amount": unit_amount,
            "unit_amount_decimal": str(unit_amount),
        },
        "quantity": quantity,
    }


class StripeStandIn(LoopbackStandIn):
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.requests: list[dict[str, Any]] = []
        self._line_items: dict[str, list[dict[str, Any]]] = {}
        self._behaviour = "ok"
        super().__init__(self._handler_class(), host, port)

    @property
    def url(self) -> str:
        return self.base_url

    def behave(self, behaviour: str) -> None:
        with self._lock:
            self._behaviour = behaviour
        self._release.clear()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._line_items.clear()
            self._behaviour = "ok"
        self._release.clear()

    def set_line_items(self, session_id: str, items: list[dict[str, Any]]) -> None:
        with self._lock:
            self._line_items[session_id] = items

    def _page(self, session_id: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            items = self._line_items.get(session_id)
        if items is None:
            return 404, _error(404, f"No such checkout.session: '{session_id}'", "resource_missing")
        limit = min(max(int((query.get("limit") or ["10"])[0]), 1), 100)
        after = (query.get("starting_after") or [None])[0]
        start = next((index + 1 for index, item in enumerate(items) if item["id"] == after), 0)
        page = items[start : start + limit]
        # stripe-python sends expand[0]=...; curl users write expand[]=...
        expand = [value for key, values in query.items() if key.startswith("expand[") for value in values]
        expanded = "data.price.product" in expand
        if not expanded:
            page = [
                {**item, "price": {**item["price"], "product": item["price"]["product"]["id"]}}
                for item in page
            ]
        return 200, {
            "object": "list",
            "data": page,
            "has_more": start + limit < len(items),
            "url": f"/v1/checkout/sessions/{session_id}/line_items",
        }

    def _handler_class(self):
        standin = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                with standin._lock:
                    behaviour = standin._behaviour
                    standin.requests.append(
                        {
                            "path": parts.path,
                            "query": query,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                        }
                    )
                if behaviour == "hang":
                    standin._release.wait(timeout=60)
                    self.close_connection = True
                    return
                segments = parts.path.strip("/").split("/")
                if behaviour.startswith("http:"):
                    status = int(behaviour.split(":", 1)[1])
                    self._answer(status, _error(status, f"stand-in error {status}"))
                elif (
                    len(segments) == 5
                    and segments[:3] == ["v1", "checkout", "sessions"]
                    and segments[4] == "line_items"
                ):
                    self._answer(*standin._page(segments[3], query))
                else:
                    self._answer(404, _error(404, f"Unrecognized request URL (GET: {parts.path})"))

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("request-id", f"req_standin{int(time.time() * 1000)}")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        return Handler


def _error(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": _ERROR_TYPES.get(status, "api_error"), "message": message}
    if code:
        error["code"] = code
    return {"error": error}
