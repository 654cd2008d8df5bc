"""The service as users run it, for deploy and reliability tests: gunicorn (or `python app.py`) in a child process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from emulator.process import free_port, start_emulator_process, stop_emulator_process

__all__ = [
    "CREDENTIAL_VARS",
    "GUNICORN",
    "ROOT",
    "SHARED_BY_FOUR_WORKERS",
    "EmulatorProcess",
    "KillableService",
    "clean_env",
    "free_port",
    "serve_gunicorn",
    "serve_shared_by_four",
    "stop",
    "wait_for_health",
    "workers_that_served",
]

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


def serve_gunicorn(emulator_url: str, data_dir: Path, **env: str) -> tuple[str, subprocess.Popen]:
    """gunicorn (gunicorn.conf.py, as `make run` serves) on a free port against `emulator_url`: its URL and process, once healthy."""
    port = free_port()
    environment = clean_env(PORT=str(port), SP_API_ENDPOINT=emulator_url, DATA_DIR=str(data_dir), **env)
    command = [str(GUNICORN), "-c", "gunicorn.conf.py", "app:create_app()"]
    proc = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    wait_for_health(url, proc)
    return url, proc


def serve_shared_by_four(emulator_url: str, data_dir: Path, **env: str) -> tuple[str, subprocess.Popen]:
    """serve_gunicorn for the pacing tests: SHARED_BY_FOUR_WORKERS, 8 threads each, a window that never binds, and a
    margin wider than the default (0.15): they are about workers sharing plans, on a machine whose load (CI, the suite's
    other processes) jitters the time from admission to arrival."""
    return serve_gunicorn(
        emulator_url,
        data_dir,
        GUNICORN_THREADS="8",
        RATE_LIMIT_CALLS="10000",
        SP_API_RATE_MARGIN="0.15",
        **SHARED_BY_FOUR_WORKERS,
        **env,
    )


def workers_that_served(output: str, path: str) -> set[str]:
    """The pids in SHARED_BY_FOUR_WORKERS' access log lines of requests to `path`."""
    return {line.split("served-by=<")[1].split(">")[0] for line in output.splitlines() if "served-by=" in line and path in line}


class EmulatorProcess:
    """The emulator in a process of its own (not sharing the GIL with the test's clients), started with `args`."""

    def __init__(self, *args: str) -> None:
        port = free_port()
        self.proc = start_emulator_process(port, extra_args=list(args))
        self.url = f"http://127.0.0.1:{port}"

    def calls(self, operation: str) -> list[dict]:
        """The logged calls of one operation, oldest first."""
        return [c for c in httpx.get(f"{self.url}/_emulator/calls").json()["calls"] if c["operation"] == operation]

    def stop(self) -> None:
        """Stop the process."""
        stop_emulator_process(self.proc)


class KillableService:
    """gunicorn as production runs it, logging to a file, in a session of its own: SIGKILL reaches the master and workers at once."""

    def __init__(self, emulator_url: str, data_dir: Path, log: Path, **env_vars: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = clean_env(PORT=str(self.port), SP_API_ENDPOINT=emulator_url, DATA_DIR=str(data_dir), RATE_LIMIT_CALLS="10000", **env_vars)
        self.log = log.open("a")
        command = [str(GUNICORN), "-c", "gunicorn.conf.py", "app:create_app()"]
        self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_health(self.url, self.proc)

    def job(self, job_id: str) -> dict:
        """The job's view."""
        return httpx.get(f"{self.url}/jobs/{job_id}", timeout=10).json()

    def wait(self, job_id: str, done: Callable[[dict], bool], timeout: float = 120) -> dict:
        """Poll the job until `done(view)`; its view then."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            view = self.job(job_id)
            if done(view):
                return view
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} did not get there: {view}")

    def interrupt(self, signum: int) -> None:
        """SIGKILL to every process of the service at once (a power cut), or SIGTERM to gunicorn (a deploy)."""
        if signum == signal.SIGKILL:
            os.killpg(self.proc.pid, signal.SIGKILL)
        else:
            self.proc.send_signal(signum)
        self.proc.wait(60)
        self.log.close()

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 40 s) if still running; close the log."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
