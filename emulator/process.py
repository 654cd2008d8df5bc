"""Run the emulator as a child process (`python -m emulator`) and wait until it answers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

# The directory holding the emulator package: `python -m emulator` must run from there.
REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 15.0
_READY_LINE = "SP-API emulator listening on"

# Each child's stdout+stderr goes to an anonymous temporary file (a pipe nobody reads could fill
# up and block the emulator); kept here so errors can quote it and stop can close it.
_OUTPUTS: weakref.WeakKeyDictionary[subprocess.Popen[Any], IO[bytes]] = weakref.WeakKeyDictionary()


def emulator_output(proc: subprocess.Popen[Any]) -> str:
    """What the emulator process has printed so far (stdout and stderr)."""
    output = _OUTPUTS.get(proc)
    if output is None or output.closed:
        return ""
    # pread leaves the file offset alone: the child shares it and is still writing.
    return os.pread(output.fileno(), 1 << 20, 0).decode("utf-8", "replace")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return response.status == 200 and json.load(response).get("status") == "ok"
    except (urllib.error.URLError, OSError, ValueError):
        return False  # not listening yet (or not an emulator): keep waiting


def start_emulator_process(
    port: int,
    host: str = "127.0.0.1",
    extra_args: Sequence[str] = (),
    python: str = sys.executable,
) -> subprocess.Popen[Any]:
    """Start `python -m emulator --port PORT --host HOST ...` and wait until /_emulator/health answers."""
    output = tempfile.TemporaryFile(prefix="sp-api-emulator-")
    command = [python, "-m", "emulator", "--port", str(port), "--host", host, *extra_args]
    proc = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    _OUTPUTS[proc] = output
    probe_host = "127.0.0.1" if host in ("", "0.0.0.0") else host
    health_url = f"http://{probe_host}:{port}/_emulator/health"
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        code = proc.poll()
        if code is not None:
            text = emulator_output(proc)
            output.close()
            raise RuntimeError(f"SP-API emulator exited with status {code} before answering {health_url}:\n{text}")
        # The ready line proves the answer comes from this child, not from another server on the port.
        if _READY_LINE in emulator_output(proc) and _healthy(health_url):
            return proc
        if time.monotonic() > deadline:
            text = emulator_output(proc)
            stop_emulator_process(proc)
            raise RuntimeError(f"SP-API emulator did not answer {health_url} within {START_TIMEOUT:.0f} s:\n{text}")
        time.sleep(0.05)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def terminate(proc: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    """SIGTERM a child process, wait, and kill it if it does not exit within `timeout` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stop_emulator_process(proc: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    """SIGTERM the emulator, wait, and kill it if it does not exit within `timeout` seconds."""
    terminate(proc, timeout)
    output = _OUTPUTS.pop(proc, None)
    if output is not None:
        output.close()
