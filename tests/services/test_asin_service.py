"""AsinService on its own (no Flask), over real HTTP to the emulator: positions, the cache, in-flight sharing, codes, failures.

Judged by the entries it answers and the emulator's call log. The emulator's plan and the client's
are raised to 50 calls/s so that no test waits for a slot.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from emulator import EmulatorServer
from emulator.catalog import build_item
from emulator.identifiers import two_asin_upc, unmatched_code, upc_for_asin
from services.asin_service import AsinService
from services.cache import NullResultCache, ResultCache, SqliteResultCache
from services.catalog_item import product_facts
from services.entries import LookupEntry, found_entry
from services.spapi import INCLUDED_DATA
from tests.conftest import emulator_settings
from tests.helpers.data import synthetic_asins
from tests.helpers.emulator_log import operation_calls
from tests.helpers.spapi import SpApiParts, spapi_parts
from utils.marketplaces import MARKETPLACES

US = MARKETPLACES["US"]
TTL = {"ttl": 3600.0, "not_found_ttl": 3600.0}
INTERNAL = "The lookup failed inside the service; it has been logged"


@pytest.fixture
def make_service(emulator: EmulatorServer, tmp_path: Path) -> Iterator[Callable[..., AsinService]]:
    """Build AsinServices against the emulator, by default with a SQLite cache of their own in tmp_path."""
    emulator.configure(rate=50, burst=50)
    built: list[tuple[AsinService, SpApiParts]] = []

    def build(cache: ResultCache | None = None, **overrides: Any) -> AsinService:
        settings = emulator_settings(emulator, sp_api_rate=50, sp_api_burst=50, **overrides)
        parts = spapi_parts(settings)
        service = AsinService(parts.client, cache or SqliteResultCache(str(tmp_path), **TTL), max_workers=settings.max_workers)
        built.append((service, parts))
        return service

    yield build
    for service, parts in built:
        service.close()
        parts.close()


def searched(emulator: EmulatorServer) -> list[list[str]]:
    """The identifiers of each searchCatalogItems call, oldest first."""
    return [call["asins"] for call in operation_calls(emulator, "searchCatalogItems")]


def sales_rank(asin: str) -> int | None:
    return product_facts(build_item(asin, US.marketplace_id, INCLUDED_DATA), US)["SalesRank"]


def test_every_position_is_answered_once_in_order_and_each_asin_fetched_once(make_service, emulator):
    unique = [*synthetic_asins(25), "NF00000001"]
    # Duplicates in other spellings, spread over what becomes two searches (20 and 6), and values that are not ASINs.
    asins = [*unique, *(f" {asin.lower()} " for asin in unique[::-3]), "bad", None, 7, unique[0]]
    body = make_service().batch_lookup(asins, "US")
    results = body["results"]
    assert [entry["asin"] for entry in results] == [a.strip().upper() if isinstance(a, str) and a != "bad" else a for a in asins]
    answers: dict[str, LookupEntry] = {}
    for raw, entry in zip(asins, results, strict=True):
        if raw in ("bad", None, 7):
            assert entry["error"]["code"] == "INVALID_ASIN" and entry["fetched_at"] is None
        else:
            assert answers.setdefault(raw.strip().upper(), entry) == entry  # each position of an ASIN: its one answer
    assert answers["NF00000001"]["error"]["code"] == "NOT_FOUND"
    assert sorted(len(identifiers) for identifiers in searched(emulator)) == [6, 20]
    assert sorted(asin for identifiers in searched(emulator) for asin in identifiers) == sorted(unique)
    assert (body["total_requested"], body["failed"], body["api_calls"]) == (len(asins), 3 + 2, 2)


class StoredMeanwhile(SqliteResultCache):
    """A SQLite cache that another worker process writes `entries` to just after this one first reads it."""

    def __init__(self, data_dir: str, entries: Mapping[str, LookupEntry]) -> None:
        super().__init__(data_dir, **TTL)
        self._entries = dict(entries)

    def get_many(self, marketplace_id: str, asins: Sequence[str], *, count: bool = True) -> dict[str, LookupEntry]:
        found = super().get_many(marketplace_id, asins, count=count)
        if self._entries:
            super().put_many(marketplace_id, self._entries)
            self._entries = {}
        return found


def test_cached_entries_are_not_fetched_again_and_refresh_asks_sp_api_again(make_service, emulator, tmp_path):
    asins = synthetic_asins(4)
    # Another worker answers asins[1] between this service's cache read and its claim on the ASINs.
    elsewhere = found_entry(asins[1], US, build_item(asins[1], US.marketplace_id, INCLUDED_DATA))
    service = make_service(cache=StoredMeanwhile(str(tmp_path), {asins[1]: elsewhere}))
    first = service.batch_lookup(asins[:3], "US")
    assert searched(emulator) == [[asins[0], asins[2]]]
    assert [entry["cached"] for entry in first["results"]] == [False, True, False]
    assert first["results"][1] == {**elsewhere, "cached": True} and first["cached"] == 1

    second = service.batch_lookup(asins, "US")
    assert searched(emulator)[1:] == [[asins[3]]]
    assert [entry["cached"] for entry in second["results"]] == [True, True, True, False]
    assert [{**entry, "cached": False} for entry in second["results"][:3]] == [{**e, "cached": False} for e in first["results"]]
    assert service.lookup(asins[3], "US")["cached"] is True and operation_calls(emulator, "getCatalogItem") == []

    refreshed = service.batch_lookup(asins, "US", refresh=True)
    assert searched(emulator)[2:] == [asins]
    assert [entry["cached"] for entry in refreshed["results"]] == [False] * 4 and refreshed["cached"] == 0
    assert service.lookup(asins[0], "US", refresh=True)["cached"] is False
    assert [call["asins"] for call in operation_calls(emulator, "getCatalogItem")] == [[asins[0]]]


class Ordered(NullResultCache):
    """No cache at all, so only in-flight sharing can spare a call; its second look (made just after a claim) tells the test."""

    def __init__(self, on_claimed: Callable[[list[str]], None]) -> None:
        super().__init__(**TTL)
        self._on_claimed = on_claimed

    def get_many(self, marketplace_id: str, asins: Sequence[str], *, count: bool = True) -> dict[str, LookupEntry]:
        if not count:  # the look again at what this caller has just claimed
            self._on_claimed(list(asins))
        return super().get_many(marketplace_id, asins, count=count)


def test_an_asin_being_fetched_for_one_caller_is_not_fetched_again_for_another(make_service, emulator):
    shared, other = synthetic_asins(2)
    single_claimed, batch_claimed = threading.Event(), threading.Event()

    def on_claimed(asins: list[str]) -> None:
        if asins == [shared]:  # the single lookup: hold its fetch until the batch has claimed what it will fetch
            single_claimed.set()
            batch_claimed.wait(10)
        else:
            batch_claimed.set()

    service = make_service(cache=Ordered(on_claimed))
    with ThreadPoolExecutor(2) as pool:
        single = pool.submit(service.lookup, shared, "US")
        assert single_claimed.wait(10)
        batch = pool.submit(service.batch_lookup, [shared, other], "US")
        entry, body = single.result(timeout=30), batch.result(timeout=30)
    assert entry["success"] is True and body["results"] == [entry, body["results"][1]]
    assert [call["asins"] for call in operation_calls(emulator, "getCatalogItem")] == [[shared]]
    assert searched(emulator) == [[other]]  # the batch asked SP-API only for the ASIN nobody was fetching
    assert body["api_calls"] == 1


def two_ranked_shared_upcs() -> list[tuple[str, list[str]]]:
    """Two UPCs that each resolve to two items of different sales ranks, with their ASINs best-ranked first."""
    found = []
    for n in range(200):
        upc, pair = two_asin_upc(n)
        ranks = {asin: sales_rank(asin) for asin in pair}
        if None not in ranks.values() and len(set(ranks.values())) == 2:
            found.append((upc, sorted(pair, key=lambda asin: ranks[asin])))
        if len(found) == 2:
            return found
    raise AssertionError("fewer than two shared UPCs of ranked items in the first 200")


def test_each_code_of_a_search_is_answered_by_its_own_items_best_ranked_first(make_service, emulator):
    (upc_a, pair_a), (upc_b, pair_b) = two_ranked_shared_upcs()
    single = "B00IDN0001"
    codes = [upc_a, unmatched_code("UPC"), upc_for_asin(single), upc_b]
    body = make_service().batch_lookup_identifiers(codes, "upc", "US")
    assert searched(emulator) == [codes]  # one search for all four
    found_a, missing, found_single, found_b = body["results"]
    for entry, pair in ((found_a, pair_a), (found_b, pair_b)):
        assert entry["matches"] == [
            {"asin": pair[0], "rank": sales_rank(pair[0]), "best": True},
            {"asin": pair[1], "rank": sales_rank(pair[1]), "best": False},
        ]
        assert (entry["asin"], entry["SalesRank"]) == (pair[0], sales_rank(pair[0]))
    assert [match["asin"] for match in found_single["matches"]] == [single]
    assert (missing["error"]["code"], missing["matches"], missing["identifier_type"]) == ("NOT_FOUND", [], "UPC")
    assert [entry["identifier"] for entry in body["results"]] == codes


class BrokenPut(NullResultCache):
    """A cache with a bug: put_many raises (a backend failure it would log and survive, this is not one)."""

    def __init__(self, failures: int) -> None:
        super().__init__(**TTL)
        self.failures = failures

    def put_many(self, marketplace_id: str, entries: Mapping[str, LookupEntry]) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("a bug in the cache")


def test_a_failure_inside_a_chunk_still_answers_every_code(make_service, emulator, caplog):
    # The first put is the matched items', inside the search of the chunk: the whole chunk fails, and says so.
    service = make_service(cache=BrokenPut(failures=1))
    codes = [upc_for_asin("B00IDN0001"), two_asin_upc(0)[0], unmatched_code("UPC"), "12345"]
    with caplog.at_level(logging.ERROR, logger="services.asin_service"):
        body = service.batch_lookup_identifiers(codes, "UPC", "US")
    assert [(entry["identifier"], entry["error"]["code"]) for entry in body["results"]] == [
        *((code, "UPSTREAM_ERROR") for code in codes[:3]),
        ("12345", "INVALID_IDENTIFIER"),
    ]
    assert {entry["error"]["message"] for entry in body["results"][:3]} == {INTERNAL}
    assert "lookup of 3 keys in US failed" in caplog.text and "a bug in the cache" in caplog.text
    # Nothing of it was kept: asked again, the codes go to SP-API again and are answered.
    again = service.batch_lookup_identifiers(codes, "UPC", "US")
    assert [entry["success"] for entry in again["results"]] == [True, True, False, False]
    assert len(searched(emulator)) == 2


def test_a_cache_that_cannot_store_leaves_the_answers_standing(make_service, emulator, caplog):
    service = make_service(cache=BrokenPut(failures=2))
    with caplog.at_level(logging.ERROR, logger="services.asin_service"):
        body = service.batch_lookup(synthetic_asins(3), "US")
        entry = service.lookup("B0TEST0009", "US")
    assert body["successful"] == 3 and entry["success"] is True
    assert [record.getMessage() for record in caplog.records] == [
        "storing 3 entries of US in the result cache failed",
        "storing 1 entries of US in the result cache failed",
    ]
