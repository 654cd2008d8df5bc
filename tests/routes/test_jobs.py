"""Batch jobs through the API: submit (JSON, CSV body, multipart), watch, read results while running and after, cancel."""

from __future__ import annotations

import codecs
import csv
import io
import json
import threading
import time

import pytest

from tests.helpers.data import synthetic_asins
from tests.helpers.emulator_log import calls_by_status, operation_calls
from tests.helpers.metrics_scrape import delta, parse, series

# A fast plan for the emulator and the service alike, so thousands of items take seconds.
FAST = {"sp_api_rate": 50.0, "sp_api_burst": 10}


def wait_until(client, job_id: str, done: callable, timeout: float = 120.0) -> dict:
    """Poll the job until `done(view)`; the last view."""
    deadline = time.monotonic() + timeout
    while True:
        view = client.get(f"/jobs/{job_id}").get_json()
        if done(view) or time.monotonic() > deadline:
            return view
        time.sleep(0.05)


@pytest.fixture
def fast(emulator):
    emulator.configure(rate=FAST["sp_api_rate"], burst=FAST["sp_api_burst"])
    return emulator


def test_a_5000_asin_job_answers_every_item_once_in_order(make_app, fast):
    app = make_app(**FAST)
    client = app.test_client()
    asins = synthetic_asins(5000)
    submitted = client.post("/jobs/US", json={"asins": asins})
    assert submitted.status_code == 202
    job = submitted.get_json()
    assert submitted.headers["Location"] == f"/jobs/{job['id']}" and job["status"] == "queued"
    assert job["counts"]["total"] == 5000

    app.extensions["jobs"].start()
    # Partial results while it runs: the items answered so far, a prefix of the list, in order.
    running = wait_until(client, job["id"], lambda v: 0 < v["counts"]["done"] < 5000 or v["status"] == "done")
    assert running["status"] == "running", "the job finished before it could be watched"
    partial = client.get(f"/jobs/{job['id']}/results?format=ndjson").get_data(as_text=True).splitlines()
    assert running["counts"]["done"] <= len(partial) < 5000
    assert [json.loads(line)["input"] for line in partial] == asins[: len(partial)]
    assert running["asins_per_second"] > 0 and running["eta_seconds"] > 0

    done = wait_until(client, job["id"], lambda v: v["status"] == "done")
    assert done["status"] == "done" and done["counts"] == {
        "total": 5000,
        "done": 5000,
        "succeeded": 5000,
        "failed": 0,
        "cached": 0,
        "pending": 0,
    }
    assert done["progress_percent"] == 100.0

    results = client.get(f"/jobs/{job['id']}/results").get_json()
    assert results["job"]["id"] == job["id"]
    assert [entry["asin"] for entry in results["results"]] == asins
    assert all(entry["success"] and entry["Title"] for entry in results["results"])

    lines = client.get(f"/jobs/{job['id']}/results", headers={"Accept": "application/x-ndjson"}).get_data(as_text=True).splitlines()
    assert [json.loads(line)["asin"] for line in lines] == asins

    response = client.get(f"/jobs/{job['id']}/results?format=csv")
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [row["input"] for row in rows] == asins and rows[0]["asin"] == asins[0] and rows[0]["title"]
    # Every ASIN looked up once: 5000 / 20 per searchCatalogItems call.
    assert calls_by_status(fast, "searchCatalogItems") == {"200": 250}


def test_a_csv_body_with_bom_and_semicolons_becomes_a_job(make_app, fast):
    app = make_app(**FAST)
    client = app.test_client()
    body = codecs.BOM_UTF8 + b'Supplier;ASIN;Price\n"Acme; Ltd";B07N4M94X4;9,99\n\nAcme;B0TEST0001;1\n'
    submitted = client.post("/jobs/US", data=body, content_type="text/csv")
    assert submitted.status_code == 202, submitted.get_json()
    job = submitted.get_json()
    assert job["identifier_type"] == "ASIN" and job["counts"]["total"] == 2 and "ASIN" in job["source"]
    app.extensions["jobs"].runner.run_once()
    rows = list(csv.DictReader(io.StringIO(client.get(f"/jobs/{job['id']}/results?format=csv").get_data(as_text=True))))
    assert [row["asin"] for row in rows] == ["B07N4M94X4", "B0TEST0001"] and rows[0]["success"] == "true"


