"""Troubles: faults of the system itself that reach a person (issue 27.1). The domain is pure
and driven with times passed in; the dispatcher's part uses a real SQLite file."""
from __future__ import annotations

import threading

import pytest

from callbell.clock import FakeClock
from callbell.protocol import Topics
from hub.dispatcher import Dispatcher
from hub.domain.call import DomainError, Room, Timing
from hub.domain.troubles import (REALERT_S, DeviceWatch, Expected, Troubles, pick_alerted, rebuild, text)
from hub.store import Reader
from tests.helpers import run_sql, wait_until

T0 = 1_765_000_000.0


# -- the pure domain -------------------------------------------------------------------------
def test_a_reported_fault_opens_one_trouble_and_a_repeat_changes_nothing():
    troubles = Troubles()
    opened = troubles.report("device_silent", "pi-1", T0, device="pi-1", detail={"rooms": ["r1"]})
    assert [t.kind for t in opened] == ["trouble_opened"]
    assert opened[0].call is None and opened[0].room == ""
    assert opened[0].detail["trouble"] == "t-000001" and opened[0].detail["kind"] == "device_silent"
    assert troubles.report("device_silent", "pi-1", T0 + 5, device="pi-1") == []
    assert troubles.is_open("device_silent", "pi-1")
    assert [t.id for t in troubles.open()] == ["t-000001"]


def test_the_same_key_of_another_kind_is_another_trouble():
    troubles = Troubles()
    troubles.report("device_silent", "pi-1", T0)
    troubles.report("storm", "pi-1", T0 + 1)
    assert [(t.id, t.kind) for t in troubles.open()] == [("t-000001", "device_silent"), ("t-000002", "storm")]


def test_clearing_closes_the_trouble_with_its_duration_and_clearing_again_does_nothing():
    troubles = Troubles()
    troubles.report("broker", "broker", T0)
    troubles.take_changed()
    cleared = troubles.clear("broker", "broker", T0 + 42.5)
    assert [t.kind for t in cleared] == ["trouble_cleared"] and cleared[0].detail["duration_s"] == 42.5
    [t] = troubles.take_changed()
    assert t.cleared_at == T0 + 42.5 and t.duration_s == 42.5 and not t.open
    assert troubles.clear("broker", "broker", T0 + 50) == []
    assert troubles.open() == []


def test_a_fault_that_comes_back_after_clearing_is_a_new_trouble():
    troubles = Troubles()
    troubles.report("broker", "broker", T0)
    troubles.clear("broker", "broker", T0 + 1)
    troubles.report("broker", "broker", T0 + 2)
    assert [t.id for t in troubles.open()] == ["t-000002"]


def test_an_unknown_kind_is_refused_with_the_kinds_named():
    with pytest.raises(DomainError) as e:
        Troubles().report("gremlins", "x", T0)
    assert e.value.code == "invalid" and "device_silent" in e.value.message


def test_acknowledging_names_who_took_it_on_and_is_idempotent_for_them_only():
    troubles = Troubles()
    troubles.report("database", "db", T0)
    [t] = troubles.acknowledge("t-000001", "maria", T0 + 20, "phone")
    assert (t.kind, t.actor, t.source) == ("trouble_acknowledged", "maria", "phone")
    assert troubles.acknowledge("t-000001", "maria", T0 + 21) == []
    with pytest.raises(DomainError) as e:
        troubles.acknowledge("t-000001", "ana", T0 + 22)
    assert e.value.code == "conflict"
    with pytest.raises(DomainError) as e:
        troubles.acknowledge("t-000099", "maria", T0)
    assert e.value.code == "not_found"


def test_alerting_rings_the_chosen_people_at_once_then_again_every_realert_s_until_acknowledged():
    troubles = Troubles()
    troubles.report("broker", "broker", T0)
    first = troubles.alert(["maria", "jo"], T0)
    assert [(t.kind, t.actor, t.detail["round"]) for t in first] == [
        ("trouble_alerted", "maria", 1), ("trouble_alerted", "jo", 1)]
    assert troubles.alert(["maria", "jo"], T0 + REALERT_S - 0.001) == []
    assert troubles.next_deadline() == T0 + REALERT_S
    again = troubles.alert(["maria"], T0 + REALERT_S)
    assert [(t.actor, t.detail["round"]) for t in again] == [("maria", 2)]
    troubles.acknowledge("t-000001", "maria", T0 + REALERT_S + 1)
    assert troubles.alert(["maria"], T0 + 10 * REALERT_S) == []
    assert troubles.next_deadline() is None


