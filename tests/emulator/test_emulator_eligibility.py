"""FBA Inbound Eligibility v1 over HTTP: INBOUND and COMMINGLING previews, their shares, the sandbox, 400s, the plan, the log."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from emulator import EmulatorServer, catalog, defaults
from emulator.client import EmulatorClient
from emulator.identifiers import two_asin_upc
from emulator.plans import GET_ITEM_ELIGIBILITY_PREVIEW
from tests.helpers.fake_clock import FakeClock
from tests.helpers.sp_api_library import FAST_PLANS, library_client
from tests.helpers.sp_api_models import load_model, schema_errors

sp_api = pytest.importorskip("sp_api.api")
sp_api_base = pytest.importorskip("sp_api.base")

US = defaults.MARKETPLACES["US"]
DE = defaults.MARKETPLACES["DE"]
PATH = "/fba/inbound/v1/eligibility/itemPreview"
ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
HAZMAT = {"FBA_INB_0008", "FBA_INB_0009", "FBA_INB_0014", "FBA_INB_0016", "FBA_INB_0097"}


@pytest.fixture(scope="module")
def model() -> dict[str, Any]:
    """The official FBA Inbound Eligibility v1 model."""
    return load_model("fbaInbound.json")


def get_preview(emu: EmulatorClient, asin: str | None, program: str | None = "INBOUND", **params: Any) -> httpx.Response:
    """getItemEligibilityPreview, in the US marketplace unless told otherwise (None drops a parameter)."""
    query = {"asin": asin, "program": program, "marketplaceIds": US, **params}
    return emu.http.get(PATH, params={k: v for k, v in query.items() if v is not None}, headers={"x-amz-access-token": emu.token})


def preview(emu: EmulatorClient, asin: str, program: str = "INBOUND", **params: Any) -> dict[str, Any]:
    """The payload of a call that must answer 200."""
    response = get_preview(emu, asin, program, **params)
    assert response.status_code == 200, response.text
    return response.json()["payload"]


def _sample_asins(count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return ["B0" + "".join(rng.choice(ALNUM) for _ in range(8)) for _ in range(count)]


def test_an_eligible_item(emu: EmulatorClient, model: dict[str, Any]) -> None:
    response = get_preview(emu, "B000000001")
    assert response.status_code == 200
    assert response.headers["x-amzn-RateLimit-Limit"] and response.headers["x-amzn-RequestId"]
    body = response.json()
    assert schema_errors(model, "GetItemEligibilityPreviewResponse", body) == []
    assert body == {"payload": {"asin": "B000000001", "marketplaceId": US, "program": "INBOUND", "isEligibleForProgram": True}}


def test_about_12_percent_are_ineligible_for_inbound_mostly_for_hazmat(emu: EmulatorClient, model: dict[str, Any]) -> None:
    enum = set(model["definitions"]["ItemEligibilityPreview"]["properties"]["ineligibilityReasonList"]["items"]["enum"])
    reasons: Counter[str] = Counter()
    ineligible = 0
    asins = _sample_asins(400)
    for asin in asins:
        payload = preview(emu, asin)
        assert payload["asin"] == asin and payload["program"] == "INBOUND" and payload["marketplaceId"] == US
        if payload["isEligibleForProgram"]:
            assert "ineligibilityReasonList" not in payload
            continue
        ineligible += 1
        assert payload["ineligibilityReasonList"] and set(payload["ineligibilityReasonList"]) <= enum
        reasons.update(payload["ineligibilityReasonList"])
    assert 0.07 <= ineligible / len(asins) <= 0.17
    assert sum(n for code, n in reasons.items() if code in HAZMAT) > sum(reasons.values()) / 2
    assert reasons.most_common(1)[0][0] in HAZMAT
    assert "FBA_INB_0004" not in reasons  # "missing package dimensions": every catalog item has them


def test_hazmat_reviews_fit_the_item(emu: EmulatorClient) -> None:
    reviews = {"FBA_INB_0008": "electronics", "FBA_INB_0009": "beauty"}
    seen = set()
    for asin in _sample_asins(600, seed=3):
        payload = preview(emu, asin)
        for code in payload.get("ineligibilityReasonList", []):
            if code in reviews:
                seen.add(code)
                assert catalog.category_key(asin) == reviews[code], (asin, code)
    assert seen == set(reviews)


def test_previews_are_deterministic_per_asin_and_marketplace(emu: EmulatorClient) -> None:
    asins = _sample_asins(150, seed=5)
    us = [preview(emu, asin) for asin in asins]
    assert [preview(emu, asin) for asin in asins] == us
    de = [preview(emu, asin, marketplaceIds=DE) for asin in asins]
    assert [p["marketplaceId"] for p in de] == [DE] * len(asins)
    # Drawn per marketplace: the ineligible items of one are not all those of the other.
    assert [p["isEligibleForProgram"] for p in us] != [p["isEligibleForProgram"] for p in de]


def test_unknown_asins_are_not_in_the_destination_catalog(emu: EmulatorClient) -> None:
    assert preview(emu, "NF00000001") == {
        "asin": "NF00000001",
        "marketplaceId": US,
        "program": "INBOUND",
        "isEligibleForProgram": False,
        "ineligibilityReasonList": ["FBA_INB_0017"],
    }
    assert preview(emu, "B07N4M94X4", marketplaceIds=DE)["ineligibilityReasonList"] == ["FBA_INB_0017"]  # a US-only item
    assert preview(emu, "B07N4M94X4")["asin"] == "B07N4M94X4"


def test_commingling(emu: EmulatorClient, model: dict[str, Any]) -> None:
    # Items that share a UPC (a base item and its bundle) cannot be tracked by that barcode.
    _, (base, bundle) = two_asin_upc(3)
    for asin in (base, bundle):
        payload = preview(emu, asin, "COMMINGLING")
        assert payload["isEligibleForProgram"] is False and payload["ineligibilityReasonList"] == ["FBA_INB_0095"]
    # Without a marketplace (the model requires one for INBOUND only), the payload names none.
    response = get_preview(emu, "B000000001", "COMMINGLING", marketplaceIds=None)
    assert schema_errors(model, "GetItemEligibilityPreviewResponse", response.json()) == []
    assert response.json() == {"payload": {"asin": "B000000001", "program": "COMMINGLING", "isEligibleForProgram": True}}
    asins = _sample_asins(400, seed=9)
    ineligible = [p for p in (preview(emu, asin, "COMMINGLING") for asin in asins) if not p["isEligibleForProgram"]]
    assert 0.01 <= len(ineligible) / len(asins) <= 0.10  # ~5%
    assert {code for p in ineligible for code in p["ineligibilityReasonList"]} <= {"FBA_INB_0465", "FBA_INB_0034"}


def test_the_models_sandbox_cases(emu: EmulatorClient, model: dict[str, Any]) -> None:
    responses = model["paths"][PATH]["get"]["responses"]
    cases = 0
    for status, response in responses.items():
        for example in response.get("x-amzn-api-sandbox", {}).get("static", []):
            asin = example["request"]["parameters"]["asin"]["value"]
            answer = get_preview(emu, asin, program=None, marketplaceIds=None)
            assert (answer.status_code, answer.json()) == (int(status), example["response"]), asin
            cases += 1
    assert cases == 8  # TEST_CASE_200 ... TEST_CASE_503
    log = emu.calls()["by_operation"][GET_ITEM_ELIGIBILITY_PREVIEW]
    assert log == {"200": 1, "400": 1, "401": 1, "403": 1, "404": 1, "429": 1, "500": 1, "503": 1}


@pytest.mark.parametrize(
    ("asin", "params", "parameter"),
    [
        (None, {}, "asin"),
        ("B00000001", {}, "asin"),
        ("B000000001", {"program": None}, "program"),
        ("B000000001", {"program": "inbound"}, "program"),
        ("B000000001", {"program": "OUTBOUND"}, "program"),
        ("B000000001", {"marketplaceIds": None}, "marketplaceIds"),
        ("B000000001", {"marketplaceIds": "XX123"}, "marketplaceIds"),
        ("B000000001", {"marketplaceIds": f"{US},{DE}"}, "marketplaceIds"),
        ("B000000001", {"program": "COMMINGLING", "marketplaceIds": "XX123"}, "marketplaceIds"),
    ],
)
def test_validation(emu: EmulatorClient, asin: str | None, params: dict[str, Any], parameter: str) -> None:
    response = get_preview(emu, asin, **{"program": "INBOUND", **params})
    assert response.status_code == 400, response.text
    errors = response.json()["errors"]
    assert len(errors) == 1 and errors[0]["code"] == "InvalidInput" and parameter in errors[0]["message"]


def test_the_models_usage_plan_on_a_fake_clock(make_client: Callable[..., EmulatorClient]) -> None:
    clock = FakeClock()
    emu = make_client(clock=clock)  # rate 1, burst 1
    assert emu.token
    responses = [get_preview(emu, "B000000001") for _ in range(2)]
    assert [r.status_code for r in responses] == [200, 429]
    assert {r.headers["x-amzn-RateLimit-Limit"] for r in responses} == {"1.0"}
    clock.advance(0.5)
    assert get_preview(emu, "B000000001").status_code == 429
    clock.advance(0.5)
    assert get_preview(emu, "B000000001").status_code == 200
    faster = make_client(clock=clock, plans={GET_ITEM_ELIGIBILITY_PREVIEW: (4.0, 2)})
    responses = [get_preview(faster, "B000000001") for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[0].headers["x-amzn-RateLimit-Limit"] == "4.0"


def test_the_call_log(emu: EmulatorClient) -> None:
    get_preview(emu, "B000000001")
    get_preview(emu, "B000000002", "COMMINGLING", marketplaceIds=None)
    get_preview(emu, "B000000003", "BOGUS")
    calls = [c for c in emu.calls()["calls"] if c["operation"] == GET_ITEM_ELIGIBILITY_PREVIEW]
    assert [(c["asins"], c["marketplace_id"], c["status"]) for c in calls] == [
        (["B000000001"], US, 200),
        (["B000000002"], None, 200),
        (["B000000003"], US, 400),
    ]


def test_the_library_gets_an_eligibility_preview(make_server: Callable[..., EmulatorServer]) -> None:
    refresh_token = f"Atzr|sp-api-eligibility-{uuid.uuid4()}"
    server = make_server(plans=FAST_PLANS, refresh_token=refresh_token)
    client = library_client(sp_api.FbaInboundEligibility, server, refresh_token)
    eligible = client.get_item_eligibility_preview(asin="B000000001", program="INBOUND", marketplaceIds=[US])
    assert eligible.payload == {"asin": "B000000001", "marketplaceId": US, "program": "INBOUND", "isEligibleForProgram": True}
    # Without marketplaceIds the library sends its own marketplace.
    unknown = client.get_item_eligibility_preview(asin="NF00000001", program="INBOUND")
    assert unknown.payload["ineligibilityReasonList"] == ["FBA_INB_0017"] and unknown.payload["marketplaceId"] == US
    with pytest.raises(sp_api_base.SellingApiBadRequestException):
        client.get_item_eligibility_preview(asin="B000000001", program="OUTBOUND")
    calls = [c for c in server.calls()["calls"] if c["operation"] == GET_ITEM_ELIGIBILITY_PREVIEW]
    assert [c["asins"] for c in calls] == [["B000000001"], ["NF00000001"], ["B000000001"]]
