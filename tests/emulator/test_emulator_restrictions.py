"""Listings Restrictions 2021-08-01 over HTTP: allowed, gated brands, not eligible, unknown ASINs, 400s, the plan, the log."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from emulator import EmulatorServer, catalog, defaults
from emulator.client import EmulatorClient
from emulator.plans import GET_LISTINGS_RESTRICTIONS
from tests.helpers.fake_clock import FakeClock
from tests.helpers.sp_api_library import FAST_PLANS, library_client
from tests.helpers.sp_api_models import load_model, schema_errors

sp_api = pytest.importorskip("sp_api.api")
sp_api_base = pytest.importorskip("sp_api.base")

US = defaults.MARKETPLACES["US"]
GB = defaults.MARKETPLACES["GB"]
JP = defaults.MARKETPLACES["JP"]
PATH = "/listings/2021-08-01/restrictions"
ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
GATED_BRANDS = {"Brightblock", "Deskwise", "Paperloft", "Summit Trail"}  # emulator/README.md
ALLOWED_ASIN = "B000000001"  # Bluewater dumbbells: an allowed brand, eligible
GATED_ASIN = "B000000005"  # a Deskwise desk organizer


@pytest.fixture(scope="module")
def model() -> dict[str, Any]:
    """The official Listings Restrictions 2021-08-01 model."""
    return load_model("listingsRestrictions_2021-08-01.json")


def get_restrictions(emu: EmulatorClient, asin: str | None, **params: Any) -> httpx.Response:
    """getListingsRestrictions with the emulator's seller and the US marketplace unless told otherwise (None drops one)."""
    query = {"asin": asin, "sellerId": defaults.SELLER_ID, "marketplaceIds": US, **params}
    return emu.http.get(PATH, params={k: v for k, v in query.items() if v is not None}, headers={"x-amz-access-token": emu.token})


def restrictions(emu: EmulatorClient, asin: str, **params: Any) -> list[dict[str, Any]]:
    """The restrictions of a call that must answer 200."""
    response = get_restrictions(emu, asin, **params)
    assert response.status_code == 200, response.text
    return response.json()["restrictions"]


def _sample_asins(count: int, seed: int = 20210801) -> list[str]:
    rng = random.Random(seed)
    return ["B0" + "".join(rng.choice(ALNUM) for _ in range(8)) for _ in range(count)]


def _brand(asin: str, marketplace_id: str = US) -> str:
    listing = catalog.listing(asin, marketplace_id)
    assert listing is not None
    return listing.brand


def test_an_allowed_item_has_no_restrictions(emu: EmulatorClient, model: dict[str, Any]) -> None:
    response = get_restrictions(emu, ALLOWED_ASIN)
    assert response.status_code == 200
    assert response.json() == {"restrictions": []}
    assert schema_errors(model, "RestrictionList", response.json()) == []
    assert response.headers["x-amzn-RateLimit-Limit"] and response.headers["x-amzn-RequestId"]


def test_a_gated_brand_needs_approval_with_a_seller_central_link(emu: EmulatorClient, model: dict[str, Any]) -> None:
    assert _brand(GATED_ASIN) == "Deskwise"
    body = get_restrictions(emu, GATED_ASIN, conditionType="new_new").json()
    assert schema_errors(model, "RestrictionList", body) == []
    assert body == {
        "restrictions": [
            {
                "marketplaceId": US,
                "conditionType": "new_new",
                "reasons": [
                    {
                        "message": "You need approval to list products of the brand Deskwise.",
                        "reasonCode": "APPROVAL_REQUIRED",
                        "links": [
                            {
                                "resource": f"https://sellercentral.amazon.com/hz/approvalrequest/restrictions/approve?asin={GATED_ASIN}&itemcondition=new",
                                "verb": "GET",
                                "title": "Request Approval via Seller Central.",
                                "type": "text/html",
                            }
                        ],
                    }
                ],
            }
        ]
    }
    # Another marketplace links its own Seller Central; a used condition asks approval for used.
    (uk,) = restrictions(emu, GATED_ASIN, marketplaceIds=GB, conditionType="used_good")
    link = uk["reasons"][0]["links"][0]["resource"]
    assert link.startswith("https://sellercentral.amazon.co.uk/hz/approvalrequest/restrictions/approve?")
    assert link.endswith("itemcondition=used") and uk["marketplaceId"] == GB and uk["conditionType"] == "used_good"
    # Without conditionType the restriction names none, and the link asks for new.
    (plain,) = restrictions(emu, GATED_ASIN)
    assert "conditionType" not in plain and plain["reasons"][0]["links"][0]["resource"].endswith("itemcondition=new")


