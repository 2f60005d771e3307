"""systemd's watchdog without systemd: a unix datagram socket stands in for $NOTIFY_SOCKET, and
real hub and device processes (and an in-process dispatcher and device) ping it from the loop
that does their work — and stop pinging when that work stops (issue 27.2)."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from callbell.clock import SystemClock
from callbell.protocol import Topics
from callbell.systemd_notify import PINGS_PER_PERIOD, SystemdNotify
from firmware.config import load_device_config
from firmware.device import Device
from firmware.wiring import mock_pins
from hub.dispatcher import MAX_IDLE_S, Dispatcher
from hub.domain.call import Room, Timing
from callbell.broker import free_port
from tests.helpers import ROOT, HubProcess, write_store

#: The watchdog period the tests give the device (WATCHDOG_USEC), seconds: short, so a test
#: takes seconds. Its watchdog loop goes round twice per ping interval.
WATCHDOG_S = 2.0

#: ... and the hub: the dispatcher pings at most once a round and its rounds may be MAX_IDLE_S
#: apart, so a gap between pings may reach half the period plus MAX_IDLE_S (docs/hub.md).
HUB_WATCHDOG_S = 4 * MAX_IDLE_S


class FakeSystemd:
    """The receiving end of $NOTIFY_SOCKET: records every datagram with its arrival time."""

    def __init__(self, abstract: bool = False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            self.address = f"@callbell-test-{os.getpid()}-{id(self)}"
            self.sock.bind("\0" + self.address[1:])
        else:  # a short path: unix socket paths are limited to 107 bytes
            self._dir = tempfile.mkdtemp(prefix="cb-notify-")
            self.address = os.path.join(self._dir, "notify")
            self.sock.bind(self.address)
        self.messages: list[tuple[float, str]] = []
        self._changed = threading.Condition()
        self._closed = False
        threading.Thread(target=self._receive, daemon=True).start()

    def env(self, watchdog_s: float = WATCHDOG_S) -> dict:
        return {"NOTIFY_SOCKET": self.address, "WATCHDOG_USEC": str(int(watchdog_s * 1_000_000))}

    def _receive(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            with self._changed:
                self.messages.extend((time.monotonic(), line) for line in data.decode().splitlines())
                self._changed.notify_all()

    def pings(self) -> list[float]:
        with self._changed:
            return [t for t, m in self.messages if m == "WATCHDOG=1"]

    def wait_for(self, line: str, count: int = 1, timeout: float = 20.0) -> None:
        with self._changed:
            ok = self._changed.wait_for(lambda: sum(m == line for _, m in self.messages) >= count, timeout)
        assert ok, f"{line!r} did not arrive {count} time(s) in {timeout} s; got {self.messages[-5:]}"

    def wait_for_silence(self, window: float, timeout: float) -> float:
        """Wait until ``window`` seconds pass with no ping; returns when the silence began.
        Fails after ``timeout`` seconds of pings still coming."""
        start = time.monotonic()
        with self._changed:
            while True:
                pings = [t for t, m in self.messages if m == "WATCHDOG=1"]
                quiet_since = max([start, *pings])
                now = time.monotonic()
                if now - quiet_since >= window:
                    return quiet_since
                assert now - start < timeout, f"pings still coming after {timeout} s: {pings[-5:]}"
                self._changed.wait(min(quiet_since + window, start + timeout) - now + 0.01)

    def close(self) -> None:
        self.sock.close()
        if hasattr(self, "_dir"):
            shutil.rmtree(self._dir, ignore_errors=True)


@pytest.fixture
def systemd():
    fake = FakeSystemd()
    yield fake
    fake.close()


def regular(pings: list[float], watchdog_s: float) -> None:
    """The pings came at least once a watchdog period, never a flood."""
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert gaps and max(gaps) < watchdog_s, gaps
    assert min(gaps) >= watchdog_s / PINGS_PER_PERIOD * 0.9, gaps


# -- the wire -------------------------------------------------------------------------------------
def test_the_notifier_reads_its_period_from_the_environment_and_pings_at_half_of_it():
    n = SystemdNotify.from_environment({"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000"})
    assert n.watchdog and n.watchdog_s == 30.0 and n.ping_interval_s == 15.0
    assert not SystemdNotify.from_environment({"NOTIFY_SOCKET": "/run/x"}).watchdog
    # a watchdog meant for another process (WATCHDOG_PID) is not ours
    other = SystemdNotify.from_environment({"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000",
                                            "WATCHDOG_PID": str(os.getpid() + 1)})
    assert not other.watchdog


def test_the_notifier_does_nothing_when_not_run_by_systemd():
    n = SystemdNotify.from_environment({})
    n.ready()
    n.ping()
    n.stopping()
    assert not n.enabled and n.sent == 0


def test_the_notifier_spaces_its_pings_and_reaches_an_abstract_socket():
    fake = FakeSystemd(abstract=True)
    now = [100.0]
    n = SystemdNotify(fake.address, 2.0, monotonic=lambda: now[0])
    try:
        n.ready("up")
        for step in range(40):  # a loop going round every 0.1 s for 4 s
            n.ping()
            now[0] += 0.1
        fake.wait_for("WATCHDOG=1", count=4)
        fake.wait_for("STATUS=up")
        assert n.sent == 1 + 4  # READY, and a ping each second of the four: not forty
    finally:
        n.close()
        fake.close()


def test_a_notifier_whose_socket_is_gone_logs_and_carries_on(caplog):
    n = SystemdNotify("/nonexistent/notify", 2.0)
    n.ping()
    assert n.sent == 0 and "cannot notify systemd" in caplog.text


# -- the hub --------------------------------------------------------------------------------------
def test_a_hub_process_says_ready_pings_regularly_and_stops_pinging_when_it_is_stopped(tmp_path, broker, systemd):
    port = free_port()
    store = write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=port)
    hub = HubProcess(store, port, tmp_path / "hub.log", env=systemd.env(HUB_WATCHDOG_S)).start()
    try:
        systemd.wait_for("READY=1")
        systemd.wait_for("WATCHDOG=1", count=4)
        regular(systemd.pings(), HUB_WATCHDOG_S)

        hub.proc.send_signal(signal.SIGSTOP)  # the whole hub hangs
        systemd.wait_for_silence(2 * HUB_WATCHDOG_S, timeout=3 * HUB_WATCHDOG_S)
        hub.proc.send_signal(signal.SIGCONT)  # and comes back: so do the pings
        count = len(systemd.pings())
        systemd.wait_for("WATCHDOG=1", count=count + 2)
        assert hub.stop() == 0
        systemd.wait_for("STOPPING=1")
    finally:
        if hub.proc.poll() is None:
            hub.proc.send_signal(signal.SIGCONT)
        hub.stop()


def test_a_dispatcher_stuck_in_a_command_stops_pinging_and_pings_again_once_it_is_free(tmp_path, systemd):
    notify = SystemdNotify.from_environment(systemd.env(HUB_WATCHDOG_S))
    d = Dispatcher(rooms=[Room("room-1")], timing=Timing(), db_path=tmp_path / "callbell.db",
                   topics=Topics("callbell", "s"), clock=SystemClock(), heartbeat=notify.ping)
    d.start()
    release = threading.Event()
    try:
        systemd.wait_for("WATCHDOG=1", count=3)
        regular(systemd.pings(), HUB_WATCHDOG_S)

        stuck = d.command(lambda floor, now: release.wait() and [])  # a handler that hangs
        systemd.wait_for_silence(2 * HUB_WATCHDOG_S, timeout=3 * HUB_WATCHDOG_S + MAX_IDLE_S)
        assert not stuck.done()
        release.set()
        stuck.result(5)
        count = len(systemd.pings())
        systemd.wait_for("WATCHDOG=1", count=count + 2)
    finally:
        release.set()
        d.stop()
        notify.close()


# -- the device -----------------------------------------------------------------------------------
DEVICE_TOML = """
[device]
id = "pi-watched"
store = "test-store"
broker = "{url}"
outbox = "outbox.db"

