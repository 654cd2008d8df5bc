"""Retries with exponential backoff and jitter (tenacity underneath)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Up to `max_retries` retries; retry n waits delay_base ** n seconds plus jitter, capped."""

    max_retries: int = 3
    delay_base: float = 2.0
    delay_max: float = 60.0

    def wait_strategy(self) -> wait_exponential_jitter:
        """tenacity wait: multiplier * base ** (n - 1) = base ** n for retry n, + up to 1 s jitter."""
        return wait_exponential_jitter(
            multiplier=self.delay_base,
            exp_base=self.delay_base,
            max=self.delay_max,
            jitter=min(1.0, self.delay_max / 2),
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
