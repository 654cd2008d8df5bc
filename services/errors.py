"""The service's failures: one error type (a code and a message), the codes, and the one failure policy.

Services raise `ServiceError`; routes/errors.py alone turns a code into an HTTP status. The policy
below answers, for every part of the service (SP-API retries, the circuit breaker, /health, the job
runner and `flask asin batch`), the three questions a failure raises: is it transient (ask again
later), is it the item's own answer (store it, write it), and does it degrade health.
"""

from __future__ import annotations

from typing import Any

# -- codes of a lookup entry's error ---------------------------------------------------------------
INVALID_ASIN = "INVALID_ASIN"
INVALID_COUNTRY = "INVALID_COUNTRY"
# A UPC/EAN/GTIN/ISBN/JAN with a wrong length or check digit, or an identifier type we do not resolve.
INVALID_IDENTIFIER = "INVALID_IDENTIFIER"
NOT_FOUND = "NOT_FOUND"
THROTTLED = "THROTTLED"
TIMEOUT = "TIMEOUT"
# SP-API failed: 5xx after the retries, an answer the service could not read, or a failure inside the service.
UPSTREAM_ERROR = "UPSTREAM_ERROR"
# SP-API refused the request itself (400 InvalidInput and other 4xx but 403, 404 and 429): asking again changes nothing.
UPSTREAM_REJECTED = "UPSTREAM_REJECTED"
# SP-API unreachable after the retries (refused, reset, DNS), or its region's circuit is open.
UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
AUTH_FAILED = "AUTH_FAILED"
# Every code a lookup entry's error may carry.
ENTRY_CODES = (
    INVALID_ASIN,
    INVALID_COUNTRY,
    INVALID_IDENTIFIER,
    NOT_FOUND,
    THROTTLED,
    TIMEOUT,
    UPSTREAM_ERROR,
    UPSTREAM_REJECTED,
    UPSTREAM_UNAVAILABLE,
    AUTH_FAILED,
)

# -- codes of a dataset's error inside an entry (fees, restrictions, eligibility), beside ENTRY_CODES ---
# Listings Restrictions needs the seller's merchant token: SELLER_ID is not set (live mode).
SELLER_ID_MISSING = "SELLER_ID_MISSING"
# Fees need a price: none was given, and SP-API shows no Buy Box (nor, when offers were asked, any offer).
NO_PRICE = "NO_PRICE"

# -- codes of a supplier row a scan cannot read (its cost or its case pack), beside INVALID_IDENTIFIER ---
INVALID_COST = "INVALID_COST"
INVALID_PACK = "INVALID_PACK"

# -- codes of a request refused as a whole ---------------------------------------------------------
INVALID_REQUEST = "INVALID_REQUEST"
BATCH_TOO_LARGE = "BATCH_TOO_LARGE"
UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
UNAUTHORIZED = "UNAUTHORIZED"
TOO_MANY_REQUESTS = "TOO_MANY_REQUESTS"
INVALID_CSV = "INVALID_CSV"
EMPTY_JOB = "EMPTY_JOB"
JOB_TOO_LARGE = "JOB_TOO_LARGE"
JOB_NOT_FOUND = "JOB_NOT_FOUND"
JOB_FINISHED = "JOB_FINISHED"
# The job store cannot be read or written (DATA_DIR unwritable, disk full, Redis down).
JOBS_UNAVAILABLE = "JOBS_UNAVAILABLE"
INTERNAL_ERROR = "INTERNAL_ERROR"


class ServiceError(Exception):
    """A failure with one of the codes above and a message for the client; `retry_after` seconds when asking again helps."""

    def __init__(self, code: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after

    def as_error(self) -> dict[str, Any]:
        """The `error` object of a failed entry (with `retry_after_seconds` when known)."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.retry_after is not None:
            error["retry_after_seconds"] = round(self.retry_after, 1)
        return error


# -- the failure policy ----------------------------------------------------------------------------

# The quota, SP-API or the network failed, not the item: worth asking again (SP-API calls are retried
# with backoff; a job or `flask asin batch` asks again later rather than keep the error).
_TRANSIENT = frozenset({THROTTLED, TIMEOUT, UPSTREAM_ERROR, UPSTREAM_UNAVAILABLE})
# What SP-API said about the item itself (or what the service knows without asking): the answer to keep.
_ITEM_ANSWERS = frozenset({NOT_FOUND, INVALID_ASIN, INVALID_IDENTIFIER, UPSTREAM_REJECTED, INVALID_COST, INVALID_PACK})
# SP-API down or broken (not saying no): counts towards opening a region's circuit.
_OUTAGES = frozenset({TIMEOUT, UPSTREAM_ERROR, UPSTREAM_UNAVAILABLE})
# After the retries: SP-API is not serving us, /health says degraded.
_DEGRADING = _TRANSIENT | {AUTH_FAILED}


def is_transient(code: str) -> bool:
    """True when a failure with `code` says nothing about the item: ask again later."""
    return code in _TRANSIENT


def is_item_answer(code: str) -> bool:
    """True when a failure with `code` is the item's own answer (no such item, not a valid ASIN or code, refused by SP-API)."""
    return code in _ITEM_ANSWERS


def is_outage(code: str) -> bool:
    """True when a failure with `code` says SP-API is down or broken, not that it said no."""
    return code in _OUTAGES


def degrades_health(code: str) -> bool:
    """True when the latest SP-API outcome with `code` makes /health say degraded."""
    return code in _DEGRADING
