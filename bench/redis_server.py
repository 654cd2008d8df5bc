"""A real `redis-server` on a free loopback port for the benchmarks (bench/ imports nothing from tests/).

The same approach as tests/redis_server.py (which adds the pytest fixtures); one of them can go
when the two are deduplicated.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from types import TracebackType

import redis

from emulator.process import free_port, terminate

START_TIMEOUT = 10.0
_READY_LINE = "Ready to accept connections"


class RedisServer:
    """`redis-server --port N --bind 127.0.0.1`, without persistence, stopped by stop() or on leaving a `with`."""

    def __init__(self, port: int | None = None, executable: str = "redis-server") -> None:
        self.port = port or free_port()
        self.executable = executable
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: str | None = None

    @property
    def url(self) -> str:
        """redis://127.0.0.1:PORT/0"""
        return f"redis://127.0.0.1:{self.port}/0"

    def output(self) -> str:
        """What the server has printed so far."""
        if self._dir is None:
            return ""
        with open(f"{self._dir}/redis.log", "rb") as log:
            return log.read().decode("utf-8", "replace")

    def start(self) -> RedisServer:
        """Start the server and wait until it answers PING; RuntimeError (with its output) if it does not."""
        path = shutil.which(self.executable)
        if path is None:
            raise RuntimeError(f"{self.executable} not found on PATH: run `make system-redis` (or apt-get install redis-server)")
        self._dir = tempfile.mkdtemp(prefix="redis-server-")
        command = [path, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"]
        with open(f"{self._dir}/redis.log", "wb") as log:
            # --dir: any file the server writes lands in the temporary directory, not the caller's cwd.
            self._proc = subprocess.Popen([*command, "--dir", self._dir], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5, socket_timeout=0.5)
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while True:
                code = self._proc.poll()
                if code is not None:
                    raise RuntimeError(f"redis-server exited with status {code} before answering on port {self.port}:\n{self.output()}")
                # The ready line proves the PONG comes from this child, not from another server on the port.
                if _READY_LINE in self.output() and _answers_ping(client):
                    return self
                if time.monotonic() > deadline:
                    waited = f"{START_TIMEOUT:.0f} s"
                    raise RuntimeError(f"redis-server did not answer PING on port {self.port} within {waited}:\n{self.output()}")
                time.sleep(0.02)
        except BaseException:
            self.stop()
            raise
        finally:
            client.close()

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the server, wait, and kill it if it has not exited within `timeout` seconds."""
        proc, self._proc = self._proc, None
        if proc is not None:
            terminate(proc, timeout)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def _answers_ping(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False  # not listening yet: keep waiting
