"""What reached SP-API, read from the emulator's call log (never from the service's own counts)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

SP_API_OPERATIONS = ("getCatalogItem", "searchCatalogItems")
LWA_TOKEN = "lwaToken"
THROTTLED = 429


@dataclass(frozen=True)
class Plan:
    """A usage plan; Catalog Items 2022-04-01 allows 2 requests/s with a burst of 2 per operation."""

    rate: float = 2.0
    burst: int = 2

    def floor(self, calls: int) -> float:
        """Seconds the plan needs for `calls` calls starting from a full bucket: max(0, calls - burst) / rate."""
        return max(0, calls - self.burst) / self.rate


REAL_PLAN = Plan()


@dataclass(frozen=True)
class UpstreamCalls:
    """The SP-API calls (getCatalogItem, searchCatalogItems) logged in a time window, and the LWA token fetches."""

    calls: tuple[dict[str, Any], ...]
    tokens: tuple[dict[str, Any], ...]  # the LWA token fetches in the same window

    @classmethod
    def from_log(cls, log: list[dict[str, Any]], since: float = 0.0, until: float | None = None) -> UpstreamCalls:
        """The calls that arrived at or after `since` (and before `until`), both time.time() values."""
        window = [c for c in log if c["time"] >= since and (until is None or c["time"] < until)]
        return cls(
            calls=tuple(c for c in window if c["operation"] in SP_API_OPERATIONS),
            tokens=tuple(c for c in window if c["operation"] == LWA_TOKEN),
        )

    @property
    def token_fetches(self) -> int:
        """How many LWA access tokens were fetched (not SP-API calls: LWA has no usage plan here)."""
        return len(self.tokens)

    @property
    def total(self) -> int:
        """Every SP-API request that reached the emulator, 429s included."""
        return len(self.calls)

    @property
    def throttled(self) -> int:
        """How many were answered 429 QuotaExceeded."""
        return sum(1 for c in self.calls if c["status"] == THROTTLED)

    def admitted_by_operation(self) -> Counter[str]:
        """Calls that took a token from their operation's bucket (everything but 429s), per operation."""
        return Counter(c["operation"] for c in self.calls if c["status"] != THROTTLED)

    def floor(self, plan: Plan = REAL_PLAN) -> float:
        """The plan's floor for the admitted calls; each operation has its own bucket, so the slowest decides."""
        return max((plan.floor(n) for n in self.admitted_by_operation().values()), default=0.0)

    def times(self, *, status: int | None = None) -> list[float]:
        """Arrival times (time.time()) of the calls, optionally only those answered `status`."""
        return [c["time"] for c in self.calls if status is None or c["status"] == status]

    def statuses(self) -> str:
        """Counts by status, e.g. "200×98, 429×3"."""
        counts = Counter(str(c["status"]) for c in self.calls)
        return ", ".join(f"{status}×{n}" for status, n in sorted(counts.items()))
