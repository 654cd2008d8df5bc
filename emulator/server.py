"""EmulatorServer: the emulator app on werkzeug's threaded server in a daemon thread (tests, `make run`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from emulator.app import create_emulator_app, emulator_state
from emulator.options import EmulatorOptions
from emulator.state import EmulatorState


class _QuietRequestHandler(WSGIRequestHandler):
    """werkzeug's handler without the per-request access log (errors are still logged)."""

    protocol_version = "HTTP/1.1"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Skip the access-log line."""


class _VerboseRequestHandler(WSGIRequestHandler):
    """werkzeug's handler with its usual access log."""

    protocol_version = "HTTP/1.1"


class EmulatorServer:
    """Serves the emulator on host:port (0: a free port) until stop() or the end of a `with`; `clock` times buckets and tokens."""

    def __init__(
        self,
        options: EmulatorOptions | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        verbose: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._verbose = verbose
        self.app = create_emulator_app(options, clock=clock)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> EmulatorState:
        """The app's state (options, buckets, call log)."""
        return emulator_state(self.app)

    @property
    def port(self) -> int:
        """The port listened on (the requested one until started)."""
        return self._server.port if self._server is not None else self._requested_port

    @property
    def url(self) -> str:
        """Base URL for clients, e.g. http://127.0.0.1:8001."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def start(self) -> EmulatorServer:
        """Bind and serve in a daemon thread; returns self. Raises OSError if the port cannot be bound."""
        if self._server is not None:
            return self
        handler = _VerboseRequestHandler if self._verbose else _QuietRequestHandler
        try:
            server = make_server(self.host, self._requested_port, self.app, threaded=True, request_handler=handler)
        except SystemExit as exc:  # werkzeug prints the reason and exits when it cannot bind
            raise OSError(f"SP-API emulator cannot listen on {self.host}:{self._requested_port}") from exc
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # shutdown() waits up to one poll interval
            name=f"sp-api-emulator-{server.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port (in-flight requests finish on their daemon threads)."""
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None:
            return
        server.shutdown()
        if thread is not None:
            thread.join(timeout=5)
        server.server_close()

    def calls(self) -> dict[str, Any]:
        """The call log, as GET /_emulator/calls answers it."""
        return self.state.calls()

    def configure(self, **changes: Any) -> EmulatorOptions:
        """Change options at once (as POST /_emulator/config); returns the new options."""
        return self.state.configure(**changes)

    def reset(self) -> None:
        """Clear the call log, refill the buckets and re-seed the faults (as POST /_emulator/reset)."""
        self.state.reset()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
