"""Figures of the reliability suite, per case: requests sent, entries asked and lost, 5xx seen, SP-API calls, wall time.

Every test here gets a `CaseFigures` (autouse). Requests answered through the Flask test client,
httpx or requests are counted from the session's leak check (tests/helpers/leak_check.py);
a test adds what it sent otherwise (raw sockets) with `figures.sent(status)` and its batches with
`figures.batch(requested, results)`. With RELIABILITY_FIGURES=<path> in the environment the
figures of the whole run are written there as JSON (bench/soak.py does so to fill
tests/reliability/RESULTS.md); otherwise nothing is written.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.helpers import leak_check

FIGURES_ENV = "RELIABILITY_FIGURES"
_OUTCOME = pytest.StashKey[str]()


@dataclass
class CaseFigures:
    """What one case sent and saw."""

    case: str
    test: str
    outcome: str = "not run"
    requests: int = 0
    five_xx: int = 0
    five_xx_by_design: int = 0
    entries: int = 0
    entries_lost: int = 0
    entries_duplicated: int = 0
    sp_api_calls: int | None = None
    wall_seconds: float = 0.0
    _extra_statuses: Counter[int] = field(default_factory=Counter, repr=False)

    def sent(self, status: int) -> None:
        """Count a request the session's hooks did not see (a raw socket), by its answer's status."""
        self._extra_statuses[status] += 1

    def batch(self, requested: Sequence[Any], results: Sequence[dict[str, Any]]) -> None:
        """Count a batch's entries: positions without their own entry are lost, extra ones duplicated."""
        answered = [entry.get("asin") for entry in results]
        self.entries += len(requested)
        lost = duplicated = 0
        for position, asin in enumerate(requested):
            if position >= len(answered) or answered[position] != asin:
                lost += 1
        duplicated = max(0, len(answered) - len(requested))
        self.entries_lost += lost
        self.entries_duplicated += duplicated

    def by_design(self, count: int = 1) -> None:
        """Mark `count` of the 5xx answers as the case's contract (e.g. 503 UPSTREAM_UNAVAILABLE while SP-API is down)."""
        self.five_xx_by_design += count


_RUN: list[CaseFigures] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Remember each case's outcome for its figures."""
    report = yield
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        item.stash[_OUTCOME] = report.outcome
    return report


@pytest.fixture(autouse=True)
def figures(request: pytest.FixtureRequest) -> Iterator[CaseFigures]:
    """This case's figures; recorded for the run when it ends."""
    check = leak_check.ACTIVE
    before = Counter(check.statuses) if check is not None else Counter()
    case = CaseFigures(case=request.node.originalname or request.node.name, test=request.node.nodeid)
    started = time.monotonic()
    yield case
    case.wall_seconds = round(time.monotonic() - started, 2)
    seen = (Counter(check.statuses) if check is not None else Counter()) - before
    seen.update(case._extra_statuses)
    case.requests = sum(seen.values())
    case.five_xx = sum(n for status, n in seen.items() if status >= 500)
    case.outcome = request.node.stash.get(_OUTCOME, "error")
    _RUN.append(case)


@pytest.fixture(scope="session", autouse=True)
def _write_figures() -> Iterator[None]:
    """Write the run's figures to $RELIABILITY_FIGURES when it is set."""
    yield
    path = os.environ.get(FIGURES_ENV)
    if path:
        rows = [{k: v for k, v in dataclasses.asdict(case).items() if not k.startswith("_")} for case in _RUN]
        with open(path, "w", encoding="utf-8") as out:
            json.dump(rows, out, indent=1)
