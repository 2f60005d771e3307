"""No device can silence or stall another (issue 28): the MQTT edge under attack, with a real
Mosquitto on the generated config (TLS, one account per device), a real hub process and its
SQLite file; and the pure parts (token buckets, the inbox's migration, the refusal caps)."""
from __future__ import annotations

import getpass
import json
import sqlite3
import time
from pathlib import Path

import pytest

from callbell.broker import Broker, free_port
from callbell.mqtt import BrokerAddress
from callbell.protocol import EVENT_EXPIRY_S, MAX_AGE_MS, Topics
from hub.domain.admission import DEVICE_BURST, Admission
from hub.store import Writer
from hub.store.writer import REJECTED_MAX_ROWS
from tests.helpers import HubProcess, Recorder, event, wait_until, write_store
from tests.test_broker_security import SecuredBroker, callbell, link, load_device_url
from app.broker_config import device_user

STORE = "edge-store"
TOPICS = Topics("callbell", STORE)
#: "pi" is a prefix of "pi-b": every id pi-b makes also begins with "pi-" — the case where only
#: per-device de-duplication keeps one device from swallowing the other's presses.
DEVICES = """
[[devices]]
id = "pi"
rooms = ["room-1"]

[[devices]]
id = "pi-b"
rooms = ["room-2"]

[[devices]]
id = "pi-c"
rooms = ["room-3"]
"""
ARRIVE_S = 10.0


class EdgeStore:
    """broker-config's files for DEVICES, Mosquitto on them, and the hub signed in as itself."""

    def __init__(self, root: Path):
        self.root = root
        self.tls_port, self.local_port, self.http_port = free_port(), free_port(), free_port()
        out = root / "broker"
        out.mkdir()
        store = write_store(root / "store.toml", broker_url=None, http_port=self.http_port, store_id=STORE)
        store.write_text(store.read_text() + DEVICES)
        r = callbell("broker-config", "--config", str(store), "--out", str(out), "--host", "localhost",
                     "--tls-port", str(self.tls_port), "--local-port", str(self.local_port),
                     "--data", str(root / "data"), "--user", getpass.getuser(), "--make-certs")
        assert r.returncode == 0, r.stderr
        self.out, self.store = out, store
        self.broker = SecuredBroker(out / "mosquitto.conf", root / "run", self.local_port).start()
        hub_url = (out / "hub.env").read_text().split("CALLBELL_MQTT_URL=", 1)[1].strip()
        self.hub = HubProcess(store, self.http_port, root / "hub.log", env={"CALLBELL_MQTT_URL": hub_url}).start()

    def device(self, device: str, subscriptions=(), got: list | None = None):
        pw = BrokerAddress.parse(load_device_url(self.out / "devices" / f"{device}.toml")).password
        url = f"mqtts://{device_user(device)}:{pw}@localhost:{self.tls_port}?ca={self.out / 'certs' / 'ca.crt'}"
        lk = link(url, f"test-{device}", [(t, 1) for t in subscriptions], got)
        assert lk.wait_connected(ARRIVE_S)
        return lk

    def db(self, sql: str, *args) -> list:
        conn = sqlite3.connect(f"file:{self.root / 'callbell.db'}?mode=ro", uri=True)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def calls(self, room: str) -> list[tuple]:
        return self.db("SELECT id, status FROM calls WHERE room = ? ORDER BY seq", room)

    def metric(self, name: str, **labels) -> float:
        status, text = self.hub.api.get("/metrics")
        assert status == 200
        text = text if isinstance(text, str) else text.decode()
        want = [f'{k}="{v}"' for k, v in labels.items()]
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name + "{") or line.startswith(name + " ")
                   if all(w in line for w in want))

    def stop(self) -> None:
        self.hub.stop()
        self.broker.stop()


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    s = EdgeStore(tmp_path_factory.mktemp("edge"))
    yield s
    s.stop()


def lamp_of(got: list, room: str) -> dict | None:
    lamps = [json.loads(m.payload) for m in got if m.topic == TOPICS.lamp(room) and m.payload]
    return lamps[-1] if lamps else None


def payload(ident: str, device: str, type: str = "call", **extra) -> bytes:
    data = event(ident, type=type, device=device, **extra)
    data["id"] = ident  # exactly as given: these tests forge ids
    return json.dumps(data).encode()


# -- 1. ids belong to their device ----------------------------------------------------------------

