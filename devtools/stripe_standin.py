"""A local HTTP server standing in for Stripe's API, as far as the sender reads it: a checkout
session's line items (`GET /v1/checkout/sessions/{id}/line_items`), paginated with `limit` and
`starting_after`, the price's product expanded on `expand[]=data.price.product`; and the Events API's
list (`GET /v1/events`, events given to `add_events`), newest first, filtered by `type` (`*` a
wildcard), `types`, `created` and `delivery_success`, paginated with `limit`, `starting_after` and
`ending_before`. Each request must carry `Authorization: Bearer <key>`, the key `api_key` when one
is set; `refuse_events` answers the events list as Stripe does a restricted key without the Events
permission (403).

The objects have the shapes of Stripe's own (a `list` of `item`s, each with its `price` and its
`product`; errors as `{"error": {"type", "message"}}` with Stripe's status codes), so that the real
`stripe` library parses them. Behaviours: "ok", "http:N" (Stripe's error body with status N),
"hang" (accepts and never answers until released). Point STRIPE_API_BASE at `url`.
"""

import json
import operator
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devtools.loopback import LoopbackStandIn, QuietHandler

_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "invalid_request_error",
                404: "invalid_request_error", 429: "invalid_request_error"}  # fmt: skip
_NO_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization header, "
    "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/."
)
_NO_EVENT_READ = (
    "The provided key '{key}' does not have the required permissions for this endpoint on account "
    "'{account}'. Having the 'rak_event_read' permission would allow this request to continue."
)
_CREATED: dict[str, Callable[[int, int], bool]] = {
    "created": operator.eq, "created[gt]": operator.gt, "created[gte]": operator.ge,
    "created[lt]": operator.lt, "created[lte]": operator.le}  # fmt: skip
# stripe-python writes arrays as types[0]=...; curl users write types[]=...
_EVENTS_PARAMETERS = re.compile(
    r"(type|limit|starting_after|ending_before|delivery_success|created(\[(gt|gte|lt|lte)\])?"
    r"|(types|expand)\[\d*\])"
)


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


class _BadParameter(Exception):
    """A list request's parameter that Stripe answers with a 400."""

    def __init__(self, message: str, param: str, code: str | None = None):
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


