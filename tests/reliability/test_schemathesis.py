"""Schemathesis against the live service: every documented operation, generated requests, answers checked against /openapi.json.

The service runs as users run it (gunicorn with gunicorn.conf.py), in emulator mode, pointed at a
bundled emulator started here with a plan fast enough (50 requests/s) that SP-API never throttles:
any 5xx is then the service's own. Each request schemathesis sends must answer without a 5xx, with
a documented status, content type and headers, and a body that matches its documented schema.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import __version__
from config import Settings
from emulator.process import start_emulator_process, stop_emulator_process
from routes.openapi import build_spec
from services.spapi import OPERATION_PLANS
from tests.helpers.service import GUNICORN, ROOT, clean_env, free_port, stop, wait_for_health

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance, response_schema_conformance]
# Generated requests per operation (schemathesis adds the document's examples and its coverage
# cases: boundaries, missing fields, wrong types and methods); all 8 operations take ~15 s.
MAX_EXAMPLES = 50
# No Hypothesis deadline (a network round trip is no stable clock); each request gives up after
# REQUEST_TIMEOUT seconds instead, and each operation's test after TEST_TIMEOUT.
REQUEST_TIMEOUT = 10
TEST_TIMEOUT = 120
# The emulator's plan, and the service's: fast enough never to throttle a single test client.
PLAN_RATE = "50"

# The document as the service serves it with default settings (the service under test is started
# with them); test_the_service_serves_the_document_under_test checks that it serves exactly this.
DEFAULTS = Settings()
SPEC = build_spec(__version__, DEFAULTS.max_batch_size, DEFAULTS.default_country)
# Loaded at collection, so each operation is a test of its own. (`schemathesis.pytest.from_fixture`,
# which would load it from the live service, fails under pytest 9.2 with schemathesis 4.32.5:
# it reads `Node._nodeid`, which pytest 9.2 no longer has.)
schema = schemathesis.openapi.from_dict(SPEC)


@dataclass
class Tally:
    """What schemathesis sent and what came back, for the summary line."""

    statuses: Counter[int] = field(default_factory=Counter)
    by_operation: Counter[str] = field(default_factory=Counter)
    other_methods: int = 0
    server_errors: list[str] = field(default_factory=list)

    def record(self, case: schemathesis.Case, response: requests.Response) -> None:
        self.statuses[response.status_code] += 1
        self.by_operation[case.operation.label] += 1
        # Schemathesis also probes each path with methods it does not document (expecting 405).
        self.other_methods += case.method.upper() != case.operation.method.upper()
        if response.status_code >= 500:
            request = response.request
            sent = f"{request.method} {request.url} body={request.body!r}"
            self.server_errors.append(f"{sent} -> {response.status_code} {response.text[:500]}")

    def summary(self) -> str:
        total = sum(self.statuses.values())
        five_xx = sum(n for status, n in self.statuses.items() if status >= 500)
        statuses = ", ".join(f"{status}: {n}" for status, n in sorted(self.statuses.items()))
        operations = ", ".join(f"{op}: {n}" for op, n in sorted(self.by_operation.items()))
        return (
            f"schemathesis: {total} requests ({self.other_methods} with an undocumented method), {five_xx} 5xx; "
            f"statuses {statuses}; per operation {operations}"
        )


@pytest.fixture(scope="module")
def service_url() -> Iterator[str]:
    """gunicorn -c gunicorn.conf.py 'app:create_app()' in emulator mode, against an emulator at 50 requests/s."""
    emulator_port, port = free_port(), free_port()
    # Every operation at PLAN_RATE: the catalog's by --rate/--burst, the datasets' (include) by --plans. The service
    # starts at the models' plans and takes the announced one after each operation's first call.
    plans = json.dumps(dict.fromkeys(OPERATION_PLANS, [float(PLAN_RATE), int(PLAN_RATE)]))
    emulator = start_emulator_process(
        emulator_port, extra_args=["--rate", PLAN_RATE, "--burst", PLAN_RATE, "--plans", plans, "--exit-with-parent"]
    )
    env = clean_env(
        PORT=str(port),
        SP_API_ENDPOINT=f"http://127.0.0.1:{emulator_port}",
        SP_API_RATE=PLAN_RATE,
        SP_API_BURST=PLAN_RATE,
        RATE_LIMIT_CALLS="100000",
        GUNICORN_THREADS="8",
        # The settings SPEC was built with, whatever a local .env says.
        MAX_BATCH_SIZE=str(DEFAULTS.max_batch_size),
        DEFAULT_COUNTRY=DEFAULTS.default_country,
        # No keys: every operation is open, so the generated requests reach the views.
        API_KEYS="",
        API_KEYS_FILE="",
        API_KEY_RATE="0",
    )
    command = [str(GUNICORN), "-c", "gunicorn.conf.py", "app:create_app()"]
    # The log goes to a file: hundreds of access-log lines would fill a pipe nobody reads and block gunicorn.
    with tempfile.TemporaryFile(mode="w+", prefix="fba-gunicorn-") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        url = f"http://127.0.0.1:{port}"
        try:
            try:
                assert wait_for_health(url, proc)["mode"] == "emulator"
            except AssertionError as exc:
                log.seek(0)
                raise AssertionError(f"{exc}\n{log.read()}") from None
            yield url
        finally:
            if proc.poll() is None:
                stop(proc)
            stop_emulator_process(emulator)
            log.seek(0)
            output = log.read()
        tracebacks = output.count("Traceback")
        assert not tracebacks, f"the service logged {tracebacks} tracebacks:\n{output[-5000:]}"


@pytest.fixture(scope="module")
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    """Counts for the whole module, printed at its end (with or without -s)."""
    counts = Tally()
    yield counts
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        print(f"\n{counts.summary()}")
        for line in counts.server_errors:
            print(f"  5xx: {line}")


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    """One connection pool for every generated request."""
    with requests.Session() as session:
        yield session


def test_the_service_serves_the_document_under_test(service_url: str, http: requests.Session) -> None:
    assert http.get(f"{service_url}/openapi.json", timeout=REQUEST_TIMEOUT).json() == SPEC


@pytest.mark.timeout(TEST_TIMEOUT)
@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_operation_answers_as_documented(case: schemathesis.Case, service_url: str, http: requests.Session, tally: Tally) -> None:
    """No 5xx, and status, content type, headers and body as /openapi.json documents them."""
    response = case.call(base_url=service_url, session=http, timeout=REQUEST_TIMEOUT)
    tally.record(case, response)
    case.validate_response(response, checks=CHECKS)
