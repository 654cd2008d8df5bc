"""Secrets never leave the service: every log line, response body and captured process output of a test session, grepped.

tests/conftest.py installs one `LeakCheck` for the whole session (pytest_configure) and fails the
session at its end (pytest_sessionfinish) if any text it saw holds a secret. What it sees:

- every line a logging StreamHandler writes (the app's stdout handler, after its SecretFilter:
  exactly the line that would be printed), except pytest's own capture handlers; and, while no
  such handler is on the root logger (before the first app is built), every record reaching it;
- every response the Flask test client returns (status line, headers and body), except the
  emulator's (its token endpoint hands out access tokens by design);
- every response httpx or requests reads in the test process (the service under gunicorn or
  PM2, schemathesis), except calls to the emulator's LWA, Catalog Items and control paths;
- every output a test collects from a child process with `communicate()` / `subprocess.run()`
  (gunicorn's stdout of the deploy tests), and text handed to `record()` explicitly.

What counts as a secret: the emulator's client secret and refresh token (the service uses them in
emulator mode), anything shaped like an LWA access token (`Atza|...`) or refresh token
(`Atzr|...`), `TEST_API_KEY`, a Redis URL with a password that is not masked, and every secret
and API key of every `Settings` built during the session.
"""

from __future__ import annotations

import functools
import logging
import re
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from flask.testing import FlaskClient

from config import Settings
from emulator import defaults as emulator_defaults
from emulator.app import EXTENSION_KEY as EMULATOR_EXTENSION_KEY

# The API key tests configure (API_KEYS) and send; distinctive so the grep cannot miss it.
TEST_API_KEY = "fba-test-key-5d1c8e3a97b24f60"
# Paths served by the emulator, not by the service: their answers carry tokens on purpose.
EMULATOR_PATHS = ("/auth/o2/token", "/catalog/", "/_emulator/")
# A configured value shorter than this is not grepped for (too likely to occur by chance).
MIN_SECRET_LENGTH = 8

_STATIC_SECRETS = {
    emulator_defaults.CLIENT_SECRET: "the emulator's LWA client secret",
    emulator_defaults.REFRESH_TOKEN: "the emulator's refresh token",
    TEST_API_KEY: "the test API key",
}
_PATTERNS = {
    "an LWA access token": re.compile(r"Atza\|[A-Za-z0-9_\-.~+/=%]+"),
    "an LWA refresh token": re.compile(r"Atzr\|[A-Za-z0-9_\-.~+/=%]+"),
    "a Redis password": re.compile(r"rediss?://[^\s/@:'\"]*:(?!\*\*\*@)[^\s/@'\"]+@"),
}
# pytest's own handlers copy records before any app filter runs: they are not the service's log lines.
_PYTEST_HANDLERS = ("LogCaptureHandler", "_LiveLoggingStreamHandler", "_FileHandler")
_CONTEXT = 60


@dataclass(frozen=True)
class Leak:
    """One secret found in one recorded text."""

    what: str
    source: str
    context: str

    def __str__(self) -> str:
        return f"{self.what} in {self.source}: ...{self.context}..."


