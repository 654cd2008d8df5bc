"""SQLite files shared by every thread and process on the machine: the limiter's, the result cache's and the job store's.

One policy for all three, here: WAL (readers never wait for the writer), autocommit connections
whose writes are `BEGIN IMMEDIATE` transactions (the write lock first, so read-then-write is
atomic across processes), one connection per thread per process opened on first use, and none
used across a fork: a gunicorn worker opens its own and keeps the ones it inherited referenced,
never used nor closed, as SQLite asks. What differs between the files is passed in with its
reason: how long a writer waits for the lock, and whether a commit waits for the disk.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path


@contextmanager
def immediate_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """`BEGIN IMMEDIATE`, then COMMIT, or ROLLBACK on an error; `conn` must be in autocommit mode."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class SQLiteFile:
    """One WAL-mode SQLite file: a connection per thread, opened lazily, never carried across a fork.

    `busy_timeout`: seconds a writer waits for the write lock before sqlite3.OperationalError.
    `synchronous`: SQLite's PRAGMA synchronous (NORMAL is safe in WAL mode; OFF for state worth
    nothing after a crash). `schema`: statements run once per process when the file is opened.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float,
        synchronous: str = "NORMAL",
        schema: str = "",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._sleep = sleep
        self._busy_timeout = busy_timeout
        self._synchronous = synchronous
        self._schema = schema
        self._lock = threading.Lock()
        self._local = threading.local()
        # Connections this process opened (closed by close()), and the generation they belong to.
        self._connections: list[sqlite3.Connection] = []
        self._generation = object()
        self._opened_pid = 0
        # Connections inherited through a fork: referenced so they are never closed (or used) in the child.
        self._inherited: list[sqlite3.Connection] = []

    @property
    def location(self) -> str:
        """The file's path, for /health and logs."""
        return str(self.path)

    def open(self) -> None:
        """Create the file and its schema in WAL mode, once per process; sqlite3.Error or OSError if it cannot be."""
        pid = os.getpid()
        if self._opened_pid == pid:
            return
        with self._lock:
            if self._opened_pid == pid:
                return
            if self._opened_pid:
                # Forked from a process that used the file: its connections are not ours to touch.
                self._inherited.extend(self._connections)
                self._connections = []
                self._generation = object()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._create()
            self._opened_pid = pid

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (autocommit), opening the file first if this process has not."""
        self.open()
        local = self._local
        if getattr(local, "generation", None) is self._generation:
            return local.connection
        conn = self._connect()
        with self._lock:
            self._connections.append(conn)
            local.connection, local.generation = conn, self._generation
        return conn

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """This thread's connection inside `BEGIN IMMEDIATE` ... COMMIT."""
        return immediate_transaction(self.connection())

    def close(self) -> None:
        """Close every connection this process opened; the next call opens new ones."""
        with self._lock:
            if self._opened_pid == os.getpid():
                for conn in self._connections:
                    conn.close()
            self._connections = []
            self._generation = object()
            self._opened_pid = 0

    def _create(self) -> None:
        """Put the file in WAL mode (it stays so) and create its schema, retrying while other processes do the same.

        Changing the journal mode needs the file to itself, and SQLite refuses at once ("database is
        locked", or by answering the mode it kept) rather than wait when it cannot get it: gunicorn's
        workers opening a new file together would otherwise leave one of them without it.
        """
        deadline = self._clock() + self._busy_timeout
        while True:
            conn = self._connect()
            try:
                mode = str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
                if mode == "wal":
                    if self._schema:
                        conn.executescript(self._schema)
                    return
                problem: Exception = sqlite3.OperationalError(f"journal_mode is {mode}, not wal")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                problem = exc
            finally:
                conn.close()
            if self._clock() >= deadline:
                raise problem
            self._sleep(0.05)

    def _connect(self) -> sqlite3.Connection:
        # check_same_thread=False only so close() can close other threads' connections; each is used by one thread.
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        return conn