def test_every_item_of_a_brand_agrees_and_about_15_percent_of_brands_are_gated(emu: EmulatorClient) -> None:
    by_brand: dict[str, set[str]] = defaultdict(set)
    not_eligible = 0
    asins = _sample_asins(300)
    for asin in asins:
        answer = restrictions(emu, asin)
        codes = [reason["reasonCode"] for r in answer for reason in r["reasons"]]
        if codes == ["NOT_ELIGIBLE"]:
            not_eligible += 1
            continue
        by_brand[_brand(asin)].add("APPROVAL_REQUIRED" if codes == ["APPROVAL_REQUIRED"] else "ALLOWED" if not codes else str(codes))
    assert all(len(answers) == 1 for answers in by_brand.values()), by_brand  # one answer per brand
    gated = {brand for brand, answers in by_brand.items() if answers == {"APPROVAL_REQUIRED"}}
    assert gated == GATED_BRANDS
    assert 0.10 <= len(gated) / len(by_brand) <= 0.20  # 4 of 24 brands in the sample
    assert 2 <= not_eligible <= 20  # ~3% of 300


def test_not_eligible_items_have_no_link_and_are_drawn_per_marketplace(emu: EmulatorClient) -> None:
    asins = _sample_asins(400, seed=7)
    found = []
    for asin in asins:
        answer = restrictions(emu, asin)
        if answer and answer[0]["reasons"][0]["reasonCode"] == "NOT_ELIGIBLE":
            found.append(asin)
            assert answer[0]["reasons"] == [
                {"message": "You are not eligible to list this product in this marketplace.", "reasonCode": "NOT_ELIGIBLE"}
            ]
    assert 3 <= len(found) <= 24  # ~3% of 400
    # Stable across calls, and drawn per marketplace: most are eligible in Japan.
    assert all(restrictions(emu, asin)[0]["reasons"][0]["reasonCode"] == "NOT_ELIGIBLE" for asin in found)
    in_japan = [restrictions(emu, asin, marketplaceIds=JP) for asin in found]
    assert sum(1 for answer in in_japan if answer and answer[0]["reasons"][0]["reasonCode"] == "NOT_ELIGIBLE") < len(found)


def test_unknown_asins_are_asin_not_found(emu: EmulatorClient, model: dict[str, Any]) -> None:
    body = get_restrictions(emu, "NF00000001").json()
    assert schema_errors(model, "RestrictionList", body) == []
    assert body == {
        "restrictions": [
            {
                "marketplaceId": US,
                "reasons": [{"message": f"The ASIN NF00000001 was not found in marketplace {US}.", "reasonCode": "ASIN_NOT_FOUND"}],
            }
        ]
    }
    # The model's catalog example is a US item only; asked for two marketplaces, each answers for itself.
    answer = restrictions(emu, "B07N4M94X4", marketplaceIds=f"{US},{GB}")
    assert [(r["marketplaceId"], r["reasons"][0]["reasonCode"]) for r in answer] == [(GB, "ASIN_NOT_FOUND")]


def test_beauty_items_are_new_only(emu: EmulatorClient) -> None:
    beauty = "B000000011"  # PureDew hair conditioner: an allowed brand
    assert catalog.listing(beauty, US).category == "beauty"  # type: ignore[union-attr]
    assert restrictions(emu, beauty, conditionType="new_new") == []
    (used,) = restrictions(emu, beauty, conditionType="used_like_new")
    assert used["reasons"] == [{"message": "You cannot list the product in this condition.", "reasonCode": "NOT_ELIGIBLE"}]
    assert restrictions(emu, ALLOWED_ASIN, conditionType="used_like_new") == []  # dumbbells may be sold used


def test_the_models_sandbox_example(emu: EmulatorClient, model: dict[str, Any]) -> None:
    responses = model["paths"][PATH]["get"]["responses"]["200"]
    example = responses["x-amzn-api-sandbox"]["static"][0]["response"]
    assert get_restrictions(emu, "B0000ASIN1").json() == example
    assert get_restrictions(emu, "B0000ASIN1", conditionType="used_acceptable").json() == example
    assert get_restrictions(emu, "B0000ASIN1", conditionType="new_new").json() == {"restrictions": []}


