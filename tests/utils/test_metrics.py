"""utils/metrics: the multiprocess directory the gunicorn master prepares, and the recorders' labels."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY

from utils import metrics


def test_master_gets_an_empty_directory_of_its_own_and_dead_masters_directories_go(tmp_path: Path):
    data = tmp_path / "data"
    (data / "metrics-111").mkdir(parents=True)  # a master that died without cleaning up
    (data / "metrics-111" / "counter_5.db").write_bytes(b"x")
    (data / "metrics-222").mkdir()  # another master still running on the same DATA_DIR
    (data / "metrics-333").mkdir()  # this master's pid, left by an earlier process with that pid
    (data / "metrics-333" / "counter_7.db").write_bytes(b"x")
    (data / "limiter.sqlite").write_bytes(b"")
    path = metrics.prepare_multiprocess_dir(str(data), 333, None, alive=lambda pid: pid == 222)
    assert path == str((data / "metrics-333").resolve())
    assert list(Path(path).iterdir()) == []
    assert sorted(p.name for p in data.iterdir()) == ["limiter.sqlite", "metrics-222", "metrics-333"]


def test_a_configured_directory_is_used_and_wiped_of_old_values(tmp_path: Path):
    configured = tmp_path / "prom"
    configured.mkdir()
    (configured / "counter_9.db").write_bytes(b"x")
    (configured / "notes.txt").write_text("kept")
    path = metrics.prepare_multiprocess_dir(str(tmp_path / "data"), 333, str(configured), alive=lambda pid: True)
    assert path == str(configured.resolve())
    assert [p.name for p in configured.iterdir()] == ["notes.txt"]


def test_a_directory_inherited_from_another_master_is_not_shared(tmp_path: Path):
    """After gunicorn's USR2 re-exec the new master inherits the old one's variable: it makes its own directory."""
    data = tmp_path / "data"
    (data / "metrics-222").mkdir(parents=True)
    (data / "metrics-222" / "counter_5.db").write_bytes(b"x")
    path = metrics.prepare_multiprocess_dir(str(data), 333, str(data / "metrics-222"), alive=lambda pid: pid == 222)
    assert path == str((data / "metrics-333").resolve())
    assert [p.name for p in (data / "metrics-222").iterdir()] == ["counter_5.db"]


def test_methods_outside_the_standard_ones_share_one_label():
    assert [metrics.http_method_label(m) for m in ("GET", "POST", "HEAD", "PROPFIND", "x" * 50)] == [
        "GET",
        "POST",
        "HEAD",
        "other",
        "other",
    ]


def test_each_call_is_counted_by_status_or_error_and_a_429_as_throttled():
    op = {"operation": "unitTestOperation"}
    names = [
        ("fba_spapi_calls_total", {"status": "error", **op}),
        ("fba_spapi_calls_total", {"status": "429", **op}),
        ("fba_spapi_throttled_total", op),
        ("fba_spapi_call_duration_seconds_count", op),
    ]
    before = [REGISTRY.get_sample_value(name, labels) or 0.0 for name, labels in names]

    def refused() -> httpx.Response:
        raise httpx.ConnectError("refused")

    with pytest.raises(httpx.ConnectError):
        metrics.time_spapi_call("unitTestOperation", refused)
    assert metrics.time_spapi_call("unitTestOperation", lambda: httpx.Response(429)).status_code == 429
    after = [REGISTRY.get_sample_value(name, labels) or 0.0 for name, labels in names]
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1, 2]
