"""LWA token endpoint and the access-token check in front of every SP-API call."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from emulator import defaults
from emulator.client import EmulatorClient
from tests.helpers.fake_clock import FakeClock


def test_refresh_token_grant_issues_a_bearer_token(emu: EmulatorClient) -> None:
    response = emu.request_token()
    assert response.status_code == 200
    body = response.json()
    assert body["access_token"].startswith("Atza|") and len(body["access_token"]) > 30
    assert body == {
        "access_token": body["access_token"],
        "refresh_token": defaults.REFRESH_TOKEN,
        "token_type": "bearer",
        "expires_in": 3600,
    }
    assert response.headers["content-type"].startswith("application/json")
    assert emu.request_token().json()["access_token"] != body["access_token"]


@pytest.mark.parametrize(
    ("overrides", "status", "error", "description"),
    [
        ({"client_id": "amzn1.application-oa2-client.other"}, 401, "invalid_client", "Client authentication failed"),
        ({"client_secret": "wrong"}, 401, "invalid_client", "Client authentication failed"),
        ({"refresh_token": "Atzr|wrong"}, 400, "invalid_grant", "The request has an invalid grant parameter : refresh_token"),
        ({"refresh_token": None}, 400, "invalid_request", "The request is missing a required parameter : refresh_token"),
        ({"client_secret": None}, 400, "invalid_request", "The request is missing a required parameter : client_secret"),
        ({"grant_type": None}, 400, "invalid_request", "The request is missing a required parameter : grant_type"),
        (
            {"grant_type": "client_credentials"},
            400,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server",
        ),
    ],
)
def test_lwa_errors(emu: EmulatorClient, overrides: dict[str, str | None], status: int, error: str, description: str) -> None:
    response = emu.request_token(**overrides)
    assert response.status_code == status
    assert response.json() == {"error": error, "error_description": description}


def test_token_calls_are_logged_and_delayed(make_client: Callable[..., EmulatorClient]) -> None:
    emu = make_client(token_delay=0.3)
    assert emu.request_token().status_code == 200
    assert emu.request_token(client_secret="nope").status_code == 401
    log = emu.calls()
    assert log["by_operation"]["lwaToken"] == {"200": 1, "401": 1}
    assert [c["operation"] for c in log["calls"]] == ["lwaToken", "lwaToken"]
    assert log["calls"][0]["marketplace_id"] is None and log["calls"][0]["asins"] == []
    # The client sent its second request only once the first was answered: that answer was held token_delay.
    assert log["calls"][1]["time"] - log["calls"][0]["time"] >= 0.3


def _unauthorized(details: str) -> dict[str, object]:
    return {"errors": [{"code": "Unauthorized", "message": "Access to requested resource is denied.", "details": details}]}


@pytest.mark.parametrize("token", ["", "Atza|not-issued-by-this-emulator"])
def test_missing_or_unknown_token_is_403(emu: EmulatorClient, token: str) -> None:
    response = emu.get_catalog_item("B07N4M94X4", token=token)
    assert response.status_code == 403
    assert response.json() == _unauthorized("The access token you provided is revoked, malformed or invalid.")
    assert response.headers["x-amzn-RequestId"]
    search = emu.search_catalog_items(identifiers="B07N4M94X4", identifiersType="ASIN", token=token)
    assert search.status_code == 403


def test_expired_token_is_403_with_expired_details(make_client: Callable[..., EmulatorClient]) -> None:
    emu = make_client(token_ttl=0)  # expires the moment it is issued: no waiting
    token = emu.request_token().json()
    assert token["expires_in"] == 0
    response = emu.get_catalog_item("B07N4M94X4", token=token["access_token"])
    assert response.status_code == 403
    assert response.json() == _unauthorized("The access token you provided has expired.")


def test_a_token_is_accepted_until_its_ttl_has_passed_on_the_emulators_clock(make_client: Callable[..., EmulatorClient]) -> None:
    clock = FakeClock()
    emu = make_client(clock=clock, rate=1000.0, burst=1000, token_ttl=60)
    token = emu.request_token().json()
    assert token["expires_in"] == 60
    clock.advance(59.5)
    assert emu.get_catalog_item("B07N4M94X4", token=token["access_token"]).status_code == 200
    clock.advance(0.5)
    response = emu.get_catalog_item("B07N4M94X4", token=token["access_token"])
    assert response.status_code == 403
    assert response.json() == _unauthorized("The access token you provided has expired.")
    fresh = emu.request_token().json()["access_token"]  # a new token lives its own 60 s from now
    assert emu.get_catalog_item("B07N4M94X4", token=fresh).status_code == 200


def test_403_comes_before_the_usage_plan(make_client: Callable[..., EmulatorClient]) -> None:
    emu = make_client(rate=0.0, burst=1)
    for _ in range(3):
        assert emu.get_catalog_item("B07N4M94X4", token="bad").status_code == 403
    assert emu.get_catalog_item("B07N4M94X4").status_code == 200  # the one bucket token is still there
    assert emu.calls()["by_operation"]["getCatalogItem"] == {"403": 3, "200": 1}
