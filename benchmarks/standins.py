"""The loopback stand-ins, in a process of their own: moto DynamoDB (and its Streams API), a
counting proxy in front of it, the TikTok and Meta stand-ins (devtools.tiktok_standin,
devtools.meta_standin) and a UDP sink for X-Ray segments, all on 127.0.0.1.

Why a separate process: on Lambda the function's process does only the function's work, and
DynamoDB and TikTok are elsewhere. In one process the stand-ins' threads would compete with the
function for the GIL and add their work to its latency. Here they run on the other core.

The counting proxy is a ThreadingHTTPServer that forwards every request to moto unchanged and
counts it by its X-Amz-Target (TransactWriteItems, UpdateItem, ...), with the time moto took;
DynamoDB Streams requests are counted as `Streams.GetRecords` etc. AWS_ENDPOINT_URL_DYNAMODB
points the functions at the proxy, so the counts are taken at the HTTP boundary, whatever the
code above it does. The TikTok and Meta stand-ins' requests are also timed on arrival
(CLOCK_MONOTONIC, which every process on the machine shares), for the sender's latency.

Two things in moto 5.2 are fixed here (not in the product, and only in this process), because
they would otherwise decide the results:
  * TransactWriteItems deep-copies both whole tables on every call to be able to roll back, so
    its cost grows with the table: about 9 ms on empty tables, 113 ms at 1,600 sessions
    (measured here). For transactions of Put and ConditionCheck only (what the function sends),
    the snapshot copies the table's item index instead of every item: the same rollback, O(1)
    per stored item instead of a deep copy.
  * Nothing serialises concurrent requests: a cancelled transaction (a duplicate) puts back the
    whole table as it was when it started, erasing what concurrent requests wrote meanwhile.
    One lock now makes each DynamoDB operation atomic, as DynamoDB's are.
The deep copy also copies the table's stream shard, and a rollback (every duplicate) installs
that copy: the shard iterators a stream poller holds then point at the old shard, which never
gets another record (checked with moto 5.2.5; devtools/stream_mapping asks for a new iterator
at every poll for that reason). The snapshot above shares the shard: the stream goes on.
`--moto-as-is` (or BENCH_MOTO_AS_IS=1) leaves moto untouched, to see the difference.

Python's cyclic garbage collector is off in this process: moto's heap grows with every item, and
a full collection paused moto for 40-120 ms on about 1.5 % of UpdateItems (measured), which
showed up as the function's p99. The benchmarks ask for a collection (`collect`) between
measurements instead. All stand-in sockets are TCP_NODELAY (see `serve`): as shipped, the
TikTok stand-in's answers each wait about 40 ms for a delayed ACK.

Run by the benchmarks through `StandIns()`; the control channel is a multiprocessing
connection on 127.0.0.1 with a random key.
"""

import gc
import http.client
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Client, Listener
from typing import Any

HOST = "127.0.0.1"
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
)
_SET_BY_US = frozenset({"content-length", "server", "date"})


# --- counting proxy ---------------------------------------------------------------------------