def test_any_well_formed_seller_id_is_accepted(emu: EmulatorClient) -> None:
    for seller_id in (defaults.SELLER_ID, "A3ABCDEFGHIJKL", "A1B2C3D4E5F6G7"):
        assert restrictions(emu, GATED_ASIN, sellerId=seller_id)[0]["reasons"][0]["reasonCode"] == "APPROVAL_REQUIRED"


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"asin": None}, "asin"),
        ({"asin": "B0000ASIN"}, "asin"),
        ({"sellerId": None}, "sellerId"),
        ({"sellerId": "seller-1"}, "sellerId"),
        ({"sellerId": "a2emulatorseller"}, "sellerId"),
        ({"marketplaceIds": None}, "marketplaceIds"),
        ({"marketplaceIds": "XX123"}, "marketplaceIds"),
        ({"conditionType": "new"}, "conditionType"),
        ({"conditionType": "NEW_NEW"}, "conditionType"),
    ],
)
def test_validation(emu: EmulatorClient, params: dict[str, Any], parameter: str) -> None:
    asin = params.pop("asin", ALLOWED_ASIN)
    response = get_restrictions(emu, asin, **params)
    assert response.status_code == 400, response.text
    errors = response.json()["errors"]
    assert len(errors) == 1 and errors[0]["code"] == "InvalidInput" and parameter in errors[0]["message"]


def test_the_models_usage_plan_on_a_fake_clock(make_client: Callable[..., EmulatorClient]) -> None:
    clock = FakeClock()
    emu = make_client(clock=clock)  # rate 5, burst 10
    assert emu.token
    responses = [get_restrictions(emu, ALLOWED_ASIN) for _ in range(11)]
    assert [r.status_code for r in responses] == [200] * 10 + [429]
    assert {r.headers["x-amzn-RateLimit-Limit"] for r in responses} == {"5.0"}
    clock.advance(0.2)  # one token at 5/s
    assert [get_restrictions(emu, ALLOWED_ASIN).status_code for _ in range(2)] == [200, 429]
    other = make_client(clock=clock, plans={GET_LISTINGS_RESTRICTIONS: (1.0, 1)})
    assert [get_restrictions(other, ALLOWED_ASIN).status_code for _ in range(2)] == [200, 429]
    assert get_restrictions(other, ALLOWED_ASIN).headers["x-amzn-RateLimit-Limit"] == "1.0"


def test_the_call_log(emu: EmulatorClient) -> None:
    get_restrictions(emu, GATED_ASIN, marketplaceIds=f"{US},{GB}")
    get_restrictions(emu, ALLOWED_ASIN, sellerId=None)
    log = emu.calls()
    assert log["by_operation"][GET_LISTINGS_RESTRICTIONS] == {"200": 1, "400": 1}
    calls = [c for c in log["calls"] if c["operation"] == GET_LISTINGS_RESTRICTIONS]
    assert [(c["asins"], c["marketplace_id"]) for c in calls] == [([GATED_ASIN], f"{US},{GB}"), ([ALLOWED_ASIN], US)]


def test_the_library_gets_listings_restrictions(make_server: Callable[..., EmulatorServer]) -> None:
    refresh_token = f"Atzr|sp-api-restrictions-{uuid.uuid4()}"
    server = make_server(plans=FAST_PLANS, refresh_token=refresh_token)
    client = library_client(sp_api.ListingsRestrictions, server, refresh_token)
    gated = client.get_listings_restrictions(asin=GATED_ASIN, sellerId=defaults.SELLER_ID, marketplaceIds=[US], conditionType="new_new")
    assert gated.payload["restrictions"][0]["reasons"][0]["reasonCode"] == "APPROVAL_REQUIRED"
    # Without marketplaceIds the library sends its own marketplace (and a few spellings of it).
    allowed = client.get_listings_restrictions(asin=ALLOWED_ASIN, sellerId=defaults.SELLER_ID)
    assert allowed.payload == {"restrictions": []}
    with pytest.raises(sp_api_base.SellingApiBadRequestException):
        client.get_listings_restrictions(asin=ALLOWED_ASIN, sellerId="not-a-seller")
    assert [c["asins"] for c in server.calls()["calls"] if c["operation"] == GET_LISTINGS_RESTRICTIONS] == [
        [GATED_ASIN],
        [ALLOWED_ASIN],
        [ALLOWED_ASIN],
    ]
