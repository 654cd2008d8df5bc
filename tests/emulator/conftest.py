"""Fixtures for the emulator's own tests: EmulatorServer instances on free loopback ports, httpx clients."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # so `import emulator` works however pytest is started
    sys.path.insert(0, str(REPO_ROOT))

from emulator import EmulatorOptions, EmulatorServer  # noqa: E402
from emulator.client import EmulatorClient  # noqa: E402
from tests.helpers.sp_api_library import FAST_PLANS  # noqa: E402

# Amazon's model, vendored (see tests/fixtures/README.md); the copy in ../shared/reference wins when present.
SHARED_MODEL = REPO_ROOT.parent / "shared/reference/catalogItems_2022-04-01.json"
MODEL_PATH = SHARED_MODEL if SHARED_MODEL.is_file() else REPO_ROOT / "tests/fixtures/catalogItems_2022-04-01.json"


@pytest.fixture(scope="session")
def model() -> dict[str, Any]:
    """The official Catalog Items 2022-04-01 model."""
    return json.loads(MODEL_PATH.read_text(encoding="utf-8"))


@pytest.fixture
def make_server() -> Iterator[Callable[..., EmulatorServer]]:
    """Factory: a started EmulatorServer on a free loopback port with option overrides (and a `clock`); stopped at teardown."""
    servers: list[EmulatorServer] = []

    def make(*, clock: Callable[[], float] = time.monotonic, **options: Any) -> EmulatorServer:
        server = EmulatorServer(EmulatorOptions(**options), clock=clock).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def make_client(make_server: Callable[..., EmulatorServer]) -> Iterator[Callable[..., EmulatorClient]]:
    """Factory: an EmulatorClient for a new emulator started with the given option overrides (and a `clock`)."""
    clients: list[EmulatorClient] = []

    def make(*, clock: Callable[[], float] = time.monotonic, **options: Any) -> EmulatorClient:
        client = EmulatorClient(make_server(clock=clock, **options).url)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def emu(make_client: Callable[..., EmulatorClient]) -> EmulatorClient:
    """A client for an emulator whose usage plans (every operation's) are generous enough never to throttle a test."""
    return make_client(rate=1000.0, burst=1000, plans=FAST_PLANS)
