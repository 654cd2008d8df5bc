"""/health and /config."""

from __future__ import annotations

import dataclasses

from config import Settings


def test_health_in_emulator_mode(client):
    body = client.get("/health").get_json()
    assert body["status"] == "ok" and body["mode"] == "emulator"
    assert body["version"] and body["uptime_seconds"] >= 0
    assert body["sp_api"]["last_success"] is None and body["sp_api"]["last_failure"] is None
    client.get("/asin/B07N4M94X4")
    last = client.get("/health").get_json()["sp_api"]["last_success"]
    assert last["operation"] == "getCatalogItem" and last["at"].endswith("Z")


def test_config_shows_every_setting_and_hides_secrets(make_app, emulator):
    secret, token = "amzn1.oa2-cs.v1.super-secret-value", "Atzr|IwEBIthe-refresh-token"
    client = make_app(lwa_app_id="amzn1.application-oa2-client.abc", lwa_client_secret=secret, sp_api_refresh_token=token).test_client()
    response = client.get("/config")
    text = response.get_data(as_text=True)
    assert secret not in text and token not in text and "amzn1.application-oa2-client.abc" not in text
    body = response.get_json()
    settings = body["settings"]
    assert {f.name.upper() for f in dataclasses.fields(Settings)} <= set(settings)
    assert settings["LWA_CLIENT_SECRET"] == "set" and settings["SP_API_REFRESH_TOKEN"] == "set"
    assert settings["RATE_LIMIT_CALLS"] == 1000 and settings["MAX_BATCH_SIZE"] == 100
    assert body["mode"] == "live" and body["sp_api_endpoint"] == emulator.url


def test_config_in_emulator_mode_says_so(client):
    body = client.get("/config").get_json()
    assert body["mode"] == "emulator"
    assert body["settings"]["LWA_CLIENT_SECRET"] == "not set"
