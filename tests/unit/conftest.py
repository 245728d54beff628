"""Unit tests run without a network: any attempt to open a connection fails the test loudly. A
module marked `loopback` (it talks to a stand-in on 127.0.0.1) may reach loopback, nothing else."""

import socket

import pytest

LOOPBACK = ("127.0.0.1", "::1", "localhost")


@pytest.fixture(autouse=True)
def no_network(monkeypatch, request):
    def refuse(*args, **kwargs):
        raise RuntimeError("unit tests must not touch the network")

    if request.node.get_closest_marker("loopback") is None:
        monkeypatch.setattr(socket.socket, "connect", refuse)
        monkeypatch.setattr(socket, "create_connection", refuse)
        return
    connect = socket.socket.connect

    def loopback_only(sock, address, *args, **kwargs):
        host = address[0] if isinstance(address, tuple) else address
        if host not in LOOPBACK:
            refuse()
        return connect(sock, address, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
