"""One deadline per request (destinations.deadline): the network backend clamps the timeout of every
connect, handshake, read and write to the time left, whatever httpx asks for each, so an answer
trickled one byte at a time cannot hold a POST past its timeout. Without sockets: fake httpcore
streams stand in for the network (the sockets are tested in tests/integration/test_sender_tiktok.py)."""

import socket
import threading
import time

import httpcore
import httpx
import pytest

from checkout_conversions.destinations import deadline, http
from checkout_conversions.destinations.base import Answer, Verdict

ANSWER = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"code": 0}'


class FakeStream(httpcore.NetworkStream):
    """A connection whose server sends `answer` one byte per read, each after `every` seconds (a
    read given less time waits that long and times out, as a socket's would)."""

    def __init__(self, answer: bytes = ANSWER, every: float = 0.0):
        self.answer = answer
        self.every = every
        self.read_timeouts: list[float | None] = []
        self.writes: list[tuple[bytes, float | None]] = []
        self.closed = False

    def read(self, max_bytes, timeout=None):
        self.read_timeouts.append(timeout)
        if timeout is not None and timeout < self.every:
            time.sleep(timeout)
            raise httpcore.ReadTimeout("timed out")
        time.sleep(self.every)
        size = 1 if self.every else max_bytes
        taken, self.answer = self.answer[:size], self.answer[size:]
        return taken

    def write(self, buffer, timeout=None):
        self.writes.append((buffer, timeout))

    def close(self):
        self.closed = True

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        self.tls_timeout = timeout
        return self

    def get_extra_info(self, info):
        return None


class FakeBackend(httpcore.NetworkBackend):
    def __init__(self, *streams: FakeStream, refused: set[str] = frozenset()):
        self.streams = list(streams)
        self.refused = refused
        self.connects: list[tuple[str, int, float | None]] = []

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        self.connects.append((host, port, timeout))
        if host in self.refused:
            raise httpcore.ConnectError("refused")
        return self.streams.pop(0)


def client_on(backend: FakeBackend) -> httpx.Client:
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=2)
    return httpx.Client(transport=deadline.transport(limits, inner=backend))


def accept(status: int, body: bytes) -> Answer:
    return Answer(Verdict.ACCEPTED, message=f"{status} {body.decode()}")


# --------------------------------------------------------------------------- the clamp


def test_without_a_deadline_the_timeout_is_httpxs_own():
    assert deadline.time_left(5.0, httpcore.ReadTimeout) == 5.0
    assert deadline.time_left(None, httpcore.ReadTimeout) is None


def test_within_a_deadline_no_timeout_is_longer_than_the_time_left():
    with deadline.bounded(1.0):
        assert deadline.time_left(30.0, httpcore.ReadTimeout) <= 1.0
        assert 0.9 < deadline.time_left(None, httpcore.ReadTimeout) <= 1.0
        assert deadline.time_left(0.25, httpcore.ReadTimeout) == 0.25  # a shorter one stands
    assert deadline.time_left(30.0, httpcore.ReadTimeout) == 30.0  # and it ends with the block


@pytest.mark.parametrize("expired", [httpcore.ConnectTimeout, httpcore.ReadTimeout, httpcore.WriteTimeout])
def test_once_the_deadline_has_passed_every_operation_times_out(expired):
    with deadline.bounded(0.01), pytest.raises(expired):
        time.sleep(0.02)
        deadline.time_left(30.0, expired)


def test_a_nested_deadline_never_extends_the_outer_one():
    with deadline.bounded(0.5), deadline.bounded(30.0):
        assert deadline.time_left(None, httpcore.ReadTimeout) <= 0.5


