"""Reading the SP-API emulator's call log in the service's tests."""

from __future__ import annotations

from typing import Any

from emulator import EmulatorServer


def operation_calls(emulator: EmulatorServer, operation: str) -> list[dict[str, Any]]:
    """The logged calls of one operation, oldest first."""
    return [c for c in emulator.calls()["calls"] if c["operation"] == operation]


def calls_by_status(emulator: EmulatorServer, operation: str) -> dict[str, int]:
    """How many calls of one operation got each status."""
    return emulator.calls()["by_operation"].get(operation, {})


def assert_within_plan(calls: list[dict[str, Any]], rate: float, burst: int, operation: str) -> None:
    """No 429 among an operation's logged calls, and their arrivals replayed against the plan itself (not the service's
    margin) never beyond it, with 20 ms of slack for arrival jitter."""
    assert [c["status"] for c in calls] == [200] * len(calls), f"{operation}: a 429 means the service overran its plan"
    assert worst_overrun([c["time"] for c in calls], rate, burst) <= rate * 0.020, operation


def worst_overrun(times: list[float], rate: float, burst: int) -> float:
    """The most calls that arrived in any interval beyond what the plan allows in it (burst + rate × length)."""
    worst = -float(burst)
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            worst = max(worst, (j - i + 1) - (burst + rate * (times[j] - start)))
    return worst
