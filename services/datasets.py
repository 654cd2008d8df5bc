"""A dataset of an entry (pricing, offers, fees, restrictions, eligibility): its facts, or its own error, stamped with `fetched_at`."""

from __future__ import annotations

from typing import Any

from services.errors import ServiceError
from utils.timestamps import now_iso


def dataset(facts: dict[str, Any]) -> dict[str, Any]:
    """A dataset SP-API answered: its facts and when."""
    return {**facts, "fetched_at": now_iso()}


def dataset_error(failure: ServiceError, *, fetched: bool = True) -> dict[str, Any]:
    """A dataset that failed on its own, in its place in the entry; `fetched=False` when nothing was asked of SP-API."""
    return {"error": failure.as_error(), "fetched_at": now_iso() if fetched else None}
