"""What /health answers: one report gathered from every part that has a say."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.cache import ResultCache
from services.circuit import RegionCircuits
from services.health import UpstreamHealth
from services.jobs import JobService
from utils.rate_limit import CallLimiter


@dataclass(frozen=True, kw_only=True)
class ServiceStatus:
    """What /health answers, from every part that has a say: SP-API's last outcomes and circuits, the limiter, cache and jobs."""

    mode: str
    version: str
    endpoint: str
    upstream: UpstreamHealth
    circuits: RegionCircuits
    limiter: CallLimiter
    cache: ResultCache
    jobs: JobService
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "started", self.clock())

    def snapshot(self) -> dict[str, Any]:
        """ok or degraded (the latest SP-API outcome, or an open circuit), and each part's state."""
        upstream = self.upstream.snapshot()
        return {
            "status": "degraded" if self.circuits.any_open() else upstream["status"],
            "mode": self.mode,
            "version": self.version,
            "uptime_seconds": round(self.clock() - self.started, 1),
            "sp_api": {
                "endpoint": self.endpoint,
                "last_success": upstream["last_success"],
                "last_failure": upstream["last_failure"],
                "circuits": self.circuits.snapshot(),
            },
            "rate_limiter": self.limiter.snapshot(),
            "cache": self.cache.stats(),
            "jobs": self.jobs.health(),
        }
