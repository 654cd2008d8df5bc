"""The models' sandbox examples vendored in emulator/fixtures/: read once per process, handed out as fresh copies."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@functools.cache
def _text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def load_fixture(name: str) -> Any:
    """A fresh copy of fixtures/`name` (JSON), so a caller may change it."""
    return json.loads(_text(name))
