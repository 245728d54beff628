"""A DynamoDB-compatible server (moto) on loopback, in this process, for tests and `make run`."""

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@contextmanager
def moto_dynamodb(port: int | None = None) -> Iterator[str]:
    """Start moto's DynamoDB on 127.0.0.1 and yield its endpoint URL.

    DynamoDB applies each request atomically: a conditional write's check and write, and all the
    items of a transaction, happen together. moto (5.2.5) does not when requests run concurrently
    (a transaction snapshots whole tables and restores them when a condition fails, undoing other
    requests' writes), so its DynamoDB handler is made to serve one request at a time.
    """
    from moto.dynamodb.responses import DynamoHandler
    from moto.server import ThreadedMotoServer

    lock = threading.Lock()
    call_action = DynamoHandler.call_action

    def one_at_a_time(self, *args, **kwargs):
        with lock:
            return call_action(self, *args, **kwargs)

    DynamoHandler.call_action = one_at_a_time
    port = port or free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        DynamoHandler.call_action = call_action


def point_boto3_at(endpoint: str) -> None:
    """Standard variables only: boto3 reads AWS_ENDPOINT_URL_DYNAMODB, product code needs no hook."""
    for name, value in FAKE_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
