"""Scans of a supplier's list, over real HTTP to the emulator: the money, each gate and reason, the quota plan, the columns.

Expected figures come from the emulator's own data (its Buy Box, rate card, package quantities,
gated brands and inbound reasons); which calls were made, from its call log. The family plans are
raised (FAMILY_PLANS) so that no test waits long for a slot.
"""

from __future__ import annotations

import csv
import io
import threading
from collections import Counter
from decimal import Decimal
from types import SimpleNamespace

import pytest
from openpyxl import Workbook, load_workbook

from emulator import EmulatorServer, catalog
from emulator.eligibility import inbound_reasons
from emulator.fees import estimate_fees
from emulator.identifiers import two_asin_upc, unmatched_code
from emulator.offers import buy_box, of_condition, offer_book
from emulator.restrictions import brand_is_gated, restriction_reasons
from services.eligibility_item import is_hazmat
from services.jobs.model import JobSpec, PendingItem
from services.jobs.runner import JobSteps, Step, run_steps
from services.scan import row_json
from services.spapi import OPERATION_PLANS
from tests.helpers.emulator_log import operation_calls
from tests.helpers.spapi import FAMILY_PLANS
from utils.marketplaces import MARKETPLACES
from utils.supplier_list import read_supplier_items

US = MARKETPLACES["US"].marketplace_id
POOL = [f"B00SCAN{n:03d}" for n in range(400)]
DEEP = ("getItemOffers", "getItemOffersBatch", "getListingsRestrictions", "getItemEligibilityPreview")


@pytest.fixture(autouse=True)
def fast_plans(emulator: EmulatorServer) -> None:
    emulator.configure(plans=FAMILY_PLANS, rate=50, burst=50)


def listing(asin: str) -> catalog.Listing:
    found = catalog.listing(asin, US)
    assert found is not None
    return found


def upc(asin: str) -> str:
    return next(code["identifier"] for code in catalog.item_identifiers(asin) if code["identifierType"] == "UPC")


def buy_box_price(asin: str) -> float | None:
    winner = buy_box(offer_book(asin, US), "New", False)
    return winner.landed(False) if winner else None


def amazon_sells(asin: str) -> bool:
    return any(o.is_amazon for o in of_condition(offer_book(asin, US), "New"))


def gated(asin: str) -> bool:
    return bool(restriction_reasons(listing(asin), "new_new"))


def hazmat(asin: str) -> bool:
    return any(is_hazmat(code) for code in inbound_reasons(listing(asin)))


def clean(asin: str) -> bool:
    """A priced listing that passes every deep check."""
    return buy_box_price(asin) is not None and not amazon_sells(asin) and not gated(asin) and not inbound_reasons(listing(asin))


def pick(predicate, n: int = 1) -> list[str]:
    chosen = [asin for asin in POOL if predicate(asin)][:n]
    assert len(chosen) == n, "too few of these among the emulator's items"
    return chosen


def fees(asin: str, price: float) -> Decimal:
    return estimate_fees(listing(asin), Decimal(repr(price)), Decimal(0), True).total


def scan(client, items, **profile):
    response = client.post("/scan/US", json={"items": items, "scan": profile})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["results"]


def asked(emulator: EmulatorServer, operation: str) -> set[str]:
    return {asin for call in operation_calls(emulator, operation) for asin in call["asins"]}


# -- the money ------------------------------------------------------------------------------------


