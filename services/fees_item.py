"""Turn a Product Fees v0 `FeesEstimateResult` into the fee facts the API answers with."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

# FeeDetail.FeeType values the facts name (productFeesV0.json; SP-API's fee types, e.g. "ReferralFee");
# every other type (PerItemFee, ...) counts towards other_fees.
REFERRAL_FEE = "ReferralFee"
FBA_FEES = "FBAFees"
CLOSING_FEE = "VariableClosingFee"
_NAMED = {REFERRAL_FEE: "referral_fee", FBA_FEES: "fba_fee", CLOSING_FEE: "closing_fee"}


def _amount(money: Any) -> Decimal | None:
    """A MoneyType's Amount (exact, for sums without float noise), or None."""
    amount = money.get("Amount") if isinstance(money, dict) else None
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        return None
    return Decimal(str(amount))


def _number(amount: Decimal | None) -> float | None:
    return float(amount) if amount is not None else None


def fees_facts(result: dict[str, Any]) -> dict[str, Any]:
    """The fees of one estimate (a FeesEstimateResult whose Status is Success): null where SP-API gave nothing."""
    identifier = result.get("FeesEstimateIdentifier") or {}
    estimate = result.get("FeesEstimate") or {}
    listing_price = (identifier.get("PriceToEstimateFees") or {}).get("ListingPrice")
    total = estimate.get("TotalFeesEstimate")
    sums: dict[str, Decimal | None] = dict.fromkeys((*_NAMED.values(), "other_fees"))
    for detail in estimate.get("FeeDetailList") or []:
        if not isinstance(detail, dict):
            continue
        # FinalFee is what the seller pays: FeeAmount less any FeePromotion (FeeDetail in the model).
        amount = _amount(detail.get("FinalFee"))
        if amount is None:
            continue
        name = _NAMED.get(detail.get("FeeType"), "other_fees")
        sums[name] = (sums[name] or Decimal(0)) + amount
    currency = next((m["CurrencyCode"] for m in (total, listing_price) if isinstance(m, dict) and m.get("CurrencyCode")), None)
    fulfilled = identifier.get("IsAmazonFulfilled")
    return {
        "price": _number(_amount(listing_price)),
        "fulfilled_by_amazon": fulfilled if isinstance(fulfilled, bool) else None,
        **{name: _number(value) for name, value in sums.items()},
        "total_fees": _number(_amount(total)),
        "currency": currency,
    }
