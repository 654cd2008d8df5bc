"""The service as users run it, for deploy and reliability tests: gunicorn (or `python app.py`) in a child process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from emulator.process import free_port

__all__ = ["CREDENTIAL_VARS", "GUNICORN", "ROOT", "SHARED_BY_FOUR_WORKERS", "clean_env", "free_port", "stop", "wait_for_health"]

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).parent / "gunicorn"
CREDENTIAL_VARS = ("LWA_APP_ID", "LWA_CLIENT_SECRET", "SP_API_REFRESH_TOKEN", "SP_API_ENDPOINT", "LWA_ENDPOINT")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a new user: no credentials, no endpoint, a DATA_DIR of its own."""
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS}
    env["DATA_DIR"] = tempfile.mkdtemp(prefix="fba-data-")
    env.update(extra)
    return env


# Four workers whose access log names the worker (pid) that served each request: for tests of what workers share.
SHARED_BY_FOUR_WORKERS = {
    "WEB_CONCURRENCY": "4",
    "CACHE_BACKEND": "none",
    "LOG_LEVEL": "WARNING",
    "GUNICORN_CMD_ARGS": "--access-logformat 'served-by=%(p)s %(r)s %(s)s'",
}


def wait_for_health(url: str, proc: subprocess.Popen, seconds: float = 30) -> dict:
    """Poll `url`/health until it answers (its JSON), failing if the server exits or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
        try:
            return httpx.get(f"{url}/health", timeout=2).json()
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("server did not answer /health in time")


def stop(proc: subprocess.Popen) -> str:
    """SIGTERM the server and return what it printed (killed if it has not exited within 40 s)."""
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ""
