"""bench/press_to_dashboard.py runs end to end on a tiny scale: its own Mosquitto and hub, a few
pages, and its baselines, including the raw broker fan-out spoken by hand-written MQTT
subscribers (bench/fanout_baselines.py). The figures themselves are not judged here: timing on a
shared machine is for the benchmark, not for a test."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_dashboard_benchmark_measures_pages_and_the_broker_fan_out_it_is_compared_with(tmp_path):
    out = tmp_path / "figures.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "press_to_dashboard.py"), "--rooms", "2", "--clients", "1", "6",
         "--presses", "4", "--baseline", "4", "--fanout", "5", "--warmup", "1", "--gap-ms", "1", "2",
         "--seed", "7", "--tmp", str(tmp_path), "--json", str(out)],
        capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Fan-out against its own baseline" in run.stdout

    [rooms] = json.loads(out.read_text())["runs"]
    phases = {ph["clients"]: ph for ph in rooms["phases"]}
    assert set(phases) == {1, 6}
    for n, ph in phases.items():
        fan, checks = ph["broker_fanout"], ph["checks"]
        # Every subscriber had every timed message: 5 for subscriber 0, 5 × n in all, 5 last ones.
        assert (fan["measured"]["n"], fan["all"]["n"], fan["last"]["n"]) == (5, 5 * n, 5)
        assert fan["last"]["p50"] >= fan["measured"]["p50"] > 0
        assert ph["send_floor"]["n"] == 200 and ph["send_floor"]["p50"] > 0
        assert ph["sse"]["n"] == 4 and checks["lost_messages"] == 0 and checks["clients_dropped"] == 0
        assert ph["hub_stream_clients"] == n