def test_a_multipart_upload_of_upcs_resolves_to_asins(make_app, fast):
    app = make_app(**FAST)
    client = app.test_client()
    upload = io.BytesIO(b"upc,description\n887276302195,Sandbox kitchen item\n887276302194,bad check digit\n")
    submitted = client.post("/jobs/US", data={"file": (upload, "supplier.csv")}, content_type="multipart/form-data")
    assert submitted.status_code == 202, submitted.get_json()
    job = submitted.get_json()
    assert job["identifier_type"] == "UPC" and job["counts"]["total"] == 2
    app.extensions["jobs"].runner.run_once()
    results = client.get(f"/jobs/{job['id']}/results").get_json()["results"]
    assert results[0]["success"] and results[0]["asin"] == "B07N4M94X4" and results[0]["input"] == "887276302195"
    assert results[1]["error"]["code"] == "INVALID_IDENTIFIER"
    assert client.get(f"/jobs/{job['id']}").get_json()["counts"]["failed"] == 1


def test_jobs_and_their_items_are_counted_in_metrics(make_app, fast):
    app = make_app(**FAST)
    client = app.test_client()

    def scrape() -> dict:
        return parse(client.get("/metrics").get_data(as_text=True))

    before = scrape()
    job_id = client.post("/jobs/US", json={"asins": ["B07N4M94X4", "NF00000001", "B07N4M94X4"]}).get_json()["id"]
    app.extensions["jobs"].runner.run_once()
    client.delete(f"/jobs/{client.post('/jobs/US', json={'asins': ['B0TEST0001']}).get_json()['id']}")
    after = scrape()
    assert client.get(f"/jobs/{job_id}").get_json()["status"] == "done"
    assert delta(series(before, "fba_jobs_total", "event"), series(after, "fba_jobs_total", "event")) == {
        ("created",): 2,
        ("done",): 1,
        ("cancelled",): 1,
    }
    assert delta(series(before, "fba_job_items_total", "result"), series(after, "fba_job_items_total", "result")) == {
        ("succeeded",): 2,
        ("failed",): 1,
    }


@pytest.mark.parametrize(("query", "expected"), [("", "UPC"), ("?identifier_type=asin", "ASIN"), ("?identifier_type=EAN", "EAN")])
def test_identifier_type_in_the_query_overrides_the_csv_header(client, query, expected):
    submitted = client.post(f"/jobs/US{query}", data="upc\nB07N4M94X4\n", content_type="text/csv")
    assert submitted.status_code == 202 and submitted.get_json()["identifier_type"] == expected


def test_a_job_of_identifiers_by_json(make_app, fast):
    app = make_app(**FAST)
    client = app.test_client()
    submitted = client.post("/jobs/US", json={"identifiers": ["887276302195"], "identifier_type": "upc"})
    assert submitted.status_code == 202 and submitted.get_json()["identifier_type"] == "UPC"
    app.extensions["jobs"].runner.run_once()
    (entry,) = client.get(f"/jobs/{submitted.get_json()['id']}/results").get_json()["results"]
    assert entry["asin"] == "B07N4M94X4"


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"json": {"asins": []}}, 400, "EMPTY_JOB"),
        ({"json": {"asins": ["B07N4M94X4"], "identifiers": ["1"]}}, 400, "INVALID_REQUEST"),
        ({"json": {"identifiers": ["887276302195"], "identifier_type": "SKU?"}}, 400, "INVALID_IDENTIFIER"),
        ({"json": {"asins": "B07N4M94X4"}}, 400, "INVALID_REQUEST"),
        ({"data": b"asin\nB07N4M94X4\n\xff\xfe\n", "content_type": "text/csv"}, 400, "INVALID_CSV"),
        ({"data": b"", "content_type": "text/csv"}, 400, "INVALID_CSV"),
        ({"data": b"<xml/>", "content_type": "application/xml"}, 415, "UNSUPPORTED_MEDIA_TYPE"),
    ],
)
def test_bad_job_requests_get_a_clear_json_error_and_leave_no_job(client, kwargs, status, code):
    response = client.post("/jobs/US", **kwargs)
    assert response.status_code == status and response.get_json()["error"]["code"] == code
    assert client.get("/jobs").get_json()["jobs"] == []


def test_a_job_over_max_job_size_gets_413(make_app):
    client = make_app(max_job_size=100).test_client()
    response = client.post("/jobs/US", data="asin\n" + "\n".join(synthetic_asins(101)), content_type="text/csv")
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "JOB_TOO_LARGE"
    assert client.get("/jobs").get_json()["jobs"] == []


