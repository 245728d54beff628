"""A local HTTP server standing in for Meta's Graph API (the Conversions API's events edge):
records requests, answers as told.

Serves POST /{version}/{pixel_id}/events; any other path gets a 404 with a Graph API error. A
request whose JSON body carries no `access_token` is recorded and refused (HTTP 400, error code
100), as Meta would refuse it, so that a token sent in the URL or a header fails the test that
sent it.

Behaviours: "ok" (events_received = len(data)), "error:CODE" (HTTP 400 with a Graph API error
of that code; Meta answers throttling codes such as 4, 17, 32 and 613 with HTTP 400 too),
"http:N" (HTTP status N, a text body), "garbage" (HTTP 200, not JSON), "hang" (accepts and never
answers until released), "trickle-headers:S" (the "ok" answer, status line and headers included,
one byte every S seconds). A script of behaviours can be queued; the last one sticks. Requests
refused for their path or their missing token do not use up a behaviour.
`accept_only(token, refusal="error:190")` refuses every other `access_token`.

A request carries many events (`data`): `refuse_event(event_id)` makes a request holding that
event be refused as a whole where it would have been answered "ok", as Meta refuses a request
with one invalid event: HTTP 400, error code 100 (subcode 2804003), no event of it taken.
`events()` are every event received, `accepted_events()` those of the requests answered with
success.
"""

import json
import re
from typing import Any
from urllib.parse import urlsplit

from devtools.loopback import QuietHandler, ScriptedStandIn

EVENTS_PATH = re.compile(r"^/[^/]+/[^/]+/events/?$")
FBTRACE_ID = "AStandInFbTraceId"
INVALID_PARAMETER_CODE = 100  # the whole request is refused
INVALID_EVENT_SUBCODE = 2804003


class MetaStandIn(ScriptedStandIn):
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        super().__init__(self._handler_class(), host, port)

    @property
    def url_base(self) -> str:
        """What META_API_BASE_URL is set to (MetaSettings.events_url adds version, pixel, /events)."""
        return self.base_url

    def access_tokens(self) -> list[str | None]:
        """The body's `access_token` of each request (None where it had none)."""
        return [body.get("access_token") for body in self._bodies(keep_unreadable=True)]

    def paths(self) -> list[str]:
        """The request target of each request, query string included."""
        return [request.path for request in list(self.requests)]

    def _bodies(self, keep_unreadable: bool = False) -> list[dict[str, Any]]:
        bodies = []
        for request in list(self.requests):
            body = _json_object(request.body)
            if body is not None or keep_unreadable:
                bodies.append(body or {})
        return bodies

    def _handler_class(self):
        standin = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = standin.record(self)
                if not EVENTS_PATH.match(urlsplit(self.path).path):
                    self._answer_error(404, 2500, f"Unknown path components: {urlsplit(self.path).path}")
                    return
                payload = _json_object(body)
                token = payload.get("access_token") if payload else None
                if not isinstance(token, str) or not token:
                    self._answer_error(400, 100, "(#100) The access_token parameter is required in the body")
                    return
                behaviour = standin._behaviour_for(token)
                if behaviour == "hang":
                    standin.hold(self)
                    return
                if behaviour.startswith("trickle-headers:"):
                    answer = json.dumps(_ok_answer(payload)).encode()
                    every = float(behaviour.split(":", 1)[1])
                    standin.take(body)
                    standin.trickle_answer(self, 200, answer, "application/json", every)
                    return
                if behaviour == "ok" and standin.refused_event_in(body) is not None:
                    self._answer_error(
                        400, INVALID_PARAMETER_CODE, "Invalid parameter", subcode=INVALID_EVENT_SUBCODE
                    )
                elif behaviour.startswith("error:"):
                    code = int(behaviour.split(":", 1)[1])
                    self._answer_error(400, code, f"(#{code}) stand-in error {code}")
                elif behaviour.startswith("http:"):
                    status = int(behaviour.split(":", 1)[1])
                    self._answer(status, f"stand-in HTTP {status}".encode(), "text/plain")
                elif behaviour == "garbage":
                    self._answer(200, b"<html>bad gateway</html>", "text/html")
                else:
                    standin.take(body)
                    self._answer(200, json.dumps(_ok_answer(payload)).encode(), "application/json")

            def _answer_error(self, status: int, code: int, message: str, subcode: int = 0) -> None:
                error = {
                    "message": message,
                    "type": "OAuthException",
                    "code": code,
                    "error_subcode": subcode,
                    "fbtrace_id": FBTRACE_ID,
                }
                self._answer(status, json.dumps({"error": error}).encode(), "application/json")

            def _answer(self, status: int, raw: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        return Handler


def _ok_answer(payload: dict[str, Any] | None) -> dict[str, Any]:
    data = (payload or {}).get("data")
    received = len(data) if isinstance(data, list) else 0
    return {"events_received": received, "messages": [], "fbtrace_id": FBTRACE_ID}


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
