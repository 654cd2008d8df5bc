"""How long the result cache takes on a warm store: `python -m bench.cache_get`.

A cached GET /asin costs one get_many of one ASIN; a cached batch one get_many of up to 100.
Entries are the service's own, built from the emulator's catalog items. Prints one line per
backend (sqlite in a temporary directory, redis on a real redis-server started here).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from typing import Any

from bench.redis_server import RedisServer
from emulator.catalog import build_item
from services.asin_service import _found
from services.cache import ResultCache, build_cache
from utils.marketplaces import resolve_country

MARKETPLACE = resolve_country("US")
ASINS = ["B07N4M94X4"] + [f"B0{i:08d}" for i in range(1, 100)]


def sample_entries() -> dict[str, dict[str, Any]]:
    """100 successful lookup results as the ASIN service returns them."""
    entries = {}
    for asin in ASINS:
        item = build_item(asin, MARKETPLACE.marketplace_id)
        assert item is not None, asin
        entries[asin] = {**_found(asin, MARKETPLACE, item), "cached": False, "fetched_at": "2026-11-29T04:01:02Z"}
    return entries


def per_call(action: Any, calls: int, repeats: int = 5) -> float:
    """Seconds per call of `action()`: the best of `repeats` runs of `calls` calls."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            action()
        best = min(best, (time.perf_counter() - started) / calls)
    return best


def measure(cache: ResultCache, entries: dict[str, dict[str, Any]]) -> str:
    """One line: get of 1, get of 100 and put of 100 on a warm `cache`."""
    marketplace_id = MARKETPLACE.marketplace_id
    cache.put_many(marketplace_id, entries)
    if len(cache.get_many(marketplace_id, ASINS)) != len(ASINS):
        raise RuntimeError(f"{cache.backend}: the cache did not return what was stored: {cache.stats()}")
    get_one = per_call(lambda: cache.get_many(marketplace_id, ASINS[:1]), 4000)
    get_many = per_call(lambda: cache.get_many(marketplace_id, ASINS), 100)
    put_many = per_call(lambda: cache.put_many(marketplace_id, entries), 10)
    errors = cache.stats()["errors"]
    cache.close()
    return (
        f"{cache.backend:6}  get 1: {get_one * 1e6:7.1f} us   get 100: {get_many * 1e3:6.2f} ms   "
        f"put 100: {put_many * 1e3:6.2f} ms   errors: {errors}"
    )


def main() -> int:
    """Measure both real backends and print the figures."""
    entries = sample_entries()
    size = statistics.mean(len(json.dumps(entry)) for entry in entries.values())
    print(f"result cache, warm, {len(entries)} entries of {size:.0f} bytes of JSON on average (best of 5 runs)")
    with tempfile.TemporaryDirectory() as data_dir:
        print(measure(build_cache(backend="sqlite", data_dir=data_dir, redis_url="", ttl=86400, not_found_ttl=3600), entries))
    with RedisServer() as server:
        print(measure(build_cache(backend="redis", data_dir="", redis_url=server.url, ttl=86400, not_found_ttl=3600), entries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
