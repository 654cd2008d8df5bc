"""Times as the API writes them: ISO 8601 in UTC to the second, e.g. 2026-12-01T10:42:00Z."""

from __future__ import annotations

import time
from datetime import UTC, datetime

ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def iso_utc(timestamp: float | None) -> str | None:
    """`timestamp` (seconds since the epoch) as ISO 8601 UTC, or None for None."""
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).strftime(ISO_FORMAT)


def now_iso() -> str:
    """Now, as ISO 8601 UTC."""
    return datetime.fromtimestamp(time.time(), UTC).strftime(ISO_FORMAT)
