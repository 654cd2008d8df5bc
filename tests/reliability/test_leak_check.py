"""The session-wide secrets check can fail: it finds planted secrets, it sees the app's log lines and answers, and it fails a session."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from config import Settings
from emulator import defaults as emulator_defaults
from tests.helpers import leak_check
from tests.helpers.leak_check import TEST_API_KEY, LeakCheck
from tests.helpers.service import ROOT

PLANTED_ACCESS_TOKEN = "Atza" + "|IwEBIplanted-access-token"  # split so this file's text is no token itself


def test_the_scan_finds_every_kind_of_secret_and_nothing_in_clean_text():
    """Each kind of secret planted in a recorded text is reported with where it was; masked text is not."""
    check = LeakCheck()  # not installed: only what is recorded below
    check.add_settings(
        Settings(
            lwa_app_id="amzn1.application-oa2-client.planted",
            lwa_client_secret="amzn1.oa2-cs.v1.planted-secret",
            sp_api_refresh_token="Atzr" + "|planted-refresh",
            api_keys=("planted-api-key-0123456789",),
        )
    )
    check.record("log line", f"client secret {emulator_defaults.CLIENT_SECRET} sent")
    check.record("response A", f'{{"token": "{PLANTED_ACCESS_TOKEN}"}}')
    check.record("response B", f"refresh {emulator_defaults.REFRESH_TOKEN}")
    check.record("response C", f"X-API-Key: {TEST_API_KEY}")
    check.record("output D", "cache at redis://:hunter2-planted@127.0.0.1:6379/0 is down")
    check.record("output E", "configured secret amzn1.oa2-cs.v1.planted-secret and key planted-api-key-0123456789")
    check.record("clean", "redis://:***@127.0.0.1:6379/0 token [REDACTED] Atza| alone, Bearer <hidden>")

    found = {(leak.source, leak.what) for leak in check.leaks()}
    assert ("log line", "the emulator's LWA client secret") in found
    assert ("response A", "an LWA access token") in found
    assert ("response B", "the emulator's refresh token") in found
    assert ("response C", "the test API key") in found
    assert ("output D", "a Redis password") in found
    assert ("output E", "a configured secret") in found
    assert not [leak for leak in check.leaks() if leak.source == "clean"]
    # The report names the leak without repeating the secret.
    assert PLANTED_ACCESS_TOKEN not in check.report() and "response A" in check.report()


def test_the_session_check_sees_the_apps_log_lines_and_answers(make_app):
    """What the app logs (as its handler prints it) and what the test client gets back are both recorded for the scan."""
    check = leak_check.ACTIVE
    assert check is not None, "tests/conftest.py installs the session's leak check"
    mark = check.mark()
    client = make_app().test_client()
    body = client.get("/asin/B07N4M94X4").get_data(as_text=True)
    assert any("fba-backend" in line and "ready" in line for line in check.log_lines(mark))
    assert any(source.startswith("response to GET /asin/B07N4M94X4") and body in text for source, text in check.texts())


PROBE = textwrap.dedent(
    """
    import logging
    import sys

    from flask import Flask


    def test_planted():
        app = Flask("probe")

        @app.get("/leak")
        def leak():
            return {"token": "Atza" + "|planted-in-a-response"}

        assert app.test_client().get("/leak").status_code == 200
        printed = logging.getLogger("probe.printed")  # a handler of its own, as the app's logging has
        printed.addHandler(logging.StreamHandler(sys.stderr))
        printed.propagate = False
        printed.warning("printed refresh token %s", "Atzr" + "|planted-in-a-printed-line")
        logging.getLogger("probe.root").warning("root refresh token %s", "Atzr" + "|planted-before-any-app")
    """
)


def test_a_session_whose_service_leaks_a_secret_fails(tmp_path):
    """A passing test whose app answers and logs a token still fails the whole pytest run, naming both leaks."""
    (tmp_path / "test_probe.py").write_text(PROBE)
    (tmp_path / "test_clean.py").write_text("def test_clean():\n    assert True\n")
    # tests/conftest.py as a plugin: its session hooks, outside this repository's tests/.
    command = [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path)]

    leaking = subprocess.run([*command, str(tmp_path / "test_probe.py")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert leaking.returncode == 1, leaking.stdout + leaking.stderr
    assert "1 passed" in leaking.stdout and "secrets leaked" in leaking.stdout
    assert "an LWA access token in response to GET /leak" in leaking.stdout
    assert "an LWA refresh token in log line: ...printed refresh token <an LWA refresh token>" in leaking.stdout
    assert "an LWA refresh token in log line: ...WARNING probe.root: root refresh token <an LWA refresh token>" in leaking.stdout

    clean = subprocess.run([*command, str(tmp_path / "test_clean.py")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert clean.returncode == 0 and "secrets leaked" not in clean.stdout, clean.stdout + clean.stderr
