"""The instruments of bench/memory_soak.py: the probe it loads into the processes it watches,
and the verdict it draws from the samples (the 10-minute run itself is not a test)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: A process that does what the probe must tell apart: SQLite pages, and mock pin changes.
WATCHED = """
import sqlite3, time
from gpiozero.pins.mock import MockFactory
pin = MockFactory().pin(17)
for _ in range(50):
    pin.drive_low()
    pin.drive_high()
db = sqlite3.connect(":memory:")
db.execute("CREATE TABLE t (x)")
db.executemany("INSERT INTO t VALUES (?)", [("x" * 100,)] * 1000)
time.sleep(30)
"""


@pytest.fixture(scope="module")
def soak():
    spec = importlib.util.spec_from_file_location("memory_soak", ROOT / "bench" / "memory_soak.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_probe_reports_sqlite_heap_and_mock_pin_history_from_inside_a_process(soak, tmp_path, monkeypatch):
    # install_probe changes this process's environment for its children: restore it afterwards.
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv(soak.PROBE_DIR_ENV, "")
    monkeypatch.setenv(soak.PROBE_S_ENV, "")
    figures = soak.install_probe(tmp_path, 0.1)
    proc = subprocess.Popen([sys.executable, "-c", WATCHED])
    try:
        deadline, seen = time.monotonic() + 20, {}
        while time.monotonic() < deadline:
            try:
                seen = json.loads((figures / f"{proc.pid}.json").read_text())
            except (OSError, ValueError):
                seen = {}
            # Until both are done: SQLite holds a little memory from connect() on, before the inserts.
            if seen.get("mock_pin_states", 0) >= 100 and seen.get("sqlite_mb", 0) > 0.05:
                break
            time.sleep(0.1)
        sample = soak.proc_sample(proc.pid, figures)
    finally:
        proc.kill()
        proc.wait()
    # The pin starts low: its initial state, then 99 changes (the first drive_low is none).
    assert seen.get("mock_pin_states") == 100, seen
    assert sample["sqlite_mb"] > 0.05
    assert sample["py_blocks"] > 1000 and sample["gc_objects"] > 1000
    assert sample["objects_less_mock"] == sample["gc_objects"] - sample["mock_pin_states"]
    assert sample["anon_less_sqlite_mb"] == pytest.approx(sample["anon_mb"] - sample["sqlite_mb"])


def _rows(name="device", heap_mb_per_sample=0.0, history_per_sample=0, fds_at_end=9, n=9):
    """Samples of one process after the warm-up, as memory_soak's main loop records them."""
    rows = []
    for i in range(n):
        history = 100 + i * history_per_sample
        device = {"rss_mb": 30 + i * heap_mb_per_sample, "anon_mb": 18 + i * heap_mb_per_sample,
                  "hwm_mb": 31.0, "sqlite_mb": 0.14, "anon_less_sqlite_mb": 17.86 + i * heap_mb_per_sample,
                  "py_blocks": 100_000 + 3 * history, "gc_objects": 27_000 + history,
                  "mock_pin_states": history, "objects_less_mock": 27_000,
                  "fds": fds_at_end if i == n - 1 else 9, "threads": 4, "cpu_s": i * 0.1}
        rows.append({"t_s": 60.0 + i * 10, "calls": i * 12, name: device})
    return rows


def test_a_device_whose_only_growing_objects_are_the_mock_pins_history_passes_on_objects(soak):
    verdict = soak.summarise("device", _rows(history_per_sample=800))
    assert verdict["gc_objects"]["growth"] > soak.OBJECT_GROWTH_LIMIT
    assert verdict["objects_less_mock"]["growth"] == 0
    assert verdict["problems"] == []


def test_a_heap_growing_beyond_the_limit_or_a_leaking_descriptor_fails_the_soak(soak):
    grows = soak.summarise("device", _rows(heap_mb_per_sample=0.2))
    assert grows["anon_less_sqlite_mb"]["growth"] == pytest.approx(1.2)
    assert any("anon−SQLite" in p for p in grows["problems"])
    leaks = soak.summarise("hub", _rows("hub", fds_at_end=30))
    assert any("fds" in p for p in leaks["problems"])
    # The baseline is shown, never judged.
    assert soak.summarise("bare python", _rows("bare python", heap_mb_per_sample=0.2))["problems"] == []
