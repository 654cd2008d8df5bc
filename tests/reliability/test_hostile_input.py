"""Hostile input: deep JSON, huge arrays, unicode, path traversal, header injection, wrong types, bad bytes, long URLs.

Beside schemathesis (test_schemathesis.py, generated requests from the OpenAPI document), this is a
hand-written list of requests a careless or malicious client sends. Each goes to the app through
the Flask test client, and a few go to the service under gunicorn as raw bytes on a socket. For
every one: never a 5xx, never a traceback, a strict JSON body that is either the error shape
`{"success": false, "error": {"code", "message"}}` or a valid answer, the status the contract
names, and no header the client smuggled in.
"""

from __future__ import annotations

import json
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import leak_check
from tests.helpers.leak_check import TEST_API_KEY
from tests.helpers.service import GUNICORN, ROOT, clean_env, free_port, stop, wait_for_health

MAX_BATCH_SIZE = 100  # the default
MAX_CONTENT_LENGTH = 1024 * 1024  # the default: 1 MB
VALID = "B07N4M94X4"
INJECTED = "X-Injected"


def nested(depth: int, leaf: str = "1", opener: str = "[", closer: str = "]") -> str:
    """JSON text nested `depth` levels deep."""
    return opener * depth + leaf + closer * depth


@dataclass(frozen=True)
class Hostile:
    """One hostile request and what the contract says it gets."""

    name: str
    method: str
    path: str
    statuses: tuple[int, ...]
    code: str | None = None  # the error code, when the status is an error the contract names
    json: Any = None
    data: bytes | str | None = None
    content_type: str | None = None
    environ: dict[str, str] = field(default_factory=dict)
    entry_codes: tuple[str | None, ...] | None = None  # per batch position: error code, or None for success

    def send(self, client: Any) -> Any:
        """Send through a Flask test client."""
        kwargs: dict[str, Any] = {"method": self.method, "environ_overrides": dict(self.environ)}
        if self.json is not None:
            kwargs["json"] = self.json
        if self.data is not None:
            kwargs["data"] = self.data
        if self.content_type is not None:
            kwargs["content_type"] = self.content_type
        return client.open(self.path, **kwargs)


_JSON = "application/json"
MULTIPART = '--x\r\nContent-Disposition: form-data; name="asins"\r\n\r\nB07N4M94X4\r\n--x--\r\n'
_UNICODE_ASINS = [
    "😀😀😀😀😀",  # emoji
    "\u202eB07N4M94X4",  # right-to-left override
    "B07N4M94X4\u0000",  # NUL
    "ｂ０７ｎ４ｍ９４ｘ４",  # fullwidth letters and digits
    "B07N4M94X4\u0301",  # combining accent
    "\ud800",  # a lone surrogate
    VALID,
]

