"""The Redis job store on a real redis-server: items in order, idempotent parts, done on the last answer, cancel, expiry."""

from __future__ import annotations

import redis

from services.jobs import CANCELLED, DONE, QUEUED, RUNNING
from services.jobs_redis import PART_SIZE, RedisJobService, RedisJobStore, run_part
from tests.helpers.data import entry


def make_store(redis_url: str, retention: float = 3600) -> RedisJobStore:
    return RedisJobStore(redis.Redis.from_url(redis_url), retention=retention)


def test_a_job_is_stored_in_order_and_answered_part_by_part(redis_url):
    store = make_store(redis_url)
    job = store.create("US", "ASIN", [f"B0{i:08d}" for i in range(450)], refresh=False, source="json", max_items=1000)
    assert job.status == QUEUED and job.total == 450
    assert store.start_part(job.id).status == RUNNING
    pending = store.pending_in(job.id, 200, 400, 50)
    assert [item.position for item in pending] == list(range(200, 250)) and pending[0].input == "B000000200"

    first = {item.position: entry(item.input) for item in pending}
    assert store.record(job.id, first, []).done == 50
    # A part retried after its worker died answers only what has no stored answer.
    assert [item.position for item in store.pending_in(job.id, 200, 400, 10)] == list(range(250, 260))

    rest = {p: entry(f"B0{p:08d}", success=p % 2 == 0, cached=p < 10) for p in range(450) if not 200 <= p < 250}
    done = store.record(job.id, rest, [])
    assert done.status == DONE and (done.done, done.failed, done.cached) == (450, 200, 10) and done.finished_at is not None
    assert [position for position, _, _ in store.results(job.id)] == list(range(450))


def test_cancel_keeps_answers_and_stops_parts(redis_url):
    store = make_store(redis_url)
    job = store.create("US", "ASIN", ["A", "B"], refresh=False, source="json", max_items=10)
    store.start_part(job.id)
    store.record(job.id, {0: entry("A")}, [])
    assert store.cancel(job.id).status == CANCELLED
    assert store.start_part(job.id).status == CANCELLED
    assert [value for _, value, _ in store.results(job.id)] == ["A"]


def test_a_jobs_keys_expire_after_the_retention(redis_url):
    store = make_store(redis_url, retention=100)
    job = store.create("US", "ASIN", ["A"], refresh=False, source="json", max_items=10)
    client = redis.Redis.from_url(redis_url)
    assert 0 < client.ttl(f"fba:jobs:{job.id}") <= 100 and 0 < client.ttl(f"fba:jobs:{job.id}:inputs") <= 100
    client.delete(f"fba:jobs:{job.id}", f"fba:jobs:{job.id}:inputs")  # as Redis does when the TTL runs out
    assert store.list(10) == [] and store.get(job.id) is None


def test_submitting_queues_one_rq_job_per_part(redis_url):
    from rq import Queue

    client = redis.Redis.from_url(redis_url)
    queue = Queue("fba-jobs-test", connection=client)
    service = RedisJobService(make_store(redis_url), queue, max_items=10_000)
    job = service.submit("US", "ASIN", [f"B0{i:08d}" for i in range(2 * PART_SIZE + 1)], refresh=False, source="json")
    queued = queue.get_jobs()
    assert [(q.func, q.args) for q in queued] == [
        (run_part, (job.id, 0, PART_SIZE)),
        (run_part, (job.id, PART_SIZE, 2 * PART_SIZE)),
        (run_part, (job.id, 2 * PART_SIZE, 2 * PART_SIZE + 1)),
    ]
    assert all(q.retries_left == 3 for q in queued)


def test_health_counts_waiting_parts(redis_url):
    from rq import Queue

    from services.jobs_redis import QUEUE_NAME

    client = redis.Redis.from_url(redis_url)
    service = RedisJobService(make_store(redis_url), Queue(QUEUE_NAME, connection=client), max_items=10_000)
    service.submit("US", "ASIN", [f"B0{i:08d}" for i in range(PART_SIZE + 1)], refresh=False, source="json")
    health = service.health()
    assert (health["backend"], health["store_ok"], health["queued_parts"], health["workers"]) == ("redis", True, 2, 0)


def test_health_says_when_redis_is_down():
    from rq import Queue

    from emulator.process import free_port

    client = redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    service = RedisJobService(RedisJobStore(client, retention=60), Queue("x", connection=client), max_items=10)
    assert service.health()["store_ok"] is False