def test_profit_roi_and_max_cost_of_a_case_of_12_against_an_amazon_2_pack(client, emulator):
    asin = pick(lambda a: listing(a).package_quantity == 2 and clean(a))[0]
    price = buy_box_price(asin)
    (entry,) = scan(client, [{"upc": upc(asin), "cost": "18.00", "pack_quantity": 12}], prep_cost=0.5, inbound_per_pound=0.4)
    figures = entry["Scan"]
    unit_cost = Decimal("18.00") / 12 * 2  # the supplier's case of 12 makes six Amazon 2-packs
    inbound = Decimal("0.4") * Decimal(repr(round(listing(asin).package_dims[3], 2)))
    total_fees = fees(asin, price)
    profit = Decimal(repr(price)) - total_fees - unit_cost - Decimal("0.5") - inbound
    assert (figures["supplier_pack_quantity"], figures["amazon_pack_quantity"]) == (12, 2)
    assert (figures["sale_price"], figures["price_source"]) == (price, "buy_box")
    assert figures["unit_cost"] == pytest.approx(float(unit_cost))
    assert figures["total_fees"] == pytest.approx(float(total_fees))
    assert figures["inbound_shipping"] == pytest.approx(float(inbound), abs=1e-6)
    assert figures["profit"] == pytest.approx(float(profit), abs=1e-6)
    assert figures["roi_percent"] == pytest.approx(float(profit / unit_cost * 100), abs=1e-4)
    assert figures["margin_percent"] == pytest.approx(float(profit / Decimal(repr(price)) * 100), abs=1e-4)
    # max_cost: the highest unit cost meeting both 30% ROI and a 3.00 profit.
    before_cost = profit + unit_cost
    assert figures["max_cost"] == pytest.approx(float(min(before_cost - 3, before_cost / Decimal("1.3"))), abs=1e-6)
    assert entry["input"] == {"upc": upc(asin), "cost": "18.00", "pack_quantity": 12}


def test_each_row_is_answered_once_in_input_order_with_its_own_fields(client, emulator):
    asins = POOL[:6]
    items = [{"upc": upc(a), "cost": 1, "supplier_sku": f"SKU-{i}"} for i, a in enumerate(asins)]
    items.insert(3, {"upc": "12345", "cost": 1, "supplier_sku": "bad"})
    results = scan(client, items)
    assert [r["input"]["supplier_sku"] for r in results] == ["SKU-0", "SKU-1", "SKU-2", "bad", "SKU-3", "SKU-4", "SKU-5"]
    assert all(r["Scan"]["verdict"] in ("BUY", "REVIEW", "SKIP") for r in results)


# -- gates and reasons ----------------------------------------------------------------------------


def test_rows_that_fail_the_money_stop_at_the_screen_without_a_deep_check(client, emulator):
    asins = pick(lambda a: buy_box_price(a) is not None, 5)
    items = [{"upc": upc(a), "cost": buy_box_price(a) * 2} for a in asins]  # costs more than it sells for
    results = scan(client, items)
    for entry in results:
        assert entry["Scan"]["verdict"] == "SKIP" and entry["Scan"]["stage"] == "screened"
        assert {r["code"] for r in entry["Scan"]["reasons"]} == {"ROI_BELOW_MIN", "PROFIT_BELOW_MIN"}
    assert all(not asked(emulator, operation) for operation in DEEP)


def test_the_rank_gate_costs_no_pricing_call(client, emulator):
    asin = POOL[0]
    rank = client.get(f"/asin/{asin}").get_json()["SalesRank"]
    (entry,) = scan(client, [{"asin": asin, "cost": 1}], max_sales_rank=max(1, rank - 1))
    assert [r["code"] for r in entry["Scan"]["reasons"]] == ["RANK_ABOVE_MAX"]
    assert not asked(emulator, "getCompetitivePricing")


@pytest.mark.parametrize(
    "predicate, code",
    [
        (lambda a: buy_box_price(a) is not None and amazon_sells(a), "AMAZON_ON_LISTING"),
        (lambda a: buy_box_price(a) is not None and not amazon_sells(a) and brand_is_gated(listing(a).brand), "APPROVAL_REQUIRED"),
        (lambda a: buy_box_price(a) is not None and not amazon_sells(a) and not gated(a) and hazmat(a), "HAZMAT"),
    ],
)
def test_a_deep_check_skips_a_row_and_the_checks_after_it_are_not_made(client, emulator, predicate, code):
    asin = pick(predicate)[0]
    (entry,) = scan(client, [{"upc": upc(asin), "cost": 0.5}])
    assert entry["Scan"]["stage"] == "full"
    assert entry["Scan"]["verdict"] == "SKIP" and code in [r["code"] for r in entry["Scan"]["reasons"]]
    if code == "AMAZON_ON_LISTING":
        assert not asked(emulator, "getListingsRestrictions") and not asked(emulator, "getItemEligibilityPreview")
    if code == "APPROVAL_REQUIRED":
        assert entry["Restrictions"]["reasons"][0]["approval_url"]
        assert not asked(emulator, "getItemEligibilityPreview")


