"""What gunicorn itself answers, under the service's worker: its errors in the one JSON shape, and a 413 a write-first client receives."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from routes.middleware import SECURITY_HEADERS
from tests.helpers.service import GUNICORN, ROOT, clean_env, free_port, stop, wait_for_health

MAX_UPLOAD_SIZE = 4 * 1024 * 1024  # small, so a CSV upload over it stays quick to send
SANDBOX_ASIN = "B07N4M94X4"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """One gunicorn for the module, as `make run` starts it, on the bundled emulator."""
    port = free_port()
    env = clean_env(PORT=str(port), EMULATOR_PORT=str(free_port()), MAX_UPLOAD_SIZE=str(MAX_UPLOAD_SIZE))
    command = [str(GUNICORN), "-c", "gunicorn.conf.py", "app:create_app()"]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(base, proc)
        yield base
    finally:
        if proc.poll() is None:
            stop(proc)


def raw_request(url: str, data: bytes) -> tuple[int, http.client.HTTPMessage, bytes]:
    """Send `data` as it is on a new connection; the status, headers and body of the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.headers, response.read()


def assert_json_error(status: int, headers: Any, body: bytes, expected_status: int, code: str) -> dict[str, Any]:
    """The service's one error shape, with `expected_status` and `code`, JSON and the security headers; the message."""
    text = body.decode()
    assert "<html" not in text.lower() and "Traceback" not in text
    assert status == expected_status
    assert headers["Content-Type"] == "application/json"
    payload = json.loads(text)
    assert set(payload) == {"success", "error"} and set(payload["error"]) == {"code", "message"}
    assert payload["success"] is False and payload["error"]["code"] == code
    message = payload["error"]["message"]
    assert isinstance(message, str) and 0 < len(message) < 300
    for name, value in SECURITY_HEADERS.items():
        assert headers[name] == value
    return payload["error"]


def post(url: str, body: bytes | Iterator[bytes], content_type: str = "application/json") -> tuple[int, Any, bytes]:
    """POST as urllib does: the whole body written before the answer is read (chunked for an iterator)."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def batch_body(size: int) -> bytes:
    """A JSON batch of at least `size` bytes."""
    return json.dumps({"asins": [SANDBOX_ASIN] * (size // 15 + 1)}).encode()


@pytest.mark.parametrize(
    "request_line",
    [b"GARBAGE", b"G@T / HTTP/1.1", b"GET / HTTP/9.9", b"GET / HTTP/1.1 trailing"],
    ids=["garbage", "invalid method", "invalid version", "extra token"],
)
def test_a_bad_request_line_is_400_json(url, request_line):
    status, headers, body = raw_request(url, request_line + b"\r\nHost: localhost\r\n\r\n")
    assert_json_error(status, headers, body, 400, "BAD_REQUEST")


def test_a_bad_request_line_is_not_echoed(url):
    hostile = b"<script>alert('x')</script>" + b"Z" * 2000
    status, headers, body = raw_request(url, b"GET /" + hostile + b" HTTP/9.9\r\nHost: localhost\r\n\r\n")
    assert_json_error(status, headers, body, 400, "BAD_REQUEST")
    assert b"<script>" not in body and b"ZZZZZZZZ" not in body


def test_a_uri_too_long_is_414_json(url):
    status, headers, body = raw_request(url, b"GET /asin/" + b"A" * 5000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
    error = assert_json_error(status, headers, body, 414, "URI_TOO_LONG")
    assert "4094 bytes" in error["message"] and "AAAAAAAA" not in error["message"]


@pytest.mark.parametrize(
    "headers_sent",
    [b"X-Big: " + b"a" * 9000 + b"\r\n", b"".join(b"X-Header-%d: 1\r\n" % i for i in range(150))],
    ids=["a header over limit_request_field_size", "more headers than limit_request_fields"],
)
def test_headers_over_gunicorns_limits_are_431_json(url, headers_sent):
    status, headers, body = raw_request(url, b"GET /health HTTP/1.1\r\nHost: localhost\r\n" + headers_sent + b"\r\n")
    assert_json_error(status, headers, body, 431, "REQUEST_HEADER_FIELDS_TOO_LARGE")
    assert b"aaaaaaaa" not in body


def test_a_20_mb_batch_gets_its_413_json_from_a_client_that_writes_it_all_first(url):
    status, headers, answer = post(f"{url}/asin/batch/US", batch_body(20 * 1024 * 1024))  # a broken pipe or reset would raise
    assert_json_error(status, headers, answer, 413, "PAYLOAD_TOO_LARGE")


def test_after_a_drained_413_the_same_connection_and_the_service_still_answer(url):
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        # http.client, like urllib, writes the whole body before it reads the answer.
        connection.request("POST", "/asin/batch/US", body=batch_body(20 * 1024 * 1024), headers={"Content-Type": "application/json"})
        refused = connection.getresponse()
        assert refused.status == 413 and json.loads(refused.read())["error"]["code"] == "PAYLOAD_TOO_LARGE"
        first_socket = connection.sock
        connection.request("GET", f"/asin/{SANDBOX_ASIN}")
        item = connection.getresponse()
        assert item.status == 200 and json.loads(item.read())["asin"] == SANDBOX_ASIN
        assert connection.sock is first_socket  # kept alive: the body was read to its end
    finally:
        connection.close()
    status, _, answer = post(f"{url}/asin/batch/US", json.dumps({"asins": [SANDBOX_ASIN, "B08N5WRWNW"]}).encode())
    assert status == 200 and json.loads(answer)["successful"] == 2


def csv_upload(rows: int) -> bytes:
    """A CSV of `rows` ASINs with 100 KB notes each: megabytes (over MAX_CONTENT_LENGTH) for a handful of ASINs."""
    return ("asin,notes\n" + "".join(f"B0UPLD{i:04d},{'x' * 100_000}\n" for i in range(rows))).encode()


def test_a_csv_upload_over_max_content_length_but_under_max_upload_size_is_read(url):
    status, _, answer = post(f"{url}/jobs/US", csv_upload(30), "text/csv")  # ~3 MB
    job = json.loads(answer)
    assert status == 202 and job["counts"]["total"] == 30


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_csv_upload_over_max_upload_size_gets_its_413_json(url, chunked):
    body = csv_upload(200)  # ~20 MB: more than the kernel's socket buffers hold unread
    # Chunked, the app reads up to MAX_UPLOAD_SIZE before it refuses; the rest is drained all the same.
    sent = (body[i : i + 65536] for i in range(0, len(body), 65536)) if chunked else body
    status, headers, answer = post(f"{url}/jobs/US", sent, "text/csv")
    assert_json_error(status, headers, answer, 413, "PAYLOAD_TOO_LARGE")
