"""Faults injected into a running store (hub process, Mosquitto, simulated devices), and the
presses counted afterwards: none may be lost, none counted twice. Opt in to longer runs with
--soak."""
import signal
import time

import pytest

from callbell.protocol import EVENT_EXPIRY_S, Event
from app.simulate import Simulation
from tests.chaos.flaky import FlakyLink
from tests.chaos.store import Store
from tests.helpers import Page, Recorder, wait_until


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path)
    yield s
    s.close()


def rounds(request, normal: int, soak: int) -> int:
    return soak if request.config.getoption("--soak") else normal


def test_hub_killed_repeatedly_during_a_stream_of_presses_loses_nothing(store, chaos, request):
    kills = rounds(request, 4, 20)
    page = Page(store.config.http.port)  # a dashboard, reconnecting to each new hub
    load = store.press_for(seconds=kills * 3.0, every_s=0.04)
    for _ in range(kills):
        time.sleep(1.5)
        store.hub.kill9()
        time.sleep(0.5)
        store.hub.start()
        wrong = store.lamps_match_calls()
        assert not wrong, f"after a restart: {wrong}"
    load.join()
    got = store.wait_all_counted()
    chaos.say(f"injected {kills} × kill -9 of the hub during {len(store.presses)} presses; "
              f"counted {got['events']} events ({got['distinct']} distinct), {got['calls']} calls")
    assert got["events"] == got["distinct"] == len(store.presses) == got["pressed"] + got["reminders"]
    assert got["calls"] == got["pressed"]  # one call per first press of a waiting room
    assert not store.lamps_match_calls()
    # The page was shown changes before their commit; each new hub sent it a fresh snapshot,
    # so it shows exactly the stored calls, whatever the killed hubs had shown it.
    stored = lambda: {c["room"]: c["status"] for c in store.hub.api.ok("GET", "/api/v1/calls?status=open")}
    wait_until(lambda: page.rooms() == stored(), timeout=15,
               what=f"the page to show the stored calls (page {page.rooms()}, stored {stored()})")
    chaos.say(f"a page connected {page.connections} times, got {page.snapshots} snapshots and "
              f"{page.resumes} resumes, and shows the {len(page.calls)} stored open calls")
    assert page.snapshots >= kills + 1
    page.close()


def test_mosquitto_killed_repeatedly_during_1000_presses_loses_nothing(store, chaos, request):
    presses = rounds(request, 1000, 5000)
    load = store.press_for(seconds=presses * 0.025, every_s=0.01)
    kills = 0
    while load.is_alive():
        time.sleep(2.0)
        store.broker.kill()
        kills += 1
        time.sleep(0.3)
        store.broker.start()
    got = store.wait_all_counted(timeout=90)
    chaos.say(f"injected {kills} × kill -9 of Mosquitto (shipped config) during {len(store.presses)} presses "
              f"({got['created']} events created by the devices); counted {got['events']} events, "
              f"{got['distinct']} distinct")
    assert got["events"] == got["distinct"] == got["created"] == len(store.presses)


def test_a_broker_unreachable_for_60_s_loses_no_press_and_dates_each_right(store, chaos, request):
    outage = rounds(request, 60, 300)
    store.broker.kill()
    end = time.monotonic() + outage
    while time.monotonic() < end:
        store.press()
        time.sleep(outage / 40)
    store.broker.start()
    got = store.wait_all_counted(timeout=60)
    logged = sorted(t for (t,) in store.query("SELECT at FROM events WHERE kind IN ('pressed', 'reminder')"))
    truth = sorted(t for _, t in store.presses)
    worst = max(abs(a - b) for a, b in zip(logged, truth))
    chaos.say(f"injected a {outage} s broker outage with {len(store.presses)} presses; counted "
              f"{got['events']} events, worst press-time error {worst:.2f} s")
    assert got["events"] == got["distinct"] == len(store.presses)
    assert worst < 1.0


def test_a_partitioned_lossy_link_delivers_every_press_once(tmp_path, chaos):
    store = Store(tmp_path / "s")
    link = FlakyLink(store.broker.port, loss=0.2)
    store.sim.stop()
    store.sim = Simulation(store.config, link.url, tmp_path / "lossy-devices", debounce_ms=5, min_press_ms=5)
    store.sim.start()
    try:
        wait_until(lambda: all(d.link.connected for d in store.sim.devices), timeout=15, what="devices via the link")
        for _ in range(3):
            load = store.press_for(seconds=3, every_s=0.05)
            load.join()
            link.partition()
            for _ in range(10):
                store.press()
            time.sleep(2.0)
            link.heal()
        got = store.wait_all_counted(timeout=60)
        chaos.say(f"injected 3 partitions and 20 % loss ({link.delayed_chunks} chunks held back) over "
                  f"{len(store.presses)} presses; counted {got['events']} events, {got['distinct']} distinct")
        assert got["events"] == got["distinct"] == len(store.presses)
    finally:
        link.close()
        store.close()


def test_a_hub_stalled_for_5_s_processes_everything_after_it_resumes(store, chaos):
    load = store.press_for(seconds=8, every_s=0.03)
    time.sleep(1.0)
    store.hub.proc.send_signal(signal.SIGSTOP)
    time.sleep(5.0)
    store.hub.proc.send_signal(signal.SIGCONT)
    load.join()
    got = store.wait_all_counted()
    log = (store.tmp / "broker" / "mosquitto.log").read_text()
    chaos.say(f"injected a 5 s SIGSTOP of the hub during {len(store.presses)} presses; counted "
              f"{got['events']} events; broker queue drops logged: {log.count('dropped')}")
    assert got["events"] == got["distinct"] == len(store.presses)
    assert "dropped" not in log.lower()


def test_replayed_events_count_once(store, chaos):
    device = Recorder(store.broker.url, [], client_id="replayer")
    sent, replays = 0, 0
    for i in range(400):
        room = store.rooms[i % len(store.rooms)]
        # A device per room, as a store has: one device at this pace would be a storm (hub/mqtt_edge.py).
        e = Event(id=f"replayer-{room}-{i:04d}", device=f"replayer-{room}", type="call", expiry_s=EVENT_EXPIRY_S)
        device.publish(f"callbell/test-store/room/{room}/event", e.to_json())
        sent += 1
        if store.rng.random() < 0.10:
            device.publish(f"callbell/test-store/room/{room}/event", e.to_json())
            replays += 1
    device.close()
    wait_until(lambda: store.counted()["events"] >= sent, timeout=30, what="all events")
    time.sleep(1.0)
    got = store.counted()
    chaos.say(f"injected {replays} replays among {sent} events; counted {got['events']} events, "
              f"{got['pressed'] + got['reminders']} presses")
    assert got["events"] == sent and got["pressed"] + got["reminders"] == sent