def test_a_device_cannot_swallow_another_devices_presses_by_sending_their_ids_first(edge):
    got: list = []
    pi = edge.device("pi")
    pib = edge.device("pi-b", [TOPICS.lamp("room-2")], got)
    try:
        # pi's own ids may begin "pi-b-" ("pi-" is its prefix): it sends the ids pi-b uses next,
        # as cancels on its own idle room (no effect there, but remembered).
        for n in range(1, 21):
            pi.publish(TOPICS.event("room-1"), payload(f"pi-b-7f3c-{n:06d}", "pi", "cancel"), expiry_s=EVENT_EXPIRY_S)
        wait_until(lambda: edge.db("SELECT COUNT(*) FROM inbox WHERE device = 'pi'")[0][0] >= 20, ARRIVE_S,
                   what="pi's twenty cancels stored")
        pib.publish(TOPICS.event("room-2"), payload("pi-b-7f3c-000001", "pi-b"), expiry_s=EVENT_EXPIRY_S)
        lamp = wait_until(lambda: (lamp_of(got, "room-2") or {}).get("state") == "called" and lamp_of(got, "room-2"),
                          ARRIVE_S, what="pi-b's press lighting room-2")
        assert [c[0] for c in edge.calls("room-2") if c[1] == "open"] == [lamp["call"]]
        # Its own repeat is still a repeat.
        pib.publish(TOPICS.event("room-2"), payload("pi-b-7f3c-000002", "pi-b", "cancel"), expiry_s=EVENT_EXPIRY_S)
        pib.publish(TOPICS.event("room-2"), payload("pi-b-7f3c-000002", "pi-b", "cancel"), expiry_s=EVENT_EXPIRY_S)
        wait_until(lambda: edge.calls("room-2")[-1][1] == "cancelled", ARRIVE_S, what="the call cancelled")
        wait_until(lambda: edge.metric("callbell_mqtt_events_total", outcome="duplicate") >= 1, ARRIVE_S,
                   what="the repeated cancel counted as a duplicate")
    finally:
        pi.stop()
        pib.stop()


def test_an_event_whose_id_another_device_made_is_refused_and_only_its_sender_is_told(edge):
    b_got, c_got = [], []
    pib = edge.device("pi-b", [TOPICS.device_rejected("pi-b")], b_got)
    # pi-c asks for everything it might learn refusals from; the broker's ACL grants its own only.
    pic = edge.device("pi-c", [TOPICS.device_rejected("pi-c"), TOPICS.device_rejected("pi-b"),
                               TOPICS.hub_rejected, f"{TOPICS.base}/device/+/rejected"], c_got)
    try:
        pib.publish(TOPICS.event("room-2"), payload("pi-c-0000-000001", "pi-b"), expiry_s=EVENT_EXPIRY_S)
        notice = wait_until(lambda: [json.loads(m.payload) for m in b_got], ARRIVE_S, what="pi-b told")[0]
        assert notice["topic"] == TOPICS.event("room-2")
        assert "must begin with its device's id 'pi-b-'" in notice["reason"]
        # Then a refusal of pi-c's own (a press for a room it does not serve): once that has
        # reached pi-c, pi-b's would have too, had pi-c been allowed to read it.
        pic.publish(TOPICS.event("room-3"), payload("pi-c-0000-000001", "pi-c", reason="coffee"),
                    expiry_s=EVENT_EXPIRY_S)
        wait_until(lambda: c_got, ARRIVE_S, what="pi-c told of its own refusal")
        assert {m.topic for m in c_got} == {TOPICS.device_rejected("pi-c")}
        assert "coffee" in json.loads(c_got[0].payload)["reason"]
        assert not [c for c in edge.calls("room-2") if c[1] == "open"]
    finally:
        pib.stop()
        pic.stop()


# -- 3. a press older than the outbox keeps events ------------------------------------------------

def test_a_press_older_than_the_outbox_keeps_events_is_refused_with_the_reason(edge):
    got: list = []
    pib = edge.device("pi-b", [TOPICS.device_rejected("pi-b")], got)
    try:
        eight_days_ms = 8 * 86_400_000
        assert eight_days_ms > MAX_AGE_MS
        pib.publish(TOPICS.event("room-2"), payload("pi-b-old0-000001", "pi-b", age_ms=eight_days_ms),
                    expiry_s=EVENT_EXPIRY_S)
        # Nor may a sender claim a longer wait at the broker than a device ever sets.
        pib.publish(TOPICS.event("room-2"), payload("pi-b-old0-000002", "pi-b", expiry_s=EVENT_EXPIRY_S * 52),
                    expiry_s=1)
        notices = wait_until(lambda: len(got) >= 2 and [json.loads(m.payload)["reason"] for m in got], ARRIVE_S,
                             what="both refusals told")
        assert "'age_ms' must be between 0 and 604800000 (a device's outbox keeps an event at most 7 days)" in notices[0]
        assert "'expiry_s' must be a whole number of seconds (1 to 604800)" in notices[1]
        assert edge.db("SELECT COUNT(*) FROM inbox WHERE id LIKE 'pi-b-old0-%'")[0][0] == 0
    finally:
        pib.stop()


