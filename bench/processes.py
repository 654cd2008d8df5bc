"""The bench's child processes: the SP-API emulator and the service under gunicorn.

Every process started here is registered until stopped, and an atexit hook stops whatever is
still running, so an interrupted bench leaves nothing behind. A server that does not come up
raises `ServerFailed` carrying everything it printed.
"""

from __future__ import annotations

import atexit
import ctypes
import dataclasses
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol

import httpx

from config import CREDENTIAL_FIELDS, Settings
from emulator.client import EmulatorClient
from emulator.process import free_port, start_emulator_process, stop_emulator_process, terminate

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"
START_TIMEOUT = 60.0
# gunicorn.conf.py gives workers graceful_timeout = 30 s to finish their requests.
STOP_TIMEOUT = 40.0
# Settings being added to the service; passed through as the scenario gives them.
UPCOMING_VARIABLES = ("RATE_LIMIT_BACKEND", "REDIS_URL", "CACHE_BACKEND", "CACHE_TTL", "DATA_DIR")
PR_SET_PDEATHSIG = 1  # linux/prctl.h
# A Python exception line, or the one line the service prints for a bad setting.
_ERROR_LINE = re.compile(r"^([\w.]+(Error|Exception|Exit)\b|fba-backend: configuration error).*")


class ServerFailed(RuntimeError):
    """A server exited or did not answer in time; the message holds its output."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(f"{message}:\n{output}" if output else message)
        errors = [line.strip() for line in output.splitlines() if _ERROR_LINE.match(line.strip())]
        # One line for the results table: what happened and the last exception the server printed.
        self.summary = f"{message}: {errors[-1]}" if errors else message


class _Stoppable(Protocol):
    def stop(self) -> None: ...


_running: list[_Stoppable] = []


def _stop_all() -> None:
    """Stop every process still running (atexit): newest first, services before their emulator."""
    for server in reversed(list(_running)):
        server.stop()


atexit.register(_stop_all)


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it when the bench dies, even by SIGKILL (atexit cannot run then)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return  # no libc to ask: atexit is the only safety net
    prctl = getattr(libc, "prctl", None)
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def service_variables() -> tuple[str, ...]:
    """Every environment variable the service reads, so the bench can control all of them."""
    return tuple(f.name.upper() for f in dataclasses.fields(Settings)) + UPCOMING_VARIABLES


class Emulator:
    """`python -m emulator` as a child process, with the real usage plan unless told otherwise."""

    def __init__(self, extra_args: Sequence[str] = ()) -> None:
        self._extra_args = list(extra_args)
        self._proc: subprocess.Popen[Any] | None = None
        self.port = 0
        self.client: EmulatorClient | None = None

    @property
    def url(self) -> str:
        """Base URL of the emulator (SP-API, LWA and the /_emulator/ controls)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Emulator:
        """Start the emulator on a free port and wait until it answers."""
        self.port = free_port()
        try:
            self._proc = start_emulator_process(self.port, extra_args=["--exit-with-parent", *self._extra_args])
        except RuntimeError as exc:
            message, _, output = str(exc).partition(":\n")
            raise ServerFailed(message, output) from exc
        _running.append(self)
        self.client = EmulatorClient(self.url, timeout=30.0)
        return self

    def _control(self) -> EmulatorClient:
        if self.client is None:
            raise RuntimeError("the emulator is not running")
        return self.client

    def calls(self) -> list[dict[str, Any]]:
        """The emulator's call log, oldest first (the latest 50,000 calls)."""
        return self._control().calls()["calls"]

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change emulator options live (POST /_emulator/config)."""
        return self._control().configure(**changes)

    def stop(self) -> None:
        """Stop the emulator (idempotent)."""
        if self.client is not None:
            self.client.close()
            self.client = None
        if self._proc is not None:
            stop_emulator_process(self._proc)
            self._proc = None
        if self in _running:
            _running.remove(self)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


class Service:
    """The service as production runs it: `.venv/bin/gunicorn -c gunicorn.conf.py APP`, on a free port."""

    def __init__(
        self, settings: Mapping[str, str], app_spec: str = "app:create_app()", *, port: int = 0, log_path: Path | None = None
    ) -> None:
        self.settings = dict(settings)
        self.app_spec = app_spec
        # A fixed port and log file keep the URL and the output across a restart; else a free port and a temporary file.
        self.port = port
        self._fixed_port = port
        self.log_path = log_path
        self.last_stop: tuple[float, int | None] | None = None  # (seconds from SIGTERM to exit, exit status)
        self._proc: subprocess.Popen[Any] | None = None
        self._output: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the service."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """Process id of the gunicorn master."""
        if self._proc is None:
            raise RuntimeError("the service is not running")
        return self._proc.pid

    def _environment(self) -> dict[str, str]:
        # Nothing the service reads is inherited from the caller's shell: the scenario decides.
        controlled = set(service_variables()) | {name.upper() for name in CREDENTIAL_FIELDS}
        env = {name: value for name, value in os.environ.items() if name not in controlled}
        env.update(self.settings, PORT=str(self.port), PYTHONUNBUFFERED="1")
        return env

    def environment(self) -> dict[str, str]:
        """The environment gunicorn gets: for another process that must run with the service's own settings."""
        return self._environment()

    def start(self) -> Service:
        """Start gunicorn and wait until /health answers and every worker has been forked."""
        self.port = self._fixed_port or free_port()
        self._output = self.log_path.open("ab") if self.log_path else tempfile.TemporaryFile(prefix="bench-gunicorn-")
        command = [str(GUNICORN), "-c", "gunicorn.conf.py", self.app_spec]
        self._proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self._environment(),
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        _running.append(self)
        try:
            self._wait_until_ready(int(self.settings.get("WEB_CONCURRENCY", "1")))
        except ServerFailed:
            self.stop()
            raise
        return self

    def _wait_until_ready(self, workers: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise ServerFailed(f"gunicorn exited with status {self._proc.returncode} before answering", self.output())
            if len(self.worker_pids()) >= workers and self._healthy():
                # Workers import the app after the fork; one answering /health does not mean all have.
                time.sleep(1.0)
                return
            time.sleep(0.1)
        raise ServerFailed(f"gunicorn did not answer {self.url}/health within {START_TIMEOUT:.0f} s", self.output())

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200
        except httpx.TransportError:
            return False  # not listening yet

    def worker_pids(self) -> list[int]:
        """Process ids of the gunicorn workers (the master's children)."""
        if self._proc is None:
            return []
        return children_of(self._proc.pid)

    def output(self, limit: int | None = 1 << 16) -> str:
        """The last `limit` bytes gunicorn and the app printed (None: all; the access log can grow large)."""
        if self._output is None or self._output.closed:
            return ""
        size = os.fstat(self._output.fileno()).st_size
        limit = size if limit is None else limit
        # pread leaves the file offset alone: gunicorn shares it and is still writing.
        return os.pread(self._output.fileno(), limit, max(0, size - limit)).decode("utf-8", "replace")

    def stop(self) -> None:
        """SIGTERM the master, wait for a graceful exit, kill it if it hangs (idempotent)."""
        if self._proc is not None:
            started = time.monotonic()
            terminate(self._proc, STOP_TIMEOUT)
            self.last_stop = (time.monotonic() - started, self._proc.returncode)
            self._proc = None
        if self._output is not None:
            self._output.close()
            self._output = None
        if self in _running:
            _running.remove(self)

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def children_of(pid: int) -> list[int]:
    """Process ids whose parent is `pid` (from /proc/<n>/stat)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # the process ended while we looked
        # Field 4 (ppid) follows the command name, which is in parentheses and may hold spaces.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            children.append(int(entry.name))
    return sorted(children)


def peak_rss_kib(pid: int) -> int:
    """VmHWM (peak resident set size) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise LookupError(f"no VmHWM in /proc/{pid}/status")
