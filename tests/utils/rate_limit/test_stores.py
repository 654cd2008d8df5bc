"""What an admission costs the store, how a sleeper hears of another worker's 429, and the API keys' quota.

On a fake clock, against every backend; round trips counted where they happen: SQLite's own
trace of the statements it runs, and Redis's MONITOR of the commands clients send it.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable

import pytest
import redis

from emulator.process import free_port
from tests.utils.rate_limit.fakes import CountingStore, FakeClock
from utils.rate_limit import Bucket, CallLimiter, KeyQuota, LimiterStore, PaceNotices, Plan, build_store

KEY = "NA/searchCatalogItems"
OTHER_KEY = "NA/getCatalogItem"
CATALOG_PLAN = Plan(2.0, 2)


def worker(store: LimiterStore, clock: FakeClock, plan: Plan = CATALOG_PLAN) -> CallLimiter:
    """A CallLimiter on `store`, as one gunicorn worker would have it."""
    return CallLimiter(window_calls=1000, window_seconds=60, default_plan=plan, margin=0, store=store, clock=clock, sleep=clock.sleep)


def sp_api_call(limiter: CallLimiter, header: str | None = "2.0", status: int = 200, key: str = KEY) -> None:
    """What services/spapi.py's transport does for one call: admit, leave, and learn from the answer."""
    admission = limiter.leaving(limiter.admit(key, max_wait=60))
    limiter.observe(key, status=status, rate_limit_header=header, sent_at=admission.admitted_at)


# -- one store operation per admission ------------------------------------------------------------


def test_an_admitted_call_costs_one_store_operation_whether_or_not_it_waits(store_factory):
    clock = FakeClock()
    store = CountingStore(store_factory())
    limiter = worker(store, clock)
    sp_api_call(limiter)  # the first answer announces the plan: the one change, stored once
    assert store.calls == {"reserve": 1, "update_pace": 1}
    for n in range(6):  # one at once from the burst, then five that sleep for their slot
        store.calls.clear()
        before = clock()
        sp_api_call(limiter)
        assert store.calls == {"reserve": 1}, f"call {n}"
        assert (clock() > before) == (n > 0)  # the test means nothing unless some calls wait


def test_a_call_costs_one_sqlite_transaction_and_nothing_outside_it(tmp_path, monkeypatch):
    statements: list[str] = []
    connect = sqlite3.connect

    def traced(database, *args, **kwargs):
        conn = connect(database, *args, **kwargs)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced)
    clock = FakeClock()
    store = build_store("sqlite", data_dir=str(tmp_path), redis_url="", redis_label="", window_calls=1000, window_seconds=60)
    limiter = worker(store, clock)
    sp_api_call(limiter)
    for _ in range(3):  # at once, then two that wait
        statements.clear()
        sp_api_call(limiter)
        assert statements[0] == "BEGIN IMMEDIATE" and statements[-1] == "COMMIT"
        assert statements.count("BEGIN IMMEDIATE") == 1 and statements.count("COMMIT") == 1, statements


def commands_sent(url: str, action: Callable[[], None]) -> list[str]:
    """The commands clients sent Redis while `action` ran (not those a script runs inside Redis), from MONITOR."""
    sentinel = "fba-test-end-of-action"
    monitor_client = redis.Redis.from_url(url, socket_timeout=5)
    other = redis.Redis.from_url(url, socket_timeout=5)
    other.ping()  # connected before MONITOR starts: its handshake is not the action's
    try:
        with monitor_client.monitor() as monitor:
            action()
            other.echo(sentinel)
            sent = []
            while True:
                command = monitor.next_command()
                if command["client_type"] == "lua":
                    continue
                if sentinel in command["command"]:
                    return sent
                sent.append(command["command"].split()[0].upper())
    finally:
        monitor_client.close()
        other.close()


def test_a_call_costs_one_redis_round_trip(redis_url):
    clock = FakeClock()
    store = build_store("redis", data_dir="", redis_url=redis_url, redis_label=redis_url, window_calls=1000, window_seconds=60)
    limiter = worker(store, clock)
    sp_api_call(limiter)  # loads the script, subscribes to the pace notices, stores the announced plan
    try:
        for _ in range(3):  # at once, then two that wait
            assert commands_sent(redis_url, lambda: sp_api_call(limiter)) == ["EVALSHA"]
        # The control: a 429 costs more (the WATCH/MULTI that stores the slowdown and publishes it).
        assert "PUBLISH" in commands_sent(redis_url, lambda: sp_api_call(limiter, status=429))
    finally:
        limiter.close()


