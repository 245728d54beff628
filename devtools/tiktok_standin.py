"""A local HTTP server standing in for TikTok's Events API: records requests, answers as told.

Behaviours: "ok" (code 0), "code:N" (HTTP 200 with business error code N), "http:N" (HTTP status N),
"garbage" (HTTP 200, not JSON), "hang" (accepts and never answers until released),
"slow-headers:S" (answers ok after S seconds), "slow-body:H:S" (sends the headers and a few
bytes after H seconds, the rest S seconds later), "trickle:S" (the headers at once, then the
answer's body one byte every S seconds), "trickle-headers:S" (the whole answer, status line and
headers included, one byte every S seconds). A script of behaviours can be queued; the last one
sticks. `accept_only(token, refusal="code:40105")` refuses every other Access-Token.

A request carries many events (`data`): `refuse_event(event_id)` makes a request holding that
event be refused as a whole where it would have been answered "ok", as TikTok refuses a request
with an invalid event: HTTP 200, code 40002, no event of it taken. `events()` are every event
received, `accepted_events()` those of the requests answered with success.
"""

import json

from devtools.loopback import QuietHandler, ScriptedStandIn

PATH = "/open_api/v1.3/event/track/"
INVALID_EVENT_CODE = 40002  # TikTok's "invalid parameter": the whole request is refused
REQUEST_ID = "req-standin"


class TikTokStandIn(ScriptedStandIn):
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        super().__init__(self._handler_class(), host, port)

    @property
    def url(self) -> str:
        return f"{self.base_url}{PATH}"

    def _handler_class(self):
        standin = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                behaviour = standin._behaviour_for(self.headers.get("Access-Token"))
                body = standin.record(self)
                if behaviour == "hang":
                    standin.hold(self)
                    return
                if behaviour.startswith("slow-headers:"):
                    standin._release.wait(timeout=float(behaviour.split(":", 1)[1]))
                    behaviour = "ok"
                if behaviour.startswith("trickle-headers:"):
                    raw = json.dumps({"code": 0, "message": "OK", "request_id": REQUEST_ID, "data": {}})
                    every = float(behaviour.split(":", 1)[1])
                    standin.take(body)
                    standin.trickle_answer(self, 200, raw.encode(), "application/json", every)
                    return
                if behaviour.startswith("trickle:"):
                    standin.take(body)
                    self._trickle(float(behaviour.split(":", 1)[1]))
                    return
                if behaviour.startswith("slow-body:"):
                    _, headers_after, rest_after = behaviour.split(":")
                    self._answer_slowly(body, float(headers_after), float(rest_after))
                    return
                status, payload = 200, {"code": 0, "message": "OK", "request_id": REQUEST_ID, "data": {}}
                refused = standin.refused_event_in(body) if behaviour == "ok" else None
                if refused is not None:
                    payload = {
                        "code": INVALID_EVENT_CODE,
                        "message": f"Invalid value for data.event_id: {refused} (stand-in)",
                        "request_id": REQUEST_ID,
                        "data": {},
                    }
                elif behaviour == "ok":
                    standin.take(body)
                if behaviour.startswith("code:"):
                    code = int(behaviour.split(":", 1)[1])
                    payload = {"code": code, "message": f"stand-in error {code}", "request_id": REQUEST_ID}
                elif behaviour.startswith("http:"):
                    status = int(behaviour.split(":", 1)[1])
                    payload = {"message": "stand-in HTTP error"}
                raw = b"<html>bad gateway</html>" if behaviour == "garbage" else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _trickle(self, every: float) -> None:
                raw = json.dumps({"code": 0, "message": "OK", "request_id": REQUEST_ID}).encode()
                self.send_response(200)
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                standin.trickle(self, raw, every)

            def _answer_slowly(self, body: bytes, headers_after: float, pause: float) -> None:
                if standin._release.wait(timeout=headers_after):
                    return
                standin.take(body)
                raw = json.dumps({"code": 0, "message": "OK", "request_id": REQUEST_ID}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw[:5])
                self.wfile.flush()
                if not standin._release.wait(timeout=pause):
                    self.wfile.write(raw[5:])
                self.close_connection = True

        return Handler
