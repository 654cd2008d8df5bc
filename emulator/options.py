"""EmulatorOptions: the knobs of the emulator (usage plan, faults, latency, LWA), with validation."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emulator.defaults import CLIENT_ID, CLIENT_SECRET, NOT_FOUND_PREFIX, REFRESH_TOKEN
from emulator.plans import CATALOG_OPERATIONS, MODEL_PLANS, Plan


class OptionError(ValueError):
    """An option name is unknown or its value is out of range / of the wrong type."""


@dataclass
class EmulatorOptions:
    """How the emulator behaves; every field has a default so `EmulatorOptions()` is the real usage plan."""

    # Catalog Items 2022-04-01 usage plan for getCatalogItem and searchCatalogItems: rate 2 req/s, burst 2.
    rate: float = 2.0
    burst: int = 2
    # Value sent in x-amzn-RateLimit-Limit by the catalog operations; None announces `rate`.
    announced_rate: float | None = None
    # Usage plans of the other operations, by operation name, where they differ from their model's
    # (emulator/plans.py MODEL_PLANS), e.g. {"getItemOffersBatch": (10.0, 10)}; each announces its own rate.
    plans: dict[str, tuple[float, int]] = dataclasses.field(default_factory=dict)
    fault_rate: float = 0.0
    fault_statuses: tuple[int, ...] = (500, 503)
    drop_rate: float = 0.0
    # Probability that one item of a batch operation (getItemOffersBatch, getMyFeesEstimates) answers a
    # per-item server error inside the batch's 200 (an offers item with status 500, a fees result ServerError).
    item_fault_rate: float = 0.0
    latency_ms: int = 0
    slow_rate: float = 0.0
    slow_seconds: float = 0.0
    token_delay: float = 0.0
    # Probability the LWA token endpoint answers 500 server_error (LWA's own error format).
    token_fault_rate: float = 0.0
    token_ttl: int = 3600  # LWA access tokens live one hour
    # expires_in sent with a token; None sends token_ttl. A longer one mimics a client whose
    # cache outlives the token, which SP-API then refuses with 403 "expired".
    announced_token_ttl: int | None = None
    # The model allows pageSize up to 20; a lower cap makes the emulator paginate sooner.
    page_size_cap: int = 20
    seed: int = 0
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    refresh_token: str = REFRESH_TOKEN
    not_found_prefix: str = NOT_FOUND_PREFIX

    def __post_init__(self) -> None:
        self.fault_statuses = tuple(self.fault_statuses)
        self.plans = parse_plans(self.plans)
        for name in _FLOAT:  # so the config JSON shows 2.0 whether 2 or 2.0 was passed
            value = getattr(self, name)
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(self, name, float(value))
        _validate(self)

    @property
    def limit_header(self) -> str:
        """The catalog operations' x-amzn-RateLimit-Limit value, formatted like "2.0"."""
        announced = self.rate if self.announced_rate is None else self.announced_rate
        return str(float(announced))

    def plan(self, operation: str) -> Plan:
        """The usage plan the emulator enforces for `operation`."""
        if operation in CATALOG_OPERATIONS:
            return Plan(self.rate, self.burst)
        return Plan(*self.plans[operation]) if operation in self.plans else MODEL_PLANS[operation]

    def limit_header_of(self, operation: str) -> str:
        """The x-amzn-RateLimit-Limit value `operation` answers with: its plan's rate (the catalog's may be announced otherwise)."""
        return self.limit_header if operation in CATALOG_OPERATIONS else str(float(self.plan(operation).rate))

    def to_dict(self) -> dict[str, Any]:
        """The options as JSON-ready data."""
        data = dataclasses.asdict(self)
        data["fault_statuses"] = list(self.fault_statuses)
        data["plans"] = {operation: list(plan) for operation, plan in self.plans.items()}
        return data


_FLOAT = {"rate", "fault_rate", "drop_rate", "slow_rate", "slow_seconds", "token_delay", "token_fault_rate", "item_fault_rate"}
_INT = {"burst", "latency_ms", "token_ttl", "page_size_cap", "seed"}
_STR = {"client_id", "client_secret", "refresh_token", "not_found_prefix"}
_PROBABILITIES = ("fault_rate", "drop_rate", "slow_rate", "token_fault_rate", "item_fault_rate")
OPTION_NAMES = tuple(f.name for f in dataclasses.fields(EmulatorOptions))


