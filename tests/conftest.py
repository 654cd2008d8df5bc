"""Shared fixtures: the bundled SP-API emulator on a free loopback port, and apps pointed at it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from config import Settings
from emulator import EmulatorOptions, EmulatorServer
from tests.helpers import leak_check
from tests.helpers.leak_check import start_session_check, stop_session_check
from tests.helpers.redis import redis_server, redis_url  # noqa: F401


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    """One emulator for the session; tests get it reset through `emulator`."""
    server = EmulatorServer(EmulatorOptions()).start()
    yield server
    server.stop()


@pytest.fixture
def emulator(emulator_server: EmulatorServer) -> EmulatorServer:
    """The emulator with default options (the real plan: 2 requests/s, burst 2), an empty call log and full buckets."""
    emulator_server.configure(**{f.name: getattr(EmulatorOptions(), f.name) for f in dataclasses.fields(EmulatorOptions)})
    emulator_server.reset()
    return emulator_server


def emulator_settings(emulator: EmulatorServer, **overrides: object) -> Settings:
    """Settings pointed at `emulator`, with quick retries so failing paths run fast."""
    values: dict[str, object] = {
        "sp_api_endpoint": emulator.url,
        "rate_limit_calls": 1000,
        "rate_limit_window": 60.0,
        "request_timeout": 10.0,
        "max_retries": 3,
        "retry_delay_base": 1.0,
        "retry_delay_max": 0.05,
        "log_level": "INFO",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def make_app(emulator: EmulatorServer, tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build apps against the emulator; `make_app(max_workers=2, ...)` overrides settings.

    Each test's apps share a DATA_DIR of their own (sqlite limiter and cache), so no test sees another's cache.
    """
    apps: list[Flask] = []

    def build(**overrides: object) -> Flask:
        overrides.setdefault("data_dir", str(tmp_path / "data"))
        app = create_app(emulator_settings(emulator, **overrides))
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["jobs"].stop()
        app.extensions["asin_service"].close()
        app.extensions["limiter"].close()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """An app with the default test settings."""
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client for `app` (its SP-API calls go over real HTTP to the emulator)."""
    return app.test_client()


# -- Secrets: every log line, response body and captured process output of the session is grepped for them
# at its end (tests/helpers/leak_check.py says what is recorded and what counts as a secret).


def pytest_configure(config: pytest.Config) -> None:
    """Start recording what the service logs and answers, for the secrets check at the end of the session."""
    start_session_check()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session when any recorded log line, response or process output holds a secret."""
    if leak_check.ACTIVE is not None and leak_check.ACTIVE.leaks() and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Name every secret found, where and in what context (the secret itself masked)."""
    report = leak_check.ACTIVE.report() if leak_check.ACTIVE is not None else ""
    if report:
        terminalreporter.section("secrets leaked", sep="=", red=True, bold=True)
        terminalreporter.line(report, red=True)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Undo the recording wrappers."""
    stop_session_check()