class CountingProxy:
    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.durations: dict[str, list[float]] = defaultdict(list)
        # Answers the client no longer waited for (its read timeout: botocore then retries).
        self.abandoned: Counter[str] = Counter()
        self._server = ThreadingHTTPServer((HOST, 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}"

    def start(self) -> "CountingProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()
            self.durations.clear()
            self.abandoned.clear()

    def record(self, target: str, seconds: float) -> None:
        with self._lock:
            self.counts[target] += 1
            self.durations[target].append(seconds)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "counts": dict(self.counts),
                "seconds": {target: sum(values) for target, values in self.durations.items()},
                "abandoned": dict(self.abandoned),
            }

    def all_durations(self) -> dict[str, list[float]]:
        with self._lock:
            return {target: list(values) for target, values in self.durations.items()}

    def _handler_class(self) -> type:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True
            upstream: http.client.HTTPConnection | None = None

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self._relay()

            def do_GET(self) -> None:
                self._relay()

            def finish(self) -> None:
                if self.upstream is not None:
                    self.upstream.close()
                super().finish()

            def _relay(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                target = _label(self.headers.get("x-amz-target") or "(no target)")
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                started = time.perf_counter()
                try:
                    status, reason, answer_headers, data = self._forward(headers, body)
                except (OSError, http.client.HTTPException) as error:
                    status, reason, answer_headers = 502, "Bad Gateway", []
                    data = json.dumps({"proxy_error": repr(error)}).encode()
                proxy.record(target, time.perf_counter() - started)
                self.send_response(status, reason)
                for name, value in answer_headers:
                    if name.lower() not in _HOP_BY_HOP | _SET_BY_US:
                        self.send_header(name, value)
                self.send_header("content-length", str(len(data)))
                try:
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
                    with proxy._lock:
                        proxy.abandoned[target] += 1
                    self.close_connection = True

            def _forward(self, headers: dict[str, str], body: bytes | None) -> tuple:
                for attempt in (1, 2):  # a kept-alive connection moto closed: reconnect once
                    if self.upstream is None:
                        self.upstream = http.client.HTTPConnection(HOST, proxy.upstream_port, timeout=30)
                    try:
                        self.upstream.request(self.command, self.path, body=body, headers=headers)
                        answer = self.upstream.getresponse()
                        data = answer.read()
                    except (OSError, http.client.HTTPException):
                        self.upstream.close()
                        self.upstream = None
                        if attempt == 2:
                            raise
                        continue
                    if answer.will_close:
                        self.upstream.close()
                        self.upstream = None
                    return answer.status, answer.reason, answer.getheaders(), data
                raise AssertionError("unreachable")

        return Handler


def _label(amz_target: str) -> str:
    """`DynamoDB_20120810.UpdateItem` -> UpdateItem; `DynamoDBStreams_20120810.GetRecords` ->
    Streams.GetRecords (the poller's requests: in AWS, Lambda's own)."""
    service, _, operation = amz_target.rpartition(".")
    return f"Streams.{operation}" if service.startswith("DynamoDBStreams") else operation


# --- the ad platforms' arrivals, and X-Ray's segments -------------------------------------------


class TimedRequests(list):
    """A platform stand-in's list of requests (TikTok's, Meta's), noting when each arrived (its
    body read, before the answer): the stand-in appends to it, `behave` clears it. Both platforms
    carry their events in the body's `data`, each with its `event_id`."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, Any]] = []

    def append(self, request: Any) -> None:
        self.arrivals.append((time.perf_counter(), request))
        super().append(request)

    def clear(self) -> None:
        self.arrivals.clear()
        super().clear()

    def timed_event_ids(self) -> list[tuple[float, list[str]]]:
        result = []
        for arrived, request in list(self.arrivals):
            try:
                ids = [str(event.get("event_id")) for event in request.json()["data"]]
            except (ValueError, KeyError, TypeError, AttributeError):
                ids = []
            result.append((arrived, ids))
        return result


class UdpSink:
    """Where the X-Ray SDK sends its segments (AWS_XRAY_DAEMON_ADDRESS): counted, dropped."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind((HOST, 0))
        self.datagrams = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def address(self) -> str:
        return f"{HOST}:{self._socket.getsockname()[1]}"

    def start(self) -> "UdpSink":
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            try:
                self._socket.recv(65536)
            except OSError:
                return
            self.datagrams += 1

    def stop(self) -> None:
        self._socket.close()


# --- moto, made atomic and cheap to snapshot ----------------------------------------------------


def harden_moto() -> None:
    import copy as real_copy

    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    lock = threading.RLock()
    local = threading.local()

    def snapshot(table: Table) -> Table:
        copy = real_copy.copy(table)
        items: defaultdict = defaultdict(dict)
        if table.range_key_attr is None:
            items.update(table.items)
        else:
            items.update({hash_key: dict(ranges) for hash_key, ranges in table.items.items()})
        copy.items = items
        return copy

    class _Copy:
        copy = staticmethod(real_copy.copy)

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            if getattr(local, "put_only", False) and isinstance(value, Table):
                return snapshot(value)
            return real_copy.deepcopy(value, memo)

    models.copy = _Copy  # the module's `copy.deepcopy(...)` now resolves here

    backend = models.DynamoDBBackend
    original_transact = backend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        put_only = all(next(iter(item)) in ("Put", "ConditionCheck") for item in transact_items)
        with lock:
            local.put_only = put_only
            try:
                return original_transact(self, transact_items)
            finally:
                local.put_only = False

    backend.transact_write_items = transact_write_items

    def serialised(method: Any) -> Any:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(self, *args, **kwargs)

        call.__name__ = method.__name__
        return call

    for name in (
        "put_item",
        "update_item",
        "delete_item",
        "get_item",
        "query",
        "scan",
        "batch_get_item",
        "transact_get_items",
        "create_table",
        "delete_table",
    ):
        if hasattr(backend, name):
            setattr(backend, name, serialised(getattr(backend, name)))


# --- the stand-ins' process -------------------------------------------------------------------


def serve() -> None:
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from moto.server import ThreadedMotoServer

    from devtools.meta_standin import MetaStandIn
    from devtools.tiktok_standin import TikTokStandIn

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    gc.disable()  # see the module's docstring; `collect` runs it between measurements
    # http.server writes an answer's headers and body in two segments: with Nagle's algorithm and
    # the client's delayed ACK that stalls the answer by about 40 ms (the TikTok stand-in as
    # shipped answers in 44 ms, 0.7 ms with TCP_NODELAY). Real services do not; so every
    # stand-in socket is TCP_NODELAY.
    MotoRequestHandler.disable_nagle_algorithm = True
    hardened = os.environ.get("BENCH_MOTO_AS_IS") != "1"
    if hardened:
        harden_moto()
    moto = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
    moto.start()
    moto_port = moto.get_host_and_port()[1]
    proxy = CountingProxy(moto_port).start()
    tiktok = TikTokStandIn(HOST, 0)
    tiktok._server.RequestHandlerClass.disable_nagle_algorithm = True
    tiktok.requests = TimedRequests()
    tiktok.start()
    meta = MetaStandIn(HOST, 0)
    meta._server.RequestHandlerClass.disable_nagle_algorithm = True
    meta.requests = TimedRequests()
    meta.start()
    xray = UdpSink().start()
    listener = Listener((HOST, 0), authkey=os.environ["BENCH_STANDINS_KEY"].encode())

    commands = {
        "snapshot": lambda: {**proxy.snapshot(), "tiktok": len(tiktok.requests), "meta": len(meta.requests)},
        "reset": proxy.reset,
        "durations": proxy.all_durations,
        "behave": lambda *script: tiktok.behave(*script),
        "release": tiktok.release_hung,
        "tiktok_event_ids": lambda: [event.get("event_id") for event in tiktok.events()],
        "tiktok_count": lambda: len(tiktok.requests),
        "tiktok_arrivals": lambda: tiktok.requests.timed_event_ids(),
        "meta_behave": lambda *script: meta.behave(*script),
        "meta_count": lambda: len(meta.requests),
        "meta_arrivals": lambda: meta.requests.timed_event_ids(),
        "xray_datagrams": lambda: xray.datagrams,
        "cpu_seconds": lambda: sum(os.times()[:2]),
        "collect": gc.collect,
    }
    info = {
        "moto": f"http://{HOST}:{moto_port}",
        "proxy": proxy.url,
        "tiktok": tiktok.url,
        "meta": meta.url_base,
        "xray_daemon": xray.address,
        "control": list(listener.address),
        "moto_hardened": hardened,
        "pid": os.getpid(),
    }
    print(json.dumps(info), flush=True)
    connection = listener.accept()
    try:
        while True:
            try:
                command, *args = connection.recv()
            except (EOFError, OSError):
                break
            if command == "stop":
                connection.send(None)
                break
            try:
                connection.send(("ok", commands[command](*args)))
            except Exception as error:
                connection.send(("error", repr(error)))
    finally:
        tiktok.stop()
        meta.stop()
        xray.stop()
        proxy.stop()
        moto.stop()


class StandIns:
    """Starts `python -m benchmarks.standins` and talks to it. Use as a context manager."""

    def __init__(self, moto_as_is: bool = False):
        from benchmarks.common import REPO

        key = secrets.token_hex(16)
        env = dict(os.environ, BENCH_STANDINS_KEY=key, PYTHONPATH=str(REPO))
        if moto_as_is:
            env["BENCH_MOTO_AS_IS"] = "1"
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.standins"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self._process.stdout.readline() if self._process.stdout else ""
        if not line:
            self._process.wait(5)
            raise RuntimeError("the stand-ins did not start")
        self.info = json.loads(line)
        self.moto_url: str = self.info["moto"]
        self.proxy_url: str = self.info["proxy"]
        self.tiktok_url: str = self.info["tiktok"]
        self.meta_url: str = self.info["meta"]
        self.xray_daemon: str = self.info["xray_daemon"]
        self._connection = Client(tuple(self.info["control"]), authkey=key.encode())

    def call(self, command: str, *args: Any) -> Any:
        self._connection.send((command, *args))
        status, result = self._connection.recv()
        if status != "ok":
            raise RuntimeError(f"stand-ins: {command} failed: {result}")
        return result

    def snapshot(self) -> dict[str, Any]:
        return self.call("snapshot")

    def close(self) -> None:
        try:
            self._connection.send(("stop",))
            self._connection.recv()
        except (EOFError, OSError):
            pass
        self._connection.close()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.terminate()  # only the process this object started, by its handle
            self._process.wait(5)
        if self._process.stdout:
            self._process.stdout.close()

    def __enter__(self) -> "StandIns":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def diff(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """Requests (by target), seconds at moto (by target) and TikTok and Meta POSTs between two
    snapshots."""
    counts = Counter(after["counts"])
    counts.subtract(before["counts"])
    seconds = {
        target: after["seconds"].get(target, 0.0) - before["seconds"].get(target, 0.0)
        for target in after["seconds"]
    }
    return {
        "counts": {target: n for target, n in counts.items() if n},
        "seconds": {target: s for target, s in seconds.items() if s},
        "tiktok": after["tiktok"] - before["tiktok"],
        "meta": after.get("meta", 0) - before.get("meta", 0),
        "abandoned": {
            target: n - before.get("abandoned", {}).get(target, 0)
            for target, n in after.get("abandoned", {}).items()
            if n - before.get("abandoned", {}).get(target, 0)
        },
    }


if __name__ == "__main__":
    serve()
