"""The device as a real process (``callbell device --mock``), driven through its line interface,
against the real hub and broker — including kill -9 of the device."""
import csv
import io
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.helpers import ROOT, wait_until

DEVICE_TOML = """
[device]
id = "pi-proc"
store = "test-store"
broker = "{url}"
outbox = "outbox.db"
hold_s = 0.5
debounce_ms = 10

[[rooms]]
id = "room-1"
slot = 1

[[rooms]]
id = "room-2"
slot = 2

[[rooms]]
id = "room-3"
slot = 3
"""


class DeviceProcess:
    def __init__(self, config: Path):
        self.config = config
        self.lines: list[str] = []
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "-q", "device", "--config", str(config), "--mock"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            cwd=str(config.parent))
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def quit(self) -> str:
        if self.proc.poll() is None:
            self.send("quit")
            self.proc.wait(15)
        return self.proc.stderr.read()


@pytest.fixture
def device_toml(tmp_path, broker):
    p = tmp_path / "device" / "device.toml"
    p.parent.mkdir()
    p.write_text(DEVICE_TOML.format(url=broker.url))
    return p


def unsent(outbox: Path) -> int:
    with sqlite3.connect(outbox) as db:
        return db.execute("SELECT COUNT(*) FROM outbox WHERE acked IS NULL").fetchone()[0]


def test_the_line_interface_reports_lamp_changes_driven_by_the_hub(hub, device_toml):
    d = DeviceProcess(device_toml)
    try:
        wait_until(lambda: "status ok" in d.lines, timeout=10, what="the device to see the hub")
        d.send("press room-1")
        wait_until(lambda: "lamp room-1 called" in d.lines and "light room-1 called" in d.lines,
                   what="lamp and light called")
        assert d.lines.index("light room-1 pending") < d.lines.index("light room-1 called")
        # The lamp goes out before the commit: the call is readable a moment later.
        [call] = wait_until(lambda: hub.api.ok("GET", "/api/v1/calls?status=open"), what="the call stored")
        hub.api.ok("POST", f"/api/v1/calls/{call['id']}/acknowledge", {"associate": "ana"})
        wait_until(lambda: "lamp room-1 acknowledged" in d.lines, what="acknowledged")
        d.send("presence room-1")
        wait_until(lambda: d.lines[-2:] == ["lamp room-1 idle", "light room-1 idle"], what="idle")
        d.send("press room-9")
        d.send("jump room-1")
        wait_until(lambda: len([l for l in d.lines if l.startswith("error ")]) == 2, what="two errors")
    finally:
        err = d.quit()
    assert d.proc.returncode == 0 and "Traceback" not in err


def test_twenty_presses_during_a_broker_outage_survive_a_device_kill_and_reach_the_hub_once(
        hub, broker, device_toml):
    api = hub.api
    d = DeviceProcess(device_toml)
    wait_until(lambda: "status ok" in d.lines, timeout=10, what="the device to see the hub")
    broker.kill()
    wait_until(lambda: d.lines[-1:] == ["status fault"], timeout=15, what="the device to notice")
    truth = []
    for i in range(20):
        room = f"room-{i % 3 + 1}"
        d.send(f"press {room}")
        truth.append((room, time.time()))
        time.sleep(0.15)
    outbox = device_toml.parent / "outbox.db"
    wait_until(lambda: unsent(outbox) == 20, what="20 events on disk")
    d.kill9()
    print("injected: broker kill -9, 20 presses, device kill -9")
    time.sleep(2.0)  # the outage goes on a while after the presses

    broker.start()
    again = DeviceProcess(device_toml)
    try:
        def received():
            return [e for e in api.request("GET", "/api/v1/events.csv")[1].splitlines()[1:]
                    if ",pressed," in e or ",reminder," in e]
        wait_until(lambda: len(received()) >= 20, timeout=30, what="20 presses at the hub")
        time.sleep(1.0)
        events = received()
        print(f"counted: {len(events)} press events at the hub")
        assert len(events) == 20  # each press once: no loss, no duplicate
        calls = api.ok("GET", "/api/v1/calls?status=all")
        assert sorted(c["room"] for c in calls) == ["room-1", "room-2", "room-3"]
        assert sorted(c["reminders"] for c in calls) == [5, 6, 6]
        # press times within 1 s of the truth, taken from the event log
        rows = [r for r in csv.DictReader(io.StringIO(api.request("GET", "/api/v1/events.csv")[1]))
                if r["kind"] in ("pressed", "reminder")]
        for room in ("room-1", "room-2", "room-3"):
            logged = sorted(datetime.fromisoformat(r["at"]).timestamp() for r in rows if r["room"] == room)
            real = sorted(t for r, t in truth if r == room)
            worst = max(abs(a - b) for a, b in zip(logged, real))
            assert worst < 1.0, f"{room}: a press time is off by {worst:.2f} s"
        wait_until(lambda: unsent(outbox) == 0, what="the outbox to empty")
    finally:
        again.quit()


def test_a_room_the_hub_does_not_know_is_reported_by_the_device(hub, tmp_path, broker):
    config = tmp_path / "stray" / "device.toml"
    config.parent.mkdir()
    config.write_text(DEVICE_TOML.format(url=broker.url).replace('id = "room-3"', 'id = "room-9"'))
    d = DeviceProcess(config)
    try:
        wait_until(lambda: "status ok" in d.lines, timeout=10, what="the device to see the hub")
        d.send("press room-9")
        wait_until(lambda: any(l.startswith("error hub refused room-9: unknown room") for l in d.lines),
                   what="the refusal on the device's output")
    finally:
        err = d.quit()
    assert "the hub refused an event of room room-9" in err
