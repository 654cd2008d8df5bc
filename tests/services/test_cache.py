"""The result cache on a real SQLite file and a real redis-server: what is kept, for how long, and how it fails."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from services.cache import SQLITE_FILENAME, ResultCache, build_cache, cache_key
from tests.helpers.fake_clock import FakeClock
from tests.helpers.redis import RedisServer
from tests.helpers.tcp_listener import CountingListener

REPO_ROOT = Path(__file__).resolve().parents[2]
US = "ATVPDKIKX0DER"
UK = "A1F83G8C2ARO7P"
DAY = 86400.0
HOUR = 3600.0
FETCHED_AT = "2026-11-29T04:01:02Z"


def found(asin: str, title: str = "Echo Dot (3rd Gen)", marketplace_id: str = US) -> dict[str, Any]:
    return {
        "asin": asin,
        "country": "US" if marketplace_id == US else "UK",
        "marketplace_id": marketplace_id,
        "success": True,
        "Title": title,
        "Brand": "Amazon",
        "cached": False,
        "fetched_at": FETCHED_AT,
    }


def failed(asin: str, code: str) -> dict[str, Any]:
    return {
        "asin": asin,
        "country": "US",
        "marketplace_id": US,
        "success": False,
        "error": {"code": code, "message": f"{code} for {asin}"},
        "cached": False,
        "fetched_at": FETCHED_AT,
    }


CacheFactory = Callable[..., ResultCache]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "redis"])
def make_cache(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[CacheFactory]:
    """Build caches of one real backend (SQLite in tmp_path, or the session's redis-server, emptied)."""
    backend = request.param
    redis_url = request.getfixturevalue("redis_url") if backend == "redis" else "redis://127.0.0.1:1/0"
    caches: list[ResultCache] = []

    def build(**overrides: Any) -> ResultCache:
        options: dict[str, Any] = {
            "backend": backend,
            "data_dir": str(tmp_path / "data"),
            "redis_url": redis_url,
            "ttl": DAY,
            "not_found_ttl": HOUR,
            "clock": clock,
        }
        options.update(overrides)
        cache = build_cache(**options)
        caches.append(cache)
        return cache

    yield build
    for cache in caches:
        cache.close()


def cache_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "services.cache" and r.levelno == logging.WARNING]


def sqlite_cache(data_dir: Path, clock: FakeClock) -> ResultCache:
    return build_cache(backend="sqlite", data_dir=str(data_dir), redis_url="", ttl=DAY, not_found_ttl=HOUR, clock=clock)


def redis_cache(url: str, clock: FakeClock) -> ResultCache:
    return build_cache(backend="redis", data_dir="", redis_url=url, ttl=DAY, not_found_ttl=HOUR, clock=clock)


def test_round_trip_marks_entries_cached_and_keeps_fetched_at(make_cache: CacheFactory, clock: FakeClock) -> None:
    cache = make_cache()
    stored = {"B07N4M94X4": found("B07N4M94X4"), "B000000404": failed("B000000404", "NOT_FOUND")}
    cache.put_many(US, stored)
    clock.advance(60)

    got = cache.get_many(US, ["B07N4M94X4", "B000000404", "B0NEVERPUT"])

    assert set(got) == {"B07N4M94X4", "B000000404"}
    for asin, entry in got.items():
        assert entry == {**stored[asin], "cached": True}
        assert entry["fetched_at"] == FETCHED_AT
    assert stored["B07N4M94X4"]["cached"] is False, "the caller's entry is not changed"


def test_not_found_expires_at_its_ttl_while_a_success_stays(make_cache: CacheFactory, clock: FakeClock) -> None:
    cache = make_cache()
    cache.put_many(US, {"B07N4M94X4": found("B07N4M94X4"), "B000000404": failed("B000000404", "NOT_FOUND")})

    clock.advance(HOUR - 1)
    assert set(cache.get_many(US, ["B07N4M94X4", "B000000404"])) == {"B07N4M94X4", "B000000404"}
    clock.advance(1)
    assert set(cache.get_many(US, ["B07N4M94X4", "B000000404"])) == {"B07N4M94X4"}
    clock.advance(DAY - HOUR)
    assert cache.get_many(US, ["B07N4M94X4", "B000000404"]) == {}


