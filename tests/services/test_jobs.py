"""The job store on its own: claims, leases, idempotent answers, counts, cancel and purge, with a fake clock."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.errors import ServiceError
from services.jobs import CANCELLED, DONE, QUEUED, RUNNING, JobSpec, PendingItem
from services.jobs.runner import ITEM_RETRIES, JobSteps
from services.jobs.sqlite_store import SQLiteJobStore
from tests.helpers.data import entry


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path, clock) -> SQLiteJobStore:
    return SQLiteJobStore(tmp_path / "jobs.sqlite", clock=clock)


def test_a_job_keeps_its_items_in_order(store):
    job = store.create(JobSpec("US", "ASIN", refresh=False, source="json"), (f"B0{i:08d}" for i in range(5000)), max_items=10_000)
    assert job.status == QUEUED and job.total == 5000 and job.done == 0
    pending = store.pending(job.id, 30)
    assert [item.position for item in pending] == list(range(30)) and pending[3].input == "B000000003"


def test_a_job_over_max_job_size_is_refused_and_leaves_nothing(store):
    with pytest.raises(ServiceError) as refused:
        store.create(JobSpec("US", "ASIN", refresh=False, source="json"), (f"B0{i:08d}" for i in range(101)), max_items=100)
    assert refused.value.code == "JOB_TOO_LARGE"
    assert store.list(10) == []


def test_a_failing_upload_leaves_no_half_job(store):
    def values():
        yield "B000000001"
        raise ValueError("line 2 is not UTF-8")

    with pytest.raises(ValueError):
        store.create(JobSpec("US", "ASIN", refresh=False, source="csv"), values(), max_items=100)
    assert store.list(10) == []


def test_answers_are_counted_once_and_only_by_the_holder(store):
    job = store.create(JobSpec("US", "ASIN", refresh=False, source="json"), ["A", "B", "C"], max_items=10)
    claimed = store.claim("me:1:x")
    assert claimed is not None and claimed.id == job.id and claimed.status == RUNNING
    assert store.record(job.id, "someone-else", {0: entry("A")}, []) is None
    updated = store.record(job.id, "me:1:x", {0: entry("A", cached=True), 1: entry("B", success=False)}, [2])
    assert (updated.done, updated.succeeded, updated.failed, updated.cached) == (2, 1, 1, 1)
    # The same answers again (a step repeated after a crash) change nothing.
    again = store.record(job.id, "me:1:x", {0: entry("A"), 1: entry("B")}, [])
    assert (again.done, again.succeeded, again.failed) == (2, 1, 1)
    assert store.pending(job.id, 10) == [PendingItem(2, "C", 1)]
    assert [(p, value) for p, value, _ in store.results(job.id)] == [(0, "A"), (1, "B")]


def test_a_live_claim_is_respected_until_its_lease_lapses(store, clock):
    store.create(JobSpec("US", "ASIN", refresh=False, source="json"), ["A"], max_items=10)
    # A holder on another host: its liveness cannot be checked here, only its lease.
    assert store.claim("other-host:1:x", lease=60) is not None
    assert store.claim("me:2:y") is None
    clock.now += 61
    taken = store.claim("me:2:y")
    assert taken is not None and taken.status == RUNNING


def test_a_claim_held_by_a_dead_process_on_this_host_is_taken_over_at_once(store):
    import socket

    store.create(JobSpec("US", "ASIN", refresh=False, source="json"), ["A"], max_items=10)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    dead_owner = f"{socket.gethostname()}:{gone.stdout.strip()}:abcd1234"
    assert store.claim(dead_owner, lease=3600) is not None
    assert store.claim("me:2:y") is not None  # the lease has an hour to run, but its process is gone


def test_cancel_stops_the_holder_and_keeps_what_was_answered(store):
    job = store.create(JobSpec("US", "ASIN", refresh=False, source="json"), ["A", "B"], max_items=10)
    store.claim("me:1:x")
    store.record(job.id, "me:1:x", {0: entry("A")}, [])
    assert store.cancel(job.id).status == CANCELLED
    assert store.record(job.id, "me:1:x", {1: entry("B")}, []) is None
    assert [value for _, value, _ in store.results(job.id)] == ["A"]
    assert store.claim("me:1:x") is None


def test_finish_marks_done_and_progress_reads_it(store, clock):
    job = store.create(JobSpec("US", "ASIN", refresh=False, source="json"), ["A", "B", "C", "D"], max_items=10)
    store.claim("me:1:x")
    clock.now += 2
    running = store.record(job.id, "me:1:x", {0: entry("A"), 1: entry("B")}, [])
    view = running.view(clock.now)
    assert view["progress_percent"] == 50.0 and view["asins_per_second"] == 1.0 and view["eta_seconds"] == 2.0
    store.record(job.id, "me:1:x", {2: entry("C"), 3: entry("D")}, [])
    store.finish(job.id, "me:1:x", DONE)
    done = store.get(job.id)
    assert done.status == DONE and done.view(clock.now)["eta_seconds"] == 0.0 and done.finished_at == clock.now


def test_jobs_untouched_for_the_retention_are_purged(store, clock):
    old = store.create(JobSpec("US", "ASIN", refresh=False, source="json"), ["A"], max_items=10)
    clock.now += 7 * 86400
    recent = store.create(JobSpec("US", "ASIN", refresh=False, source="json"), ["B"], max_items=10)
    assert store.purge(clock.now - 86400) == 1
    assert store.get(old.id) is None and store.get(recent.id) is not None
    assert list(store.results(old.id)) == []


class Answers:
    """Stands in for AsinService.lookup_list: the entry listed for each value."""

    def __init__(self, entries: dict[str, dict]) -> None:
        self.entries = entries

    def lookup_list(self, values, identifier_type, country, *, refresh, datasets=None):
        self.datasets = datasets
        return [self.entries[value] for value in values]


def test_a_step_asks_again_for_failures_in_passing_and_keeps_answers():
    entries = {
        "A": entry("A", success=False, code="UPSTREAM_UNAVAILABLE"),
        "B": entry("B", success=False, code="UPSTREAM_UNAVAILABLE"),
        "C": entry("C", success=False, code="NOT_FOUND"),
        "D": entry("D", success=False, code="AUTH_FAILED"),
        "E": entry("E"),
    }
    steps = JobSteps(Answers(entries), size=10)
    items = [PendingItem(0, "A", 0), PendingItem(1, "B", ITEM_RETRIES.max_retries), PendingItem(2, "C", 0), PendingItem(3, "D", 0)]
    step = steps.run([*items, PendingItem(4, "E", 0)], JobSpec("US", "ASIN", refresh=False))
    # A failed in passing for the first time: asked again 5 s later; B's retries are spent, D is no passing failure.
    assert step.retried == [0] and step.wait == 5.0 and step.codes == {"UPSTREAM_UNAVAILABLE"}
    assert sorted(step.answered) == [2, 4] and sorted(step.unanswered) == [1, 3]
    assert sorted(step.stored) == [1, 2, 3, 4] and step.stored[2]["input"] == "C"


def test_a_found_item_whose_dataset_failed_in_passing_is_asked_again_until_its_retries_are_spent():
    found = {**entry("A"), "Pricing": {"buy_box_price": 9.5}, "Fees": {"error": {"code": "UPSTREAM_UNAVAILABLE", "message": "down"}}}
    refused = {**entry("B"), "Fees": {"error": {"code": "NO_PRICE", "message": "no Buy Box"}}}
    answers = Answers({"A": found, "B": refused})
    steps = JobSteps(answers, size=2)
    step = steps.run([PendingItem(0, "A", 0), PendingItem(1, "B", 0)], JobSpec("US", "ASIN", refresh=False, include=("pricing", "fees")))
    assert answers.datasets.include == ("pricing", "fees")
    assert step.retried == [0] and step.wait == 5.0, "a dataset unavailable for now is asked again"
    assert list(step.answered) == [1], "NO_PRICE is the item's answer"
    last = steps.run([PendingItem(0, "A", ITEM_RETRIES.max_retries)], JobSpec("US", "ASIN", refresh=False, include=("pricing", "fees")))
    assert list(last.answered) == [0] and last.unanswered == {}, "retries spent: the found item stands, its dataset's error with it"


def test_the_item_retry_schedule_waits_longer_each_time():
    steps = JobSteps(Answers({"A": entry("A", success=False, code="TIMEOUT")}), size=1)
    waits = [steps.run([PendingItem(0, "A", attempts)], JobSpec("US", "ASIN", refresh=False)).wait for attempts in range(3)]
    assert waits == [5.0, 10.0, 20.0]


def test_throttling_waits_for_the_quota_without_spending_a_retry():
    throttled = entry("A", success=False, code="THROTTLED")
    throttled["error"]["retry_after_seconds"] = 31.5
    steps = JobSteps(Answers({"A": throttled}), size=1)
    step = steps.run([PendingItem(0, "A", ITEM_RETRIES.max_retries)], JobSpec("US", "ASIN", refresh=False))
    assert step.throttled == [0] and step.retried == [] and step.stored == {} and step.wait == 31.5
