"""What the local stand-ins (TikTok's, Meta's and Stripe's APIs) share: a threaded HTTP server on
127.0.0.1, started and stopped with the tests or `make run`, a way to release answers that
a stand-in was told to hold ("hang"), and answers trickled one byte at a time."""

import json
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class QuietHandler(BaseHTTPRequestHandler):
    """A stand-in's request handler: HTTP/1.1 keep-alive, answers sent at once, no access log."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # answer at once, not after a 40 ms delayed ACK

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    # A burst of connections (concurrent senders, replays) waits in the backlog instead of being
    # refused, as it would at the real API: the default of 5 turned a burst into ConnectTimeouts.
    request_queue_size = 128


class LoopbackStandIn:
    def __init__(self, handler_class: type[BaseHTTPRequestHandler], host: str = "127.0.0.1", port: int = 0):
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = _Server((host, port), handler_class)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def release_hung(self) -> None:
        self._release.set()


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class ScriptedStandIn(LoopbackStandIn):
    """A stand-in for an ad platform's API: it records each request and answers with the next
    behaviour of its script (the last one repeats). What a behaviour means is the subclass's.

    Both platforms take many events in one request (its JSON body's `data` array): `events()` are
    every event of every request, `accepted_events()` those of the requests answered with success,
    and `refuse_event(event_id)` makes the stand-in refuse as a whole any request that holds that
    event, as the platform refuses a request with one invalid event in it."""

    def __init__(self, handler_class: type[BaseHTTPRequestHandler], host: str = "127.0.0.1", port: int = 0):
        self.requests: list[RecordedRequest] = []
        self._script: list[str] = ["ok"]
        self._tokens: frozenset[str] | None = None  # accept_only: the tokens taken, else any
        self._refusal = ""
        self._refused_events: set[str] = set()  # refuse_event: requests holding these are refused
        self._accepted: list[dict[str, Any]] = []  # the events of the requests answered with success
        super().__init__(handler_class, host, port)

    def events(self) -> list[dict[str, Any]]:
        """Every event of every request's `data[]`, in the order received (a body that is not a
        JSON object with a `data` list holds none)."""
        return [event for request in list(self.requests) for event in events_of(request.body)]

    def event_ids(self) -> list[str | None]:
        """The `event_id` of every event received, in order, once per request that carried it."""
        return [event.get("event_id") for event in self.events()]

    def accepted_events(self) -> list[dict[str, Any]]:
        """The events of the requests answered with success, in the order answered: what the
        platform took. A request refused (for a bad event, its token, an error) takes none."""
        with self._lock:
            return list(self._accepted)

    def accepted_event_ids(self) -> list[str | None]:
        return [event.get("event_id") for event in self.accepted_events()]

    def refuse_event(self, *event_ids: str) -> None:
        """From now until the next `behave`, a request whose `data` holds any of these events is
        refused as a whole (the subclass's refusal of an invalid event) where it would have been
        answered "ok" (or "slow-headers"); it uses up the script as any request does. A request of
        the other events alone is answered as the script says."""
        with self._lock:
            self._refused_events |= set(event_ids)

    def refused_event_in(self, body: bytes) -> str | None:
        """The first event of this request body that `refuse_event` named, or None."""
        with self._lock:
            refused = set(self._refused_events)
        for event in events_of(body):
            if event.get("event_id") in refused:
                return event["event_id"]
        return None

    def take(self, body: bytes) -> None:
        """The request is answered with success: its events are the platform's."""
        events = events_of(body)
        with self._lock:
            self._accepted.extend(events)

    def record(self, handler: BaseHTTPRequestHandler) -> bytes:
        """Read the request's body and keep the request; returns the body."""
        body = handler.rfile.read(int(handler.headers.get("content-length") or 0))
        headers = {name.lower(): value for name, value in handler.headers.items()}
        with self._lock:
            self.requests.append(RecordedRequest(handler.path, headers, body))
        return body

    def hold(self, handler: BaseHTTPRequestHandler) -> None:
        """The "hang" behaviour: no answer until released (or stopped), then the connection closes."""
        self._release.wait(timeout=60)
        handler.close_connection = True

    def trickle(self, handler: BaseHTTPRequestHandler, raw: bytes, every: float) -> None:
        """Write `raw` to the client one byte every `every` seconds, until all of it is written, the
        stand-in is released (or stopped) or the client hangs up; then the connection closes."""
        try:
            for byte in raw:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                if self._release.wait(timeout=every):
                    break
        except OSError:
            pass  # the client gave up waiting: what a trickle is for
        handler.close_connection = True

    def trickle_answer(
        self, handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str, every: float
    ) -> None:
        """The "trickle-headers" behaviour: the whole answer, status line and headers included,
        one byte every `every` seconds, so that no single read waits long."""
        head = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
            f"content-type: {content_type}\r\ncontent-length: {len(body)}\r\n\r\n"
        )
        self.trickle(handler, head.encode("ascii") + body, every)

    def behave(self, *script: str) -> None:
        """Answer the next requests with these behaviours in turn; the last one repeats. Forgets
        the requests received so far, the events accepted and those to refuse (`refuse_event`),
        and lets go of none held by an earlier "hang"."""
        with self._lock:
            self._script = list(script) or ["ok"]
            self._tokens = None
            self._refused_events = set()
            self._accepted.clear()
            self.requests.clear()
        self._release.clear()

    def accept_only(self, *tokens: str, refusal: str) -> None:
        """From now until the next `behave`, a request carrying any other access token is answered
        with the behaviour `refusal` (the platform's own refusal of a token), and does not use up
        the script. `accept_only("new-token", ...)` stands for a token rotated at the platform."""
        with self._lock:
            self._tokens = frozenset(tokens)
            self._refusal = refusal

    def _behaviour_for(self, token: str | None) -> str:
        """The behaviour a request carrying `token` is answered with."""
        with self._lock:
            if self._tokens is not None and token not in self._tokens:
                return self._refusal
        return self._next_behaviour()

    def _next_behaviour(self) -> str:
        with self._lock:
            return self._script.pop(0) if len(self._script) > 1 else self._script[0]


def events_of(body: bytes) -> list[dict[str, Any]]:
    """The events of a platform request's body: the objects of its `data` array."""
    try:
        request = json.loads(body)
    except ValueError:
        return []
    data = request.get("data") if isinstance(request, dict) else None
    return [event for event in data if isinstance(event, dict)] if isinstance(data, list) else []