def test_a_pace_another_worker_learned_costs_one_more_operation_once(shared_store_factory):
    clock = FakeClock()
    first, second = CountingStore(shared_store_factory()), CountingStore(shared_store_factory())
    one, other = worker(first, clock), worker(second, clock)
    sp_api_call(one)
    sp_api_call(other)
    sp_api_call(one, header="0.5")  # SP-API announces a lower plan to the first worker
    second.calls.clear()
    start = clock()
    sp_api_call(other, header="0.5")
    assert second.calls == {"reserve": 2}  # its pace was stale: the store answered with the new one, then the slot
    assert clock() - start == pytest.approx(4.0)  # the lower plan's hold: until SP-API's bucket is full at 0.5/s
    times = []
    for _ in range(2):
        second.calls.clear()
        sp_api_call(other, header="0.5")
        assert second.calls == {"reserve": 1}
        times.append(clock() - start)
    assert times == pytest.approx([4.0, 6.0])  # the new plan's burst, then 0.5/s


# -- what a store prunes -----------------------------------------------------------------------------
#
# A hold (after a 429, or a lower announced plan) reserves a slot well ahead of now; what the store
# forgets then must be judged from now, not from that slot. (The sqlite store prunes at most every 10 s.)


def test_a_slot_held_far_ahead_forgets_no_other_operations_bucket(store_factory):
    clock = FakeClock()
    store = store_factory()
    slow = Bucket(60_000, 1)  # one call a minute
    first = store.reserve("NA/slow", slow, None, clock, 0, 1e9)
    clock.sleep(10.2)
    assert store.reserve("NA/held", Bucket(500, 1), None, clock, clock() + 70, 1e9).at == pytest.approx(clock() + 70)
    assert store.reserve("NA/slow", slow, None, clock, 0, 1e9).at == pytest.approx(first.at + 60)  # its bucket is not full yet


def test_a_slot_held_far_ahead_forgets_no_call_the_window_still_holds(store_factory):
    clock = FakeClock()
    store = store_factory(calls=1, window=30)
    store.reserve("NA/first", Bucket(500, 1), None, clock, 0, 1e9)
    clock.sleep(10.2)
    assert store.reserve("NA/held", Bucket(500, 1), None, clock, clock() + 70, 1e9).at == pytest.approx(clock() + 70)
    now = store.reserve("NA/other", Bucket(500, 1), None, clock, 0, 1e9)
    assert now.at is None and now.earliest == pytest.approx(1000 + 30.001)  # the first call is 10 s old: 20 s more


# -- a 429 while a caller sleeps, seen by another worker ------------------------------------------


def wait_for_notice(notices: PaceNotices, mark: int | None) -> None:
    """Until `notices` have the change made since `mark` (a Redis message takes a moment to arrive)."""
    deadline = time.monotonic() + 5
    while not notices.changed_since(mark):
        assert time.monotonic() < deadline, "no pace notice arrived"
        time.sleep(0.005)


class DeafNotices(PaceNotices):
    """Notices that never hear of a change."""

    def mark(self) -> int:
        return 0


@pytest.mark.parametrize("hears", [True, False], ids=["with notices", "control: deaf notices"])
def test_a_429_another_worker_sees_while_a_caller_sleeps_voids_the_slot(shared_store_factory, hears):
    clock = FakeClock()
    sleeper_store, observer_store = CountingStore(shared_store_factory()), shared_store_factory()
    if not hears:
        sleeper_store.notices = DeafNotices()
    sleeper = worker(sleeper_store, clock, Plan(2.0, 1))
    observer = worker(observer_store, clock, Plan(2.0, 1))
    start = clock()

    def sleep_while_the_other_worker_gets_a_429(seconds: float) -> None:
        mark = sleeper_store.inner.notices.mark()
        observer.observe(KEY, status=429, rate_limit_header=None, sent_at=clock())
        wait_for_notice(sleeper_store.inner.notices, mark)
        sleeper._sleep = clock.sleep
        clock.sleep(seconds)

    sleeper.acquire(KEY, 10)  # at once: the bucket is full
    sleeper._sleep = sleep_while_the_other_worker_gets_a_429
    sleeper_store.calls.clear()
    sleeper.acquire(KEY, 10)
    if hears:
        # Its slot at +0.5 s is void: it read the pace (the notices said it changed) and went after the hold.
        assert clock() - start == pytest.approx(1.0)
        assert sleeper_store.calls == {"reserve": 2, "read_pace": 1}
    else:
        assert clock() - start == pytest.approx(0.5)  # on the void slot, inside the hold: what the notices prevent
    assert observer.plan(KEY) == Plan(1.0, 1)


