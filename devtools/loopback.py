"""What the local stand-ins (TikTok's and Stripe's APIs) share: a threaded HTTP server on
127.0.0.1, started and stopped with the tests or `make run`, and a way to release answers that
a stand-in was told to hold ("hang")."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


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
