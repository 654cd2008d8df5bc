"""The service as users run it: gunicorn (`make run`'s command), `python app.py`, and a bad setting."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.helpers.service import GUNICORN, ROOT, clean_env, free_port, stop, wait_for_health

API_KEY = "fba-test-key-deploy-0123456789"


@pytest.fixture(params=["gunicorn", "python app.py"])
def served(request) -> Iterator[tuple[str, subprocess.Popen, int]]:
    """The service started the two documented ways, with the bundled emulator on its own port."""
    port, emulator_port = free_port(), free_port()
    env = clean_env(PORT=str(port), EMULATOR_PORT=str(emulator_port), GUNICORN_THREADS="8")
    if request.param == "gunicorn":
        command = [str(GUNICORN), "-c", "gunicorn.conf.py", "app:create_app()"]
    else:
        command = [sys.executable, "app.py"]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, proc)
        yield url, proc, emulator_port
    finally:
        if proc.poll() is None:
            stop(proc)


def test_new_user_gets_answers_from_the_bundled_emulator(served):
    url, proc, emulator_port = served
    health = httpx.get(f"{url}/health").json()
    assert (health["status"], health["mode"]) == ("ok", "emulator")
    item = httpx.get(f"{url}/asin/B07N4M94X4").json()
    assert item["success"] is True and item["Title"].startswith("Samsung QN82Q60RAFXZA")
    batch = httpx.post(f"{url}/asin/batch/US", json={"asins": ["B07N4M94X4", "B08N5WRWNW", "B08N5WRWNW"]}).json()
    assert (batch["total_requested"], batch["successful"]) == (3, 3)
    config = httpx.get(f"{url}/config").json()
    assert config["mode"] == "emulator" and config["sp_api_endpoint"] == f"http://127.0.0.1:{emulator_port}"
    assert httpx.get(f"{url}/nowhere").json()["error"]["code"] == "NOT_FOUND"
    output = stop(proc)
    assert "bundled SP-API emulator" in output
    # The emulator the master started is gone with it.
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{emulator_port}/_emulator/health", timeout=2)


@pytest.mark.parametrize(("variable", "value"), [("MAX_WORKERS", "abc"), ("RATE_LIMIT_CALLS", "0")])
@pytest.mark.parametrize("command", [[str(GUNICORN), "-c", "gunicorn.conf.py", "app:create_app()"], [sys.executable, "app.py"]])
def test_bad_setting_stops_start_up_with_one_line(variable, value, command):
    proc = subprocess.run(
        command, cwd=ROOT, env=clean_env(**{variable: value, "PORT": str(free_port())}), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    output = (proc.stdout + proc.stderr).strip()
    assert "Traceback" not in output
    assert len(output.splitlines()) == 1 and variable in output


def test_no_secret_in_any_log_line_or_response(emulator):
    """Live mode at DEBUG, against the emulator: the client secret, refresh token and access tokens never show."""
    from emulator import defaults

    port = free_port()
    env = clean_env(
        PORT=str(port),
        LOG_LEVEL="DEBUG",
        LWA_APP_ID=defaults.CLIENT_ID,
        LWA_CLIENT_SECRET=defaults.CLIENT_SECRET,
        SP_API_REFRESH_TOKEN=defaults.REFRESH_TOKEN,
        SP_API_ENDPOINT=emulator.url,
        LWA_ENDPOINT=emulator.url + "/auth/o2/token",
        API_KEYS=API_KEY,
        LOG_FORMAT="json",
    )
    command = [str(GUNICORN), "-c", "gunicorn.conf.py", "app:create_app()"]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    bodies = []
    try:
        assert wait_for_health(url, proc)["mode"] == "live"
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}) as http:
            bodies.append(http.get("/asin/B07N4M94X4").text)
            bodies.append(http.post("/asin/batch/US", json={"asins": ["B07N4M94X4", "NF00000001", "bad"]}).text)
            bodies.append(http.get("/config").text)
            bodies.append(http.get("/health").text)
        bodies.append(httpx.get(f"{url}/config", headers={"X-API-Key": API_KEY[:-1]}).text)
    finally:
        output = stop(proc)
    assert emulator.calls()["by_operation"]["lwaToken"] == {"200": 1}
    assert "Samsung" in bodies[0] and "GET /asin/B07N4M94X4" in output
    for text in [*bodies, output]:
        assert defaults.CLIENT_SECRET not in text
        assert defaults.REFRESH_TOKEN not in text
        assert "Atza|" not in text  # every access token the emulator issues starts so
        assert API_KEY not in text and API_KEY[:-1] not in text


def test_sigterm_lets_a_running_batch_finish(emulator, tmp_path):
    emulator.configure(latency_ms=1500)  # each SP-API call takes 1.5 s
    port = free_port()
    env = clean_env(PORT=str(port), SP_API_ENDPOINT=emulator.url, DATA_DIR=str(tmp_path))
    command = [str(GUNICORN), "-c", "gunicorn.conf.py", "app:create_app()"]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    wait_for_health(url, proc)
    with ThreadPoolExecutor(1) as pool:
        batch = pool.submit(httpx.post, f"{url}/asin/batch/US", json={"asins": [f"B0TERM{i:04d}" for i in range(40)]}, timeout=60)
        while not emulator.calls()["by_operation"].get("searchCatalogItems"):
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)  # while the batch is waiting on SP-API
        response = batch.result()
    stop(proc)
    assert response.status_code == 200 and response.json()["successful"] == 40
