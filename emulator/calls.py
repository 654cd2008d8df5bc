"""One SP-API call as the emulator answers it, whatever the operation: access token, usage plan, faults, validation, answer.

Every operation's route hands `answer_call` what its call log entry says (operation, the ASINs or
identifiers asked, the marketplace) and a function that validates the request and works out the
answer; the order of checks, the error bodies, the headers and the call log are the same for all.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Response, jsonify, request

from emulator.params import InvalidInput
from emulator.state import EmulatorState

# The request flag that makes the app close the connection without any answer (app._DropMiddleware).
DROP_KEY = "emulator.drop_connection"

# Error bodies as SP-API sends them (the models' ErrorList schema).
UNAUTHORIZED_DETAILS = {
    "invalid": "The access token you provided is revoked, malformed or invalid.",
    "expired": "The access token you provided has expired.",
}
QUOTA_EXCEEDED = ("QuotaExceeded", "You exceeded your quota for the requested resource.")
FAULTS = {
    500: ("InternalFailure", "We encountered an internal error. Please try again."),
    502: ("BadGateway", "Bad gateway. Please try again."),
    503: ("ServiceUnavailable", "Service temporarily unavailable. Please try again."),
    504: ("GatewayTimeout", "The request timed out. Please try again."),
    429: QUOTA_EXCEEDED,
}


def error_list(code: str, message: str, details: str = "") -> dict[str, Any]:
    """An SP-API ErrorList body with one error."""
    return {"errors": [{"code": code, "message": message, "details": details}]}


@dataclass(frozen=True)
class Call:
    """What the call log records of one call: its operation, the ASINs (or identifiers) asked, the marketplace."""

    operation: str
    asins: list[str] = field(default_factory=list)
    marketplace_id: str | None = None
    identifiers_type: str | None = None


# Validates the request and answers it: (status, body); raises InvalidInput for a 400. The body is
# a JSON object, or an array where the model says so (getMyFeesEstimates answers a bare array).
Answer = Callable[[], tuple[int, dict[str, Any] | list[Any]]]


def answer_call(state: EmulatorState, call: Call, answer: Answer) -> Response:
    """One SP-API call: access token (403), usage plan (429), faults (drop, 5xx, slow), validation (400), answer."""
    arrived = time.time()
    arrived_on_the_bucket_clock = state.now()
    request_id = str(uuid.uuid4())
    options = state.options

    def finish(status: int | str, body: dict[str, Any] | list[Any] | None, delay: float = 0.0) -> Response:
        # Logged before any delay so the log shows calls whose clients gave up waiting.
        state.record(
            arrived=arrived,
            operation=call.operation,
            status=status,
            asins=call.asins,
            marketplace_id=call.marketplace_id,
            request_id=request_id,
            identifiers_type=call.identifiers_type,
        )
        delay += options.latency_ms / 1000
        if delay > 0:
            time.sleep(delay)
        if body is None:  # dropped: the middleware closes the socket, nothing is sent
            request.environ[DROP_KEY] = True
            return Response(status=500)
        response = jsonify(body)
        response.status_code = int(status)
        response.headers["x-amzn-RequestId"] = request_id
        response.headers["x-amzn-RateLimit-Limit"] = options.limit_header_of(call.operation)
        return response

    problem = state.token_problem(request.headers.get("x-amz-access-token"))
    if problem is not None:
        return finish(403, error_list("Unauthorized", "Access to requested resource is denied.", UNAUTHORIZED_DETAILS[problem]))
    if not state.admit(call.operation, arrived_on_the_bucket_clock):
        return finish(429, error_list(*QUOTA_EXCEEDED))
    faults = state.draw_faults()
    if faults.drop:
        return finish("dropped", None)
    if faults.status is not None:
        code, message = FAULTS.get(faults.status, FAULTS[500])
        return finish(faults.status, error_list(code, message))
    # A slow call is answered normally, slow_seconds late (the answer is worked out first so the
    # call is logged when it arrives, like every other).
    delay = options.slow_seconds if faults.slow else 0.0
    try:
        status, body = answer()
    except InvalidInput as exc:
        return finish(400, error_list("InvalidInput", exc.message), delay)
    return finish(status, body, delay)
