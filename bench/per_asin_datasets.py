"""The naive way to an ASIN's Buy Box and its fees: getItemOffers, then getMyFeesEstimateForASIN at that Buy Box, ASIN by ASIN.

    python -m bench.per_asin_datasets --output FILE [--clients 5] ASIN...

Scenario 7 runs this beside the service it benchmarks, with the service's own environment (as its
gunicorn got it: SP_API_ENDPOINT, DATA_DIR, RATE_LIMIT_*, ...), and builds the limiter and SP-API
client as app.py does (`build_limiter`, `build_spapi`): with RATE_LIMIT_BACKEND=sqlite in the same
DATA_DIR this process shares the running service's limiter, its plans (services/spapi.py
OPERATION_PLANS), margin and lanes. For each ASIN, on `--clients` threads:
`services.pricing.item_offers(spapi, marketplace, [asin])` (one ASIN: getItemOffers), then, when
the offers have a Buy Box, `services.fees.fees_estimates(spapi, marketplace, [FeeRequest(asin,
buy_box)])` (one request: getMyFeesEstimateForASIN). Without a Buy Box no fees are asked and the
entry's Fees is NO_PRICE, as the service answers.

Writes JSON to FILE: {"started_at": time.time() of the first lookup, "wall": seconds to the last
answer, "entries": [{"asin", "success", "Offers", "Fees"}, ...]}. SP-API calls are counted by the
emulator, not here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from app import build_limiter, build_spapi, configure_logging
from config import load_settings
from services.fees import FeeRequest, fees_estimates
from services.health import UpstreamHealth
from services.pricing import item_offers
from services.spapi import SpApiClient
from utils.marketplaces import Marketplace, resolve_country


def _no_fees(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}, "cached": False, "fetched_at": None}


def lookup(spapi: SpApiClient, marketplace: Marketplace, asin: str) -> dict[str, Any]:
    """One ASIN the naive way: its offers (getItemOffers), then its fees at their Buy Box (getMyFeesEstimateForASIN)."""
    try:
        offers = item_offers(spapi, marketplace, [asin])[asin]
        entry: dict[str, Any] = {"asin": asin, "success": True, "Offers": offers}
        price = offers.get("buy_box_price")
        if "error" in offers:
            entry["Fees"] = _no_fees(offers["error"].get("code", "UPSTREAM_ERROR"), "the offers failed: no price to estimate fees at")
        elif price is None:
            entry["Fees"] = _no_fees("NO_PRICE", f"No Buy Box for {asin} to estimate its fees at")
        else:
            request = FeeRequest(asin, float(price))
            entry["Fees"] = fees_estimates(spapi, marketplace, [request])[request]
        return entry
    except Exception as exc:  # a bug here must show in the results, not end the run
        traceback.print_exc()
        return {"asin": asin, "success": False, "error": {"code": type(exc).__name__, "message": str(exc)}}


def main(argv: Sequence[str] | None = None) -> int:
    """Look the ASINs up, write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.per_asin_datasets", description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True, help="where to write the JSON answer")
    parser.add_argument("--clients", type=int, default=5, help="threads looking ASINs up at once")
    parser.add_argument("--country", default="US")
    parser.add_argument("asins", nargs="+")
    args = parser.parse_args(argv)

    settings = load_settings()
    configure_logging(settings)
    limiter = build_limiter(settings)
    limiter.snapshot()  # opens the store now, as build_services does
    spapi = build_spapi(settings, limiter, UpstreamHealth())
    marketplace = resolve_country(args.country)
    spapi.warm_up(marketplace)

    with ThreadPoolExecutor(max_workers=args.clients, thread_name_prefix="per-asin") as pool:
        started_at = time.time()
        started = time.perf_counter()
        entries = list(pool.map(lambda asin: lookup(spapi, marketplace, asin), args.asins))
        wall = time.perf_counter() - started
    args.output.write_text(json.dumps({"started_at": started_at, "wall": wall, "entries": entries}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