@pytest.mark.parametrize("code", ["THROTTLED", "UPSTREAM_ERROR", "TIMEOUT", "AUTH_FAILED", "INVALID_ASIN"])
def test_failures_other_than_not_found_are_not_stored(make_cache: CacheFactory, code: str) -> None:
    cache = make_cache()
    cache.put_many(US, {"B07N4M94X4": failed("B07N4M94X4", code)})
    assert cache.get_many(US, ["B07N4M94X4"]) == {}
    assert make_cache().get_many(US, ["B07N4M94X4"]) == {}, "nothing reached the shared store either"


def test_a_not_found_ttl_of_zero_stores_no_not_found(make_cache: CacheFactory) -> None:
    cache = make_cache(not_found_ttl=0)
    cache.put_many(US, {"B07N4M94X4": found("B07N4M94X4"), "B000000404": failed("B000000404", "NOT_FOUND")})
    assert set(cache.get_many(US, ["B07N4M94X4", "B000000404"])) == {"B07N4M94X4"}


def test_marketplaces_do_not_collide(make_cache: CacheFactory) -> None:
    cache = make_cache()
    cache.put_many(US, {"B07N4M94X4": found("B07N4M94X4", title="US title")})
    assert cache.get_many(UK, ["B07N4M94X4"]) == {}

    cache.put_many(UK, {"B07N4M94X4": found("B07N4M94X4", title="UK title", marketplace_id=UK)})
    assert cache.get_many(US, ["B07N4M94X4"])["B07N4M94X4"]["Title"] == "US title"
    assert cache.get_many(UK, ["B07N4M94X4"])["B07N4M94X4"]["Title"] == "UK title"


def test_hit_ratio_counts_each_asin_looked_up(make_cache: CacheFactory) -> None:
    cache = make_cache()
    assert cache.stats()["hit_ratio"] is None
    cache.put_many(US, {"B07N4M94X4": found("B07N4M94X4")})

    cache.get_many(US, ["B07N4M94X4", "B0MISSING1", "B0MISSING2", "B0MISSING3"])

    stats = cache.stats()
    assert (stats["hits"], stats["misses"], stats["hit_ratio"], stats["errors"]) == (1, 3, 0.25, 0)
    assert (stats["ttl_seconds"], stats["not_found_ttl_seconds"]) == (DAY, HOUR)
    assert make_cache().stats()["hits"] == 0, "counters belong to one cache in one process"


def test_another_process_reads_what_this_one_wrote_and_the_reverse(make_cache: CacheFactory) -> None:
    cache = make_cache(clock=time.time)
    cache.put_many(US, {"B0PARENT01": found("B0PARENT01")})
    stats = cache.stats()
    data_dir = os.path.dirname(stats["location"]) if stats["backend"] == "sqlite" else ""
    redis_url = stats["location"] if stats["backend"] == "redis" else ""
    script = (
        "import json, sys\n"
        "from services.cache import build_cache\n"
        "backend, data_dir, redis_url, entry = sys.argv[1:]\n"
        "cache = build_cache(backend=backend, data_dir=data_dir, redis_url=redis_url, ttl=86400, not_found_ttl=3600)\n"
        "cache.put_many('ATVPDKIKX0DER', {'B0CHILD001': json.loads(entry)})\n"
        "print(json.dumps(sorted(cache.get_many('ATVPDKIKX0DER', ['B0PARENT01', 'B0CHILD001']))))\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", script, stats["backend"], data_dir, redis_url, json.dumps(found("B0CHILD001"))],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert json.loads(child.stdout) == ["B0CHILD001", "B0PARENT01"]
    assert cache.get_many(US, ["B0CHILD001"])["B0CHILD001"]["cached"] is True


