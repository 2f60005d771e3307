"""A chain on one machine for tests and benchmarks: a real RabbitMQ node configured by
``callbell chain broker-config`` (TLS for the stores, per-store accounts), the consumer into a
real chDB, and stores made of a real Mosquitto bridged out with the generated section and a
real hub process with ``[chain] enabled``."""
from __future__ import annotations

import csv
import io
import random
import shutil
import tempfile
import threading
import time
from pathlib import Path

from callbell.broker import Broker, free_port
from callbell.chain_wire import ChainTopics
from callbell.mqtt import MqttLink
from chain.broker_config import CentralPlan, write_chain_broker_config
from chain.config import ChainConfig
from chain.consumer import Consumer
from chain.rabbit_node import RabbitNode
from chain.warehouse import ChdbWarehouse
from hub.config import load_store_config
from tests.helpers import HubProcess, wait_until, write_store


def chain_config(stores: list[str], regions: dict[str, str] | None = None, users: list[dict] = ()) -> ChainConfig:
    regions = regions or {s: "north" for s in stores}
    return ChainConfig.model_validate({
        "chain": {"id": "acme", "name": "ACME"}, "http": {"demo": not users},
        "regions": [{"id": r} for r in sorted(set(regions.values()))],
        "stores": [{"id": s, "name": s.title(), "region": regions[s]} for s in stores], "users": list(users)})


class Central:
    """RabbitMQ (in a folder the rabbitmq user may enter: not under pytest's 0700 tmp) and,
    with ``consume``, the consumer into chDB at ``warehouse_dir``."""

    def __init__(self, config: ChainConfig, warehouse_dir: Path):
        self.config = config
        self.folder = Path(tempfile.mkdtemp(prefix="callbell-rabbit-"))
        self.tls_port, self.local_port = free_port(), free_port()
        self.plan = CentralPlan(out=self.folder, host="localhost", addresses=(f"127.0.0.1:{self.tls_port}",),
                                tls_port=self.tls_port, local_port=self.local_port,
                                store_ca=str(self.folder / "certs" / "ca.crt"))
        write_chain_broker_config(config, self.plan, certs=True)
        self.node = RabbitNode(self.folder, (self.folder / "rabbitmq.conf").read_text(), mqtt_port=self.local_port)
        self.warehouse_dir = warehouse_dir
        self.warehouse: ChdbWarehouse | None = None
        self.consumer: Consumer | None = None

    @property
    def url(self) -> str:
        return (self.folder / "central.env").read_text().split("CALLBELL_CHAIN_MQTT_URL=", 1)[1].strip()

    def bridge(self, store: str) -> str:
        return (self.folder / "stores" / store / "chain-bridge.conf").read_text()

    def start(self, consume: bool = True) -> "Central":
        self.node.start()
        if consume:
            self.warehouse = ChdbWarehouse(self.warehouse_dir)
            self.warehouse.create_schema()
            self.consumer = Consumer(self.config, self.warehouse, self.url).start()
            assert self.consumer.link.wait_connected(15), "consumer did not connect to RabbitMQ"
        return self

    def counts(self) -> dict[str, tuple[int, int, int]]:
        """store → (events, distinct seqs, highest seq) held by the warehouse."""
        return {s: (int(n), int(d), int(m)) for s, n, d, m in self.warehouse.rows(
            "SELECT store, count(), uniqExact(seq), max(seq) FROM events GROUP BY store")}

    def stop(self) -> None:
        if self.consumer:
            self.consumer.stop()
        self.node.stop()
        if self.warehouse:
            self.warehouse.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class Store:
    """A store bridged to ``central``: Mosquitto (with the generated bridge section) and the hub
    as its own process, with a device-event driver."""

    def __init__(self, tmp: Path, store_id: str, central: Central, resend_after_s: float = 3.0, rooms: int = 4):
        self.id = store_id
        self.tmp = tmp
        self.broker = Broker(tmp / "broker", extra_config=central.bridge(store_id))
        self.broker.start()
        self.store_file = write_store(tmp / "store.toml", broker_url=self.broker.url, http_port=free_port(),
                                      rooms=rooms, store_id=store_id, flood=True,
                                      extra=f"\n[chain]\nenabled = true\nresend_after_s = {resend_after_s}\n")
        self.config = load_store_config(self.store_file)
        self.hub = HubProcess(self.store_file, self.config.http.port, tmp / "hub.log").start()
        self.rooms = [r.id for r in self.config.rooms]
        self.sent_events = 0
        self.device = MqttLink(self.broker.url, f"driver-{store_id}")
        self.device.start()
        assert self.device.wait_connected(10)
        self._n = 0

    def call(self, rng: random.Random) -> None:
        """One call, as devices report it: a press (pressed ``age`` ago), then its outcome."""
        room = self.rooms[self._n % len(self.rooms)]
        self._n += 1
        kind = rng.random()
        if kind < 0.04:    # nobody came within the expiry: missed at once
            self._event(room, "call", age_ms=1_000_000)
        elif kind < 0.12:  # the shopper held the button
            self._event(room, "call", age_ms=rng.uniform(0, 20_000))
            self._event(room, "cancel")
        else:              # answered after the press's age (a few seconds to over the standard)
            self._event(room, "call", age_ms=rng.uniform(1_000, 150_000))
            self._event(room, "presence")

    def _event(self, room: str, kind: str, age_ms: float = 0) -> None:
        import json
        self.sent_events += 1
        payload = {"v": 1, "id": f"pi-test-{self.id}-{self.sent_events}", "device": "pi-test", "type": kind,
                   "age_ms": age_ms, "at": time.time()}
        self.device.publish(f"callbell/{self.id}/room/{room}/event", json.dumps(payload).encode(), qos=1)

    def hub_counts(self) -> tuple[int, int]:
        """(device events the hub acted on, its last event seq)."""
        import sqlite3
        with sqlite3.connect(f"file:{self.config.database.path}?mode=ro", uri=True, timeout=10) as db:
            inbox = db.execute("SELECT COUNT(*) FROM inbox").fetchone()[0]
            last = db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        return inbox, last

    def wait_hub_has_all(self, timeout: float = 120) -> None:
        wait_until(lambda: self.hub_counts()[0] >= self.sent_events, timeout, 0.2,
                   f"store {self.id}'s hub to act on all {self.sent_events} device events")

    def calls_csv(self) -> list[dict]:
        status, body = self.hub.api.get("/api/v1/calls.csv")
        assert status == 200, body
        return list(csv.DictReader(io.StringIO(body)))

    def kill_broker(self) -> None:
        self.broker.kill()

    def restart_broker(self) -> None:
        self.broker.start()

    def stop(self) -> None:
        self.device.stop()
        self.hub.stop()
        self.broker.stop()


def drive(stores: list[Store], calls: int, seed: int = 5, pause: dict | None = None,
          every_s: float = 0.0) -> threading.Thread:
    """Make ``calls`` calls, spread over ``stores`` in turn, in the background. ``pause``: a
    store id → threading.Event; while it is clear, that store's turns go to the others."""
    rng = random.Random(seed)

    def run():
        turn = 0
        for _ in range(calls):
            while True:  # the next store whose gate is open (a paused store's turn goes on)
                s = stores[turn % len(stores)]
                turn += 1
                gate = (pause or {}).get(s.id)
                if gate is None or gate.is_set():
                    break
            s.call(rng)
            if every_s:
                time.sleep(every_s)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


__all__ = ["Central", "Store", "chain_config", "drive", "ChainTopics"]
