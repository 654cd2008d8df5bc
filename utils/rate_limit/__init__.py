"""Admission of SP-API calls, shared by threads, gunicorn workers and hosts, at a pace that adapts.

Two limits apply to every call, checked at the moment the request goes on the wire:

* the operation's usage plan, a token bucket per (region, operation) (Catalog Items
  2022-04-01: rate 2 requests/s, burst 2), paced a small margin under the plan;
* a sliding window over all calls: at most `window_calls` in any `window_seconds`.

Callers reserve their slot and sleep until it: slots go first come, first served across
threads, workers and hosts, so no caller starves, and an admission costs one store operation
(one SQLite transaction, one Redis EVALSHA) when nothing has changed, whether or not it waits.
The token bucket is GCRA, kept as one number per plan, in a dozen lines of ours (`plan.Bucket`)
that the Redis store runs as Lua in the same script as the window check.

Adaptive pacing. Each operation has a `Pace` in the same store, so every worker sees it:

* SP-API's `x-amzn-RateLimit-Limit` header sets the plan's rate (a seller's plan may differ
  from the documented one);
* each plan has its own bucket, so a changed plan starts afresh; a lower announced plan first
  holds calls until SP-API's bucket would be full again at the new rate;
* a 429 halves the pace at once and holds calls for one interval (SP-API's bucket is empty),
  and the burst drops to 1 until the pace is whole again: the 429 says our model of
  SP-API's bucket was wrong, so we stop spending its burst. A 429 for a call sent before
  the last slowdown says nothing new and is ignored;
* each `recovery_seconds` without a 429, the pace steps up by a quarter, back to the plan.

The modules:

* `plan`: Plan, Pace, the pacing rules (announce, slow down after a 429, recovery) and the GCRA step.
* `stores`: where the state lives (memory, sqlite, redis), each admission one operation, and how
  a sleeping caller hears of a pace change without one.
* `limiter`: CallLimiter (waiting, late callers, the store fallback) and KeyQuota (API_KEY_RATE).
"""

from utils.rate_limit.limiter import Admission, CallLimiter, KeyQuota, RateLimited
from utils.rate_limit.plan import Bucket, Pace, Plan
from utils.rate_limit.stores import (
    BACKENDS,
    LimiterStore,
    MemoryStore,
    PaceNotices,
    RedisStore,
    Reservation,
    SQLiteStore,
    Window,
    build_store,
)

__all__ = [
    "BACKENDS",
    "Admission",
    "Bucket",
    "CallLimiter",
    "KeyQuota",
    "LimiterStore",
    "MemoryStore",
    "Pace",
    "PaceNotices",
    "Plan",
    "RateLimited",
    "RedisStore",
    "Reservation",
    "SQLiteStore",
    "Window",
    "build_store",
]
