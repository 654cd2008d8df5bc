"""`python -m emulator` as a child process through emulator.process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from emulator.process import REPO_ROOT, emulator_output, free_port, start_emulator_process, stop_emulator_process


def test_process_starts_answers_and_stops() -> None:
    port = free_port()
    plans = '{"getItemOffersBatch": [10, 4]}'
    proc = start_emulator_process(port, extra_args=["--rate", "5", "--burst", "3", "--seed", "4", "--plans", plans])
    try:
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/_emulator/health").json() == {"status": "ok"}
        config = httpx.get(f"{base}/_emulator/config").json()
        assert (config["rate"], config["burst"], config["seed"]) == (5.0, 3, 4)
        assert config["plans"] == {"getItemOffersBatch": [10.0, 4]}
        assert f"SP-API emulator listening on http://127.0.0.1:{port}" in emulator_output(proc)
    finally:
        stop_emulator_process(proc)
    assert proc.returncode == 0  # SIGTERM is a clean exit


def test_process_that_cannot_bind_raises_with_its_output() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(RuntimeError, match="exited with status 1"):
            start_emulator_process(port)


def test_bad_arguments_are_rejected() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "emulator", "--port", "0", "--fault-rate", "3"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "fault_rate" in result.stderr
    not_json = subprocess.run(
        [sys.executable, "-m", "emulator", "--port", "0", "--plans", "fast"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30
    )
    assert not_json.returncode == 2 and "--plans is not JSON" in not_json.stderr


def test_importing_the_package_has_no_side_effects() -> None:
    code = (
        "import threading, emulator, emulator.app, emulator.catalog, emulator.client, emulator.defaults, "
        "emulator.identifiers, emulator.options, emulator.params, emulator.process, emulator.products, "
        "emulator.ratelimit, emulator.search, emulator.server, emulator.state, emulator.__main__\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_exit_with_parent_stops_when_the_parent_is_killed(tmp_path):
    """A gunicorn master killed with SIGKILL leaves no emulator behind."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pid_file = tmp_path / "pid"
    parent_code = (
        "import sys, time\n"
        "from emulator.process import start_emulator_process\n"
        f"proc = start_emulator_process({port}, extra_args=['--exit-with-parent'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(proc.pid))\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code], cwd=REPO_ROOT)
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the emulator did not start"
        time.sleep(0.1)
    child = int(pid_file.read_text())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while True:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "the emulator outlived its parent"
        time.sleep(0.2)
