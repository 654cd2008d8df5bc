"""The service's own small set of failures, each with its error code and HTTP status."""

from __future__ import annotations

INVALID_ASIN = "INVALID_ASIN"
INVALID_COUNTRY = "INVALID_COUNTRY"
# A UPC/EAN/GTIN/ISBN/JAN with a wrong length or check digit, or an identifier type we do not resolve.
INVALID_IDENTIFIER = "INVALID_IDENTIFIER"
NOT_FOUND = "NOT_FOUND"
THROTTLED = "THROTTLED"
TIMEOUT = "TIMEOUT"
UPSTREAM_ERROR = "UPSTREAM_ERROR"
# SP-API unreachable after the retries (refused, reset, DNS), or its region's circuit is open.
UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
AUTH_FAILED = "AUTH_FAILED"

# HTTP status of a single-ASIN answer that failed with this code.
STATUS_BY_CODE = {
    INVALID_ASIN: 400,
    INVALID_COUNTRY: 400,
    INVALID_IDENTIFIER: 400,
    NOT_FOUND: 404,
    THROTTLED: 503,
    TIMEOUT: 504,
    UPSTREAM_ERROR: 502,
    UPSTREAM_UNAVAILABLE: 503,
    AUTH_FAILED: 502,
}


class LookupFailure(Exception):
    """A lookup that failed with one of the service's error codes."""

    def __init__(self, code: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after

    @property
    def status(self) -> int:
        """The HTTP status a single-ASIN request answers with."""
        return STATUS_BY_CODE.get(self.code, 502)

    def as_error(self) -> dict[str, str]:
        """The `error` object of a failed entry."""
        return {"code": self.code, "message": self.message}
