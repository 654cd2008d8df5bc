"""The test suite's Redis: one real `redis-server` per session (`redis_server`), emptied for each test (`redis_url`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from bench.redis_server import RedisServer
from emulator.process import free_port

__all__ = ["RedisServer", "free_port", "redis_server", "redis_url"]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server for the whole session."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied (FLUSHALL) for this test."""
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url