def test_many_threads_share_one_cache(make_cache: CacheFactory) -> None:
    cache = make_cache()
    seen: list[int] = []

    def work(n: int) -> None:
        asins = [f"B0T{n:02d}{i:05d}" for i in range(20)]
        for asin in asins:
            cache.put_many(US, {asin: found(asin)})
        seen.append(len(cache.get_many(US, asins)))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert seen == [20] * 8
    assert cache.stats()["errors"] == 0


def test_an_unreadable_stored_value_is_a_miss_and_an_error(make_cache: CacheFactory, caplog: pytest.LogCaptureFixture) -> None:
    cache = make_cache()
    cache.put_many(US, {"B07N4M94X4": found("B07N4M94X4"), "B0GARBLED1": found("B0GARBLED1")})
    garbage = b"\xff{not json"
    key = cache_key(US, "B0GARBLED1")
    if cache.backend == "sqlite":
        with sqlite3.connect(cache.stats()["location"]) as conn:
            conn.execute("UPDATE results SET record = ? WHERE key = ?", (garbage, key))
    else:
        client = redis.Redis.from_url(cache.stats()["location"])
        client.set(key, garbage)
        client.close()

    with caplog.at_level(logging.WARNING, logger="services.cache"):
        got = cache.get_many(US, ["B07N4M94X4", "B0GARBLED1"])

    assert set(got) == {"B07N4M94X4"}
    assert cache.stats()["errors"] == 1
    assert len(cache_warnings(caplog)) == 1 and "not a cache record" in cache_warnings(caplog)[0]


def test_sqlite_file_is_created_under_data_dir_in_wal_mode(tmp_path: Path, clock: FakeClock) -> None:
    data_dir = tmp_path / "nested" / "data"
    cache = sqlite_cache(data_dir, clock)
    assert not data_dir.exists(), "building the cache touches no disk"
    cache.put_many(US, {"B07N4M94X4": found("B07N4M94X4")})
    cache.close()

    assert cache.stats()["location"] == str(data_dir / SQLITE_FILENAME)
    with sqlite3.connect(data_dir / SQLITE_FILENAME) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert json.loads(conn.execute("SELECT record FROM results").fetchone()[0])["entry"]["Title"] == "Echo Dot (3rd Gen)"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork, like gunicorn's workers")
def test_a_forked_worker_opens_its_own_sqlite_connection(tmp_path: Path, clock: FakeClock) -> None:
    cache = sqlite_cache(tmp_path, clock)
    cache.put_many(US, {"B0PARENT01": found("B0PARENT01")})  # the parent holds an open connection now

    pid = os.fork()
    if pid == 0:  # the child: exit status 0 only if it reads the parent's entry and stores its own
        status = 1
        try:
            if set(cache.get_many(US, ["B0PARENT01"])) == {"B0PARENT01"}:
                cache.put_many(US, {"B0CHILD001": found("B0CHILD001")})
                status = 0 if cache.stats()["errors"] == 0 else 2
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert set(cache.get_many(US, ["B0PARENT01", "B0CHILD001"])) == {"B0PARENT01", "B0CHILD001"}
    assert cache.stats()["errors"] == 0
    cache.close()


# Breaks a data dir under tmp_path; returns the data dir to use and a function that repairs it.
Breakage = Callable[[Path], tuple[Path, Callable[[], None]]]


