"""CountingListener: a loopback TCP port standing for a server that is down or hung, counting the connections made to it."""

from __future__ import annotations

import socket
import struct
import threading
import time
from types import TracebackType


class CountingListener:
    """Accepts and counts every connection; resets it at once (down), or with `silent` holds it open unanswered (hung)."""

    def __init__(self, *, silent: bool = False) -> None:
        self._silent = silent
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self._socket.settimeout(0.05)
        self.port: int = self._socket.getsockname()[1]
        self.connections = 0
        self._held: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"counting-listener-{self.port}", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """Base URL that HTTP calls can be pointed at."""
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed by close()
            self.connections += 1
            if self._silent:
                self._held.append(conn)
                continue
            # SO_LINGER 0: close() sends RST, as a crashed or overloaded endpoint does.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    def wait_for(self, connections: int, seconds: float = 5.0) -> int:
        """Poll until at least `connections` were accepted (or `seconds` passed); the count then."""
        deadline = time.monotonic() + seconds
        while self.connections < connections and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.connections

    def close(self) -> None:
        """Stop accepting, drop the connections held and free the port."""
        self._stopped.set()
        self._thread.join(timeout=5)
        for conn in self._held:
            conn.close()
        self._socket.close()

    def __enter__(self) -> CountingListener:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
