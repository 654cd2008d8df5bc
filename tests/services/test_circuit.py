"""The per-region circuit breaker on a fake clock: it opens, refuses without calling, and probes after the cooldown."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pybreaker
import pytest

from services.circuit import RegionCircuits
from tests.helpers.fake_clock import FakeClock

COOLDOWN = 30.0
OPENED_ISO = "2027-01-15T08:00:00Z"  # FakeClock's start, 1_800_000_000


class Upstream:
    """A stand-in for SP-API behind the breaker: counts calls, fails with a connection error while down."""

    def __init__(self) -> None:
        self.calls = 0
        self.down = True

    def __call__(self) -> str:
        self.calls += 1
        if self.down:
            raise ConnectionError("connection refused")
        return "answer"


def circuits_on(clock: FakeClock | None = None) -> RegionCircuits:
    kwargs = {"clock": clock} if clock is not None else {}
    return RegionCircuits(failures=2, cooldown=COOLDOWN, is_outage=lambda exc: isinstance(exc, ConnectionError), **kwargs)


def open_na(circuits: RegionCircuits, upstream: Upstream) -> None:
    for _ in range(2):
        with pytest.raises(ConnectionError):
            circuits.call("NA", upstream)


def test_an_open_circuit_refuses_until_the_cooldown_has_passed_then_a_probe_closes_it() -> None:
    clock = FakeClock()
    circuits, upstream = circuits_on(clock), Upstream()
    open_na(circuits, upstream)

    with pytest.raises(pybreaker.CircuitBreakerError):
        circuits.call("NA", upstream)
    view = circuits.snapshot()
    assert view["NA"] == {"state": "open", "consecutive_failures": 2, "opened_at": OPENED_ISO}
    assert view["EU"] == {"state": "closed", "consecutive_failures": 0, "opened_at": None}
    assert circuits.any_open()

    upstream.down = False
    clock.advance(COOLDOWN - 0.5)
    with pytest.raises(pybreaker.CircuitBreakerError):
        circuits.call("NA", upstream)
    assert upstream.calls == 2  # refused without a call
    assert circuits.call("EU", upstream) == "answer"  # each region its own circuit

    clock.advance(0.5)
    assert circuits.call("NA", upstream) == "answer"  # the half-open probe went through
    assert upstream.calls == 4
    assert circuits.snapshot()["NA"] == {"state": "closed", "consecutive_failures": 0, "opened_at": None}
    assert not circuits.any_open()


def test_a_failed_probe_opens_the_circuit_for_another_cooldown_from_the_probe() -> None:
    clock = FakeClock()
    circuits, upstream = circuits_on(clock), Upstream()
    open_na(circuits, upstream)

    clock.advance(COOLDOWN)
    with pytest.raises(ConnectionError):
        circuits.call("NA", upstream)  # the probe, still failing
    assert upstream.calls == 3
    assert circuits.snapshot()["NA"]["opened_at"] == "2027-01-15T08:00:30Z"

    upstream.down = False
    clock.advance(COOLDOWN - 0.5)
    with pytest.raises(pybreaker.CircuitBreakerError):
        circuits.call("NA", upstream)
    clock.advance(0.5)
    assert circuits.call("NA", upstream) == "answer"
    assert upstream.calls == 4


def test_failures_that_are_not_outages_never_open_the_circuit() -> None:
    circuits = circuits_on(FakeClock())

    def not_found() -> str:
        raise LookupError("404")

    for _ in range(5):
        with pytest.raises(LookupError):
            circuits.call("NA", not_found)
    assert circuits.snapshot()["NA"]["state"] == "closed"


def test_a_clock_swapped_in_after_construction_times_the_cooldown() -> None:
    circuits, upstream = circuits_on(), Upstream()
    clock = FakeClock()
    circuits.clock = clock
    open_na(circuits, upstream)
    assert circuits.snapshot()["NA"]["opened_at"] == OPENED_ISO
    upstream.down = False
    clock.advance(COOLDOWN)
    assert circuits.call("NA", upstream) == "answer"


def test_by_default_opened_at_is_the_wall_time_of_opening() -> None:
    circuits, upstream = circuits_on(), Upstream()
    before = int(time.time())
    open_na(circuits, upstream)
    after = time.time()
    opened_at = datetime.strptime(circuits.snapshot()["NA"]["opened_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    assert before <= opened_at <= after
    with pytest.raises(pybreaker.CircuitBreakerError):
        circuits.call("NA", upstream)  # and the real cooldown (30 s) has not passed


def test_calls_in_one_region_run_side_by_side_while_the_circuit_is_closed():
    """Four threads' calls overlap (pybreaker's own `call` would run them one at a time)."""
    circuits = RegionCircuits(failures=5, cooldown=30, is_outage=lambda exc: True)
    inside = threading.Barrier(4, timeout=5)

    def together() -> str:
        inside.wait()  # returns only once all four calls are inside at the same time
        return "ok"

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: circuits.call("NA", together), range(4)))
    assert results == ["ok"] * 4
