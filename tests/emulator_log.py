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