def test_a_trouble_with_nobody_to_alert_waits_for_someone():
    troubles = Troubles()
    troubles.report("broker", "broker", T0)
    assert troubles.alert([], T0) == []
    assert [t.actor for t in troubles.alert(["maria"], T0 + 3)] == ["maria"]


def test_the_alert_role_on_shift_is_alerted_and_if_nobody_is_every_one_with_the_role():
    people = [("ana", "associate", "available"), ("maria", "manager", "off"), ("jo", "manager", "break"),
              ("lee", "manager", "available")]
    assert pick_alerted(people) == ["jo", "lee"]
    off = [("ana", "associate", "available"), ("maria", "manager", "off")]
    assert pick_alerted(off) == ["maria"]
    assert pick_alerted(people, role="associate") == ["ana"]
    assert pick_alerted([("ana", "associate", "available")]) == []


def test_the_event_log_rebuilds_open_and_cleared_troubles_and_ids_go_on_after_a_restore():
    troubles = Troubles()
    log = []
    log += troubles.report("device_silent", "pi-1", T0, device="pi-1", room="r1", detail={"rooms": ["r1"]})
    log += troubles.alert(["maria"], T0 + 1)
    log += troubles.acknowledge("t-000001", "maria", T0 + 2)
    log += troubles.report("broker", "broker", T0 + 3)
    log += troubles.clear("broker", "broker", T0 + 4)
    rebuilt = rebuild(log)
    assert set(rebuilt) == {"t-000001", "t-000002"}
    t1 = rebuilt["t-000001"]
    assert (t1.device, t1.room, t1.detail, t1.acknowledged_by) == ("pi-1", "r1", {"rooms": ["r1"]}, "maria")
    assert t1.alerted == [{"associate": "maria", "at": T0 + 1}] and t1.open
    assert rebuilt["t-000002"].duration_s == 1.0

    again = Troubles()
    again.restore(rebuilt.values(), last_seq=2)
    assert [t.id for t in again.open()] == ["t-000001"]
    assert again.report("storm", "pi-2", T0 + 5)[0].detail["trouble"] == "t-000003"
    assert again.report("device_silent", "pi-1", T0 + 6) == [], "the restored trouble is still open"


def test_each_kind_has_a_sentence_for_people():
    troubles = Troubles()
    troubles.report("device_silent", "pi-1", T0, device="pi-1", detail={"rooms": ["r1", "r2"], "silent_s": 95})
    [t] = troubles.open()
    assert text(t) == "Device pi-1 has not been heard for 95 s (rooms r1, r2)"


def test_a_trouble_object_lists_only_the_latest_alerts_of_a_long_fault_and_counts_them_all():
    from zoneinfo import ZoneInfo
    from hub.views import TROUBLE_ALERTS_SHOWN, trouble_object
    troubles = Troubles()
    troubles.report("device_silent", "pi-1", T0, device="pi-1", detail={"rooms": ["r1"], "silent_s": 30})
    for i in range(100):  # 100 minutes nobody acknowledged
        troubles.alert(["maria"], T0 + i * REALERT_S)
    obj = trouble_object(troubles.open()[0], ZoneInfo("Europe/Berlin"))
    assert obj["alerts"] == 100 and len(obj["alerted"]) == TROUBLE_ALERTS_SHOWN
    assert obj["alerted"][-1] == {"associate": "maria", "at": "2025-12-06T08:25:40.000+01:00"}
    assert obj["since"] == "2025-12-06T06:46:40.000+01:00" and obj["text"].startswith("Device pi-1 has not")


# -- device supervision ----------------------------------------------------------------------
def watch(**devices) -> tuple[DeviceWatch, Troubles]:
    troubles = Troubles()
    return DeviceWatch({d: Expected(tuple(rooms), 10.0) for d, rooms in devices.items()}, troubles, T0), troubles


def test_a_device_not_heard_for_three_heartbeats_is_silent_and_hearing_it_clears_that():
    w, troubles = watch(pi1=["r1", "r2"])
    w.heard("pi1", T0 + 1)
    assert w.next_deadline() == T0 + 31
    assert w.check(T0 + 30.999) == []
    [opened] = w.check(T0 + 31)
    assert opened.kind == "trouble_opened" and opened.detail["kind"] == "device_silent"
    [t] = troubles.open()
    assert (t.device, t.room, t.detail["rooms"], t.detail["silent_s"]) == ("pi1", None, ["r1", "r2"], 30.0)
    assert w.check(T0 + 60) == [] and w.next_deadline() is None
    assert [x.kind for x in w.heard("pi1", T0 + 61)] == ["trouble_cleared"]
    assert troubles.open() == [] and w.next_deadline() == T0 + 91


