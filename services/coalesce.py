"""One SP-API operation's calls, shared by every caller in the process: items queue, and each call takes as many as it can carry.

A batch operation costs its bucket a token per call whatever the call carries (getItemOffersBatch:
one call per 10 s, up to 20 ASINs). Callers asking for a few items each (a scan's chunks, a job's
steps, requests side by side) would spend a token on every few items if each made its own calls.
A `Coalescer` keeps one queue per operation instead: a caller submits its items and is handed each
call's answers for them; the operation's lanes take the oldest items, as many as a call carries,
whenever they are free. While a lane waits for its slot, the queue fills for its next call, so
calls run as full as the work in hand allows and the bucket never idles while work waits.

An item asked for while it is queued or in flight is fetched once; every caller that asked gets it.
A lane after the first takes work only while every lane before it is busy: an overflow, such as
getItemOffers (its own bucket) beside getItemOffersBatch.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from services.spapi import CallCount

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(eq=False)
class _Submission(Generic[K, V]):
    """One caller's items: the ones not yet delivered, where to deliver answers, and the context its calls run in."""

    waiting: set[K]
    deliver: Callable[[dict[K, V]], None]
    count: CallCount
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    done: Future[None] = field(default_factory=Future)


class Coalescer(Generic[K, V]):
    """The queue of one operation: `submit` items, get each call's answers for them, as calls of up to a lane's size.

    `fetch(items, count)` makes the call(s) for `items` (distinct, at most the lane's size) and returns
    an answer per item (an item it leaves out gets none: its caller decides what that means). Each
    call runs in a copy of the context of the caller whose item is oldest, and counts in its CallCount,
    so its log lines carry that request's id and a job's ledger counts it.
    """

    def __init__(self, name: str, fetch: Callable[[list[K], CallCount], Mapping[K, V]], lanes: Sequence[int]) -> None:
        self.name = name
        self._fetch = fetch
        self._lanes = list(lanes)
        self._cond = threading.Condition()
        self._queued: OrderedDict[K, list[_Submission[K, V]]] = OrderedDict()
        self._in_flight: dict[K, list[_Submission[K, V]]] = {}
        self._busy = [False] * len(self._lanes)
        self._closed = False
        self._threads = [
            threading.Thread(target=self._run_lane, args=(lane,), name=f"{name}-{lane}", daemon=True) for lane in range(len(self._lanes))
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, items: Sequence[K], deliver: Callable[[dict[K, V]], None], count: CallCount) -> Future[None]:
        """Queue `items`; `deliver` gets each call's answers for them (once per call, in a copy of the caller's context).

        The future is done once every item has been through a call (after its last `deliver`).
        """
        submission: _Submission[K, V] = _Submission(set(items), deliver, count)
        if not submission.waiting:
            submission.done.set_result(None)
            return submission.done
        with self._cond:
            if self._closed:
                submission.done.set_result(None)
                return submission.done
            for item in dict.fromkeys(items):
                waiters = self._in_flight.get(item)
                if waiters is None:
                    waiters = self._queued.setdefault(item, [])
                waiters.append(submission)
            self._cond.notify_all()
        return submission.done

    def close(self) -> None:
        """Finish the calls in flight, then stop; what is still queued is given up (its callers get no answer for it)."""
        with self._cond:
            self._closed = True
            left = [s for waiters in self._queued.values() for s in waiters]
            self._queued.clear()
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()
        for submission in dict.fromkeys(left):
            if not submission.done.done():
                submission.done.set_result(None)

    def _run_lane(self, lane: int) -> None:
        size = self._lanes[lane]
        while True:
            with self._cond:
                while not self._closed and not (self._queued and all(self._busy[:lane])):
                    self._cond.wait()
                if self._closed:
                    return
                items = []
                while self._queued and len(items) < size:
                    item, waiters = self._queued.popitem(last=False)
                    self._in_flight[item] = waiters
                    items.append(item)
                self._busy[lane] = True
                leader = self._in_flight[items[0]][0]
            try:
                answers = dict(leader.context.copy().run(self._fetch, items, leader.count))
            except Exception:  # a bug, not an SP-API answer: the callers go without these answers
                log.exception("%s: a call for %d items failed inside the service", self.name, len(items))
                answers = {}
            self._hand_out(lane, items, answers)

    def _hand_out(self, lane: int, items: list[K], answers: dict[K, V]) -> None:
        by_submission: dict[_Submission[K, V], dict[K, V]] = {}
        with self._cond:
            self._busy[lane] = False
            for item in items:
                for submission in self._in_flight.pop(item):
                    found = by_submission.setdefault(submission, {})
                    if item in answers:
                        found[item] = answers[item]
            self._cond.notify_all()
        for submission, found in by_submission.items():
            if found:
                try:
                    # In the caller's context: what it queues from there (a pricing call's fees) counts as its own.
                    submission.context.copy().run(submission.deliver, found)
                except Exception:  # the caller's own bug: its other answers still come
                    log.exception("%s: delivering %d answers failed", self.name, len(found))
            with self._cond:
                submission.waiting.difference_update(items)
                finished = not submission.waiting
            if finished:
                submission.done.set_result(None)