CASES = [
    # Deep JSON: parsing must not blow the stack (RecursionError is not a ValueError).
    Hostile(
        "deep JSON arrays, 10,000 levels",
        "POST",
        "/asin/batch/US",
        (400,),
        "INVALID_REQUEST",
        data='{"asins": ' + nested(10_000) + "}",
        content_type=_JSON,
    ),
    Hostile(
        "deep JSON objects, 10,000 levels",
        "POST",
        "/asin/batch/US",
        (400,),
        "INVALID_REQUEST",
        data=nested(10_000, "1", '{"a":', "}"),
        content_type=_JSON,
    ),
    Hostile(
        "deep JSON as a single ASIN, 10,000 levels", "POST", "/asin/US", (400,), data='{"asin": ' + nested(10_000) + "}", content_type=_JSON
    ),
    Hostile(
        "deep JSON in a batch entry, 800 levels (parses, then echoed back)",
        "POST",
        "/asin/batch/US",
        (200, 400),
        data='{"asins": [' + nested(800) + "]}",
        content_type=_JSON,
    ),
    # Huge arrays.
    Hostile(
        "MAX_BATCH_SIZE + 1 ASINs", "POST", "/asin/batch/US", (400,), "BATCH_TOO_LARGE", json={"asins": [VALID] * (MAX_BATCH_SIZE + 1)}
    ),
    Hostile(
        "300,000 entries under MAX_CONTENT_LENGTH",
        "POST",
        "/asin/batch/US",
        (400,),
        "BATCH_TOO_LARGE",
        data='{"asins": [' + ",".join(["0"] * 300_000) + "]}",
        content_type=_JSON,
    ),
    Hostile(
        "a batch over MAX_CONTENT_LENGTH", "POST", "/asin/batch/US", (413,), json={"asins": [VALID] * (MAX_CONTENT_LENGTH // 12 + 1000)}
    ),
    Hostile("one ASIN of 2 MB", "POST", "/asin/US", (413,), json={"asin": "A" * 2 * MAX_CONTENT_LENGTH}),
    Hostile("one ASIN of 500 kB", "POST", "/asin/US", (400,), "INVALID_ASIN", json={"asin": "A" * 500_000}),
    # Unicode, emoji, right-to-left, NUL.
    Hostile("emoji ASIN in the path", "GET", "/asin/%F0%9F%98%80%F0%9F%98%80", (400,), "INVALID_ASIN"),
    Hostile("right-to-left override in the ASIN", "GET", "/asin/%E2%80%AEB07N4M94X4", (400,), "INVALID_ASIN"),
    Hostile("NUL in the ASIN", "GET", "/asin/B07N4M94X4%00", (400,), "INVALID_ASIN"),
    Hostile("only NUL as the ASIN", "GET", "/asin/%00", (400,), "INVALID_ASIN"),
    Hostile("flag emoji as the country", "GET", f"/asin/{VALID}?country=%F0%9F%87%BA%F0%9F%87%B8", (400,), "INVALID_COUNTRY"),
    Hostile("NUL in the country", "GET", f"/asin/{VALID}?country=U%00S", (400,), "INVALID_COUNTRY"),
    Hostile("fullwidth country", "POST", "/asin/batch/%EF%BC%B5%EF%BC%B3", (400,), "INVALID_COUNTRY", json={"asins": [VALID]}),
    Hostile(
        "arabic country", "POST", "/asin/%D8%A7%D9%84%D8%B3%D8%B9%D9%88%D8%AF%D9%8A%D8%A9", (400,), "INVALID_COUNTRY", json={"asin": VALID}
    ),
    Hostile(
        "unicode ASINs in a batch",
        "POST",
        "/asin/batch/US",
        (200,),
        json={"asins": _UNICODE_ASINS},
        entry_codes=("INVALID_ASIN",) * 6 + (None,),
    ),
    # Path traversal, plain and percent-encoded, in the ASIN and the country.
    Hostile("../../etc/passwd as the ASIN", "GET", "/asin/../../etc/passwd", (400,), "INVALID_ASIN"),
    Hostile("%2F-encoded traversal as the ASIN", "GET", "/asin/..%2F..%2Fetc%2Fpasswd", (400,), "INVALID_ASIN"),
    Hostile("fully encoded traversal as the ASIN", "GET", "/asin/%2e%2e%2f%2e%2e%2fetc%2fpasswd", (400,), "INVALID_ASIN"),
    Hostile("double-encoded traversal as the ASIN", "GET", "/asin/..%252F..%252Fetc%252Fpasswd", (400,), "INVALID_ASIN"),
    Hostile("windows path as the ASIN", "GET", "/asin/C:%5CWindows%5Cwin.ini", (400,), "INVALID_ASIN"),
    Hostile("traversal as ?country=", "GET", f"/asin/{VALID}?country=../../etc/passwd", (400,), "INVALID_COUNTRY"),
    Hostile("encoded traversal as ?country=", "GET", f"/asin/{VALID}?country=..%2F..%2Fetc%2Fpasswd", (400,), "INVALID_COUNTRY"),
    Hostile("encoded traversal as the country path", "POST", "/asin/..%2F..%2Fetc%2Fpasswd", (404, 405), json={"asin": VALID}),
    Hostile("encoded traversal as the batch country", "POST", "/asin/batch/..%2F..%2Fetc%2Fpasswd", (404, 405), json={"asins": [VALID]}),
    Hostile(".. as the batch country", "POST", "/asin/batch/%2e%2e", (400,), "INVALID_COUNTRY", json={"asins": [VALID]}),
    Hostile("traversal outside the API", "GET", "/../../../etc/passwd", (404,)),
    # CRLF: header injection attempts in the path, the query and the body.
    Hostile("CRLF + Set-Cookie in ?country=", "GET", f"/asin/{VALID}?country=US%0D%0ASet-Cookie:%20injected=1", (400,), "INVALID_COUNTRY"),
    # /asin/<anypath:asin> matches newlines too: the CRLF is part of an invalid ASIN.
    Hostile("CRLF + header in the ASIN", "GET", f"/asin/{VALID}%0D%0A{INJECTED}:%201", (400,), "INVALID_ASIN"),
    Hostile("CRLF + header in ?refresh=", "GET", f"/asin/{VALID}?refresh=true%0D%0A{INJECTED}:%201", (400,), "INVALID_REQUEST"),
    Hostile("CRLF + header in the country path", "POST", f"/asin/US%0D%0A{INJECTED}:%201", (400,), "INVALID_COUNTRY", json={"asin": VALID}),
    Hostile(
        "CRLF + header in a batch entry",
        "POST",
        "/asin/batch/US",
        (200,),
        json={"asins": [f"{VALID}\r\n{INJECTED}: 1"]},
        entry_codes=("INVALID_ASIN",),
    ),
    Hostile("CRLF + header in X-Request-ID", "GET", f"/asin/{VALID}", (200,), environ={"HTTP_X_REQUEST_ID": f"abc\r\n{INJECTED}: 1"}),
    Hostile("CRLF + Set-Cookie in X-API-Key", "GET", "/health", (200,), environ={"HTTP_X_API_KEY": "k\r\nSet-Cookie: injected=1"}),
    # Wrong JSON types for every field.
    *[
        Hostile(
            f"'asins' as {label}", "POST", "/asin/batch/US", (400,), "INVALID_REQUEST", data='{"asins": ' + text + "}", content_type=_JSON
        )
        for label, text in [
            ("a string", '"B07N4M94X4"'),
            ("a number", "42"),
            ("null", "null"),
            ("an object", "{}"),
            ("true", "true"),
            ("an empty list", "[]"),
        ]
    ],
    Hostile(
        "'asins' entries of every type",
        "POST",
        "/asin/batch/US",
        (200,),
        data='{"asins": [1, null, true, {}, [], 1.5, -0, "B07N4M94X4"]}',
        content_type=_JSON,
        entry_codes=("INVALID_ASIN",) * 7 + (None,),
    ),
    Hostile(
        "'asins' entries beyond float range",
        "POST",
        "/asin/batch/US",
        (200, 400),
        data='{"asins": [1e999, -1e999, "B07N4M94X4"]}',
        content_type=_JSON,
    ),
    Hostile(
        "'asins' entries NaN and Infinity",
        "POST",
        "/asin/batch/US",
        (200, 400),
        data='{"asins": [NaN, Infinity, "B07N4M94X4"]}',
        content_type=_JSON,
    ),
    Hostile("an integer of 5,000 digits", "POST", "/asin/batch/US", (200, 400), data='{"asins": [' + "9" * 5000 + "]}", content_type=_JSON),
    *[
        Hostile(
            f"'refresh' as {label}",
            "POST",
            "/asin/batch/US",
            (400,),
            "INVALID_REQUEST",
            data='{"asins": ["B07N4M94X4"], "refresh": ' + text + "}",
            content_type=_JSON,
        )
        for label, text in [("a string", '"yes"'), ("1", "1"), ("null", "null"), ("a list", "[]")]
    ],
    *[
        Hostile(f"the body as {label}", "POST", "/asin/batch/US", (400,), "INVALID_REQUEST", data=text, content_type=_JSON)
        for label, text in [
            ("a list", '["B07N4M94X4"]'),
            ("a string", '"B07N4M94X4"'),
            ("a number", "7"),
            ("null", "null"),
            ("true", "true"),
        ]
    ],
    *[
        Hostile(f"'asin' as {label}", "POST", "/asin/US", (400,), "INVALID_ASIN", data='{"asin": ' + text + "}", content_type=_JSON)
        for label, text in [
            ("a number", "1234567890"),
            ("null", "null"),
            ("a list", '["B07N4M94X4"]'),
            ("an object", "{}"),
            ("true", "true"),
            ("a float", "1.5"),
        ]
    ],
    Hostile("no 'asin' at all", "POST", "/asin/US", (400,), "INVALID_REQUEST", json={"asins": [VALID]}),
    Hostile("?refresh= neither true nor false", "GET", f"/asin/{VALID}?refresh=maybe", (400,), "INVALID_REQUEST"),
    Hostile(
        "duplicate keys, the last one valid",
        "POST",
        "/asin/batch/US",
        (200,),
        data='{"asins": 1, "asins": ["B07N4M94X4"]}',
        content_type=_JSON,
        entry_codes=(None,),
    ),
    # Empty bodies and bytes that are not UTF-8.
    Hostile("an empty JSON body", "POST", "/asin/batch/US", (400,), "INVALID_REQUEST", data="", content_type=_JSON),
    Hostile("an empty body without a content type", "POST", "/asin/batch/US", (400, 415), data=""),
    Hostile(
        "invalid UTF-8 in the body",
        "POST",
        "/asin/batch/US",
        (400,),
        "INVALID_REQUEST",
        data=b'{"asins": ["\xff\xfe\xfd"]}',
        content_type=_JSON,
    ),
    Hostile(
        "a UTF-8 BOM before the body",
        "POST",
        "/asin/batch/US",
        (200, 400),
        data=b'\xef\xbb\xbf{"asins": ["B07N4M94X4"]}',
        content_type=_JSON,
    ),
    Hostile(
        "UTF-16 body",
        "POST",
        "/asin/batch/US",
        (200, 400),
        data='{"asins": ["B07N4M94X4"]}'.encode("utf-16"),
        content_type=_JSON + "; charset=utf-16",
    ),
    Hostile("invalid UTF-8 in the path", "GET", "/asin/%FF%FE%FD", (400,), "INVALID_ASIN"),
    Hostile("an encoded surrogate in the path", "GET", "/asin/%ED%A0%80", (400,), "INVALID_ASIN"),
    # Content types other than JSON.
    *[
        Hostile(f"a batch sent as {ctype}", "POST", "/asin/batch/US", (415,), data=body, content_type=ctype)
        for ctype, body in [
            ("text/plain", '{"asins": ["B07N4M94X4"]}'),
            ("application/x-www-form-urlencoded", "asins=B07N4M94X4"),
            ("multipart/form-data; boundary=x", MULTIPART),
            ("application/xml", "<asins><asin>B07N4M94X4</asin></asins>"),
        ]
    ],
    Hostile("one ASIN sent as text/plain", "POST", "/asin/US", (415,), data='{"asin": "B07N4M94X4"}', content_type="text/plain"),
    # Very long URLs (gunicorn refuses request lines over 4,094 bytes itself; the app must cope with the rest).
    Hostile("an ASIN of 100,000 characters", "GET", "/asin/" + "A" * 100_000, (400,), "INVALID_ASIN"),
    Hostile("a country of 100,000 characters", "GET", f"/asin/{VALID}?country=" + "U" * 100_000, (400,), "INVALID_COUNTRY"),
    Hostile("5,000 query parameters", "GET", f"/asin/{VALID}?" + "&".join(f"p{i}=x" for i in range(5000)), (200,)),
    # Methods the resource does not have.
    Hostile("PUT on a country", "PUT", "/asin/US", (405,), json={"asin": VALID}),
    Hostile("DELETE on an ASIN", "DELETE", f"/asin/{VALID}", (405,)),
    Hostile("PATCH on a batch", "PATCH", "/asin/batch/US", (405,), json={"asins": [VALID]}),
]


def _strict_json(text: str) -> Any:
    """Parse `text` as RFC 8259 JSON: NaN and Infinity are not JSON."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def check_answer(case: Hostile, status: int, headers: list[tuple[str, str]], text: str) -> None:
    """Everything every hostile request must get."""
    assert status < 500, text[:500]
    assert "Traceback" not in text and 'File "' not in text
    assert status in case.statuses, text[:500]
    for name, value in headers:
        assert name.lower() not in (INJECTED.lower(), "set-cookie"), (name, value)
        assert "\r" not in value and "\n" not in value, (name, value)
    body = _strict_json(text)
    assert isinstance(body, dict)
    if status >= 400:
        assert body["success"] is False
        assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)
        if case.code is not None:
            assert body["error"]["code"] == case.code, body["error"]
    elif "results" in body:  # a batch: one entry per position, in order
        sent = case.json["asins"] if case.json is not None else None
        if sent is not None:
            assert [entry["asin"] for entry in body["results"]] == sent
        assert body["total_requested"] == len(body["results"])
        if case.entry_codes is not None:
            codes = [None if entry["success"] else entry["error"]["code"] for entry in body["results"]]
            assert codes == list(case.entry_codes)
    elif "asin" in body:  # one ASIN
        assert body["success"] is True and isinstance(body["asin"], str)


@pytest.fixture
def hostile_client(make_app):
    """The app with production limits (MAX_BATCH_SIZE 100, MAX_CONTENT_LENGTH 1 MB), against the emulator."""
    return make_app(max_batch_size=MAX_BATCH_SIZE).test_client()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_request_gets_a_json_answer_never_a_5xx(hostile_client, case):
    """Each hostile request: its status, a strict JSON body of the right shape, no traceback, no injected header."""
    response = case.send(hostile_client)
    check_answer(case, response.status_code, list(response.headers.items()), response.get_data(as_text=True))


def test_every_hostile_answer_carries_a_request_id(hostile_client):
    """Contract: every response carries X-Request-ID (one line, never the client's CRLF)."""
    missing = []
    for case in CASES:
        request_id = case.send(hostile_client).headers.get("X-Request-ID", "")
        if not request_id or "\r" in request_id or "\n" in request_id:
            missing.append(case.name)
    assert missing == []


def test_hostile_requests_are_logged_one_json_object_per_line(make_app):
    """With LOG_FORMAT=json every log line the app writes while answering hostile requests is one JSON object."""
    check = leak_check.ACTIVE
    assert check is not None
    mark = check.mark()
    client = make_app(log_format="json").test_client()
    for case in CASES:
        case.send(client)
    lines = check.log_lines(mark)
    assert lines
    for line in lines:
        assert isinstance(_strict_json(line), dict), line


def test_api_keys_guard_every_endpoint_but_health_and_are_never_echoed(make_app):
    """With API_KEYS set: 401 JSON without a key or with a wrong or smuggled one; Bearer or X-API-Key passes; /health open."""
    client = make_app(api_keys=(TEST_API_KEY,)).test_client()
    refused = [
        client.get(f"/asin/{VALID}"),
        client.get(f"/asin/{VALID}", headers={"Authorization": "Bearer fba-test-key-wrong"}),
        client.get(f"/asin/{VALID}", headers={"X-API-Key": TEST_API_KEY[:-1]}),
        client.get(f"/asin/{VALID}", headers={"Authorization": TEST_API_KEY}),  # no "Bearer"
        client.get(f"/asin/{VALID}", environ_overrides={"HTTP_X_API_KEY": f"{TEST_API_KEY}\r\n{INJECTED}: 1"}),
        client.post("/asin/batch/US", json={"asins": [VALID]}),
        client.get("/config"),
    ]
    for response in refused:
        assert response.status_code == 401
        body = _strict_json(response.get_data(as_text=True))
        assert body["success"] is False and isinstance(body["error"]["code"], str)
        assert INJECTED not in response.headers
    assert client.get(f"/asin/{VALID}", headers={"Authorization": f"Bearer {TEST_API_KEY}"}).status_code == 200
    assert client.get(f"/asin/{VALID}", headers={"X-API-Key": TEST_API_KEY}).status_code == 200
    assert client.get("/health").status_code == 200
    # The key never comes back (the session's leak check greps every body and log line for it too).
    config = client.get("/config", headers={"X-API-Key": TEST_API_KEY}).get_data(as_text=True)
    assert TEST_API_KEY not in config


# ---------------------------------------------------------------------------------------------------------------------
# The same against the service as users run it: gunicorn, raw bytes on a socket.


@dataclass
class Live:
    """The service under gunicorn, its output going to a file the tests read."""

    port: int
    output: Path

    def text(self, since: int = 0) -> str:
        """What gunicorn and the app printed so far (from character `since`)."""
        return self.output.read_text(errors="replace")[since:]

    def mark(self) -> int:
        """A position in the output; `text(mark)` is what was printed after it."""
        return len(self.text())


@pytest.fixture(scope="module")
def live(emulator_server) -> Iterator[Live]:
    """gunicorn (gunicorn.conf.py, emulator mode) pointed at the session's emulator."""
    port = free_port()
    output = Path(tempfile.mkdtemp(prefix="fba-hostile-")) / "gunicorn.log"
    env = clean_env(PORT=str(port), SP_API_ENDPOINT=emulator_server.url, GUNICORN_THREADS="4")
    command = [str(GUNICORN), "-c", "gunicorn.conf.py", "app:create_app()"]
    with output.open("w") as sink:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_health(f"http://127.0.0.1:{port}", proc)
        yield Live(port, output)
    finally:
        stop(proc)
        if leak_check.ACTIVE is not None:
            leak_check.ACTIVE.record("output of gunicorn (hostile input)", output.read_text(errors="replace"))


def raw_request(port: int, request: bytes) -> tuple[int, list[tuple[str, str]], str]:
    """Send `request` as it is; the status, headers and body of the answer (read until the server closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = [(name.strip(), value.strip()) for name, _, value in (line.partition(":") for line in header_lines)]
    if leak_check.ACTIVE is not None:
        leak_check.ACTIVE.record(f"raw answer to {request[:80]!r}", data)
    return int(status_line.split()[1]), headers, body.decode("utf-8", "replace")


def http(method: str, target: bytes, body: bytes = b"", content_type: str | None = None) -> bytes:
    """An HTTP/1.1 request with exactly this request target (no normalisation of ../ or encodings)."""
    head = b"%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" % (method.encode(), target)
    if content_type:
        head += b"Content-Type: %s\r\n" % content_type.encode()
    if body or method == "POST":
        head += b"Content-Length: %d\r\n" % len(body)
    return head + b"\r\n" + body


def _case(name: str) -> Hostile:
    return next(case for case in CASES if case.name == name)


LIVE_CASES = [
    (_case("../../etc/passwd as the ASIN"), http("GET", b"/asin/../../etc/passwd")),
    (_case("CRLF + Set-Cookie in ?country="), http("GET", b"/asin/B07N4M94X4?country=US%0D%0ASet-Cookie:%20injected=1")),
    (_case("NUL in the ASIN"), http("GET", b"/asin/B07N4M94X4%00")),
    (_case("deep JSON arrays, 10,000 levels"), http("POST", b"/asin/batch/US", ('{"asins": ' + nested(10_000) + "}").encode(), _JSON)),
    (
        _case("a batch over MAX_CONTENT_LENGTH"),
        http("POST", b"/asin/batch/US", json.dumps({"asins": [VALID] * (MAX_CONTENT_LENGTH // 12 + 1000)}).encode(), _JSON),
    ),
    (_case("a batch sent as text/plain"), http("POST", b"/asin/batch/US", b'{"asins": ["B07N4M94X4"]}', "text/plain")),
    (
        _case("'asins' entries of every type"),
        http("POST", b"/asin/batch/US", b'{"asins": [1, null, true, {}, [], 1.5, -0, "B07N4M94X4"]}', _JSON),
    ),
    (
        Hostile("an ASIN of 3,000 characters (under gunicorn's request-line limit)", "GET", "", (400,), "INVALID_ASIN"),
        http("GET", b"/asin/" + b"A" * 3000),
    ),
]


@pytest.mark.parametrize(("case", "request_bytes"), LIVE_CASES, ids=[case.name for case, _ in LIVE_CASES])
def test_hostile_request_to_gunicorn_gets_a_json_answer_never_a_5xx(live, figures, case, request_bytes):
    """The same checks over a real socket to gunicorn; and no traceback in what the service logged meanwhile."""
    mark = live.mark()
    status, headers, text = raw_request(live.port, request_bytes)
    figures.sent(status)
    check_answer(case, status, headers, text)
    assert "Traceback" not in live.text(mark)


# gunicorn answers these itself, before the app sees them, with its own small HTML page: they
# cannot be JSON, but they must still be a 4xx, and nothing may break.
GUNICORN_REFUSALS = [
    ("a request line over 4,094 bytes", http("GET", b"/asin/" + b"A" * 10_000), 414),
    ("raw invalid UTF-8 in the request line", http("GET", b"/asin/\xff\xfe"), 400),
    ("a raw NUL in the request line", http("GET", b"/asin/B07N4M94X4\x00"), 400),
    (
        "an obsolete folded header (header smuggling)",
        b"GET /asin/B07N4M94X4 HTTP/1.1\r\nHost: x\r\nX-Request-ID: a\r\n b\r\nConnection: close\r\n\r\n",
        400,
    ),
    ("a header of 10,000 bytes", b"GET /asin/B07N4M94X4 HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10_000 + b"\r\n\r\n", 431),
]


@pytest.mark.parametrize(("name", "request_bytes", "expected"), GUNICORN_REFUSALS, ids=[name for name, _, _ in GUNICORN_REFUSALS])
def test_malformed_http_is_refused_by_gunicorn_with_a_4xx(live, figures, name, request_bytes, expected):
    """Malformed HTTP: gunicorn's own 4xx, no traceback, and the service keeps answering."""
    mark = live.mark()
    status, _, text = raw_request(live.port, request_bytes)
    figures.sent(status)
    assert status == expected, text[:300]
    assert "Traceback" not in text and "Traceback" not in live.text(mark)
    after, _, body = raw_request(live.port, http("GET", b"/health"))
    figures.sent(after)
    assert after == 200 and _strict_json(body)["status"] in ("ok", "degraded")
