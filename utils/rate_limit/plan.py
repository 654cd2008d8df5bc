"""What the limiter knows of an operation's usage plan, how that knowledge changes, and the GCRA step that paces it.

* `Plan`: a usage plan (requests per second, burst).
* `Pace`: one operation's plan as learned, shared by every worker through the store: the rate
  SP-API announced, the share of it in use after 429s, when calls may go again.
* The pacing rules: `announce` (x-amzn-RateLimit-Limit), `slow_down` (a 429), recovery
  (`Pace.factor_at`: a quarter more each quiet `recovery_seconds`).
* `Bucket`: GCRA, the token bucket kept as one number per key (its theoretical arrival time).
  Pure arithmetic on whole milliseconds, so the memory and SQLite stores run it in Python and the
  Redis store runs the same lines in Lua.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace

# A 429 multiplies the pace by this; each quiet recovery period multiplies it by RECOVERY_STEP.
SLOWDOWN = 0.5
RECOVERY_STEP = 1.25
MIN_FACTOR = 1 / 64


@dataclass(frozen=True)
class Plan:
    """A usage plan: sustained requests per second and burst size."""

    rate: float
    burst: int


@dataclass(frozen=True)
class Pace:
    """What is known of one operation's plan, shared by every worker through the store."""

    rate: float
    burst: int
    # True once SP-API announced the rate (x-amzn-RateLimit-Limit); else the configured one.
    announced: bool = False
    # Share of the rate in use after 429s (1 = the whole plan), and when it was last cut.
    factor: float = 1.0
    throttled_at: float = 0.0
    # No call before this clock time: SP-API's bucket was empty at the last 429.
    hold_until: float = 0.0

    def to_json(self) -> str:
        """The pace as JSON, for a shared store."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> Pace:
        """The pace stored by `to_json`."""
        return cls(**json.loads(text))

    def factor_at(self, now: float, recovery_seconds: float) -> float:
        """The factor in force at `now`: the stored one, stepped up once per quiet recovery period."""
        if self.factor >= 1 or recovery_seconds <= 0:
            return min(self.factor, 1.0)
        quiet_periods = max(0, math.floor((now - self.throttled_at) / recovery_seconds + 1e-9))
        return min(1.0, self.factor * RECOVERY_STEP**quiet_periods)

    def plan_at(self, now: float, recovery_seconds: float) -> Plan:
        """The plan to pace by at `now`: burst 1 while slowed, the whole burst once recovered."""
        factor = self.factor_at(now, recovery_seconds)
        return Plan(self.rate * factor, self.burst if factor >= 1 else 1)


def parse_rate(header: str | None) -> float | None:
    """The rate in an x-amzn-RateLimit-Limit header ("2.0"), or None if absent or not a positive number."""
    if not header:
        return None
    try:
        value = float(header.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def announce(pace: Pace, rate: float, now: float) -> Pace | None:
    """SP-API announced `rate` at `now`: the plan follows it, at full pace (the announcement is fresher than any 429).

    A lower plan than assumed may find SP-API's bucket empty, and the new plan's bucket starts
    full: hold calls until SP-API's would be full again at the new rate. None: nothing to change.
    """
    if pace.announced and math.isclose(pace.rate, rate, rel_tol=1e-6):
        return None
    hold_until = max(pace.hold_until, now + pace.burst / rate) if rate < pace.rate else pace.hold_until
    return Pace(rate, pace.burst, announced=True, hold_until=hold_until)


def is_announced(pace: Pace, rate: float) -> bool:
    """True if `pace` already follows the announced `rate` (then `announce` changes nothing)."""
    return pace.announced and math.isclose(pace.rate, rate, rel_tol=1e-6)


def slow_down(pace: Pace, now: float, sent_at: float, recovery: float) -> Pace | None:
    """A 429 at `now` for a call sent at `sent_at`: halve the pace and hold one interval, unless already done since."""
    if sent_at < pace.throttled_at:
        return None  # sent at the old pace; this slowdown is already in force
    factor = max(MIN_FACTOR, pace.factor_at(now, recovery) * SLOWDOWN)
    return replace(pace, factor=factor, throttled_at=now, hold_until=now + 1 / (pace.rate * factor))


def to_ms(seconds: float) -> int:
    """A clock time in whole milliseconds, the unit every store keeps slots in."""
    # The epsilon keeps a time computed from a millisecond slot (slot_ms / 1000) on that same millisecond.
    return math.floor(seconds * 1000 + 1e-6)


@dataclass(frozen=True)
class Bucket:
    """GCRA for one plan: a call every `emission_ms`, up to `burst` at once.

    The state is one number per key, the theoretical arrival time (TAT): when the bucket would be
    full again if no more calls came. A call at t is allowed once t >= TAT - (burst - 1) × emission
    (the burst tolerance), and moves the TAT to max(TAT, t) + emission.
    """

    emission_ms: int
    burst: int

    @classmethod
    def paced(cls, plan: Plan, margin: float) -> Bucket:
        """`plan` paced `margin` under it: 1/rate stretched by the margin (rounded up to a whole millisecond), the burst
        shrunk by it (rounded up: 10 at a margin of 0.15 is 9, 2 at 0.05 stays 2).

        Stretching 1/rate alone leaves the call right after a full burst only one interval's stretch of
        room (30 ms at 5/s burst 10, margin 0.15) against SP-API's clock: arrival jitter on a busy
        machine took it (a 429 on the 11th call). A token held back gives it a whole interval more.
        """
        return cls(max(1, math.ceil(1000 / (plan.rate * (1 - margin)))), max(1, math.ceil(plan.burst * (1 - margin))))

    @property
    def tolerance_ms(self) -> int:
        """How far ahead of its TAT the bucket admits a call: the burst beyond the first."""
        return (self.burst - 1) * self.emission_ms

    def slot(self, tat_ms: int, start_ms: int) -> tuple[int, int]:
        """The first time at or after `start_ms` a call is allowed, and the TAT after that call."""
        slot_ms = max(start_ms, tat_ms - self.tolerance_ms)
        return slot_ms, max(tat_ms, slot_ms) + self.emission_ms

    def name(self, key: str) -> str:
        """The state's key in a store: one bucket per plan, so a changed plan starts afresh."""
        return f"{key}|{self.emission_ms}ms|{self.burst}"
