"""Log lines: text for a terminal (the default) or one JSON object per line, each with the request id.

The request id lives in a ContextVar: set for each request, copied into the batch pool's threads
(see AsinService), and added to every record by RequestIdFilter.
"""

from __future__ import annotations

import contextvars
import logging

from pythonjsonlogger.json import JsonFormatter

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


class RequestIdFilter(logging.Filter):
    """Puts the current request's id (or None outside a request) on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add `request_id`; keep the record."""
        record.request_id = REQUEST_ID.get()
        return True


def formatter(log_format: str) -> logging.Formatter:
    """The formatter for LOG_FORMAT `text` or `json`."""
    if log_format == "json":
        return JsonFormatter(
            "%(asctime)s %(levelname)s %(process)d %(name)s %(message)s %(request_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "process": "pid", "name": "logger"},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )
    return logging.Formatter(TEXT_FORMAT)
