"""``callbell demo``: the whole system on one machine, with a store that runs itself.

- the embedded Mosquitto broker and a SQLite database in ``var/demo``;
- the hub, serving the dashboard;
- virtual devices (mock pins) for every room of ``examples/store.toml``;
- simulated shoppers who press, sometimes press again, sometimes hold to cancel;
- simulated associates who acknowledge on their "phone" (the HTTP API), walk over, press the
  staff button at the door (a mock pin), serve, and press it again when done; now and then
  one is on a break, so calls also go overdue.
"""
from __future__ import annotations

import json
import logging
import random
import threading
import urllib.request
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from callbell.broker import free_port
from app.signals import wait_for_signal
from app.simulate import Simulation
from hub.config import StoreConfig, load_store_config
from hub.service import HubService

log = logging.getLogger("callbell.demo")

#: The demo store: examples/store.toml, installed with the package as ``callbell.examples``
#: (pyproject.toml), so a wheel's ``callbell demo`` has it as well as a checkout's.
EXAMPLE_STORE = resources.files("callbell.examples") / "store.toml"

#: Mean seconds between two shoppers pressing, anywhere in the store, at pace 1.
MEAN_ARRIVAL_S = 20.0
#: Seconds an associate takes to react to an alert, walk to the room, and serve (ranges).
REACT_S = (3.0, 30.0)
WALK_S = (5.0, 35.0)
SERVE_S = (20.0, 90.0)
#: Chance that a shopper presses again after waiting a minute, and that she cancels.
REMIND_P = 0.3
CANCEL_P = 0.05
#: Chance per minute that an associate takes a short break (makes calls go overdue).
BREAK_P = 0.08


@dataclass
class Associate:
    id: str
    busy_until: float = 0.0
    call: str | None = None
    stage: str = "free"  # free | walking | serving | break


class Demo:
    def __init__(self, port: int = 8080, data: Path = Path("var/demo"), pace: float = 1.0,
                 fresh: bool = False, config: Path | Traversable = EXAMPLE_STORE,
                 seed: int | None = None):
        self.data = data
        self.port = port
        self.pace = max(pace, 0.05)
        self.rng = random.Random(seed)
        with resources.as_file(config) as path:  # a real file even from a zipped install
            self.config: StoreConfig = load_store_config(path)
        self.config.database.path = data / "callbell.db"
        self.config.mqtt.embedded_port = free_port()
        if fresh:
            for f in data.glob("*.db*"):
                f.unlink()
        self._stop = threading.Event()

    def run(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        self.hub = HubService(self.config, http_port=self.port, broker_dir=self.data / "broker")
        ready = threading.Event()
        server = threading.Thread(target=self.hub.run, args=(ready,), name="hub", daemon=True)
        server.start()
        if not ready.wait(30):
            raise RuntimeError("the hub did not start; see the log above")
        self.sim = Simulation(self.config, self.hub.broker_url, self.data / "devices")
        self.sim.start()
        workers = [threading.Thread(target=self._shoppers, daemon=True, name="shoppers"),
                   threading.Thread(target=self._associates, daemon=True, name="associates")]
        for w in workers:
            w.start()
        url = f"http://localhost:{self.port}/"
        print(f"\n  Callbell demo is running: open {url}\n"
              f"  {len(self.config.rooms)} rooms on {len(self.sim.devices)} simulated devices, "
              f"broker {self.hub.broker_url}, data in {self.data}/\n"
              f"  API: {url}docs   Press Ctrl-C to stop.\n", flush=True)
        try:
            wait_for_signal()
        finally:
            print("stopping…", flush=True)
            self._stop.set()
            self.sim.stop()
            # The hub's own run() stops everything once its server has finished its requests.
            self.hub.stream.close()
            if self.hub.server:
                self.hub.server.should_exit = True
            server.join(timeout=15)
            if server.is_alive():
                self.hub.stop()

    # -- the simulated people ---------------------------------------------------------------
    def _wait(self, seconds: float) -> bool:
        return self._stop.wait(seconds / self.pace)

    def _api(self, method: str, path: str, body: dict | None = None):
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/v1{path}", method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return json.loads(r.read())
        except (OSError, ValueError) as e:
            log.debug("demo API call %s %s failed: %s", method, path, e)
            return None

    def _press(self, room: str, role: str, seconds: float = 0.08) -> None:
        try:
            self.sim.console.push(room, role, seconds)
        except KeyError as e:
            log.debug("demo press failed: %s", e)

    def _shoppers(self) -> None:
        rooms = [r for r in self.config.rooms]
        while not self._wait(self.rng.expovariate(1.0 / MEAN_ARRIVAL_S)):
            open_rooms = {c["room"]: c for c in (self._api("GET", "/calls?status=open") or [])}
            free = [r for r in rooms if r.id not in open_rooms]
            for room, call in open_rooms.items():
                if call["status"] == "open" and self.rng.random() < REMIND_P / 3:
                    self._press(room, "call")  # "hello? still waiting"
            if not free:
                continue
            room = self.rng.choice(free)
            role = "size" if "size" in room.reasons and self.rng.random() < 0.25 else "call"
            self._press(room.id, role)
            if self.rng.random() < CANCEL_P:
                threading.Timer(8.0 / self.pace, self._press,
                                args=(room.id, "call", 2.3)).start()

    def _associates(self) -> None:
        staff = [Associate(a.id) for a in self.config.associates if a.role == "associate"]
        clock = self.hub.clock
        while not self._wait(1.0):
            now = clock.time()
            calls = {c["id"]: c for c in (self._api("GET", "/calls?status=open") or [])}
            for a in staff:
                if a.stage == "break" and now >= a.busy_until:
                    a.stage = "free"
                if a.stage == "free" and self.rng.random() < BREAK_P / 60 * self.pace:
                    a.stage, a.busy_until = "break", now + self.rng.uniform(60, 180) / self.pace
                call = calls.get(a.call) if a.call else None
                if a.stage in ("walking", "serving") and call is None:
                    a.stage, a.call = "free", None  # the call ended some other way
                elif a.stage == "walking" and now >= a.busy_until:
                    self._press(call["room"], "presence")  # at the door: answered
                    a.stage, a.busy_until = "serving", now + self.rng.uniform(*SERVE_S) / self.pace
                elif a.stage == "serving" and now >= a.busy_until:
                    self._press(call["room"], "presence")  # leaving: done
                    a.stage, a.call = "free", None
            free = [a for a in staff if a.stage == "free"]
            for c in sorted(calls.values(), key=lambda c: c["pressed_ts"]):
                if c["status"] != "open" or not free:
                    continue
                if now - c["pressed_ts"] < self.rng.uniform(*REACT_S) / self.pace:
                    continue
                # Only someone the hub alerted goes: the escalation ladder decides who, as on a
                # real floor (an associate on a simulated break misses theirs, and the ladder
                # moves on to the next).
                alerted = {x["associate"] for x in c.get("alerted", [])}
                candidates = [a for a in free if a.id in alerted]
                if not candidates:
                    continue
                a = self.rng.choice(candidates)
                free.remove(a)
                if self._api("POST", f"/calls/{c['id']}/acknowledge", {"associate": a.id, "source": "phone"}):
                    a.stage, a.call = "walking", c["id"]
                    a.busy_until = now + self.rng.uniform(*WALK_S) / self.pace
