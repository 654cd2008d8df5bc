"""Retries with exponential backoff and jitter (tenacity underneath): one schedule, two uses.

An SP-API call is retried at once in the caller's thread (RetryPolicy from MAX_RETRIES,
RETRY_DELAY_BASE and RETRY_DELAY_MAX: seconds, within a request a client waits for). A job item
(or a row of `flask asin batch`) that still failed in passing after those retries is asked again
later on the same schedule with a longer first delay (`first_delay`): nobody waits on the answer,
and an SP-API outage lasts tens of seconds, not two.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Up to `max_retries` retries; retry n waits first_delay * delay_base ** (n - 1) seconds plus jitter, capped.

    `first_delay` defaults to `delay_base`, so retry n waits delay_base ** n (RETRY_DELAY_BASE's meaning).
    """

    max_retries: int = 3
    delay_base: float = 2.0
    delay_max: float = 60.0
    first_delay: float | None = None
    # Up to this many seconds added at random (never more than half the cap), so callers spread out.
    jitter: float = 1.0

    @property
    def _multiplier(self) -> float:
        return self.delay_base if self.first_delay is None else self.first_delay

    def delay(self, retry: int) -> float:
        """Seconds before retry number `retry` (1 for the first), without the jitter."""
        return min(self.delay_max, self._multiplier * self.delay_base ** (retry - 1))

    def wait_strategy(self) -> wait_exponential_jitter:
        """tenacity's wait for this schedule: multiplier * base ** (n - 1) for retry n, + jitter, capped."""
        return wait_exponential_jitter(
            multiplier=self._multiplier,
            exp_base=self.delay_base,
            max=self.delay_max,
            jitter=min(self.jitter, self.delay_max / 2),
        )


def call_with_retries(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    retryable: Callable[[BaseException], bool],
    on_retry: Callable[[int, BaseException, float], None],
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `fn`, retrying the failures `retryable` accepts; the last failure propagates."""

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        if exc is not None:
            on_retry(state.attempt_number, exc, delay)

    retrying = Retrying(
        stop=stop_after_attempt(policy.max_retries + 1),
        wait=policy.wait_strategy(),
        retry=retry_if_exception(retryable),
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
    return retrying(fn)
