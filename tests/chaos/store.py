"""A whole store for chaos tests: Mosquitto, the hub as its own process, simulated devices on
mock pins in this process, a press driver, and counters read from the hub's SQLite file."""
from __future__ import annotations

import random
import sqlite3
import threading
import time
from pathlib import Path

from callbell.broker import Broker, free_port
from app.simulate import Simulation
from hub.config import load_store_config
from tests.helpers import HubProcess, wait_until, write_store

ROOMS = 8

#: Least time between releasing a button and pressing it again, seconds. Closer than the
#: devices' debounce (5 ms here), the second press is rightly taken for contact bounce, and only
#: a settle check that runs on time still catches it: on a loaded machine it does not. A
#: shopper's presses are hundreds of ms apart.
SAME_BUTTON_GAP_S = 0.05


class Store:
    def __init__(self, tmp_path: Path, rooms: int = ROOMS, seed: int = 7):
        self.tmp = tmp_path
        self.rng = random.Random(seed)
        self.broker = Broker(tmp_path / "broker").start()
        self.store_file = write_store(tmp_path / "store.toml", broker_url=self.broker.url,
                                      http_port=free_port(), rooms=rooms, flood=True)
        self.config = load_store_config(self.store_file)
        self.db = self.config.database.path
        self.hub = HubProcess(self.store_file, self.config.http.port, tmp_path / "hub.log").start()
        self.sim = Simulation(self.config, self.broker.url, tmp_path / "devices", debounce_ms=5,
                              min_press_ms=5)  # the presses are 10 ms: under MIN_PRESS_MS, a glitch
        self.sim.start()
        wait_until(lambda: all(d.link.connected for d in self.sim.devices), timeout=15, what="devices connected")
        self.presses: list[tuple[str, float]] = []
        self.rooms = [r.id for r in self.config.rooms]
        self._lock = threading.Lock()
        self._released: dict[str, float] = {}  # room → monotonic time its call button was let go

    # -- load ---------------------------------------------------------------------------
    def press(self, room: str | None = None) -> None:
        """One short press of a call button (10 ms), as a shopper would: never sooner than
        SAME_BUTTON_GAP_S after the same button was let go."""
        room = room or self.rng.choice(self.rooms)
        wait = self._released.get(room, -1e9) + SAME_BUTTON_GAP_S - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        with self._lock:
            self.presses.append((room, time.time()))
        self.sim.console.push(room, "call", 0.01)
        self._released[room] = time.monotonic()

    def press_for(self, seconds: float, every_s: float = 0.05) -> threading.Thread:
        """Press in the background for ``seconds``, one press every ``every_s`` (at least 10 ms;
        one button is pressed again no sooner than SAME_BUTTON_GAP_S, see :meth:`press`)."""
        every_s = max(every_s, 0.01)
        def run():
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                self.press()
                time.sleep(every_s)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    # -- counting -----------------------------------------------------------------------
    def query(self, sql: str, *args):
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10) as db:
            return db.execute(sql, args).fetchall()

    def counted(self) -> dict:
        """What the hub stored: device events acted on (by id), presses as events, calls."""
        inbox = self.query("SELECT COUNT(*), COUNT(DISTINCT id) FROM inbox WHERE type = 'call'")[0]
        kinds = dict(self.query("SELECT kind, COUNT(*) FROM events WHERE kind IN ('pressed', 'reminder') GROUP BY kind"))
        calls = self.query("SELECT COUNT(*) FROM calls")[0][0]
        return {"events": inbox[0], "distinct": inbox[1], "pressed": kinds.get("pressed", 0),
                "reminders": kinds.get("reminder", 0), "calls": calls, "created": self.created()}

    def wait_all_counted(self, timeout: float = 60) -> dict:
        n = len(self.presses)
        try:
            wait_until(lambda: self.counted()["events"] >= n, timeout=timeout, interval=0.2,
                       what=f"all {n} presses at the hub")
        except AssertionError as e:  # say where they are: not created, or created and not stored
            raise AssertionError(f"{e}; the hub has {self.counted()}; the devices' outboxes hold "
                                 f"{self.unsent()} unsent") from None
        time.sleep(1.0)  # anything extra (a duplicate) would show now
        return self.counted()

    def created(self) -> int:
        """Events the devices created (written to their outboxes), whatever became of them."""
        total = 0
        for d in self.sim.devices:
            with sqlite3.connect(f"file:{d.outbox.path}?mode=ro", uri=True) as db:
                row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
                total += row[0] if row else 0
        return total

    def unsent(self) -> int:
        return sum(len(d.outbox) for d in self.sim.devices)

    # -- consistency ----------------------------------------------------------------------
    def lamps_match_calls(self) -> list[str]:
        """Rooms whose retained lamp disagrees with the hub's open calls (empty: all right)."""
        from tests.helpers import Recorder
        rec = Recorder(self.broker.url, ["callbell/test-store/room/+/lamp"])
        time.sleep(0.5)
        open_calls = {c["room"]: c for c in self.hub.api.ok("GET", "/api/v1/calls?status=open")}
        wrong = []
        for room in self.rooms:
            lamp = rec.last(f"callbell/test-store/room/{room}/lamp") or {}
            call = open_calls.get(room)
            want = "idle"
            if call and call["status"] == "open":
                want = "overdue" if call["overdue"] else "called"
            elif call and call["status"] == "acknowledged":
                want = "acknowledged"
            if lamp.get("state") != want:
                wrong.append(f"{room}: lamp {lamp.get('state')} but call {call and call['status']}")
        rec.close()
        return wrong

    def close(self) -> None:
        self.sim.stop()
        self.hub.stop()
        self.broker.stop()
