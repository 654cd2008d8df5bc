"""What the service last heard from SP-API, for /health."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from services import errors
from utils.timestamps import iso_utc


class UpstreamHealth:
    """Thread-safe record of the latest SP-API success and failure."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last_success: dict[str, Any] | None = None
        self._last_failure: dict[str, Any] | None = None
        self._latest_failed = False

    def record_success(self, operation: str) -> None:
        """SP-API answered (an item, or a clean not-found)."""
        with self._lock:
            self._last_success = {"at": self._clock(), "operation": operation}
            self._latest_failed = False

    def record_failure(self, operation: str, code: str, message: str) -> None:
        """A call failed for good with `code`."""
        with self._lock:
            self._last_failure = {"at": self._clock(), "operation": operation, "code": code, "message": message}
            self._latest_failed = errors.degrades_health(code)

    def snapshot(self) -> dict[str, Any]:
        """`status` (ok or degraded) and the last success and failure, with ISO times."""
        with self._lock:
            return {
                "status": "degraded" if self._latest_failed else "ok",
                "last_success": _with_iso(self._last_success),
                "last_failure": _with_iso(self._last_failure),
            }


def _with_iso(event: dict[str, Any] | None) -> dict[str, Any] | None:
    if event is None:
        return None
    return {**event, "at": iso_utc(event["at"])}
