"""Redis clients for the limiter, the result cache and the job store: one policy for timeouts, retries and forks.

redis-py's connection pool notices a fork and opens new connections in the child, so one client
per store per process is safe under gunicorn. No retries inside redis-py (its default retries with
backoff): each store decides what a failure means (the limiter paces locally, the cache answers a
miss, the job store answers 503), and a Redis that is down must cost one timeout, not several.
"""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def redis_client(url: str, *, timeout: float) -> redis.Redis:
    """A client for REDIS_URL `url` whose connects and commands give up after `timeout` seconds, without retrying."""
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))