class LeakCheck:
    """Collects texts the service produced and finds secrets in them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._texts: list[tuple[str, str]] = []
        self._log_lines: list[str] = []
        self._secrets: dict[str, str] = dict(_STATIC_SECRETS)
        self.statuses: Counter[int] = Counter()
        self._undo: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ what to look for

    def add_secret(self, value: str, what: str) -> None:
        """Grep for `value` too (ignored when shorter than MIN_SECRET_LENGTH)."""
        if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
            with self._lock:
                self._secrets.setdefault(value, what)

    def add_settings(self, settings: Settings) -> None:
        """Grep for every secret and API key of `settings`."""
        for value in settings.secrets():
            self.add_secret(value, "a configured secret")
        for key in getattr(settings, "api_keys", ()) or ():
            self.add_secret(key, "a configured API key")

    # ------------------------------------------------------------------ what was produced

    def record(self, source: str, text: str | bytes | None) -> None:
        """Keep `text` (a response, a process output, ...) for the scan."""
        if not text:
            return
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        with self._lock:
            self._texts.append((source, text))

    def record_log_line(self, line: str) -> None:
        """Keep one formatted log line."""
        with self._lock:
            self._log_lines.append(line)
            self._texts.append(("log line", line))

    def record_status(self, status: int) -> None:
        """Count one response of the service by status."""
        with self._lock:
            self.statuses[status] += 1

    def mark(self) -> int:
        """A position in the log; `log_lines(mark)` returns the lines written after it."""
        with self._lock:
            return len(self._log_lines)

    def log_lines(self, since: int = 0) -> list[str]:
        """The log lines written since `since` (a `mark()`)."""
        with self._lock:
            return self._log_lines[since:]

    def texts(self) -> list[tuple[str, str]]:
        """Every recorded (source, text)."""
        with self._lock:
            return list(self._texts)

    # ------------------------------------------------------------------ the scan

    def leaks(self) -> list[Leak]:
        """Every secret found in every recorded text (the secret itself masked in the context)."""
        with self._lock:
            texts = list(self._texts)
            secrets = dict(self._secrets)
        found: list[Leak] = []
        for source, text in texts:
            for value, what in secrets.items():
                start = text.find(value)
                if start >= 0:
                    found.append(Leak(what, source, _context(text, start, start + len(value), what)))
            for what, pattern in _PATTERNS.items():
                match = pattern.search(text)
                if match:
                    found.append(Leak(what, source, _context(text, match.start(), match.end(), what)))
        return found

    def report(self, limit: int = 20) -> str:
        """A readable list of the leaks found ('' when none)."""
        leaks = self.leaks()
        if not leaks:
            return ""
        lines = [f"{len(leaks)} secret(s) found in what the service logged or answered during the tests:"]
        lines += [f"  - {leak}" for leak in leaks[:limit]]
        if len(leaks) > limit:
            lines.append(f"  ... and {len(leaks) - limit} more")
        return "\n".join(lines)

    # ------------------------------------------------------------------ hooks into the session

    def install(self) -> LeakCheck:
        """Start recording: wrap log emission, the Flask test client, httpx, communicate() and Settings."""
        check = self

        original_emit = logging.StreamHandler.emit

        @functools.wraps(original_emit)
        def emit(handler: logging.StreamHandler, record: logging.LogRecord) -> None:
            if _prints(handler):
                try:
                    check.record_log_line(handler.format(record))
                except (TypeError, ValueError) as exc:  # bad %-arguments: emit reports them itself, below
                    check.record("log line (unformattable)", f"{record.getMessage()!r}: {exc!r}")
            original_emit(handler, record)

        original_open = FlaskClient.open

        @functools.wraps(original_open)
        def open_(client: FlaskClient, *args: Any, **kwargs: Any) -> Any:
            response = original_open(client, *args, **kwargs)
            if EMULATOR_EXTENSION_KEY not in client.application.extensions:
                request = response.request
                check.record_status(response.status_code)
                source = f"response to {request.method} {request.path} ({response.status_code})"
                # Binary answers (a scan's XLSX) are read as far as they are text.
                check.record(source, _headers_text(response.headers.items()) + response.get_data().decode("utf-8", "replace"))
            return response

        original_send = httpx.Client.send

        @functools.wraps(original_send)
        def send(client: httpx.Client, request: httpx.Request, *args: Any, **kwargs: Any) -> httpx.Response:
            response = original_send(client, request, *args, **kwargs)
            if not request.url.path.startswith(EMULATOR_PATHS):
                check.record_status(response.status_code)
                source = f"response to {request.method} {request.url} ({response.status_code})"
                body = "" if kwargs.get("stream") else response.text  # a stream is the caller's to read
                check.record(source, _headers_text(response.headers.multi_items()) + body)
            return response

        _patch_requests(self._undo, check)

        original_communicate = subprocess.Popen.communicate

        @functools.wraps(original_communicate)
        def communicate(proc: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            out, err = original_communicate(proc, *args, **kwargs)
            command = proc.args if isinstance(proc.args, str) else " ".join(str(a) for a in proc.args)
            check.record(f"output of `{command[:120]}`", out)
            check.record(f"error output of `{command[:120]}`", err)
            return out, err

        original_init = Settings.__init__

        @functools.wraps(original_init)
        def init(settings: Settings, *args: Any, **kwargs: Any) -> None:
            original_init(settings, *args, **kwargs)
            check.add_settings(settings)

        fallback = _FallbackHandler(self)
        root = logging.getLogger()
        root.addHandler(fallback)
        self._undo.append(lambda: root.removeHandler(fallback))
        _patch(self._undo, logging.StreamHandler, "emit", emit)
        _patch(self._undo, FlaskClient, "open", open_)
        _patch(self._undo, httpx.Client, "send", send)
        _patch(self._undo, subprocess.Popen, "communicate", communicate)
        _patch(self._undo, Settings, "__init__", init)
        return self

    def uninstall(self) -> None:
        """Stop recording (undo every wrapper)."""
        while self._undo:
            self._undo.pop()()


def _prints(handler: logging.Handler) -> bool:
    return isinstance(handler, logging.StreamHandler) and type(handler).__name__ not in _PYTEST_HANDLERS


class _FallbackHandler(logging.Handler):
    """Records what reaches the root logger while no handler of the service prints it (no app built yet)."""

    def __init__(self, check: LeakCheck) -> None:
        super().__init__()
        self._check = check
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        """Record the formatted line unless a printing handler on the root logger records it already."""
        if not any(_prints(handler) for handler in logging.getLogger().handlers):
            self._check.record_log_line(self.format(record))


def _patch(undo: list[Callable[[], None]], owner: type, name: str, replacement: Callable[..., Any]) -> None:
    original = owner.__dict__[name]
    setattr(owner, name, replacement)
    undo.append(lambda: setattr(owner, name, original))


def _patch_requests(undo: list[Callable[[], None]], check: LeakCheck) -> None:
    """Record the service's answers to `requests` too (schemathesis sends with it), when it is installed."""
    try:
        import requests
    except ImportError:
        return
    original_send = requests.Session.send

    @functools.wraps(original_send)
    def send(session: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        response = original_send(session, request, **kwargs)
        path = urlsplit(request.url or "").path
        if not path.startswith(EMULATOR_PATHS):
            check.record_status(response.status_code)
            source = f"response to {request.method} {request.url} ({response.status_code})"
            # schemathesis sends with stream=True and reads the whole body at once anyway; an event
            # stream may never end, so it is left to the caller.
            streaming = "text/event-stream" in response.headers.get("Content-Type", "")
            body = "" if streaming else response.text
            check.record(source, _headers_text(response.headers.items()) + body)
        return response

    _patch(undo, requests.Session, "send", send)


def _headers_text(headers: Iterable[tuple[str, str]]) -> str:
    return "".join(f"{name}: {value}\n" for name, value in headers) + "\n"


def _context(text: str, start: int, end: int, what: str) -> str:
    before = text[max(0, start - _CONTEXT) : start]
    after = text[end : end + _CONTEXT]
    return (before + f"<{what}>" + after).replace("\n", "\\n")


ACTIVE: LeakCheck | None = None


def start_session_check() -> LeakCheck:
    """Install the session's LeakCheck (once)."""
    global ACTIVE
    if ACTIVE is None:
        ACTIVE = LeakCheck().install()
    return ACTIVE


def stop_session_check() -> None:
    """Uninstall the session's LeakCheck."""
    global ACTIVE
    if ACTIVE is not None:
        ACTIVE.uninstall()
        ACTIVE = None
