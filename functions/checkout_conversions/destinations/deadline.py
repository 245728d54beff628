"""One deadline for the whole of an HTTP request: waiting for a connection, connecting, the TLS
handshake, sending, waiting for the answer's headers and reading its body."""

# httpx's timeouts bound each socket operation, so a server that answers one byte at a time, each
# within the timeout, is never cut off. The client's transport (`transport`) talks to the network
# through `DeadlineBackend`, an httpcore network backend whose streams clamp the timeout of every
# connect, handshake, read and write to the time left before the deadline of the request in
# progress, and raise httpcore's timeout (ConnectTimeout, ReadTimeout, WriteTimeout, which httpx
# raises as its own) once it has passed. httpcore then closes the connection, as after any timeout.
#
# The deadline is a context variable set by `bounded` around the request: the client is shared by
# threads, each sending its own requests (httpx's sync client does all of a request's I/O in the
# calling thread), and a pooled connection is bounded by the deadline of whichever request is using
# it. Outside `bounded`, the timeouts are httpx's own. Not bounded: the DNS lookup (getaddrinfo
# cannot be interrupted without a thread), as before.

import socket
import ssl
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

_deadline: ContextVar[float | None] = ContextVar("http_request_deadline", default=None)

# A write is sent in pieces, each with the time then left: httpcore's socket stream would give each
# `send` of one piece the whole timeout it was given.
WRITE_PIECE_BYTES = 16 * 1024


@contextmanager
def bounded(seconds: float) -> Iterator[None]:
    """The requests made within, on a client using `transport`, end within `seconds` from now (or
    by the deadline already set around this one, if earlier)."""
    deadline = time.monotonic() + seconds
    outer = _deadline.get()
    token = _deadline.set(deadline if outer is None else min(outer, deadline))
    try:
        yield
    finally:
        _deadline.reset(token)


def time_left(timeout: float | None, expired: type[httpcore.TimeoutException]) -> float | None:
    """`timeout`, no longer than the time left before the current deadline; raises `expired` if
    that has passed. Without a deadline, `timeout` as given."""
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the request's deadline has passed")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A connection's stream whose every operation ends by the current request's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, time_left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        for start in range(0, len(buffer), WRITE_PIECE_BYTES):
            piece = buffer[start : start + WRITE_PIECE_BYTES]
            self._stream.write(piece, time_left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        try:
            left = time_left(timeout, httpcore.ConnectTimeout)
        except httpcore.ConnectTimeout:
            self._stream.close()  # as the stream's own start_tls does when it fails
            raise
        return DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, left))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's network backend (or `inner`), its connections and streams bounded by the current
    request's deadline."""

    def __init__(self, inner: httpcore.NetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        # Each address in turn, with the time left: connecting to the name would give every
        # address the whole timeout (socket.create_connection).
        failure: Exception = httpcore.ConnectError(f"no address for {host}")
        for address in _addresses(host, port):
            left = time_left(timeout, httpcore.ConnectTimeout)
            try:
                stream = self._inner.connect_tcp(address, port, left, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
                continue
            return DeadlineStream(stream)
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        left = time_left(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(self._inner.connect_unix_socket(path, left, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _addresses(host: str, port: int) -> list[str]:
    """The host's addresses, in the resolver's order (an address is its own)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise httpcore.ConnectError(str(error)) from error
    return list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in found))


def transport(limits: httpx.Limits, inner: httpcore.NetworkBackend | None = None) -> httpx.HTTPTransport:
    """httpx's transport (HTTP/1.1, certificates verified, no proxy: a client given a transport
    takes none from the environment either, so that every request goes through this one), on a
    `DeadlineBackend`."""
    ssl_context = httpx.create_ssl_context()
    built = httpx.HTTPTransport(verify=ssl_context, limits=limits)
    # httpx.HTTPTransport takes no network backend, but it is a thin layer over the httpcore
    # connection pool it keeps here, which does.
    if type(getattr(built, "_pool", None)) is not httpcore.ConnectionPool:
        raise RuntimeError("httpx.HTTPTransport no longer keeps its httpcore.ConnectionPool in _pool")
    built._pool = httpcore.ConnectionPool(
        ssl_context=ssl_context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=DeadlineBackend(inner),
    )
    return built
