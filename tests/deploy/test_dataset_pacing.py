"""Four gunicorn workers, four clients asking for every dataset at once, at the models' real usage plans.

The emulator (a process of its own, each pricing, fees, restrictions and eligibility operation at its
model's plan) is the judge: it answers 429 whenever a bucket is exceeded, and the arrival times in its
call log are replayed against each plan here.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from emulator.plans import MODEL_PLANS
from tests.helpers.emulator_log import assert_within_plan
from tests.helpers.service import EmulatorProcess, serve_shared_by_four, stop, workers_that_served

CLIENTS = 4
DATASETS = ("Pricing", "Offers", "Fees", "Restrictions", "Eligibility")


def client(url: str, n: int) -> list[tuple[int, dict[str, Any]]]:
    """One client: a batch of 10 ASINs with pricing, fees and restrictions, then two single lookups with offers and eligibility."""
    answers = []
    # A new connection per request (Connection: close), so the requests spread over the workers.
    with httpx.Client(base_url=url, timeout=90, headers={"Connection": "close"}) as http:
        asins = [f"B0D{n}{i:06d}" for i in range(10)]
        response = http.post("/asin/batch/US", json={"asins": asins, "include": ["pricing", "fees", "restrictions"]})
        answers += [(response.status_code, entry) for entry in response.json()["results"]]
        for i in range(2):
            response = http.get(f"/asin/B0E{n}{i:06d}?include=offers,eligibility")
            answers.append((response.status_code, response.json()))
    return answers


def test_four_workers_keep_every_dataset_operation_within_its_plan(tmp_path):
    emulator = EmulatorProcess()
    try:
        url, proc = serve_shared_by_four(emulator.url, tmp_path / "data")
        try:
            with ThreadPoolExecutor(CLIENTS) as pool:
                answers = [answer for answers in pool.map(lambda n: client(url, n), range(CLIENTS)) for answer in answers]
        finally:
            output = stop(proc)
        assert len(workers_that_served(output, "/asin")) >= 2, "the test means nothing if one worker served everything"
        assert [status for status, _ in answers] == [200] * len(answers), output[-3000:]
        failed = [(entry["asin"], key, entry[key]["error"]) for _, entry in answers for key in DATASETS if "error" in entry.get(key, {})]
        # A fee without a price (no Buy Box) is the item's answer, not the pacing's failure.
        assert [f for f in failed if f[2]["code"] != "NO_PRICE"] == []
        logged = {operation: emulator.calls(operation) for operation in MODEL_PLANS}
        # Each ASIN asked once per dataset; a worker's queue may carry two clients' asks in one call.
        asked = {operation: sorted(asin for call in calls for asin in call["asins"]) for operation, calls in logged.items()}
        batches = sorted(f"B0D{n}{i:06d}" for n in range(CLIENTS) for i in range(10))
        singles = sorted(f"B0E{n}{i:06d}" for n in range(CLIENTS) for i in range(2))
        timeline = [(c["asins"][0][-7:], c["status"], round(c["time"] % 100, 3)) for c in logged["getListingsRestrictions"]]
        assert asked["getCompetitivePricing"] == asked["getListingsRestrictions"] == batches, str(timeline)
        assert sorted(asked["getItemOffers"] + asked["getItemOffersBatch"]) == asked["getItemEligibilityPreview"] == singles
        for operation, calls in logged.items():
            assert_within_plan(calls, MODEL_PLANS[operation].rate, MODEL_PLANS[operation].burst, operation)
    finally:
        emulator.stop()
