"""What reached SP-API, read from the emulator's call log (never from the service's own counts)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emulator.plans import CATALOG_OPERATIONS, MODEL_PLANS

# The Catalog Items operations (bench/soak.py replays these against one plan).
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
# Every operation the emulator plans, at the plan it enforces by default: Catalog Items' REAL_PLAN,
# the others their model's (emulator/plans.py MODEL_PLANS, the same as services/spapi.py OPERATION_PLANS).
REAL_PLANS: dict[str, Plan] = {
    **dict.fromkeys(CATALOG_OPERATIONS, REAL_PLAN),
    **{operation: Plan(plan.rate, plan.burst) for operation, plan in MODEL_PLANS.items()},
}
PLANNED_OPERATIONS = tuple(REAL_PLANS)


@dataclass(frozen=True)
class UpstreamCalls:
    """The SP-API calls (every planned operation: catalog, pricing, fees, ...) logged in a time window, and the LWA token fetches."""

    calls: tuple[dict[str, Any], ...]
    tokens: tuple[dict[str, Any], ...]  # the LWA token fetches in the same window

    @classmethod
    def from_log(cls, log: list[dict[str, Any]], since: float = 0.0, until: float | None = None) -> UpstreamCalls:
        """The calls that arrived at or after `since` (and before `until`), both time.time() values."""
        window = [c for c in log if c["time"] >= since and (until is None or c["time"] < until)]
        return cls(
            calls=tuple(c for c in window if c["operation"] in PLANNED_OPERATIONS),
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

    def by_operation(self) -> Counter[str]:
        """Every call (429s included) per operation."""
        return Counter(c["operation"] for c in self.calls)

    def floors(self, plans: Plan | Mapping[str, Plan] = REAL_PLANS) -> dict[str, float]:
        """Each operation's floor for its admitted calls, at its plan (one Plan: the same for every operation)."""
        plan_of = (lambda _: plans) if isinstance(plans, Plan) else plans.__getitem__
        return {operation: plan_of(operation).floor(n) for operation, n in sorted(self.admitted_by_operation().items())}

    def floor(self, plans: Plan | Mapping[str, Plan] = REAL_PLANS) -> float:
        """The plans' floor for the admitted calls; each operation has its own bucket, run side by side, so the slowest decides."""
        return max(self.floors(plans).values(), default=0.0)

    def per_operation(self, plans: Mapping[str, Plan] = REAL_PLANS) -> str:
        """e.g. "getCompetitivePricing 5 (floor 8.00 s at 0.5/s burst 1), searchCatalogItems 5 (...)"; 429s named where any came."""
        floors = self.floors(plans)
        throttled = Counter(c["operation"] for c in self.calls if c["status"] == THROTTLED)
        parts = []
        for operation, n in sorted(self.by_operation().items()):
            plan = plans[operation]
            text = f"{operation} {n}"
            if throttled[operation]:
                text += f" ({throttled[operation]} of them 429)"
            parts.append(f"{text} (floor {floors.get(operation, 0.0):.2f} s at {plan.rate:g}/s burst {plan.burst})")
        return ", ".join(parts) or "no SP-API call"

    def most_in_window(self, seconds: float = 60.0) -> int:
        """The most SP-API calls (every operation) that arrived within any `seconds` (the service's RATE_LIMIT_WINDOW)."""
        times = sorted(self.times())
        most, first = 0, 0
        for last, moment in enumerate(times):
            while moment - times[first] >= seconds:
                first += 1
            most = max(most, last - first + 1)
        return most

    def times(self, *, status: int | None = None) -> list[float]:
        """Arrival times (time.time()) of the calls, optionally only those answered `status`."""
        return [c["time"] for c in self.calls if status is None or c["status"] == status]

    def statuses(self) -> str:
        """Counts by status, e.g. "200×98, 429×3"."""
        counts = Counter(str(c["status"]) for c in self.calls)
        return ", ".join(f"{status}×{n}" for status, n in sorted(counts.items()))
