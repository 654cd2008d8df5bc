"""What /health answers: one report gathered from every part that has a say."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from services.cache import ResultCache
from services.circuit import RegionCircuits
from services.health import UpstreamHealth
from services.jobs import JobService
from utils.rate_limit import CallLimiter


class ServiceStatus:
    """What /health answers, from every part that has a say: SP-API's last outcomes and circuits, the limiter, cache and jobs."""

    def __init__(
        self,
        *,
        mode: str,
        version: str,
        endpoint: str,
        upstream: UpstreamHealth,
        circuits: RegionCircuits,
        limiter: CallLimiter,
        cache: ResultCache,
        jobs: JobService,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fixed = {"mode": mode, "version": version}
        self._endpoint = endpoint
        self._upstream = upstream
        self._circuits = circuits
        self._limiter = limiter
        self._cache = cache
        self._jobs = jobs
        self._clock = clock
        self._started = clock()

    def snapshot(self) -> dict[str, Any]:
        """ok or degraded (the latest SP-API outcome, or an open circuit), and each part's state."""
        upstream = self._upstream.snapshot()
        return {
            "status": "degraded" if self._circuits.any_open() else upstream["status"],
            **self._fixed,
            "uptime_seconds": round(self._clock() - self._started, 1),
            "sp_api": {
                "endpoint": self._endpoint,
                "last_success": upstream["last_success"],
                "last_failure": upstream["last_failure"],
                "circuits": self._circuits.snapshot(),
            },
            "rate_limiter": self._limiter.snapshot(),
            "cache": self._cache.stats(),
            "jobs": self._jobs.health(),
        }
