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


class LoopbackStandIn:
    def __init__(self, handler_class: type[BaseHTTPRequestHandler], host: str = "127.0.0.1", port: int = 0):
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = ThreadingHTTPServer((host, port), handler_class)
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
    behaviour of its script (the last one repeats). What a behaviour means is the subclass's."""

    def __init__(self, handler_class: type[BaseHTTPRequestHandler], host: str = "127.0.0.1", port: int = 0):
        self.requests: list[RecordedRequest] = []
        self._script: list[str] = ["ok"]
        self._tokens: frozenset[str] | None = None  # accept_only: the tokens taken, else any
        self._refusal = ""
        super().__init__(handler_class, host, port)

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
        the requests received so far, and lets go of none held by an earlier "hang"."""
        with self._lock:
            self._script = list(script) or ["ok"]
            self._tokens = None
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
