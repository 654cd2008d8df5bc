"""call_with_retries: what is retried, how long it waits, what comes out at the end."""

from __future__ import annotations

from utils.retry import RetryPolicy, call_with_retries


class Flaky:
    def __init__(self, failures: list[BaseException], result: str = "ok") -> None:
        self.failures = list(failures)
        self.calls = 0
        self.result = result

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return self.result


def run(fn, policy: RetryPolicy, retryable=lambda exc: isinstance(exc, ConnectionError)):
    sleeps: list[float] = []
    retries: list[tuple[int, str]] = []
    try:
        result = call_with_retries(
            fn, policy=policy, retryable=retryable, on_retry=lambda n, exc, delay: retries.append((n, str(exc))), sleep=sleeps.append
        )
    except BaseException as exc:  # noqa: BLE001 - the test inspects what escaped
        result = exc
    return result, sleeps, retries


def test_retries_until_success_with_exponential_backoff():
    fn = Flaky([ConnectionError("reset"), ConnectionError("reset"), ConnectionError("refused")])
    result, sleeps, retries = run(fn, RetryPolicy(max_retries=3, delay_base=2, delay_max=60))
    assert result == "ok" and fn.calls == 4
    # Retry n waits 2 ** n seconds plus up to 1 s of jitter.
    for n, delay in enumerate(sleeps, start=1):
        assert 2**n <= delay <= 2**n + 1
    assert [n for n, _ in retries] == [1, 2, 3]
    assert retries[2][1] == "refused"


def test_delay_is_capped():
    fn = Flaky([ConnectionError()] * 5)
    _, sleeps, _ = run(fn, RetryPolicy(max_retries=5, delay_base=3, delay_max=10))
    assert max(sleeps) <= 10 and sleeps[-1] == 10


def test_exhausted_retries_raise_the_last_failure():
    fn = Flaky([ConnectionError("a"), ConnectionError("b"), ConnectionError("c")])
    result, sleeps, _ = run(fn, RetryPolicy(max_retries=2, delay_base=1, delay_max=0))
    assert isinstance(result, ConnectionError) and str(result) == "c"
    assert fn.calls == 3 and len(sleeps) == 2


def test_other_failures_are_not_retried():
    fn = Flaky([KeyError("not found")])
    result, sleeps, retries = run(fn, RetryPolicy(max_retries=5))
    assert isinstance(result, KeyError) and fn.calls == 1 and sleeps == [] and retries == []


def test_zero_retries_means_one_attempt():
    fn = Flaky([ConnectionError("x")])
    result, _, _ = run(fn, RetryPolicy(max_retries=0))
    assert isinstance(result, ConnectionError) and fn.calls == 1
