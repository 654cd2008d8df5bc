"""The worker's drain of an unread request body: what it reads, and where it stops."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from gunicorn.config import Config
from gunicorn.http.message import Request
from gunicorn.http.parser import RequestParser

from gunicorn_worker import drain_body


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(client, server) ends of a connection."""
    client, server = socket.socketpair()
    try:
        yield client, server
    finally:
        client.close()
        server.close()


def send_in_background(sock: socket.socket, data: bytes) -> threading.Thread:
    sender = threading.Thread(target=sock.sendall, args=(data,), daemon=True)
    sender.start()
    return sender


def first_request(server: socket.socket) -> tuple[RequestParser, Request]:
    parser = RequestParser(Config(), server, ("127.0.0.1", 1))
    return parser, next(parser)


def post(body_length: int) -> bytes:
    return b"POST /asin/batch/US HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % body_length


def test_the_rest_of_a_body_is_read_and_the_next_request_follows(pair):
    client, server = pair
    send_in_background(client, post(3_000_000) + b"x" * 3_000_000 + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    parser, request = first_request(server)
    request.body.read(1000)  # what an app reads before it refuses the rest
    assert drain_body(request, server, time.monotonic() + 60, max_bytes=4_000_000) is True
    assert request.body.read() == b""
    following = next(parser)
    assert (following.method, following.path) == ("GET", "/health")


def test_a_body_declared_over_the_bound_is_not_read(pair):
    client, server = pair
    send_in_background(client, post(5000) + b"x" * 5000)
    _, request = first_request(server)
    assert drain_body(request, server, time.monotonic() + 60, max_bytes=4000) is False
    assert len(request.body.read()) == 5000


def test_a_chunked_body_is_read_only_up_to_the_bound(pair):
    client, server = pair
    head = b"POST /jobs/US HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    send_in_background(client, head + b"1000\r\n" + b"x" * 4096 + b"\r\n" + b"1000\r\n" + b"y" * 4096 + b"\r\n0\r\n\r\n")
    _, request = first_request(server)
    assert drain_body(request, server, time.monotonic() + 60, max_bytes=5000) is False


def test_a_sender_that_stalls_is_given_up_at_the_deadline(pair):
    client, server = pair
    client.sendall(post(10_000) + b"x" * 100)  # and nothing more, the connection left open
    _, request = first_request(server)
    assert drain_body(request, server, time.monotonic() + 0.2, max_bytes=1_000_000) is False
    assert server.gettimeout() is None  # the socket is blocking again, as gunicorn left it