# -- 4. retained events -----------------------------------------------------------------------

def test_a_retained_event_is_ignored_with_one_log_line_naming_its_device(edge):
    pib = edge.device("pi-b")
    try:
        before = edge.metric("callbell_mqtt_events_total", outcome="accepted")
        calls = len(edge.calls("room-2"))
        pib.publish(TOPICS.event("room-2"), payload("pi-b-ret0-000001", "pi-b"), retain=True, expiry_s=EVENT_EXPIRY_S)
        line = wait_until(lambda: [ln for ln in edge.hub.output().splitlines() if "retained event" in ln],
                          ARRIVE_S, what="the hub's log line")
        assert len(line) == 1 and "from device pi-b" in line[0] and TOPICS.event("room-2") in line[0]
        # A press sent after it is worked; the retained one never was.
        pib.publish(TOPICS.event("room-2"), payload("pi-b-ret0-000002", "pi-b", "presence"), expiry_s=EVENT_EXPIRY_S)
        wait_until(lambda: edge.metric("callbell_mqtt_events_total", outcome="accepted") >= before + 1, ARRIVE_S,
                   what="the presence after it worked")
        assert edge.metric("callbell_mqtt_events_total", outcome="accepted") == before + 1
        assert len(edge.calls("room-2")) == calls
        assert edge.db("SELECT COUNT(*) FROM inbox WHERE id = 'pi-b-ret0-000001'")[0][0] == 0
        assert edge.metric("callbell_mqtt_retained_ignored_total") == 1
    finally:
        pib.publish(TOPICS.event("room-2"), b"", retain=True)  # clear it off the broker
        pib.stop()


# -- 2. a storm is one trouble, bounded calls, and does not hold other rooms back ---------------

def test_a_storm_opens_one_storm_trouble_and_a_bounded_number_of_calls_while_other_rooms_are_served(edge):
    got: list = []
    pic = edge.device("pi-c")
    pib = edge.device("pi-b", [TOPICS.lamp("room-2")], got)
    flood = 2_000
    try:
        for n in range(flood):  # call, cancel, call, ...: the worst case for calls and alerts
            pic.publish(TOPICS.event("room-3"), payload(f"pi-c-st00-{n:06d}", "pi-c", "cancel" if n % 2 else "call"),
                        expiry_s=EVENT_EXPIRY_S)
            if n == flood // 2:  # mid-flood, another device's press
                pib.publish(TOPICS.event("room-2"), payload("pi-b-st00-000001", "pi-b"), expiry_s=EVENT_EXPIRY_S)
        wait_until(lambda: (lamp_of(got, "room-2") or {}).get("state") == "called", ARRIVE_S,
                   what="pi-b's press lighting room-2 during the storm")
        # Every message of the flood is either worked (within the burst, plus what its rate
        # refilled before the storm began) or refused over the rate, and counted.
        stored = lambda: edge.db("SELECT COUNT(*) FROM inbox WHERE device = 'pi-c'")[0][0]  # noqa: E731
        wait_until(lambda: edge.metric("callbell_mqtt_refused_total", device="pi-c", why="over_rate") + stored()
                   >= flood, 30, 0.2, what="every message of the flood worked or refused")
        assert stored() <= DEVICE_BURST * 1.25, stored()
        opened = wait_until(lambda: edge.db("SELECT detail FROM events WHERE kind = 'trouble_opened'"), ARRIVE_S,
                            what="the storm trouble")
        storms = [json.loads(d) for (d,) in opened if json.loads(d)["kind"] == "storm"]
        assert [s["key"] for s in storms] == ["pi-c"]
        assert edge.metric("callbell_storms_total") == 1
        calls = edge.calls("room-3")
        assert 1 <= len(calls) <= stored() // 2 + 1, len(calls)
        # Recorded per device and minute: a handful of rows, not two thousand.
        rows = edge.db("SELECT COUNT(*) FROM rejected WHERE source = 'pi-c'")[0][0]
        assert rows <= 6, rows
    finally:
        pic.stop()
        pib.stop()


# -- 5. the broker's dropped messages -----------------------------------------------------------