def test_a_gate_turned_off_makes_the_row_a_review(client, emulator):
    asin = pick(lambda a: buy_box_price(a) is not None and amazon_sells(a) and not gated(a) and not inbound_reasons(listing(a)))[0]
    (entry,) = scan(client, [{"upc": upc(asin), "cost": 0.5}], skip_amazon_on_listing=False)
    assert entry["Scan"]["verdict"] == "REVIEW"
    assert [r["code"] for r in entry["Scan"]["reasons"]] == ["AMAZON_ON_LISTING"]


def test_a_clean_cheap_row_is_a_buy(client, emulator):
    asin = pick(clean)[0]
    (entry,) = scan(client, [{"upc": upc(asin), "cost": 0.5}])
    assert (entry["Scan"]["verdict"], entry["Scan"]["reasons"], entry["Scan"]["stage"]) == ("BUY", [], "full")
    assert {"Pricing", "Fees", "Offers", "Restrictions", "Eligibility"} <= set(entry)


def test_a_code_of_two_asins_is_a_review_naming_the_other(client, emulator):
    code, (first, second) = two_asin_upc(3)
    (entry,) = scan(client, [{"upc": code, "cost": 0.01}])
    multiple = [r for r in entry["Scan"]["reasons"] if r["code"] == "MULTIPLE_MATCHES"]
    assert multiple and entry["Scan"]["verdict"] in ("REVIEW", "SKIP")
    other = second if entry["asin"] == first else first
    assert other in multiple[0]["message"]


def test_bad_cells_fail_only_their_own_row(client, emulator):
    good = pick(clean)[0]
    items = [
        {"upc": upc(good), "cost": 0.5},
        {"upc": "1.23457E+11", "cost": 1},
        {"upc": upc(good), "cost": "cheap"},
        {"upc": upc(good), "cost": -2},
        {"upc": upc(good), "cost": 1, "pack_quantity": 0},
        {"upc": unmatched_code("UPC"), "cost": 1},  # a valid UPC no item carries
    ]
    codes = [[r["code"] for r in entry["Scan"]["reasons"]] for entry in scan(client, items)]
    assert codes == [[], ["INVALID_IDENTIFIER"], ["INVALID_COST"], ["INVALID_COST"], ["INVALID_PACK"], ["NOT_FOUND"]]


def test_an_item_without_offers_is_no_price(client, emulator):
    asin = pick(lambda a: not of_condition(offer_book(a, US), "New"))[0]
    (entry,) = scan(client, [{"upc": upc(asin), "cost": 1}])
    assert [r["code"] for r in entry["Scan"]["reasons"]] == ["NO_PRICE"]


# -- the profile ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "profile, fragment",
    [
        ({"min_roi": 30}, "Unknown scan setting 'min_roi'"),
        ({"min_profit": "lots"}, "'min_profit' must be a number"),
        ({"fulfillment": "drone"}, "FBA or FBM"),
        ({"max_sales_rank": 0}, "'max_sales_rank'"),
        ({"skip_hazmat": "sometimes"}, "true or false"),
    ],
)
def test_a_bad_profile_is_a_400_naming_it(client, emulator, profile, fragment):
    response = client.post("/scan/US", json={"items": [{"asin": POOL[0], "cost": 1}], "scan": profile})
    assert response.status_code == 400 and fragment in response.get_json()["error"]["message"]
    assert not emulator.calls()["calls"] or all(c["operation"] == "lwaToken" for c in emulator.calls()["calls"])


def test_a_rescan_at_higher_costs_makes_no_call(client, emulator):
    asins = POOL[:10]
    scan(client, [{"upc": upc(a), "cost": 0.5} for a in asins])
    before = len(emulator.calls()["calls"])
    again = scan(client, [{"upc": upc(a), "cost": 5} for a in asins])
    assert len(emulator.calls()["calls"]) == before, "everything a higher cost needs is cached"
    assert all(entry["Scan"]["supplier_cost"] == 5.0 for entry in again)


# -- lists as jobs --------------------------------------------------------------------------------


def run_job(client, job_id: str) -> dict:
    client.application.extensions["jobs"].runner.run_once()
    return client.get(f"/jobs/{job_id}").get_json()


