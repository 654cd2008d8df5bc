"""The limiter's last look is at the wire: a call held up between admission and sending gives its slot back.

Through real HTTP to the emulator at the real plan (2 requests/s, burst 2, 429 beyond), whose call
log is the judge. What holds the call up here is a pause after admission, standing in for what does
on a busy machine: the HTTP client's own work and, on a new connection, the connect.
"""

from __future__ import annotations

import logging
import time

import utils.rate_limit.limiter as limiter_module
from tests.helpers.data import synthetic_asins
from tests.helpers.emulator_log import operation_calls, worst_overrun


def held_up_after_admission(app, seconds: float) -> None:
    """Pause the app's first SP-API call for `seconds` once the limiter has admitted it."""
    limiter = app.extensions["limiter"]
    admit = limiter.admit
    calls = []

    def admit_then_pause(key: str, max_wait: float) -> limiter_module.Admission:
        admission = admit(key, max_wait)
        calls.append(key)
        if len(calls) == 1:
            time.sleep(seconds)
        return admission

    limiter.admit = admit_then_pause


def arrivals(emulator) -> list[dict]:
    return operation_calls(emulator, "getCatalogItem")


def test_a_call_held_up_after_admission_gives_its_slot_back_at_the_wire(make_app, emulator, caplog):
    caplog.set_level(logging.INFO, logger="utils.rate_limit")
    app = make_app()
    client = app.test_client()
    held_up_after_admission(app, 0.12)
    for asin in synthetic_asins(3):
        assert client.get(f"/asin/{asin}").get_json()["success"] is True
    calls = arrivals(emulator)
    # Three calls, none refused: the first went 120 ms late on a new slot, not on the one it was late for.
    assert [c["status"] for c in calls] == [200, 200, 200]
    assert worst_overrun([c["time"] for c in calls], rate=2.0, burst=2) <= 2.0 * 0.020
    assert "SP-API slot for NA/getCatalogItem given back: the call would leave" in caplog.text


def test_sent_on_the_slot_it_was_late_for_the_third_call_is_refused(make_app, emulator, monkeypatch):
    # The control: allow any lateness, and SP-API's bucket, full while the first call was held up,
    # has no token left for the third, sent on time 0.53 s after the late first one's slot.
    monkeypatch.setattr(limiter_module, "LATE_SHARE", 1e9)
    app = make_app(max_retries=0)
    client = app.test_client()
    held_up_after_admission(app, 0.12)
    bodies = [client.get(f"/asin/{asin}").get_json() for asin in synthetic_asins(3)]
    assert [c["status"] for c in arrivals(emulator)] == [200, 200, 429]
    assert bodies[2]["error"]["code"] == "THROTTLED"
