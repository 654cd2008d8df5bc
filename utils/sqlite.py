"""SQLite pieces shared by the limiter, the result cache and the job store (all WAL files under DATA_DIR)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def immediate_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """`BEGIN IMMEDIATE` (the write lock first, so read-then-write is atomic across processes), then COMMIT, or ROLLBACK on an error.

    `conn` must be in autocommit mode (isolation_level=None).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