def test_a_last_will_makes_a_device_silent_at_once():
    w, troubles = watch(pi1=["r1"])
    w.heard("pi1", T0)
    [opened] = w.offline("pi1", T0 + 2)
    assert opened.detail["kind"] == "device_silent" and opened.room == "r1"
    assert text(troubles.open()[0]) == "Device pi1 went offline (room r1)"


def test_a_configured_device_never_heard_since_the_start_is_a_trouble_after_the_same_grace():
    w, troubles = watch(pi1=["r1"], pi2=["r2"])
    w.heard("pi1", T0 + 1)
    assert w.next_deadline() == T0 + 30
    assert [t.detail["key"] for t in w.check(T0 + 30)] == ["pi2"]
    assert [t.kind for t in troubles.open()] == ["device_never_connected"]
    w.heard("pi2", T0 + 40)
    assert troubles.open() == []


def test_a_device_silent_before_a_restart_is_not_also_never_connected():
    troubles = Troubles()
    troubles.report("device_silent", "pi1", T0 - 100, device="pi1")
    w = DeviceWatch({"pi1": Expected(("r1",), 10.0)}, troubles, T0)
    assert w.next_deadline() is None and w.check(T0 + 60) == []
    assert [t.kind for t in troubles.open()] == ["device_silent"]
    w.heard("pi1", T0 + 61)
    assert troubles.open() == []


def test_without_configured_devices_a_device_heard_once_is_expected_from_then_on():
    troubles = Troubles()
    w = DeviceWatch({}, troubles, T0, adopt_heartbeat_s=5.0)
    assert w.check(T0 + 1000) == [], "nothing configured, nothing heard: nothing expected"
    w.heard("pi9", T0, room="r1")
    w.heard("pi9", T0 + 1, room="r2")
    [opened] = w.check(T0 + 16)
    assert opened.detail["kind"] == "device_silent" and troubles.open()[0].detail["rooms"] == ["r1", "r2"]
    w.offline("pi8", T0 + 17)
    assert [t.key for t in troubles.open()] == ["pi9", "pi8"], "one that goes offline is expected too"


def test_a_retired_device_is_not_expected_its_troubles_clear_and_it_is_unretired_when_heard():
    w, troubles = watch(pi1=["r1"])
    w.check(T0 + 30)
    troubles.report("stuck_line", "pi1/r1/call", T0 + 31, device="pi1", room="r1")
    out = w.retire("pi1", T0 + 32, actor="maria")
    assert [t.kind for t in out] == ["device_retired", "trouble_cleared", "trouble_cleared"]
    assert troubles.open() == [] and w.next_deadline() is None and w.check(T0 + 1000) == []
    assert w.status("pi1", T0 + 1000) == "retired"
    assert w.retire("pi1", T0 + 33) == []
    assert [t.kind for t in w.heard("pi1", T0 + 2000)] == ["device_unretired"]
    assert w.status("pi1", T0 + 2000) == "ok"
    with pytest.raises(DomainError):
        w.retire("nobody", T0)


# -- in the dispatcher -----------------------------------------------------------------------
class Collect:
    """A communicator that keeps every trouble it is sent."""

    def __init__(self):
        self.troubles: list[dict] = []
        self.got = threading.Event()

    def send(self, batch) -> None:
        self.troubles += batch.troubles.values()
        if batch.troubles:
            self.got.set()


def dispatcher(db, clock) -> Dispatcher:
    return Dispatcher(rooms=[Room("r1")], timing=Timing(), db_path=db, topics=Topics("callbell", "s"), clock=clock)


def trouble_events(db) -> list[dict]:
    return [e for e in Reader(db).iter_events() if e["kind"].startswith("trouble_")]


