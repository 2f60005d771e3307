#!/usr/bin/env python3
"""Device footprint: memory, idle CPU, press → local lamp latency, outbox throughput.

    python bench/device_footprint.py [--idle-s 30] [--presses 2000] [--json FILE]

Targets (issue 3): RSS ≤ 40 MB, idle CPU ≤ 1 %, the lamp lit within 1 ms of the button
callback. Each figure is printed next to a baseline measured in the same run:

- memory: a bare ``python3 -c 'import time; time.sleep(…)'`` process (the interpreter's floor);
- latency: the same mock-pin edge driving a bare gpiozero ``LED`` with no Callbell code;
- outbox: a plain SQLite insert with the same durability (``synchronous=FULL``), no MQTT.

The device runs as its own process (``callbell device --mock``, as on a Pi but with mock pins)
against a Mosquitto started here. Progress goes to stderr, the table to stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from callbell.broker import Broker  # noqa: E402
from callbell.clock import SystemClock  # noqa: E402
from callbell.protocol import LampState  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def progress(msg: str) -> None:
    print(f"... {msg}", file=sys.stderr, flush=True)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def device_process(tmp: Path, broker_url: str) -> subprocess.Popen:
    config = tmp / "device.toml"
    config.write_text((ROOT / "examples" / "device.toml").read_text()
                      .replace('broker = "mqtt://localhost:1883"', f'broker = "{broker_url}"'))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "app.cli", "-q", "device", "--config", str(config), "--mock"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env, cwd=tmp)


def announce_hub(broker: Broker) -> None:
    """A retained hub status 'online', so the device is idle (not showing its fault blink)."""
    import paho.mqtt.publish as publish
    host, port = broker.url.removeprefix("mqtt://").split(":")
    publish.single("callbell/demo-store/hub/status", "online", qos=1, retain=True, hostname=host, port=int(port))


def measure_process(idle_s: float, presses: int, tmp: Path, broker: Broker) -> dict:
    announce_hub(broker)
    baseline = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    dev = device_process(tmp, broker.url)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(l.strip() for l in dev.stdout), daemon=True).start()
    try:
        deadline = time.monotonic() + 20
        while "status ok" not in lines and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(2)  # settle: connected, first heartbeat out
        progress(f"idle for {idle_s:g} s")
        c0, t0 = cpu_s(dev.pid), time.monotonic()
        time.sleep(idle_s)
        idle_cpu = (cpu_s(dev.pid) - c0) / (time.monotonic() - t0) * 100
        rss_idle = rss_mb(dev.pid)
        progress(f"{presses} presses through the line interface")
        for i in range(presses):
            dev.stdin.write(f"press fitting-{i % 4 + 1}\n")
            if i % 50 == 49:
                dev.stdin.flush()
        dev.stdin.flush()
        time.sleep(3)
        rss_after = rss_mb(dev.pid)
        base_rss = rss_mb(baseline.pid)
    finally:
        dev.kill()
        baseline.kill()
        dev.wait()
        baseline.wait()
    return {"rss_idle_mb": round(rss_idle, 1), "rss_after_presses_mb": round(rss_after, 1),
            "idle_cpu_pct": round(idle_cpu, 2), "baseline_python_rss_mb": round(base_rss, 1)}


def measure_latency(samples: int, tmp: Path) -> dict:
    """Time from the button edge to the lamp pin being on, in-process on mock pins."""
    from gpiozero import LED, Button

    from firmware.config import DeviceConfig, DeviceSection, RoomPins
    from firmware.device import Device
    from firmware.wiring import mock_pins

    # Baseline: a bare gpiozero button whose callback switches an LED.
    f = mock_pins()
    button, led = Button(17, pin_factory=f), LED(23, pin_factory=f)
    bare_lit: list[float] = []
    button.when_pressed = lambda: (led.on(), bare_lit.append(time.perf_counter()))
    bare = []
    for _ in range(samples):
        pin = f.pin(17)
        t = time.perf_counter()
        pin.drive_low()
        bare.append((bare_lit[-1] - t) * 1e6)
        assert led.is_lit
        pin.drive_high()
        led.off()
    button.close(), led.close()

    # Callbell: the device's room, with its debounce, pending state and render.
    f = mock_pins()
    cfg = DeviceConfig(DeviceSection(id="bench", store="s", broker="mqtt://127.0.0.1:1",
                                     outbox=tmp / "lat.db", debounce_ms=0),
                       [RoomPins(id="room-1", slot=1)])
    device = Device(cfg, pin_factory=f)
    room = device.rooms["room-1"]
    room._send = lambda *a: None  # no outbox, no network: the local path alone
    ours = []
    call_pin, lamp_pin = f.pin(17), f.pin(23)
    lit: list[float] = []
    original_show = room.lamp.show

    def show_and_stamp(*a, **k):  # the moment the lamp's pin has been driven
        original_show(*a, **k)
        lit.append(time.perf_counter())
    room.lamp.show = show_and_stamp
    for _ in range(samples):
        t = time.perf_counter()
        call_pin.drive_low()
        ours.append((lit[-1] - t) * 1e6)
        assert lamp_pin.state == 1
        call_pin.drive_high()
        room._pending = None
        room.show_hub(LampState("idle"))  # back to dark for the next sample
    device.stop()
    return {"lamp_us_p50": round(statistics.median(ours), 1), "lamp_us_p99": round(pct(ours, 99), 1),
            "bare_gpiozero_us_p50": round(statistics.median(bare), 1), "bare_gpiozero_us_p99": round(pct(bare, 99), 1)}


def measure_outbox(n: int, tmp: Path) -> dict:
    from firmware.outbox import Outbox
    clock = SystemClock()
    box = Outbox(tmp / "tp.db", "bench", clock, limit=n + 10)
    t = time.perf_counter()
    entries = [box.add("room-1", "call", "help") for _ in range(n)]
    add_s = time.perf_counter() - t
    t = time.perf_counter()
    for e in entries:
        box.delivered(e.seq)
    ack_s = time.perf_counter() - t
    box.close()
    raw = sqlite3.connect(tmp / "raw.db", isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=FULL")
    raw.execute("CREATE TABLE t (a TEXT, b REAL)")
    t = time.perf_counter()
    for _ in range(n):
        raw.execute("INSERT INTO t VALUES ('x', 1.0)")
    raw_s = time.perf_counter() - t
    raw.close()
    return {"outbox_add_per_s": round(n / add_s), "outbox_ack_per_s": round(n / ack_s),
            "raw_sqlite_insert_per_s": round(n / raw_s)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--idle-s", type=float, default=30, help="seconds of idle CPU measurement (default: 30)")
    ap.add_argument("--presses", type=int, default=2000, help="presses before the second RSS reading (default: 2000)")
    ap.add_argument("--samples", type=int, default=2000, help="latency samples (default: 2000)")
    ap.add_argument("--outbox", type=int, default=500, help="events for the outbox throughput (default: 500)")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="callbell-bench-") as d:
        tmp = Path(d)
        progress("starting Mosquitto")
        with Broker(tmp / "broker") as broker:
            figures = measure_process(args.idle_s, args.presses, tmp, broker)
        progress("press → lamp latency on mock pins")
        figures.update(measure_latency(args.samples, tmp))
        progress("outbox throughput")
        figures.update(measure_outbox(args.outbox, tmp))

    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.machine())
    print(f"\nDevice footprint — {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}\n")
    rows = [
        ("RSS idle", f"{figures['rss_idle_mb']} MB", "≤ 40 MB", f"bare Python {figures['baseline_python_rss_mb']} MB"),
        (f"RSS after {args.presses} presses", f"{figures['rss_after_presses_mb']} MB", "no growth", ""),
        ("idle CPU", f"{figures['idle_cpu_pct']} %", "≤ 1 %", ""),
        ("button edge → lamp on, p50", f"{figures['lamp_us_p50']} µs", "≤ 1000 µs", f"bare gpiozero {figures['bare_gpiozero_us_p50']} µs"),
        ("button edge → lamp on, p99", f"{figures['lamp_us_p99']} µs", "≤ 1000 µs", f"bare gpiozero {figures['bare_gpiozero_us_p99']} µs"),
        ("outbox: events stored / s", f"{figures['outbox_add_per_s']}", "", f"raw SQLite insert {figures['raw_sqlite_insert_per_s']} / s"),
        ("outbox: acknowledgements / s", f"{figures['outbox_ack_per_s']}", "", ""),
    ]
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    print(f"{'figure':<{w[0]}}  {'measured':>{w[1]}}  {'target':<{w[2]}}  baseline (same run)")
    for r in rows:
        print(f"{r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:<{w[2]}}  {r[3]}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
