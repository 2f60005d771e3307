"""bench/press_to_ring.py runs end to end on a tiny scale: its own Mosquitto, hub and Chromium,
the raw broker baseline, and every press ringing the phone page with both receipts. The figures
themselves are not judged here: timing on a shared machine is for the benchmark."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.browser


def test_the_ring_benchmark_measures_press_to_ring_and_the_receipts_against_the_raw_round_trip(tmp_path):
    out = tmp_path / "ring.json"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "press_to_ring.py"), "--presses", "4", "--rooms", "2",
                          "--baseline", "5", "--warmup", "1", "--seed", "3", "--tmp", str(tmp_path), "--json", str(out)],
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "press → phone page rings" in run.stdout
    r = json.loads(out.read_text())
    assert r["missed"] == 0 and r["baseline"]["n"] == 5
    for key in ("ring", "lamp", "delivered", "shown"):
        assert r[key]["n"] == 4 and r[key]["min"] >= 0, key
    assert r["ring"]["p50"] > r["baseline"]["p50"] > 0