def test_a_sleeper_reads_nothing_while_other_workers_only_make_calls(shared_store_factory):
    clock = FakeClock()
    sleeper_store = CountingStore(shared_store_factory())
    sleeper, other = worker(sleeper_store, clock), worker(shared_store_factory(), clock)
    sp_api_call(sleeper)
    sp_api_call(sleeper)  # the burst spent: the next call sleeps
    for key in (KEY, OTHER_KEY):
        sp_api_call(other, key=key)  # the plans are announced and known to both

    slept = []

    def sleep_while_the_other_worker_calls(seconds: float) -> None:
        sleeper._sleep = clock.sleep
        sp_api_call(other, key=OTHER_KEY)  # another operation's bucket: it does not wait, nor make the sleeper late
        clock.sleep(seconds)
        slept.append(seconds)

    sleeper._sleep = sleep_while_the_other_worker_calls
    sleeper_store.calls.clear()
    sp_api_call(sleeper)
    assert slept and sleeper_store.calls == {"reserve": 1}


# -- the API keys' quota --------------------------------------------------------------------------


def test_a_key_quota_lets_its_burst_through_then_its_rate(store_factory):
    clock = FakeClock()
    quota = KeyQuota(store_factory(), 2, clock=clock)
    assert [quota.retry_after("key-a") for _ in range(3)] == [None, None, pytest.approx(0.5)]
    assert quota.retry_after("key-b") is None  # each key has its own
    clock.sleep(0.5)
    assert quota.retry_after("key-a") is None
    assert quota.retry_after("key-a") == pytest.approx(0.5)


def test_workers_share_one_key_quota(shared_store_factory):
    clock = FakeClock()
    workers = [KeyQuota(shared_store_factory(), 1, clock=clock) for _ in range(4)]
    assert [quota.retry_after("key-a") for quota in workers] == [None, pytest.approx(1.0), pytest.approx(1.0), pytest.approx(1.0)]


def test_a_key_quota_neither_takes_sp_api_slots_nor_shares_their_buckets(store_factory):
    clock = FakeClock()
    store = store_factory(calls=3, window=60)
    quota = KeyQuota(store, 100, clock=clock)
    # Quota requests under a key id spelled like an SP-API operation's key.
    assert all(quota.retry_after("NA/getCatalogItem|10ms|100") is None for _ in range(50))
    assert all(quota.retry_after("NA/getCatalogItem") is None for _ in range(50))
    limiter = CallLimiter(window_calls=3, window_seconds=60, default_plan=Plan(100, 100), margin=0, store=store, clock=clock)
    for _ in range(3):  # the whole window and a full bucket: the quota took none of them
        limiter.acquire("NA/getCatalogItem", max_wait=0)


def test_a_broken_shared_store_counts_key_quotas_in_this_process(tmp_path, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be")
    store = build_store("sqlite", data_dir=str(blocker / "data"), redis_url="", redis_label="", window_calls=10, window_seconds=60)
    clock = FakeClock()
    quota = KeyQuota(store, 1, clock=clock)
    assert [quota.retry_after("key-a") for _ in range(2)] == [None, pytest.approx(1.0)]
    assert quota.store_ok is False
    assert "counting API key quotas in this process alone" in caplog.text


def test_redis_notices_that_cannot_subscribe_say_maybe(caplog):
    caplog.set_level(logging.WARNING, logger="utils.rate_limit.stores")
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    store = build_store("redis", data_dir="", redis_url=url, redis_label=url, window_calls=10, window_seconds=60)
    try:
        assert store.notices.mark() is None
        assert store.notices.changed_since(None) is True
        assert "pace notices from Redis" in caplog.text
    finally:
        store.close()
