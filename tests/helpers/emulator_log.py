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


def worst_overrun(times: list[float], rate: float, burst: int) -> float:
    """The most calls that arrived in any interval beyond what the plan allows in it (burst + rate × length)."""
    worst = -float(burst)
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            worst = max(worst, (j - i + 1) - (burst + rate * (times[j] - start)))
    return worst
