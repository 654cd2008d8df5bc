"""The lookup entry type against routes/openapi.yaml: the keys it has are the keys documented, and the entries it builds fit."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.catalog import build_item
from routes.openapi import spec_source
from services.entries import (
    IdentifierMatch,
    LookupEntry,
    failed_entry,
    found_entry,
    identifier_failed_entry,
    identifier_matched_entry,
    job_entry,
)
from services.errors import ENTRY_CODES, ServiceError
from services.spapi import INCLUDED_DATA
from tests.helpers.data import synthetic_asins
from tests.helpers.openapi import error_lines, schema_validator
from utils.marketplaces import MARKETPLACES

US, JP = MARKETPLACES["US"], MARKETPLACES["JP"]


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    """The document as written."""
    return spec_source()


def schema(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return spec["components"]["schemas"][name]


def keys_of(typed_dict: Any) -> set[str]:
    return set(typed_dict.__required_keys__ | typed_dict.__optional_keys__)


def found(asin: str, marketplace=US) -> LookupEntry:
    """The entry of an item the emulator serves, made from the item as SP-API would answer it."""
    return found_entry(asin, marketplace, build_item(asin, marketplace.marketplace_id, INCLUDED_DATA))


def assert_fits(spec: dict[str, Any], name: str, entry: LookupEntry) -> None:
    errors = error_lines(schema_validator(spec, name), entry)
    assert not errors, f"an entry does not fit {name}: {errors}\n{entry}"
    # The schemas allow more keys than they name: an undocumented key would pass them, not this.
    assert set(entry) <= keys_of(LookupEntry), f"keys LookupEntry does not have: {set(entry) - keys_of(LookupEntry)}"


def test_the_entry_type_has_exactly_the_keys_the_document_gives_an_entry(spec):
    documented = {key for name in ("SuccessEntry", "FailureEntry", "JobEntry") for key in schema(spec, name)["properties"]}
    typed = keys_of(LookupEntry)
    assert typed - documented == set(), "keys of LookupEntry that routes/openapi.yaml does not document"
    assert documented - typed == set(), "keys routes/openapi.yaml documents that LookupEntry does not have"


def test_the_keys_every_entry_has_are_the_ones_both_schemas_require(spec):
    required_by_both = set(schema(spec, "SuccessEntry")["required"]) & set(schema(spec, "FailureEntry")["required"])
    assert set(LookupEntry.__required_keys__) == required_by_both


def test_a_match_has_exactly_the_documented_keys(spec):
    match_schema = schema(spec, "IdentifierMatch")
    assert keys_of(IdentifierMatch) == set(match_schema["properties"])
    assert set(IdentifierMatch.__required_keys__) == set(match_schema["required"])


def test_found_entries_fit_the_success_schema(spec):
    # The sandbox item and synthetic ones with and without ranks, images and dimensions, in two marketplaces.
    for asin, marketplace in [
        ("B07N4M94X4", US),
        *((asin, US) for asin in synthetic_asins(40)),
        *((asin, JP) for asin in synthetic_asins(5)),
    ]:
        entry = found(asin, marketplace)
        assert entry["success"] is True and (entry["asin"], entry["country"]) == (asin, marketplace.code)
        assert_fits(spec, "SuccessEntry", entry)


@pytest.mark.parametrize("code", ENTRY_CODES)
def test_failed_entries_fit_the_failure_schema(spec, code):
    failure = ServiceError(code, f"{code} happened", retry_after=2.5 if code == "THROTTLED" else None)
    fetched = failed_entry("B0TEST0001", US, failure)
    refused = failed_entry({"not": "an ASIN"}, None, failure, fetched=False)
    assert (fetched["error"], fetched["fetched_at"] is not None) == (failure.as_error(), True)
    assert (refused["country"], refused["marketplace_id"], refused["fetched_at"]) == (None, None, None)
    for entry in (fetched, refused, identifier_failed_entry("887276302195", "UPC", US, failure)):
        assert_fits(spec, "FailureEntry", entry)


def test_a_code_matching_several_items_fits_the_success_schema_with_its_matches_best_first(spec):
    products = [found(asin) for asin in synthetic_asins(6)]
    entry = identifier_matched_entry("887276302195", "UPC", products)
    ranks = [match["rank"] for match in entry["matches"]]
    ranked = sorted(rank for rank in ranks if rank is not None) + [None] * ranks.count(None)
    assert ranks == ranked and [match["best"] for match in entry["matches"]] == [True] + [False] * 5
    assert entry["asin"] == entry["matches"][0]["asin"]
    assert_fits(spec, "SuccessEntry", entry)


def test_job_entries_fit_the_job_schema(spec):
    for entry in (found("B07N4M94X4"), failed_entry("bad", US, ServiceError("INVALID_ASIN", "not an ASIN"), fetched=False)):
        assert_fits(spec, "JobEntry", job_entry(" as listed ", entry))


def test_the_keys_come_in_the_order_ndjson_and_the_cli_print_them():
    entry = found("B07N4M94X4")
    assert list(entry)[:4] == ["asin", "country", "marketplace_id", "success"]
    assert list(entry)[-2:] == ["cached", "fetched_at"]
    matched = list(identifier_matched_entry("887276302195", "UPC", [entry]))
    assert matched[:2] == ["identifier", "identifier_type"] and matched[-1] == "matches"
    assert list(job_entry("B07N4M94X4", entry))[0] == "input"