def test_a_trouble_reported_from_any_thread_is_stored_sent_and_taken_up_again_after_a_restart(tmp_path):
    db, clock = tmp_path / "db", FakeClock(T0)
    d, seen = dispatcher(db, clock), Collect()
    d.communicators = [seen]
    d.start()
    try:
        threading.Thread(target=d.report_trouble, args=("broker", "broker")).start()
        wait_until(lambda: seen.troubles, what="the trouble sent")
        assert seen.troubles[0]["id"] == "t-000001" and seen.troubles[0]["kind"] == "broker"
        wait_until(lambda: trouble_events(db), what="the trouble stored")
        [e] = trouble_events(db)
        assert e["call"] is None and e["kind"] == "trouble_opened"
        assert [t["id"] for t in d.open_troubles()] == ["t-000001"]
    finally:
        d.stop()

    again = dispatcher(db, clock)
    again.start()
    try:
        assert [t["id"] for t in again.open_troubles()] == ["t-000001"]
        again.report_trouble("storm", "pi-1", device="pi-1")
        wait_until(lambda: len(again.open_troubles()) == 2, what="a second trouble")
        assert again.open_troubles()[1]["id"] == "t-000002", "ids go on after a restart"
        again.clear_trouble("broker", "broker")
        wait_until(lambda: len(again.open_troubles()) == 1, what="the broker trouble cleared")
        fut = again.acknowledge_trouble("t-000002", "nobody")
        with pytest.raises(DomainError):
            fut.result(5)
    finally:
        again.stop()
    kinds = [e["kind"] for e in trouble_events(db)]
    assert kinds == ["trouble_opened", "trouble_opened", "trouble_cleared"]


#: Makes every write of the event log fail, as a full or damaged disk would.
NO_EVENTS = "CREATE TRIGGER no_events BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'injected: disk'); END;"


def test_a_trouble_reaches_the_communicators_while_nothing_can_be_stored_and_is_stored_once_it_can(tmp_path):
    db, clock = tmp_path / "db", FakeClock(T0)
    d, seen = dispatcher(db, clock), Collect()
    d.communicators = [seen]
    d.start()
    try:
        run_sql(db, NO_EVENTS)
        d.report_trouble("database", "db", detail={"error": "disk I/O error"})
        assert seen.got.wait(5), "the trouble was sent though its batch could not be stored"
        assert seen.troubles[0]["kind"] == "database" and trouble_events(db) == []
        assert [t["kind"] for t in d.open_troubles()] == ["database"]
        run_sql(db, "DROP TRIGGER no_events;")
        d.clear_trouble("database", "db")
        wait_until(lambda: len(trouble_events(db)) == 2, what="both transitions stored once the disk works")
        assert [e["kind"] for e in trouble_events(db)] == ["trouble_opened", "trouble_cleared"]
    finally:
        d.stop()


def test_a_trouble_command_still_queued_when_the_hub_stops_is_told_so(tmp_path):
    d = dispatcher(tmp_path / "db", FakeClock(T0))
    d.start()
    inside, release = threading.Event(), threading.Event()
    held = d.command(lambda floor, now: (inside.set(), release.wait(5), [])[2])
    assert inside.wait(5)
    d.report_trouble("broker", "broker")  # no one waits on this one
    fut = d.acknowledge_trouble("t-000001", "maria")
    d._put(None)  # stop()'s sentinel, in the same batch as them (stop() itself may take them one by one)
    release.set()
    held.result(5)
    error = fut.exception(5)
    assert isinstance(error, DomainError) and error.code == "unavailable"
    d.stop()


# -- configuration ---------------------------------------------------------------------------
STORE = '[store]\nid = "s1"\n\n[[rooms]]\nid = "r1"\n\n[[devices]]\nid = "pi-a"\nrooms = ["r1"]\n'


def test_the_troubles_section_has_defaults_and_a_bad_value_names_its_line_and_key(tmp_path):
    from callbell.settings import ConfigError
    from hub.config import load_store_config
    path = tmp_path / "store.toml"
    path.write_text(STORE)
    c = load_store_config(path)
    assert (c.troubles.alert_role, c.troubles.device_heartbeat_s, c.troubles.history_days) == ("manager", 10.0, 7)
    assert c.devices[0].heartbeat_s is None
    path.write_text(STORE + 'heartbeat_s = 2.5\n\n[troubles]\nalert_role = "associate"\n')
    c = load_store_config(path)
    assert c.troubles.alert_role == "associate" and c.devices[0].heartbeat_s == 2.5
    for bad, where in (('[troubles]\nalert_role = "boss"\n', "line 11: troubles.alert_role"),
                       ('[troubles]\ndevice_heartbeat_s = 0\n', "line 11: troubles.device_heartbeat_s"),
                       ('heartbeat_s = -1\n', "line 10: devices[0].heartbeat_s")):
        path.write_text(STORE + bad)
        with pytest.raises(ConfigError) as e:
            load_store_config(path)
        assert where in str(e.value), str(e.value)