def test_a_semicolon_csv_with_bom_and_decimal_commas_scans_as_a_job(client, emulator):
    good, dear = pick(clean, 2)
    text = f"\ufeffUPC;Unit Cost;Case Pack;Notes\n{upc(good)};0,50;1;first\n{upc(dear)};1.000,00;1;second\n12345;1,00;1;bad\n"
    created = client.post("/jobs/US?scan=true", data=text.encode(), content_type="text/csv")
    assert created.status_code == 202, created.get_json()
    job = run_job(client, created.get_json()["id"])
    assert job["status"] == "done" and job["counts"]["total"] == 3
    logged = {op: len(operation_calls(emulator, op)) for op in ("searchCatalogItems", *OPERATION_PLANS)}
    assert job["calls"] == {op: n for op, n in logged.items() if n}, "the job counts its calls per operation as SP-API saw them"
    assert job["waiting_most_on"] in (None, *job["calls"])
    rows = list(csv.DictReader(io.StringIO(client.get(f"/jobs/{job['id']}/results?format=csv").get_data(as_text=True))))
    assert list(rows[0])[:4] == ["UPC", "Unit Cost", "Case Pack", "Notes"], "the input's columns first, as given"
    assert [(r["Notes"], r["verdict"]) for r in rows] == [("first", "BUY"), ("second", "SKIP"), ("bad", "SKIP")]
    assert rows[0]["unit_cost"] == "0.50" and rows[2]["reasons"] == "INVALID_IDENTIFIER"
    buys = list(csv.DictReader(io.StringIO(client.get(f"/jobs/{job['id']}/results?format=csv&verdict=BUY").get_data(as_text=True))))
    assert [r["Notes"] for r in buys] == ["first"]


def test_an_xlsx_upload_with_numeric_codes_and_an_overridden_cost_column(client, emulator, tmp_path):
    asin = pick(clean)[0]
    book = Workbook()
    sheet = book.active
    sheet.append(["EAN", "List price", "Our price"])
    sheet.append([int("0" + upc(asin)), 99.0, 0.5])  # an EAN stored as a number: its leading zero is gone
    path = tmp_path / "list.xlsx"
    book.save(path)
    with open(path, "rb") as upload:
        created = client.post("/jobs/US?scan=true&cost_column=Our%20price", data={"file": (upload, "list.xlsx")})
    assert created.status_code == 202, created.get_json()
    job = run_job(client, created.get_json()["id"])
    results = client.get(f"/jobs/{job['id']}/results").get_json()["results"]
    assert [(r["asin"], r["Scan"]["supplier_cost"], r["Scan"]["verdict"]) for r in results] == [(asin, 0.5, "BUY")]


def test_a_list_without_a_cost_column_is_refused_naming_its_columns(client, emulator):
    response = client.post("/jobs/US?scan=true", data=f"upc,price\n{unmatched_code('UPC')},3\n", content_type="text/csv")
    assert response.status_code == 400
    assert "'upc', 'price'" in response.get_json()["error"]["message"]


def test_verdict_filters_only_scans(client, emulator):
    created = client.post("/jobs/US", json={"asins": POOL[:2]}).get_json()
    response = client.get(f"/jobs/{created['id']}/results?verdict=BUY")
    assert response.status_code == 400 and "not a scan" in response.get_json()["error"]["message"]


def test_a_scans_xlsx_has_the_csvs_table_with_each_verdict_coloured(client, emulator):
    good = pick(clean)[0]
    text = f"Item,UPC,Cost\nfirst,{upc(good)},0.50\nsecond,12345,1\n"
    job = run_job(client, client.post("/jobs/US?scan=true", data=text, content_type="text/csv").get_json()["id"])
    response = client.get(f"/jobs/{job['id']}/results?format=xlsx")
    assert response.status_code == 200 and response.mimetype.endswith("spreadsheetml.sheet")
    sheet = load_workbook(io.BytesIO(response.get_data())).active
    rows = list(sheet.iter_rows(values_only=True))
    header = list(rows[0])
    assert header[:3] == ["Item", "UPC", "Cost"] and header[3] == "asin"
    verdict = header.index("verdict")
    assert [(row[0], row[verdict]) for row in rows[1:]] == [("first", "BUY"), ("second", "SKIP")]
    assert sheet.cell(row=2, column=verdict + 1).fill.fgColor.rgb.endswith("C6EFCE")
    assert isinstance(rows[1][header.index("profit")], float), "numbers stay numbers"
    plain = client.post("/jobs/US", json={"asins": POOL[:1]}).get_json()
    assert client.get(f"/jobs/{plain['id']}/results?format=xlsx").status_code == 400


