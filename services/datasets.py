"""A dataset of an entry (pricing, offers, fees, restrictions, eligibility): its name, and its facts or its own error, stamped."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from services import errors
from services.errors import ServiceError
from utils.timestamps import now_iso

# What `include` may name, in the order an entry carries them, and each one's key on the entry.
DATASETS = ("pricing", "offers", "fees", "restrictions", "eligibility")
ENTRY_KEYS = {name: name.capitalize() for name in DATASETS}


def dataset(facts: dict[str, Any]) -> dict[str, Any]:
    """A dataset SP-API answered: its facts, and when."""
    return {**facts, "cached": False, "fetched_at": now_iso()}


def dataset_error(failure: ServiceError, *, fetched: bool = True) -> dict[str, Any]:
    """A dataset that failed on its own, in its place in the entry; `fetched=False` when nothing was asked of SP-API."""
    return {"error": failure.as_error(), "cached": False, "fetched_at": now_iso() if fetched else None}


def parse_include(value: object) -> tuple[str, ...]:
    """The dataset names of `include` (a comma list or a JSON list of names), in DATASETS order.

    ServiceError(INVALID_REQUEST) names the allowed ones for any other value.
    """
    if value is None:
        return ()
    if isinstance(value, str):
        names: Iterable[object] = value.split(",")
    elif isinstance(value, list):
        names = value
    else:
        raise ServiceError(errors.INVALID_REQUEST, f"'include' must be a list of dataset names: {', '.join(DATASETS)}")
    wanted: set[str] = set()
    for name in names:
        text = name.strip().lower() if isinstance(name, str) else name
        if text == "":
            continue
        if text not in DATASETS:
            raise ServiceError(
                errors.INVALID_REQUEST, f"'include' names an unknown dataset {name!r}: the datasets are {', '.join(DATASETS)}"
            )
        wanted.add(text)
    return tuple(name for name in DATASETS if name in wanted)
