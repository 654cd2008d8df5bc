"""API keys and their quota, input limits, security headers, CORS, request ids and JSON log lines."""

from __future__ import annotations

import io
import json
import logging

import pytest

from utils.api_keys import digest

KEY = "fba-test-key-0123456789abcdef"
OTHER_KEY = "fba-other-key-0123456789abcdef"


@pytest.fixture
def keyed(make_app):
    return make_app(api_keys=(KEY, OTHER_KEY)).test_client()


def test_without_a_valid_key_only_health_answers(keyed, caplog):
    missing = keyed.get("/asin/B07N4M94X4")
    assert missing.status_code == 401 and missing.get_json()["error"]["code"] == "UNAUTHORIZED"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = keyed.get("/config", headers={"Authorization": "Bearer " + KEY[:-1] + "X"})
    assert wrong.status_code == 401
    assert keyed.post("/asin/batch/US", json={"asins": ["B07N4M94X4"]}, headers={"X-API-Key": "nope"}).status_code == 401
    assert keyed.get("/health").status_code == 200
    # Either header works, and the key shows up nowhere.
    assert keyed.get("/asin/B07N4M94X4", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    config = keyed.get("/config", headers={"X-API-Key": OTHER_KEY})
    assert config.status_code == 200 and config.get_json()["settings"]["API_KEYS"] == "2 set"
    assert KEY not in config.get_data(as_text=True) and KEY not in caplog.text


def test_hashed_keys_from_a_file(make_app, tmp_path):
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"# ops team\n{digest(KEY)}\n\nsha256:{digest(OTHER_KEY).upper()}\n")
    client = make_app(api_keys_file=str(keys_file)).test_client()
    assert client.get("/config", headers={"X-API-Key": KEY}).status_code == 200
    assert client.get("/config", headers={"X-API-Key": OTHER_KEY}).status_code == 200
    assert client.get("/config", headers={"X-API-Key": digest(KEY)}).status_code == 401  # the digest is not the key


def test_each_key_has_its_own_quota(make_app):
    client = make_app(api_keys=(KEY, OTHER_KEY), api_key_rate=1).test_client()
    assert client.get("/config", headers={"X-API-Key": KEY}).status_code == 200
    over = client.get("/config", headers={"X-API-Key": KEY})
    assert over.status_code == 429 and over.get_json()["error"]["code"] == "TOO_MANY_REQUESTS"
    assert int(over.headers["Retry-After"]) >= 1
    assert client.get("/config", headers={"X-API-Key": OTHER_KEY}).status_code == 200


def test_live_mode_without_keys_off_loopback_warns_loudly(make_app, caplog):
    make_app(lwa_app_id="a", lwa_client_secret="b" * 8, sp_api_refresh_token="Atzr|c", host="0.0.0.0")
    assert "NO API KEYS" in caplog.text


def test_a_body_over_max_content_length_is_413(make_app):
    client = make_app(max_content_length=2048).test_client()
    response = client.post("/asin/batch/US", json={"asins": ["B07N4M94X4"] * 500})
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_every_response_has_security_headers_and_a_request_id(client):
    for response in (client.get("/health"), client.get("/nowhere"), client.post("/asin/US", data="x")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert len(response.headers["X-Request-ID"]) == 32
    assert client.get("/health", headers={"X-Request-ID": "lb-7f3a.1"}).headers["X-Request-ID"] == "lb-7f3a.1"
    # An id that could forge a log line is replaced.
    forged = 'x" level=ERROR <script>'
    assert client.get("/health", headers={"X-Request-ID": forged}).headers["X-Request-ID"] != forged


def test_cors_is_off_unless_origins_are_set(make_app):
    closed = make_app().test_client().get("/health", headers={"Origin": "https://app.example.com"})
    assert "Access-Control-Allow-Origin" not in closed.headers
    client = make_app(cors_origins=("https://app.example.com",)).test_client()
    allowed = client.get("/health", headers={"Origin": "https://app.example.com"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "Access-Control-Allow-Origin" not in client.get("/health", headers={"Origin": "https://evil.example"}).headers


def test_json_logs_carry_the_request_id_route_and_asin_count(make_app):
    app = make_app(log_format="json")
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_fba_backend", False))
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        body = {"asins": ["B07N4M94X4", "B0TEST0001"]}
        response = app.test_client().post("/asin/batch/US", json=body, headers={"X-Request-ID": "req-42"})
    finally:
        handler.setStream(previous)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert response.headers["X-Request-ID"] == "req-42"
    request_line = next(line for line in lines if line.get("route") == "/asin/batch/<country>")
    assert request_line["request_id"] == "req-42" and request_line["asin_count"] == 2 and request_line["status"] == 200
    assert {"time", "level", "logger", "message", "duration_ms"} <= request_line.keys()
    # The batch's own line, logged from a pool thread, carries the same id.
    batch_line = next(line for line in lines if line["logger"] == "services.asin_service")
    assert batch_line["request_id"] == "req-42"