def test_an_upload_over_max_upload_size_gets_413_but_a_big_one_under_it_is_taken(make_app):
    client = make_app(max_upload_size=20_000, max_content_length=2048).test_client()
    small_enough = "asin,notes\n" + "\n".join(f"{a},{'x' * 100}" for a in synthetic_asins(150))  # ~17 KB > MAX_CONTENT_LENGTH
    assert client.post("/jobs/US", data=small_enough, content_type="text/csv").status_code == 202
    too_big = "asin,notes\n" + "\n".join(f"{a},{'x' * 100}" for a in synthetic_asins(200))
    response = client.post("/jobs/US", data=too_big, content_type="text/csv")
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert len(client.get("/jobs").get_json()["jobs"]) == 1


def test_cancel_a_queued_job(client):
    job = client.post("/jobs/US", json={"asins": synthetic_asins(3)}).get_json()
    cancelled = client.delete(f"/jobs/{job['id']}")
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    again = client.delete(f"/jobs/{job['id']}")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "JOB_FINISHED"
    assert client.get(f"/jobs/{job['id']}/results").get_json()["results"] == []


def test_cancel_a_running_job_stops_it_and_keeps_what_was_answered(make_app, fast):
    app = make_app(**FAST)  # 50 calls/s: 5,000 ASINs (250 calls) would take ~5 s if nothing stopped them
    client = app.test_client()
    job = client.post("/jobs/US", json={"asins": synthetic_asins(5000)}).get_json()
    # The runner's claim-and-run in a thread of the test's own: it returns once the runner leaves the job by itself.
    running = threading.Thread(target=app.extensions["jobs"].runner.run_once)
    running.start()
    wait_until(client, job["id"], lambda v: v["counts"]["done"] > 0)
    assert client.delete(f"/jobs/{job['id']}").get_json()["status"] == "cancelled"
    calls_at_cancel = len(operation_calls(fast, "searchCatalogItems"))
    running.join(60)
    assert not running.is_alive()
    # At most the step in flight (100 ASINs: 5 calls) goes out after the cancel; one that ignored it would make 245 more.
    assert len(operation_calls(fast, "searchCatalogItems")) <= calls_at_cancel + 5
    view = client.get(f"/jobs/{job['id']}").get_json()
    assert view["status"] == "cancelled" and 0 < view["counts"]["done"] < 5000
    assert len(client.get(f"/jobs/{job['id']}/results").get_json()["results"]) == view["counts"]["done"]


def test_unknown_jobs_and_countries(client):
    missing = client.get("/jobs/0123456789abcdef")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "JOB_NOT_FOUND"
    assert client.delete("/jobs/nope").status_code == 404
    assert client.get("/jobs/nope/results").status_code == 404
    bad = client.post("/jobs/XX", json={"asins": ["B07N4M94X4"]})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "INVALID_COUNTRY"
    assert client.get("/jobs?limit=0").status_code == 400


def test_jobs_are_listed_newest_first(client):
    first = client.post("/jobs/US", json={"asins": ["B07N4M94X4"]}).get_json()["id"]
    second = client.post("/jobs/DE", json={"asins": ["B07N4M94X4"]}).get_json()["id"]
    listed = client.get("/jobs").get_json()["jobs"]
    assert [j["id"] for j in listed] == [second, first] and listed[0]["country"] == "DE"


def test_health_shows_the_job_store_and_waiting_jobs(client):
    client.post("/jobs/US", json={"asins": ["B07N4M94X4"]})
    jobs = client.get("/health").get_json()["jobs"]
    assert jobs["backend"] == "sqlite" and jobs["location"].endswith("jobs.sqlite")
    assert (jobs["store_ok"], jobs["queued"], jobs["running"]) == (True, 1, 0)


def test_an_unwritable_data_dir_answers_503_for_jobs_and_lookups_still_work(make_app, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("DATA_DIR cannot be created below a file")
    client = make_app(data_dir=str(blocker / "data")).test_client()
    refused = client.post("/jobs/US", json={"asins": ["B07N4M94X4"]})
    assert refused.status_code == 503 and refused.get_json()["error"]["code"] == "JOBS_UNAVAILABLE"
    assert client.get("/jobs").status_code == 503
    assert client.get("/health").get_json()["jobs"]["store_ok"] is False
    assert client.get("/asin/B07N4M94X4").get_json()["success"] is True