def test_the_hub_raises_broker_dropping_when_the_brokers_queue_for_it_overflows(tmp_path):
    broker = Broker(tmp_path / "broker", extra_config="max_queued_messages 20\nsys_interval 1").start()
    store = write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=free_port())
    hub = HubProcess(store, int(store.read_text().split("port = ")[1].split()[0]), tmp_path / "hub.log")
    from tests.helpers import Recorder
    device = Recorder(broker.url, [])
    try:
        hub.start()  # its persistent session: the broker queues for it while it is away
        hub.stop()
        for n in range(60):
            device.publish("callbell/test-store/room/room-1/event", event(f"drop-{n:04d}", "presence"))
        hub.start()
        opened = wait_until(lambda: [d for (d,) in sqlite3.connect(tmp_path / "callbell.db").execute(
            "SELECT detail FROM events WHERE kind = 'trouble_opened'") if json.loads(d)["kind"] == "broker_dropping"],
            ARRIVE_S, what="the broker_dropping trouble")
        assert len(opened) == 1
        _, text = hub.api.get("/metrics")
        text = text if isinstance(text, str) else text.decode()
        dropped = [ln for ln in text.splitlines() if ln.startswith("callbell_broker_dropped_messages ")]
        assert dropped and float(dropped[0].split()[1]) >= 40
        assert "the MQTT broker dropped" in hub.output()
    finally:
        device.close()
        hub.stop()
        broker.stop()


# -- the pure parts -----------------------------------------------------------------------------

def test_a_device_over_its_rate_storms_once_and_is_admitted_again_after_a_calm_minute():
    a = Admission(rate_per_s=10.0, burst=5, calm_s=60.0)
    verdicts = [a.admit("pi", 0.0) for _ in range(8)]
    assert [v.admitted for v in verdicts] == [True] * 5 + [False] * 3
    assert [v.storm_began for v in verdicts].count(True) == 1
    assert a.admit("pi-b", 0.0).admitted  # another device is untouched
    assert not a.admit("pi", 1.0).admitted  # within its rate now, but the storm holds
    assert a.calmed(59.0) == []
    over = a.calmed(60.5)
    assert [(o.device, o.refused) for o in over] == [("pi", 4)]
    assert a.admit("pi", 61.0).admitted and not a.storming("pi")


def test_an_inbox_keyed_by_id_alone_is_rebuilt_per_device_keeping_every_row(tmp_path):
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE inbox (id TEXT PRIMARY KEY, device TEXT, room TEXT, type TEXT, received_at FLOAT, "
                 "age_ms FLOAT, outcome TEXT)")
    conn.executemany("INSERT INTO inbox VALUES (?, ?, 'room-1', 'call', 1.0, 0, 'pressed')",
                     [("pi-b-0001", "pi"), ("pi-b-0002", "pi-b")])
    conn.commit()
    conn.close()
    w = Writer(db)
    try:
        assert w.seen("pi", "pi-b-0001") and w.seen("pi-b", "pi-b-0002")
        assert not w.seen("pi-b", "pi-b-0001")  # pi's id does not hide pi-b's press
        w.begin()
        w.remember("pi-b-0001", "pi-b", "room-2", "call", 2.0, 0, "pressed")
        w.commit()
    finally:
        w.close()
    rows = sqlite3.connect(db).execute("SELECT device, id FROM inbox ORDER BY device, id").fetchall()
    assert rows == [("pi", "pi-b-0001"), ("pi-b", "pi-b-0001"), ("pi-b", "pi-b-0002")]


def test_a_flood_of_one_channels_refusals_cannot_push_another_channels_out_of_the_table(tmp_path):
    w = Writer(tmp_path / "db")
    try:
        w.begin()
        for n in range(10):
            w.reject(1_000.0 + n, "http", "POST /api/v1/session", "wrong password", "", source="10.0.0.9")
        for n in range(REJECTED_MAX_ROWS + 50):
            w.reject(1_100.0, "mqtt", "callbell/s/room/r/event", "junk", "", source="pi")
        w.reject(1_100.0 + 3_600, "mqtt", "callbell/s/room/r/event", "junk", "", source="pi")  # prunes
        w.commit()
        counts = dict(w._conn.execute("SELECT channel, COUNT(*) FROM rejected GROUP BY channel").fetchall())
    finally:
        w.close()
    assert counts == {"http": 10, "mqtt": REJECTED_MAX_ROWS}


def test_the_mqtt_edge_section_of_the_security_docs_quotes_the_limits_in_the_code():
    import importlib
    import re
    from tests.helpers import ROOT
    section = (ROOT / "docs" / "security.md").read_text().split("\n## MQTT edge\n", 1)[1].split("\n## ", 1)[0]
    quoted = re.findall(r"`([A-Z][A-Z0-9_]+)` = ([0-9][0-9_.,]*)", section)
    assert len(quoted) >= 7, quoted
    modules = [importlib.import_module(m) for m in ("hub.domain.admission", "hub.mqtt_edge", "callbell.protocol",
                                                     "callbell.broker")]
    wrong = []
    for name, written in quoted:
        actual = next((getattr(m, name) for m in modules if hasattr(m, name)), None)
        if actual is None or float(written.replace(",", "").replace("_", "")) != float(actual):
            wrong.append(f"{name}: the docs say {written}, the code has {actual}")
    assert not wrong, wrong