def block_data_dir(tmp_path: Path) -> tuple[Path, Callable[[], None]]:
    """A data dir that cannot be created (a regular file stands where its parent should be), and the repair."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a regular file where the data directory's parent should be")
    return blocker / "data", blocker.unlink


def garble_database(tmp_path: Path) -> tuple[Path, Callable[[], None]]:
    """A data dir whose cache file is garbage bytes, and the repair (the file is removed)."""
    (tmp_path / SQLITE_FILENAME).write_bytes(b"this is not an SQLite database\x00" * 256)
    return tmp_path, (tmp_path / SQLITE_FILENAME).unlink


@pytest.mark.parametrize(("breakage", "error"), [(block_data_dir, "NotADirectoryError"), (garble_database, "DatabaseError")])
def test_a_broken_sqlite_cache_is_a_miss_with_a_warning_until_it_is_repaired(
    breakage: Breakage, error: str, tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir, repair = breakage(tmp_path)
    cache = sqlite_cache(data_dir, clock)

    with caplog.at_level(logging.WARNING, logger="services.cache"):
        cache.put_many(US, {"B07N4M94X4": found("B07N4M94X4")})
        clock.advance(cache.retry_after)  # past the rest, so the get really tries to open the file again
        assert cache.get_many(US, ["B07N4M94X4"]) == {}

    assert cache.stats()["errors"] == 2
    warnings = cache_warnings(caplog)
    assert len(warnings) == 1 and "result cache sqlite" in warnings[0] and error in warnings[0]

    repair()  # the disk "comes back": the cache heals once its rest is over
    clock.advance(cache.retry_after)
    cache.put_many(US, {"B07N4M94X4": found("B07N4M94X4")})
    assert set(cache.get_many(US, ["B07N4M94X4"])) == {"B07N4M94X4"}
    cache.close()


def test_warnings_are_at_most_one_a_minute_and_say_how_many_were_held_back(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir, _ = block_data_dir(tmp_path)
    cache = sqlite_cache(data_dir, clock)

    with caplog.at_level(logging.WARNING, logger="services.cache"):
        for _ in range(3):  # at 0, 30 and 60 s: each one a new attempt to open
            cache.get_many(US, ["B07N4M94X4"])
            clock.advance(cache.retry_after)

    warnings = cache_warnings(caplog)
    assert cache.stats()["errors"] == 3
    assert len(warnings) == 2
    assert "suppressed" not in warnings[0] and "1 more cache warnings suppressed" in warnings[1]


def test_a_dead_redis_is_tried_once_then_left_alone_for_retry_after_and_keeps_its_password_out_of_logs(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with CountingListener() as dead:  # accepts every connection and resets it: a Redis that is down
        cache = redis_cache(f"redis://:hunter2-secret@127.0.0.1:{dead.port}/0", clock)
        with caplog.at_level(logging.WARNING, logger="services.cache"):
            assert cache.get_many(US, ["B07N4M94X4"]) == {}
            assert dead.connections == 1
            # While it rests, lookups are misses and puts are dropped without another connection.
            for _ in range(3):
                clock.advance(cache.retry_after / 4)
                assert cache.get_many(US, ["B07N4M94X4"]) == {}
                cache.put_many(US, {"B07N4M94X4": found("B07N4M94X4")})
            assert dead.connections == 1
            # Once the rest is over, Redis is tried once more, and left alone again.
            clock.advance(cache.retry_after / 4)
            cache.put_many(US, {"B07N4M94X4": found("B07N4M94X4")})
            assert dead.connections == 2
            assert cache.get_many(US, ["B07N4M94X4"]) == {}
            assert dead.connections == 2
        cache.close()

    stats = cache.stats()
    assert (stats["hits"], stats["misses"], stats["errors"]) == (0, 5, 2)
    assert "hunter2" not in stats["location"] and stats["location"].endswith(f"@127.0.0.1:{dead.port}/0")
    warnings = cache_warnings(caplog)
    assert len(warnings) == 1 and "result cache redis" in warnings[0] and "ConnectionError" in warnings[0]
    assert f"not trying again for {cache.retry_after:.0f} s" in warnings[0]
    assert all("hunter2" not in r.getMessage() for r in caplog.records)


def test_a_hung_redis_costs_one_timeout_then_is_left_alone(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    with CountingListener(silent=True) as hung:  # accepts connections and never answers
        cache = redis_cache(f"redis://127.0.0.1:{hung.port}/0", clock)
        with caplog.at_level(logging.WARNING, logger="services.cache"):
            assert cache.get_many(US, ["B07N4M94X4"]) == {}  # given up after socket_timeout, not waiting forever
            assert hung.wait_for(1) == 1
            for _ in range(5):  # each would cost another socket_timeout if it went to Redis
                cache.put_many(US, {"B07N4M94X4": found("B07N4M94X4")})
                assert cache.get_many(US, ["B07N4M94X4"]) == {}
            assert hung.connections == 1
            clock.advance(cache.retry_after)
            assert cache.get_many(US, ["B07N4M94X4"]) == {}
            assert hung.wait_for(2) == 2
        cache.close()
    assert cache.stats()["errors"] == 2
    warnings = cache_warnings(caplog)
    assert len(warnings) == 1 and "TimeoutError" in warnings[0]


def test_redis_stopped_mid_test_is_a_miss_left_alone_for_retry_after_and_heals_when_it_returns(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisServer().start()
    revived: RedisServer | None = None
    try:
        cache = redis_cache(server.url, clock)
        cache.put_many(US, {"B07N4M94X4": found("B07N4M94X4")})
        assert set(cache.get_many(US, ["B07N4M94X4"])) == {"B07N4M94X4"}

        server.stop()
        with caplog.at_level(logging.WARNING, logger="services.cache"):
            assert cache.get_many(US, ["B07N4M94X4"]) == {}
            cache.put_many(US, {"B0SECOND01": found("B0SECOND01")})  # while Redis rests: not even tried
        assert cache.stats()["errors"] == 1
        assert any("result cache redis" in w for w in cache_warnings(caplog))

        revived = RedisServer(port=server.port).start()  # empty: nothing was persisted
        cache.put_many(US, {"B0SECOND01": found("B0SECOND01")})
        assert cache.get_many(US, ["B0SECOND01"]) == {}  # still resting, though Redis is back
        clock.advance(cache.retry_after)
        cache.put_many(US, {"B0SECOND01": found("B0SECOND01")})
        assert set(cache.get_many(US, ["B07N4M94X4", "B0SECOND01"])) == {"B0SECOND01"}
        assert cache.stats()["errors"] == 1
        cache.close()
    finally:
        server.stop()
        if revived is not None:
            revived.stop()


def test_redis_entries_also_expire_in_redis_itself(redis_url: str, clock: FakeClock) -> None:
    cache = redis_cache(redis_url, clock)
    cache.put_many(US, {"B07N4M94X4": found("B07N4M94X4"), "B000000404": failed("B000000404", "NOT_FOUND")})
    client = redis.Redis.from_url(redis_url)
    try:
        assert 0 < client.ttl(cache_key(US, "B000000404")) <= HOUR
        assert HOUR < client.ttl(cache_key(US, "B07N4M94X4")) <= DAY
    finally:
        client.close()
        cache.close()


def test_none_backend_keeps_nothing(clock: FakeClock) -> None:
    cache = build_cache(backend="none", data_dir="", redis_url="", ttl=DAY, not_found_ttl=HOUR, clock=clock)
    cache.put_many(US, {"B07N4M94X4": found("B07N4M94X4")})
    assert cache.get_many(US, ["B07N4M94X4"]) == {}
    stats = cache.stats()
    assert (stats["backend"], stats["location"], stats["hits"], stats["misses"], stats["errors"]) == ("none", None, 0, 1, 0)


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="memcached"):
        build_cache(backend="memcached", data_dir="", redis_url="", ttl=DAY, not_found_ttl=HOUR)


def test_an_entry_that_is_not_json_is_answered_but_not_kept(make_cache: CacheFactory) -> None:
    cache = make_cache()
    cache.put_many(US, {"B0NOTJSON1": {**found("B0NOTJSON1"), "Weight": {1.5}}, "B07N4M94X4": found("B07N4M94X4")})
    assert set(cache.get_many(US, ["B0NOTJSON1", "B07N4M94X4"])) == {"B07N4M94X4"}
    assert cache.stats()["errors"] == 1
