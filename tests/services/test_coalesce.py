"""The Coalescer: callers' items share one operation's calls, each as full as the queue allows."""

from __future__ import annotations

import contextvars
import threading

import pytest

from services.coalesce import Coalescer
from services.spapi import CallCount

WHO = contextvars.ContextVar("who", default="nobody")


class Operation:
    """A fake operation: records each call's items; the first call can be held until released."""

    def __init__(self, hold_first: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.callers: list[str] = []
        self.held = threading.Event()
        self.release = threading.Event()
        if not hold_first:
            self.release.set()
        self._lock = threading.Lock()

    def fetch(self, items: list[str], count: CallCount) -> dict[str, str]:
        with self._lock:
            self.calls.append(list(items))
            self.callers.append(WHO.get())
            first = len(self.calls) == 1
        count.sent += 1
        if first:
            self.held.set()
            assert self.release.wait(10)
        return {item: item.lower() for item in items if not item.startswith("GONE")}


class Caller:
    def __init__(self, queue: Coalescer, items: list[str], name: str = "caller") -> None:
        self.answers: dict[str, str] = {}
        self.deliveries = 0
        self.count = CallCount()
        self.seen_as: list[str] = []
        token = WHO.set(name)
        try:
            self.done = queue.submit(items, self.deliver, self.count)
        finally:
            WHO.reset(token)

    def deliver(self, found: dict[str, str]) -> None:
        self.deliveries += 1
        self.seen_as.append(WHO.get())
        self.answers.update(found)


@pytest.fixture
def held():
    operation = Operation(hold_first=True)
    queue = Coalescer("test", operation.fetch, (20,))
    yield operation, queue
    operation.release.set()
    queue.close()


def test_items_of_many_callers_queued_while_the_lane_is_busy_share_full_calls(held):
    operation, queue = held
    first = Caller(queue, ["A0"])
    assert operation.held.wait(10)
    # Three callers of 7 items each while the first call is out: 21 items, the oldest 20 in the next call.
    callers = [Caller(queue, [f"C{n}{i}" for i in range(7)]) for n in range(3)]
    operation.release.set()
    for caller in [first, *callers]:
        caller.done.result(10)
    assert [len(call) for call in operation.calls] == [1, 20, 1]
    assert operation.calls[1] == [f"C{n}{i}" for n in range(3) for i in range(7)][:20]
    for n, caller in enumerate(callers):
        assert caller.answers == {f"C{n}{i}": f"c{n}{i}" for i in range(7)}
    # The third caller's items came in two calls: one delivery for each.
    assert [c.deliveries for c in callers] == [1, 1, 2]


def test_an_item_asked_for_while_queued_or_in_flight_is_fetched_once_for_every_caller(held):
    operation, queue = held
    first = Caller(queue, ["A"])
    assert operation.held.wait(10)
    again_in_flight = Caller(queue, ["A", "B"])
    queued_twice = Caller(queue, ["B", "C"])
    operation.release.set()
    for caller in (first, again_in_flight, queued_twice):
        caller.done.result(10)
    assert operation.calls == [["A"], ["B", "C"]]
    assert again_in_flight.answers == {"A": "a", "B": "b"} and queued_twice.answers == {"B": "b", "C": "c"}


def test_the_overflow_lane_works_only_while_the_first_is_busy():
    operation = Operation(hold_first=True)
    queue = Coalescer("test", operation.fetch, (20, 1))
    try:
        first = Caller(queue, ["A", "B"])
        assert operation.held.wait(10)
        more = Caller(queue, ["C", "D", "E"])
        more.done.result(10)  # the overflow lane takes them one by one while the first lane is held
        operation.release.set()
        first.done.result(10)
        assert operation.calls == [["A", "B"], ["C"], ["D"], ["E"]]
        # Idle first lane: it takes everything queued, the overflow lane nothing.
        operation.calls.clear()
        Caller(queue, ["F", "G", "H"]).done.result(10)
        assert operation.calls == [["F", "G", "H"]]
    finally:
        queue.close()


def test_each_call_runs_in_its_oldest_callers_context_and_counts_there(held):
    operation, queue = held
    first = Caller(queue, ["A"], name="first")
    assert operation.held.wait(10)
    second, third = Caller(queue, ["B"], name="second"), Caller(queue, ["C"], name="third")
    operation.release.set()
    for caller in (first, second, third):
        caller.done.result(10)
    assert operation.callers == ["first", "second"]
    assert (first.count.sent, second.count.sent, third.count.sent) == (1, 1, 0)
    # Answers are handed over in each caller's own context.
    assert (first.seen_as, second.seen_as, third.seen_as) == (["first"], ["second"], ["third"])


def test_an_item_the_call_leaves_out_is_done_without_an_answer():
    operation = Operation()
    queue = Coalescer("test", operation.fetch, (20,))
    try:
        caller = Caller(queue, ["GONE1", "B"])
        caller.done.result(10)
        assert caller.answers == {"B": "b"}
    finally:
        queue.close()


def test_a_failing_call_gives_no_answers_and_the_lane_carries_on(caplog):
    calls = []

    def fetch(items: list[str], count: CallCount) -> dict[str, str]:
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return {item: "ok" for item in items}

    queue = Coalescer("test", fetch, (20,))
    try:
        broken = Caller(queue, ["A"])
        broken.done.result(10)
        fine = Caller(queue, ["B"])
        fine.done.result(10)
        assert broken.answers == {} and fine.answers == {"B": "ok"}
        assert "test: a call for 1 items failed inside the service" in caplog.text
    finally:
        queue.close()


def test_close_finishes_the_call_in_flight_and_gives_up_the_queue(held):
    operation, queue = held
    first = Caller(queue, ["A"])
    assert operation.held.wait(10)
    queued = Caller(queue, ["B"])
    closing = threading.Thread(target=queue.close)
    closing.start()
    operation.release.set()
    closing.join(10)
    assert first.answers == {"A": "a"} and queued.answers == {}
    assert first.done.done() and queued.done.done()
    assert operation.calls == [["A"]]
    late = Caller(queue, ["C"])
    assert late.done.done() and operation.calls == [["A"]]