def test_each_thread_has_its_own_deadline():
    seen: dict[str, float | None] = {}

    def request(name: str, seconds: float) -> None:
        with deadline.bounded(seconds):
            time.sleep(0.05)  # both deadlines set at once
            seen[name] = deadline.time_left(None, httpcore.ReadTimeout)

    threads = [threading.Thread(target=request, args=(name, s)) for name, s in (("a", 1.0), ("b", 9.0))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert seen["a"] <= 1.0 < 8.0 < seen["b"] <= 9.0
    assert deadline.time_left(None, httpcore.ReadTimeout) is None  # none leaks to this thread


# --------------------------------------------------------------------------- the stream and the backend


def test_reads_and_writes_are_given_the_time_left():
    fake = FakeStream()
    stream = deadline.DeadlineStream(fake)
    with deadline.bounded(1.0):
        stream.read(10, timeout=5.0)
        stream.write(b"x" * (2 * deadline.WRITE_PIECE_BYTES + 1), timeout=5.0)

    assert fake.read_timeouts[0] <= 1.0
    assert [len(piece) for piece, _ in fake.writes] == [deadline.WRITE_PIECE_BYTES] * 2 + [1]
    assert all(timeout <= 1.0 for _, timeout in fake.writes)


def test_past_the_deadline_the_stream_is_not_even_asked():
    fake = FakeStream()
    stream = deadline.DeadlineStream(fake)
    with deadline.bounded(0.01):
        time.sleep(0.02)
        with pytest.raises(httpcore.ReadTimeout):
            stream.read(10, timeout=5.0)
        with pytest.raises(httpcore.WriteTimeout):
            stream.write(b"x", timeout=5.0)
        with pytest.raises(httpcore.ConnectTimeout):
            stream.start_tls(None, "example.com", timeout=5.0)

    assert fake.read_timeouts == [] and fake.writes == []
    assert fake.closed  # a handshake not started leaves no connection open


def test_the_tls_handshake_is_given_the_time_left_and_its_stream_is_bounded_too():
    fake = FakeStream()
    with deadline.bounded(1.0):
        tls = deadline.DeadlineStream(fake).start_tls(None, "example.com", timeout=5.0)

    assert isinstance(tls, deadline.DeadlineStream)
    assert fake.tls_timeout <= 1.0


def test_each_address_is_tried_in_turn_with_the_time_left(monkeypatch):
    def two_addresses(host, port, *args, **kwargs):
        assert host == "api.example.com"
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2001:db8::1", port, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.1", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", two_addresses)
    fake = FakeStream()
    backend = FakeBackend(fake, refused={"2001:db8::1"})
    with deadline.bounded(1.0):
        stream = deadline.DeadlineBackend(backend).connect_tcp("api.example.com", 443, timeout=5.0)

    assert isinstance(stream, deadline.DeadlineStream)
    assert [(host, port) for host, port, _ in backend.connects] == [("2001:db8::1", 443), ("192.0.2.1", 443)]
    assert all(timeout <= 1.0 for _, _, timeout in backend.connects)


def test_a_name_that_does_not_resolve_is_a_connect_error(monkeypatch):
    def no_such_name(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    with pytest.raises(httpcore.ConnectError):
        deadline.DeadlineBackend(FakeBackend()).connect_tcp("nowhere.invalid", 443, timeout=5.0)


# --------------------------------------------------------------------------- through httpx and post


def test_an_answer_in_time_is_classified():
    fake = FakeStream()
    answer = http.post(client_on(FakeBackend(fake)), "http://127.0.0.1/track", b"{}", {}, 1.0, accept)

    assert answer == accept(200, b'{"code": 0}')
    assert all(timeout <= 1.0 for timeout in fake.read_timeouts)


def test_an_answer_trickled_one_byte_at_a_time_ends_at_the_deadline():
    # Each byte comes well within httpx's 0.3 s read timeout: per read, the answer (100 bytes,
    # 2 s in all) would be read in full. One deadline for the request ends it at 0.3 s.
    fake = FakeStream(every=0.02)
    client = client_on(FakeBackend(fake))

    started = time.monotonic()
    answer = http.post(client, "http://127.0.0.1/track", b"{}", {}, 0.3, accept)
    elapsed = time.monotonic() - started

    assert answer.verdict is Verdict.RETRY
    assert answer.message == "timed out (ReadTimeout, 0.3s)"
    assert 0.28 < elapsed < 0.6  # not the 2 s the answer takes
    assert fake.answer  # the rest of the answer was never waited for
    assert fake.closed  # and the connection was closed, not returned to the pool
