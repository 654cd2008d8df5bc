"""PM2 smoke test: real PM2 (from the npm registry, in ./node_modules) runs ecosystem.config.js."""

from __future__ import annotations

import json
import subprocess
import time

import httpx
import pytest

from tests.helpers.service import ROOT, clean_env, free_port

PM2 = ROOT / "node_modules" / ".bin" / "pm2"


def test_pm2_runs_gunicorn_from_the_ecosystem_file(tmp_path):
    assert PM2.exists(), "pm2 is not installed: `make test` installs it (npm ci) into ./node_modules"
    port = free_port()
    env = clean_env(PM2_HOME=str(tmp_path / "pm2"), PORT=str(port), EMULATOR_PORT=str(free_port()))

    def pm2(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(PM2), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    try:
        started = pm2("start", "ecosystem.config.js")
        assert started.returncode == 0, started.stderr
        health = None
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and health is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
            except httpx.TransportError:
                time.sleep(0.3)
        assert health is not None, pm2("logs", "--nostream", "--lines", "50").stdout
        assert (health["status"], health["mode"]) == ("ok", "emulator")
        processes = {p["name"]: p["pm2_env"] for p in json.loads(pm2("jlist").stdout)}
        assert processes["fba-backend"]["status"] == "online"
        assert processes["fba-backend"]["pm_exec_path"].endswith(".venv/bin/gunicorn")
        # The jobs worker app: with the default JOB_BACKEND=sqlite the service runs jobs, so the
        # worker exits 0 at once and PM2 leaves it stopped instead of restarting it in a loop.
        deadline = time.monotonic() + 30
        while processes["fba-jobs-worker"]["status"] != "stopped" and time.monotonic() < deadline:
            time.sleep(0.5)
            processes = {p["name"]: p["pm2_env"] for p in json.loads(pm2("jlist").stdout)}
        worker = processes["fba-jobs-worker"]
        assert (worker["status"], worker["restart_time"]) == ("stopped", 0), pm2("logs", "--nostream", "--lines", "30").stdout
        assert worker["pm_exec_path"].endswith(".venv/bin/flask")
        assert httpx.get(f"http://127.0.0.1:{port}/asin/B07N4M94X4").json()["success"] is True
    finally:
        pm2("delete", "all")
        pm2("kill")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
