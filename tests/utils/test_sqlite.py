"""SQLiteFile: processes that open a new file at the same moment all get it, in WAL mode, with its schema."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

from utils.sqlite import SQLiteFile

SCHEMA = "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY); CREATE TABLE IF NOT EXISTS items (job TEXT, n INTEGER);"
PROCESSES, ROUNDS = 4, 30


def _open(path: str, start: multiprocessing.synchronize.Barrier, outcomes: multiprocessing.Queue) -> None:
    start.wait()
    try:
        SQLiteFile(path, busy_timeout=30.0, schema=SCHEMA).open()
        outcomes.put("ok")
    except sqlite3.Error as exc:
        outcomes.put(f"{type(exc).__name__}: {exc}")


def test_workers_opening_a_new_file_together_all_get_it(tmp_path: Path) -> None:
    """As gunicorn's workers do at start-up: one of them used to see "database is locked" and lose its job store."""
    context = multiprocessing.get_context("fork")
    failures = []
    for round_number in range(ROUNDS):
        path = str(tmp_path / f"jobs-{round_number}.sqlite")
        start, outcomes = context.Barrier(PROCESSES), context.Queue()
        processes = [context.Process(target=_open, args=(path, start, outcomes)) for _ in range(PROCESSES)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(60)
        failures += [outcome for outcome in (outcomes.get(timeout=5) for _ in processes) if outcome != "ok"]
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} == {"jobs", "items"}
    assert failures == []