[[rooms]]
id = "room-1"
slot = 1

[[rooms]]
id = "room-2"
slot = 2
"""


def test_a_device_process_says_ready_pings_regularly_and_stops_pinging_when_it_is_stopped(tmp_path, broker, systemd):
    config = tmp_path / "device.toml"
    config.write_text(DEVICE_TOML.format(url=broker.url))
    env = {**os.environ, "PYTHONPATH": str(ROOT), **systemd.env()}
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "-q", "device", "--config", str(config), "--mock"],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=str(tmp_path))
    try:
        systemd.wait_for("READY=1")
        systemd.wait_for("WATCHDOG=1", count=4)
        regular(systemd.pings(), WATCHDOG_S)

        proc.send_signal(signal.SIGSTOP)
        systemd.wait_for_silence(2 * WATCHDOG_S, timeout=3 * WATCHDOG_S)
        proc.send_signal(signal.SIGCONT)
        count = len(systemd.pings())
        systemd.wait_for("WATCHDOG=1", count=count + 2)
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        assert proc.wait(15) == 0
        systemd.wait_for("STOPPING=1")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.wait()


def test_a_press_stuck_in_its_handler_stops_the_device_pinging_and_names_the_room(tmp_path, broker, systemd, caplog):
    """The handler a press runs hangs (here the display it reports to; on a Pi, say, a write to
    a hung SD card): the watchdog loop finds the room's lock held and stops pinging."""
    config = tmp_path / "device.toml"
    config.write_text(DEVICE_TOML.format(url=broker.url))
    release, hanging = threading.Event(), threading.Event()

    def display(room: str, what: str, state: str) -> None:
        if room == "room-2" and what == "lamp" and state == "called":
            hanging.set()
            release.wait()

    pins = mock_pins()
    notify = SystemdNotify.from_environment(systemd.env())
    device = Device(load_device_config(config), pin_factory=pins, on_display=display, systemd=notify)
    device.start()
    presser = None
    try:
        systemd.wait_for("READY=1")
        systemd.wait_for("WATCHDOG=1", count=3)
        assert device.stuck_part(0.1) is None

        call = next(r for r in load_device_config(config).rooms if r.id == "room-2").call
        call_pin = pins.pin(int(call.removeprefix("GPIO")))
        presser = threading.Thread(target=call_pin.drive_low, daemon=True)  # the GPIO thread
        presser.start()
        assert hanging.wait(5)
        systemd.wait_for_silence(2 * WATCHDOG_S, timeout=3 * WATCHDOG_S)
        assert device.stuck_part(0.1) == "room-2 call button"
        assert "presses are stuck behind the room-2 call button" in caplog.text

        release.set()
        presser.join(5)
        count = len(systemd.pings())
        systemd.wait_for("WATCHDOG=1", count=count + 2)
    finally:
        release.set()
        device.stop()
        notify.close()
