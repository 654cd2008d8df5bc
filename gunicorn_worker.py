"""gunicorn's gthread worker, with the service's JSON error shape for the requests gunicorn itself refuses.

gunicorn answers a request it cannot parse (a bad request line, a URI or headers over its
limits, ...) before Flask sees it, with an HTML page; this worker answers the same status as
`{"success": false, "error": {"code", "message"}}`. It also reads what is left of a request
body the app did not read (a body over MAX_CONTENT_LENGTH answered 413 unread), so a client
that writes its whole body before reading gets the answer instead of a connection reset.
"""

from __future__ import annotations

import json
import re
import socket
import time
from typing import Any

from gunicorn import util
from gunicorn.config import Config
from gunicorn.http import errors as http_errors
from gunicorn.http.message import Request
from gunicorn.workers.gthread import TConn, ThreadWorker
from werkzeug.exceptions import default_exceptions

from routes.errors import INTERNAL_ERROR_CODE, INTERNAL_ERROR_MESSAGE, error_body, http_error_code
from routes.middleware import SECURITY_HEADERS

# Closing a connection with unread request bytes makes the kernel send RST (RFC 9112 section
# 9.6): a client still writing its body (urllib, most SDKs) sees a reset, not the 413 already
# sent. So the rest of the body is read and dropped, up to 64 MiB (64 times the default
# MAX_CONTENT_LENGTH: a large batch or a file sent to the wrong endpoint) and for at most 10 s
# (64 MiB at ~50 Mbit/s), so a slow or endless sender holds a thread no longer than that.
# Beyond either bound the connection closes as before; a body declared larger is not read at all.
DRAIN_MAX_BYTES = 64 * 1024 * 1024
DRAIN_SECONDS = 10.0
_DRAIN_STEP = 64 * 1024

_STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3}) ([^\r\n]*)\r\n")


class _UnsentAnswer:
    """Stands in for the client socket while gunicorn's handle_error runs: keeps its HTML answer, sends nothing."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.data = b""

    def gettimeout(self) -> float:
        """Non-blocking already, so gunicorn's write_nonblock leaves the real socket's mode alone."""
        return 0.0

    def sendall(self, data: bytes) -> None:
        """Keep `data` instead of sending it."""
        self.data += data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def error_message(exc: BaseException, status: int, cfg: Config) -> str:
    """What the client is told for `exc`: the limit it passed or what was malformed, never its own input echoed."""
    if isinstance(exc, http_errors.LimitRequestLine):
        return f"The request line (method, URI and version) is longer than {cfg.limit_request_line} bytes: send a shorter URI"
    if isinstance(exc, http_errors.LimitRequestHeaders):
        return (
            f"The request headers are too large: at most {cfg.limit_request_fields} headers "
            f"of at most {cfg.limit_request_field_size} bytes each"
        )
    if isinstance(exc, http_errors.InvalidRequestLine | http_errors.InvalidRequestMethod | http_errors.InvalidHTTPVersion):
        return "The request line is not valid HTTP/1.1: send 'METHOD /path HTTP/1.1'"
    if isinstance(exc, http_errors.InvalidHeader | http_errors.InvalidHeaderName | http_errors.ObsoleteFolding):
        return "A request header is malformed"
    if isinstance(exc, http_errors.InvalidChunkSize | http_errors.ChunkMissingTerminator | http_errors.InvalidChunkExtension):
        return "The chunked request body is malformed"
    if isinstance(exc, http_errors.UnsupportedTransferCoding):
        return "This Transfer-Encoding is not supported: send the body with Content-Length or Transfer-Encoding: chunked"
    if status == 500:
        return INTERNAL_ERROR_MESSAGE
    # The rest (417, 501, 403 from a proxy line, ...): Werkzeug's description, as the app gives for its own HTTP errors.
    werkzeug_error = default_exceptions.get(status)
    return werkzeug_error.description if werkzeug_error and werkzeug_error.description else "The request was refused"


def error_answer(status: int, reason: str, message: str) -> bytes:
    """A whole HTTP/1.1 response: the JSON error of `status`, the app's security headers, and Connection: close."""
    # gunicorn's 500 is an unexpected failure (the app raised past Flask): the app's code for one.
    code = INTERNAL_ERROR_CODE if status == 500 else http_error_code(status)
    # Flask's compact JSON and trailing newline, so both kinds of error read the same.
    body = (json.dumps(error_body(code, message), separators=(",", ":")) + "\n").encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body)), "Connection": "close", **SECURITY_HEADERS}
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    return head.encode("latin-1") + body


def drain_body(req: Request, sock: socket.socket, deadline: float, max_bytes: int) -> bool:
    """Read and drop what is left of `req`'s body; False if it is not all read by `deadline` within `max_bytes`."""
    if req.body is None:
        return True
    declared = next((value for name, value in req.headers if name == "CONTENT-LENGTH"), "")
    if declared.isdigit() and int(declared) > max_bytes:
        return False
    prior_timeout = sock.gettimeout()
    drained = 0
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            sock.settimeout(remaining)
            data = req.body.read(_DRAIN_STEP)
            if not data:
                return True
            drained += len(data)
            if drained > max_bytes:
                return False
    except (OSError, http_errors.ParseException):
        # A timeout, a client gone, a malformed chunk: the connection cannot be reused, it just closes.
        return False
    finally:
        try:
            sock.settimeout(prior_timeout)
        except OSError:
            pass  # the socket is already closed; nothing to restore


class JsonErrorWorker(ThreadWorker):
    """gthread with JSON for gunicorn's own errors and a bounded drain of a body the app left unread."""

    def handle_error(self, req: Request | None, client: socket.socket, addr: Any, exc: BaseException) -> None:
        """gunicorn's own handling (its status for `exc`, its log lines), answered as JSON instead of HTML."""
        # gunicorn decides the status and writes the warning, access and traceback lines; only its page is replaced.
        answer = _UnsentAnswer(client)
        super().handle_error(req, answer, addr, exc)
        match = _STATUS_LINE.match(answer.data)
        status, reason = (int(match[1]), match[2].decode("latin-1")) if match else (500, "Internal Server Error")
        try:
            util.write_nonblock(client, error_answer(status, reason, error_message(exc, status, self.cfg)))
        except OSError:
            self.log.debug("Failed to send error message.")

    def handle_request(self, req: Request, conn: TConn) -> bool:
        """Serve `req`, then drain the body the app did not read; True if the connection may serve another request."""
        keepalive = super().handle_request(req, conn)
        drained = drain_body(req, conn.sock, time.monotonic() + DRAIN_SECONDS, DRAIN_MAX_BYTES)
        return keepalive and drained