def test_numbers_beyond_any_price_list_fail_their_row_or_the_request_not_the_service(client, emulator):
    asin = pick(clean)[0]
    items = [{"upc": upc(asin), "cost": 1e22}, {"upc": upc(asin), "cost": 1, "pack_quantity": 10**30}, {"upc": upc(asin), "cost": 1e-30}]
    results = scan(client, items)
    assert [[r["code"] for r in entry["Scan"]["reasons"]] for entry in results][:2] == [["INVALID_COST"], ["INVALID_PACK"]]
    assert results[2]["Scan"]["verdict"] == "BUY" and results[2]["Scan"]["roi_percent"] > 1e30, "a near-free row is priced, as a float"
    for profile in ({"min_profit": "1e999999999"}, {"min_roi_percent": "1e400"}, {"prep_cost": 1e30}):
        response = client.post("/scan/US", json={"items": items[:1], "scan": profile})
        assert response.status_code == 400 and "must be a number from" in response.get_json()["error"]["message"]


def test_a_free_row_is_judged_by_its_profit(client, emulator):
    asin = pick(clean)[0]
    (entry,) = scan(client, [{"upc": upc(asin), "cost": 0}])
    assert entry["Scan"]["roi_percent"] is None and entry["Scan"]["verdict"] == "BUY"


def test_an_xlsx_sent_as_the_body_scans_as_an_upload_does(client, emulator, tmp_path):
    asin = pick(clean)[0]
    book = Workbook()
    book.active.append(["UPC", "Cost"])
    book.active.append([upc(asin), 0.5])
    path = tmp_path / "list.xlsx"
    book.save(path)
    kind = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    created = client.post("/jobs/US?scan=true", data=path.read_bytes(), content_type=kind)
    assert created.status_code == 202, created.get_json()
    job = run_job(client, created.get_json()["id"])
    assert job["scan"]["verdicts"]["BUY"] == 1


class RecordingWork:
    """A job's hold as run_steps sees it, keeping every step it is asked to record (no store: the steps themselves)."""

    job_id = "streamed"

    def __init__(self, items: list[PendingItem]) -> None:
        self._job = SimpleNamespace(finished=False, spec=JobSpec("US", "UPC", scan={"profile": {}, "columns": ["upc", "cost"]}))
        self._items = items
        self.recorded: list[Step] = []

    def current(self) -> SimpleNamespace:
        return self._job

    def pending(self, limit: int) -> list[PendingItem]:
        done = {position for step in self.recorded for position in step.stored}
        return [item for item in self._items if item.position not in done][:limit]

    def record(self, step: Step) -> bool:
        self.recorded.append(step)
        return True

    def complete(self) -> None:
        self._job.finished = True

    def keep_alive(self) -> None:
        pass


def test_a_scan_step_stores_each_chunk_as_it_is_done_in_order(client, emulator):
    # 50 rows in one step: stored as three parts (20, 20, 10), in input order, while the rest is scanned;
    # the parts' call tallies add up to what SP-API saw.
    app = client.application
    asins = pick(clean, 50)
    supplier = read_supplier_items([{"upc": upc(asin), "cost": 1.0} for asin in asins])
    items = [PendingItem(n, row_json(row), 0) for n, row in enumerate(supplier.rows)]
    steps = JobSteps(app.extensions["asin_service"], size=100, scanner=app.extensions["scanner"])
    work = RecordingWork(items)

    assert run_steps(work, steps, threading.Event()) == 50

    assert [sorted(step.stored) for step in work.recorded] == [list(range(0, 20)), list(range(20, 40)), list(range(40, 50))]
    assert [work.recorded[0].stored[n]["asin"] for n in range(20)] == asins[:20]
    counted: Counter[str] = Counter()
    for step in work.recorded:
        counted.update({key.removeprefix("calls:"): n for key, n in step.call_tallies.items() if key.startswith("calls:")})
    logged = {op: len(operation_calls(emulator, op)) for op in ("searchCatalogItems", *OPERATION_PLANS)}
    assert dict(counted) == {op: n for op, n in logged.items() if n}
