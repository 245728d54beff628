"""What the local stand-ins (TikTok's, Meta's and Stripe's APIs) share: a threaded HTTP server on
127.0.0.1, started and stopped with the tests or `make run`, and a way to release answers that
a stand-in was told to hold ("hang")."""

import json
import threading
from dataclasses import dataclass
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

    def behave(self, *script: str) -> None:
        """Answer the next requests with these behaviours in turn; the last one repeats. Forgets
        the requests received so far, and lets go of none held by an earlier "hang"."""
        with self._lock:
            self._script = list(script) or ["ok"]
            self.requests.clear()
        self._release.clear()

    def _next_behaviour(self) -> str:
        with self._lock:
            return self._script.pop(0) if len(self._script) > 1 else self._script[0]
