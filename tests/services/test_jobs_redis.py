"""The Redis job store on a real redis-server: items in order, idempotent parts, done on the last answer, cancel, expiry."""

from __future__ import annotations

import redis

from services.jobs import CANCELLED, DONE, QUEUED, RUNNING, JobSpec
from services.jobs.redis_store import PART_SIZE, QUEUE_NAME, RedisJobStore
from services.jobs.runner import JobSteps
from services.jobs.service import RedisJobService
from tests.helpers.data import entry


def make_store(redis_url: str, retention: float = 3600) -> RedisJobStore:
    return RedisJobStore(redis.Redis.from_url(redis_url), retention=retention)


def redis_service(store: RedisJobStore, queue) -> RedisJobService:
    """A RedisJobService queueing parts for app.run_job_part; its steps are never run here."""
    return RedisJobService(store, queue, JobSteps(None, size=100), max_items=10_000, part_task="app.run_job_part")


def test_a_job_is_stored_in_order_and_answered_part_by_part(redis_url):
    store = make_store(redis_url)
    job = store.create(JobSpec("US", "ASIN", refresh=False, source="json"), [f"B0{i:08d}" for i in range(450)], max_items=1000)
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
    job = store.create(JobSpec("US", "ASIN", refresh=False, source="json"), ["A", "B"], max_items=10)
    store.start_part(job.id)
    store.record(job.id, {0: entry("A")}, [])
    assert store.cancel(job.id).status == CANCELLED
    assert store.start_part(job.id).status == CANCELLED
    assert [value for _, value, _ in store.results(job.id)] == ["A"]


def test_a_jobs_keys_expire_after_the_retention(redis_url):
    store = make_store(redis_url, retention=100)
    job = store.create(JobSpec("US", "ASIN", refresh=False, source="json"), ["A"], max_items=10)
    client = redis.Redis.from_url(redis_url)
    assert 0 < client.ttl(f"fba:jobs:{job.id}") <= 100 and 0 < client.ttl(f"fba:jobs:{job.id}:inputs") <= 100
    client.delete(f"fba:jobs:{job.id}", f"fba:jobs:{job.id}:inputs")  # as Redis does when the TTL runs out
    assert store.list(10) == [] and store.get(job.id) is None


def test_submitting_queues_one_rq_job_per_part(redis_url):
    from rq import Queue

    client = redis.Redis.from_url(redis_url)
    queue = Queue("fba-jobs-test", connection=client)
    service = redis_service(make_store(redis_url), queue)
    job = service.submit(JobSpec("US", "ASIN", refresh=False, source="json"), [f"B0{i:08d}" for i in range(2 * PART_SIZE + 1)])
    queued = queue.get_jobs()
    assert [(q.func_name, q.args) for q in queued] == [
        ("app.run_job_part", (job.id, 0, PART_SIZE)),
        ("app.run_job_part", (job.id, PART_SIZE, 2 * PART_SIZE)),
        ("app.run_job_part", (job.id, 2 * PART_SIZE, 2 * PART_SIZE + 1)),
    ]


def test_health_counts_waiting_parts(redis_url):
    from rq import Queue

    client = redis.Redis.from_url(redis_url)
    service = redis_service(make_store(redis_url), Queue(QUEUE_NAME, connection=client))
    service.submit(JobSpec("US", "ASIN", refresh=False, source="json"), [f"B0{i:08d}" for i in range(PART_SIZE + 1)])
    health = service.health()
    assert (health["backend"], health["store_ok"], health["queued_parts"], health["workers"]) == ("redis", True, 2, 0)


def test_health_says_when_redis_is_down():
    from rq import Queue

    from emulator.process import free_port

    client = redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    service = redis_service(RedisJobStore(client, retention=60), Queue("x", connection=client))
    assert service.health()["store_ok"] is False


def test_a_part_whose_holder_is_gone_is_handed_out_again_once(redis_url):
    store = make_store(redis_url)
    job = store.create(JobSpec("US", "ASIN", refresh=False, source="json"), [f"B0{i:08d}" for i in range(PART_SIZE + 10)], max_items=1000)
    assert store.take_part(job.id, 0, "worker-1") and not store.take_part(job.id, 0, "worker-2")
    assert store.take_part(job.id, PART_SIZE, "worker-2")
    assert store.lapsed_parts() == []  # both holders renew their leases
    redis.Redis.from_url(redis_url).delete(f"fba:jobs:{job.id}:lease:0")  # as Redis does when worker-1's lease runs out
    assert store.lapsed_parts() == [(job.id, 0, PART_SIZE)]
    assert store.lapsed_parts() == []  # handed to one caller only
    assert not store.holds_part(job.id, 0, "worker-1")
    # The part queued again is taken by the next worker; a part finished is never handed out again.
    assert store.take_part(job.id, 0, "worker-3")
    store.finish_part(job.id, 0, "worker-3", done=True)
    assert not store.take_part(job.id, 0, "worker-4")


def test_a_part_let_go_unfinished_is_handed_out_again(redis_url):
    store = make_store(redis_url)
    job = store.create(JobSpec("US", "ASIN", refresh=False, source="json"), ["A", "B"], max_items=10)
    assert store.take_part(job.id, 0, "worker-1")
    store.finish_part(job.id, 0, "worker-1", done=False)
    assert store.lapsed_parts() == [(job.id, 0, 2)]


def test_workers_count_as_live_until_their_heartbeat_is_stale(redis_url):
    now = [1_800_000_000.0]
    store = RedisJobStore(redis.Redis.from_url(redis_url), retention=3600, clock=lambda: now[0])
    store.heartbeat("worker-1")
    now[0] += 20
    store.heartbeat("worker-2")
    assert store.live_workers() == 2
    now[0] += 15  # worker-1 last beat 35 s ago
    assert store.live_workers() == 1
    store.forget_worker("worker-2")
    assert store.live_workers() == 0


def test_a_job_no_live_worker_serves_says_so(redis_url):
    from rq import Queue

    client = redis.Redis.from_url(redis_url)
    store = make_store(redis_url)
    service = redis_service(store, Queue(QUEUE_NAME, connection=client))
    job = service.submit(JobSpec("US", "ASIN", refresh=False, source="json"), ["A"])
    assert service.view(job)["waiting_for_worker"] is True
    store.heartbeat("worker-1")
    assert service.view(job)["waiting_for_worker"] is False
    cancelled = service.cancel(job.id)
    store.forget_worker("worker-1")
    assert service.view(cancelled)["waiting_for_worker"] is False  # a finished job waits for nothing
