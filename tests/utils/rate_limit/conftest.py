"""Stores of every backend for the limiter's tests: memory, a sqlite file in tmp_path, a real redis-server."""

from __future__ import annotations

import pytest

from utils.rate_limit import BACKENDS, LimiterStore, build_store


def _store_factory(request, tmp_path):
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else ""

    def build(calls: int = 1000, window: float = 60.0) -> LimiterStore:
        return build_store(
            request.param, data_dir=str(tmp_path), redis_url=redis_url, redis_label=redis_url, window_calls=calls, window_seconds=window
        )

    return build


@pytest.fixture(params=BACKENDS)
def store_factory(request, tmp_path):
    """Build a LimiterStore of each backend: memory, a sqlite file in tmp_path, a real redis-server."""
    return _store_factory(request, tmp_path)


@pytest.fixture(params=[b for b in BACKENDS if b != "memory"])
def shared_store_factory(request, tmp_path):
    """Build a LimiterStore of each backend that several processes can share: sqlite and redis (each call: another "worker")."""
    return _store_factory(request, tmp_path)
