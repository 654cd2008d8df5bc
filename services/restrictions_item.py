"""Turn a Listings Restrictions 2021-08-01 `RestrictionList` into the restriction facts the API answers with."""

from __future__ import annotations

from typing import Any

# Reason.reasonCode values (listingsRestrictions_2021-08-01.json), and the status of an item with none.
APPROVAL_REQUIRED = "APPROVAL_REQUIRED"
ASIN_NOT_FOUND = "ASIN_NOT_FOUND"
NOT_ELIGIBLE = "NOT_ELIGIBLE"
ALLOWED = "ALLOWED"
# The condition the service asks about: a new item (the model's conditionType "new_new").
NEW_CONDITION = "new_new"
# The strongest reason decides the status: no such item, then no way to list it, then a way through approval.
_PRECEDENCE = (ASIN_NOT_FOUND, NOT_ELIGIBLE, APPROVAL_REQUIRED)


def _approval_url(reason: dict[str, Any]) -> str | None:
    """The reason's first path-forward link (Link.verb GET), e.g. Seller Central's approval request page."""
    for link in reason.get("links") or []:
        if isinstance(link, dict) and link.get("verb", "GET") == "GET" and isinstance(link.get("resource"), str):
            return link["resource"]
    return None


def _reason_status(reason: dict[str, Any]) -> str:
    """The reason's code; one without a code counts as the model describes them: a link only for APPROVAL_REQUIRED."""
    code = reason.get("code")
    if code in _PRECEDENCE:
        return code
    return APPROVAL_REQUIRED if reason.get("approval_url") else NOT_ELIGIBLE


def restrictions_facts(restriction_list: dict[str, Any], marketplace_id: str, condition: str = NEW_CONDITION) -> dict[str, Any]:
    """Whether the seller may list the item new in the marketplace (`status`), and why not (`reasons`)."""
    restrictions = [
        r
        for r in restriction_list.get("restrictions") or []
        if isinstance(r, dict) and r.get("marketplaceId") in (None, marketplace_id) and r.get("conditionType") in (None, condition)
    ]
    reasons = [
        {"code": reason.get("reasonCode"), "message": reason.get("message"), "approval_url": _approval_url(reason)}
        for restriction in restrictions
        for reason in restriction.get("reasons") or []
        if isinstance(reason, dict)
    ]
    if not restrictions:
        status = ALLOWED
    else:
        # A restriction that gives no reason still keeps the item from being listed.
        found = {_reason_status(reason) for reason in reasons} or {NOT_ELIGIBLE}
        status = next(code for code in _PRECEDENCE if code in found)
    return {"status": status, "condition": condition, "reasons": reasons}