def _as_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OptionError(f"option {name!r} must be a number, got {value!r}")
    return float(value)


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionError(f"option {name!r} must be an integer, got {value!r}")
    return value


def parse_statuses(value: Any) -> tuple[int, ...]:
    """Fault statuses from a tuple/list of ints or a comma-separated string like "500,503"."""
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not all(p.isdigit() for p in parts):
            raise OptionError(f"option 'fault_statuses' must list HTTP status codes, got {value!r}")
        return tuple(int(p) for p in parts)
    if isinstance(value, (list, tuple)):
        return tuple(_as_int("fault_statuses", v) for v in value)
    raise OptionError(f"option 'fault_statuses' must be a list of status codes, got {value!r}")


def parse_plans(value: Any) -> dict[str, tuple[float, int]]:
    """Plan overrides from a mapping of operation name to [rate, burst] (JSON) or (rate, burst)."""
    if not isinstance(value, Mapping):
        raise OptionError(f"option 'plans' must map operation names to [rate, burst], got {value!r}")
    plans: dict[str, tuple[float, int]] = {}
    for operation, plan in value.items():
        if operation not in MODEL_PLANS:
            raise OptionError(f"option 'plans' names {operation!r}; known: {', '.join(MODEL_PLANS)} (the catalog's is rate/burst)")
        if not isinstance(plan, list | tuple) or len(plan) != 2:
            raise OptionError(f"option 'plans' for {operation} must be [rate, burst], got {plan!r}")
        rate, burst = _as_float("plans", plan[0]), _as_int("plans", plan[1])
        if rate < 0 or burst < 0:
            raise OptionError(f"option 'plans' for {operation} must have rate and burst >= 0")
        plans[operation] = (rate, burst)
    return plans


def _coerce(name: str, value: Any) -> Any:
    if name in _FLOAT:
        return _as_float(name, value)
    if name in _INT:
        return _as_int(name, value)
    if name in _STR:
        if not isinstance(value, str):
            raise OptionError(f"option {name!r} must be a string, got {value!r}")
        return value
    if name == "announced_rate":
        return None if value is None else _as_float(name, value)
    if name == "announced_token_ttl":
        return None if value is None else _as_int(name, value)
    if name == "fault_statuses":
        return parse_statuses(value)
    if name == "plans":
        return parse_plans(value)
    raise OptionError(f"unknown option {name!r}")


def _validate(options: EmulatorOptions) -> None:
    for name in ("rate", "slow_seconds", "token_delay"):
        if getattr(options, name) < 0:
            raise OptionError(f"option {name!r} must be >= 0")
    for name in ("burst", "latency_ms", "token_ttl"):
        if getattr(options, name) < 0:
            raise OptionError(f"option {name!r} must be >= 0")
    if options.announced_rate is not None and options.announced_rate < 0:
        raise OptionError("option 'announced_rate' must be >= 0 or null")
    if options.announced_token_ttl is not None and options.announced_token_ttl < 0:
        raise OptionError("option 'announced_token_ttl' must be >= 0 or null")
    for name in _PROBABILITIES:
        if not 0.0 <= getattr(options, name) <= 1.0:
            raise OptionError(f"option {name!r} is a probability and must be within [0, 1]")
    if not options.fault_statuses:
        raise OptionError("option 'fault_statuses' must name at least one status")
    for status in options.fault_statuses:
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise OptionError(f"option 'fault_statuses' holds {status!r}; statuses must be 400..599")
    if options.page_size_cap < 1:
        raise OptionError("option 'page_size_cap' must be >= 1")
    for name in ("client_id", "client_secret", "refresh_token"):
        if not getattr(options, name):
            raise OptionError(f"option {name!r} must not be empty")


def apply_changes(options: EmulatorOptions, changes: Mapping[str, Any]) -> EmulatorOptions:
    """A copy of `options` with `changes` applied (values coerced from JSON types); raises OptionError."""
    unknown = sorted(set(changes) - set(OPTION_NAMES))
    if unknown:
        raise OptionError(f"unknown option(s): {', '.join(unknown)}; known: {', '.join(OPTION_NAMES)}")
    coerced = {name: _coerce(name, value) for name, value in changes.items()}
    return dataclasses.replace(options, **coerced)