class StripeStandIn(LoopbackStandIn):
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        account: str = "acct_1StandIn00000000",
    ):
        self.requests: list[dict[str, Any]] = []
        self.api_key = api_key  # None: any key is taken
        self.account = account
        self._line_items: dict[str, list[dict[str, Any]]] = {}
        self._events: list[dict[str, Any]] = []
        self._events_refused = False
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
            self._events.clear()
            self._events_refused = False
            self._behaviour = "ok"
        self._release.clear()

    def set_line_items(self, session_id: str, items: list[dict[str, Any]]) -> None:
        with self._lock:
            self._line_items[session_id] = items

    def add_events(self, events: list[dict[str, Any]]) -> None:
        """Stripe event objects, as Stripe's API returns them, for `GET /v1/events` to list."""
        with self._lock:
            self._events.extend(events)

    def refuse_events(self, refuse: bool = True) -> None:
        """Answer `GET /v1/events` with Stripe's 403 to a restricted key without the Events permission."""
        with self._lock:
            self._events_refused = refuse

    def _refusal(self, path: str, authorization: str | None) -> tuple[int, dict[str, Any]] | None:
        """Stripe's answer to a request its key does not allow, None if the key does."""
        scheme, _, key = (authorization or "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return 401, _error(401, _NO_KEY)
        with self._lock:
            expected, refused = self.api_key, self._events_refused
        if expected is not None and key != expected:
            return 401, _error(401, f"Invalid API Key provided: {_masked(key)}")
        if refused and path == "/v1/events":
            return 403, _error(403, _NO_EVENT_READ.format(key=_masked(key), account=self.account))
        return None

    def _events_page(self, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        try:
            return 200, self._list_events(query)
        except _BadParameter as bad:
            return 400, _error(400, bad.message, bad.code, bad.param)

    def _list_events(self, query: dict[str, list[str]]) -> dict[str, Any]:
        unknown = [name for name in query if not _EVENTS_PARAMETERS.fullmatch(name)]
        if unknown:
            raise _BadParameter(f"Received unknown parameter: {unknown[0]}", unknown[0], "parameter_unknown")
        one = {name: values[-1] for name, values in query.items()}
        types = {value for name, values in query.items() if name.startswith("types[") for value in values}
        for first, second in (("type", "types"), ("ending_before", "starting_after")):
            if {first, second} <= {name.partition("[")[0] for name in one}:
                raise _BadParameter(
                    f"You may only specify one of these parameters: {first}, {second}.", first
                )
        limit = _integer(one, "limit", 10)
        if not 1 <= limit <= 100:
            bound = "greater than or equal to 1" if limit < 1 else "less than or equal to 100"
            raise _BadParameter(f"This value must be {bound}.", "limit")
        bounds = [(compare, _integer(one, name, 0)) for name, compare in _CREATED.items() if name in one]
        pattern = re.compile(".*".join(map(re.escape, one["type"].split("*")))) if "type" in one else None
        delivered = one.get("delivery_success")
        if delivered not in (None, "true", "false"):
            raise _BadParameter(
                f"Invalid boolean: {delivered}", "delivery_success", "parameter_invalid_boolean"
            )

        def wanted(event: dict[str, Any]) -> bool:
            return (
                (pattern is None or pattern.fullmatch(event["type"]) is not None)
                and (not types or event["type"] in types)
                and all(compare(event["created"], bound) for compare, bound in bounds)
                and (delivered is None or (event.get("pending_webhooks", 0) == 0) == (delivered == "true"))
            )

        with self._lock:
            # newest first; of events created in the same second, the one added last first
            ordered = sorted(reversed(self._events), key=lambda event: -event["created"])
        cursor = next((name for name in ("starting_after", "ending_before") if name in one), None)
        at = next((i for i, event in enumerate(ordered) if cursor and event["id"] == one[cursor]), None)
        if cursor and at is None:
            raise _BadParameter(f"No such event: '{one[cursor]}'", cursor, "resource_missing")
        if cursor == "ending_before":
            candidates = [event for event in ordered[:at] if wanted(event)]
            page = candidates[-limit:]
        else:
            candidates = [event for event in ordered[0 if at is None else at + 1 :] if wanted(event)]
            page = candidates[:limit]
        return {"object": "list", "url": "/v1/events", "has_more": len(candidates) > limit, "data": page}

    def _page(self, session_id: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            items = self._line_items.get(session_id)
        if items is None:
            return 404, _error(404, f"No such checkout.session: '{session_id}'", "resource_missing")
        limit = min(max(int((query.get("limit") or ["10"])[0]), 1), 100)
        after = (query.get("starting_after") or [""])[0]
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

    def _handler_class(self) -> type[QuietHandler]:
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
                elif refusal := standin._refusal(parts.path, self.headers.get("authorization")):
                    self._answer(*refusal)
                elif parts.path == "/v1/events":
                    self._answer(*standin._events_page(query))
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


def _error(status: int, message: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": _ERROR_TYPES.get(status, "api_error"), "message": message}
    if code:
        error["code"] = code
    if param:
        error["param"] = param
    return {"error": error}


def _integer(one: dict[str, str], name: str, default: int) -> int:
    try:
        return int(one.get(name, default))
    except ValueError:
        raise _BadParameter(f"Invalid integer: {one[name]}", name, "parameter_invalid_integer") from None


def _masked(key: str) -> str:
    """An API key as Stripe's error messages show it: all but its last 4 characters masked."""
    return "*" * max(len(key) - 4, 0) + key[-4:]
