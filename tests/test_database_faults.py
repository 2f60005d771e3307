"""A damaged or full database never keeps the lamps dark (issue 27.5; docs/hub.md, "When the
database fails" and "Backup, restore and recovery").

Real files throughout: databases written by the hub's own code and damaged by overwriting
pages in their middle, a real small file system (tmpfs with a size limit) filled up, the real
hub as a process, a real Mosquitto and a device on gpiozero's mock pins.
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from callbell.broker import free_port
from hub.auth import digest, new_token
from hub.config import load_store_config
from hub.database_watch import next_check_at
from hub.history import Shop, seed_history
from hub.store import Credentials
from tests.helpers import ROOT, HubProcess, Recorder, event, running_hub, wait_until, write_store
from tests.test_device import Rig, make_config

PAGE = 4096


# -- real damage ---------------------------------------------------------------------------
def history(db: Path, calls: int = 3000) -> None:
    """A real database with ``calls`` closed calls and their events, written by the hub's code."""
    seed_history(db, Shop.default(ZoneInfo("Europe/Berlin")), calls, 30, until=time.time(), seed=7)


def leaf_pages(db: Path, table: str) -> list[tuple[int, int]]:
    """(page number, rows on it) of every leaf page of ``table`` (SQLite's dbstat)."""
    conn = sqlite3.connect(db)
    try:
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        assert size == PAGE
        return [(p, n) for p, n in conn.execute(
            "SELECT pageno, ncell FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno", (table,))]
    finally:
        conn.close()


def overwrite_pages(db: Path, pages: list[int]) -> None:
    """Write garbage over whole pages of the file (not its header): a damaged disk sector."""
    with open(db, "r+b") as f:
        for p in pages:
            f.seek((p - 1) * PAGE)
            f.write(os.urandom(PAGE))
        f.flush()
        os.fsync(f.fileno())


def damage_middle(db: Path, table: str = "events", count: int = 3) -> int:
    """Overwrite ``count`` leaf pages from the middle of ``table``; returns the rows they held."""
    pages = leaf_pages(db, table)
    middle = pages[len(pages) // 2: len(pages) // 2 + count]
    overwrite_pages(db, [p for p, _ in middle])
    return sum(n for _, n in middle)


def callbell(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, cwd=str(cwd),
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)


def count(db: Path, table: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def press_to_lamp_ms(recorder: Recorder, topics, room: str, presses: int = 10) -> list[float]:
    """Milliseconds from an event published for ``room`` to its lamp's change arriving back
    (a call, then a cancel, in turn), as a device would see it."""
    # Nagle off, as on a device (callbell.mqtt): plain paho holds small packets back up to 40 ms.
    recorder.client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    taken = []
    for i in range(presses):
        kind, want = ("call", "called") if i % 2 == 0 else ("cancel", "idle")
        before = len(recorder.of(topics.lamp(room)))
        started = time.perf_counter()
        # Straight to the client: Recorder.publish also waits for the broker's PUBACK, which
        # is no part of a press's way to its lamp.
        recorder.client.publish(topics.event(room), json.dumps(event(f"m-{room}-{time.time_ns()}", type=kind)), qos=1)
        wait_until(lambda: len(recorder.of(topics.lamp(room))) > before
                   and recorder.last(topics.lamp(room))["state"] == want, interval=0.0005, what=f"{room} {want}")
        taken.append((time.perf_counter() - started) * 1000)
    return taken


def alerted_after_s(api_get, started: float, key: str | None = None) -> float:
    """Seconds from ``started`` (perf_counter) until a database trouble has alerted someone:
    what a phone page rings on (it gets the trouble by its stream at the same moment)."""
    def alerted():
        return [t for t in api_get("/api/v1/troubles")["troubles"]
                if t["kind"] == "database" and t["alerted"] and key in (None, t["key"])]
    wait_until(alerted, timeout=15, interval=0.005, what="a database trouble alerted")
    return time.perf_counter() - started


def figures(name: str, trouble_s: float, lamps_ms: list[float]) -> None:
    lamps_ms = sorted(lamps_ms)
    print(f"FIGURES {name}: trouble alerted {trouble_s:.2f} s after the fault; other rooms' press -> lamp "
          f"median {lamps_ms[len(lamps_ms) // 2]:.1f} ms, max {lamps_ms[-1]:.1f} ms ({len(lamps_ms)} presses)")


@pytest.fixture
def device(tmp_path, broker):
    (tmp_path / "device").mkdir()
    rig = Rig(make_config(tmp_path / "device", broker.url))
    rig.device.start()
    assert rig.device.link.wait_connected(5)
    yield rig
    rig.device.stop()


def lit(rig: Rig, room: str) -> bool:
    """The lamp shows the hub's 'called' (not only the device's own first flash)."""
    return rig.state(room) == ("called", "called")


# -- at start ------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["pages in the middle", "the header"])
def test_a_hub_started_on_a_damaged_database_sets_it_aside_and_a_press_lights_the_lamp(
        tmp_path, broker, device, recorder, topics, where):
    store = write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=free_port())
    db = tmp_path / "callbell.db"
    history(db)
    if where == "the header":
        with open(db, "r+b") as f:
            f.write(os.urandom(100))
    else:
        damage_middle(db, "events")
        damage_middle(db, "calls", 1)
    damaged = db.read_bytes()
    started = time.perf_counter()
    hub = HubProcess(store, load_store_config(store).http.port, tmp_path / "hub.log").start()
    try:
        figures(f"damaged database at start ({where}; from the hub's start)",
                alerted_after_s(lambda path: hub.api.ok("GET", path), started),
                press_to_lamp_ms(recorder, topics, "room-3"))
        device.press("room-1")
        wait_until(lambda: lit(device, "room-1"), timeout=10, what="room-1's lamp lit by the hub")
        [aside] = tmp_path.glob("callbell.db.damaged-*[0-9Z]")
        assert aside.read_bytes() == damaged, "the damaged file is kept as it was, never deleted"
        health = hub.api.ok("GET", "/api/v1/health")
        print(f"{where}: set aside as {aside.name}; health {health['status']}: {health['database']}")
        assert health["status"] == "degraded" and health["database"]["set_aside"]["file"] == str(aside)
        [trouble] = [t for t in hub.api.ok("GET", "/api/v1/troubles")["troubles"] if t["kind"] == "database"]
        assert str(aside) in trouble["text"] and trouble["key"] == "set-aside"
        assert "THE DATABASE" in hub.output() and "IS DAMAGED" in hub.output()
        # It stays until someone has seen it, then health is ok again.
        hub.api.ok("POST", f"/api/v1/troubles/{trouble['id']}/acknowledge", {"associate": "maria"})
        wait_until(lambda: hub.api.ok("GET", "/api/v1/health")["status"] == "ok", timeout=10,
                   what="health ok once the set-aside file is acknowledged")
        [call] = hub.api.ok("GET", "/api/v1/calls?status=open")
        assert call["room"] == "room-1", "the new database holds the call made since"
    finally:
        hub.stop()


# -- while running -------------------------------------------------------------------------
def test_damage_found_while_running_answers_503_degrades_health_and_is_found_by_the_integrity_check(
        tmp_path, broker, recorder, topics):
    store = write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=free_port())
    db = tmp_path / "callbell.db"
    history(db)
    with running_hub(store) as hub:
        assert hub.api.ok("GET", "/api/v1/health")["status"] == "ok"
        damage_middle(db, "calls", 2)
        started = time.perf_counter()
        status, body = hub.api.get("/api/v1/calls?status=all&limit=5000")
        print(f"/api/v1/calls on a damaged file: {status} {body}")
        assert status == 503 and body["error"]["code"] == "database" and "damaged" in body["error"]["message"]
        health = hub.api.ok("GET", "/api/v1/health")
        assert health["status"] == "degraded" and health["db"] is False
        assert health["database"]["problem"].startswith("reading: damaged")
        figures("damage found while running (from the first request that meets it)",
                alerted_after_s(lambda path: hub.api.ok("GET", path), started, "db"),
                press_to_lamp_ms(recorder, topics, "room-3"))
        assert hub.database.check_now() is False, "the integrity check finds the damage"
        assert health_check_failed(hub.api.ok("GET", "/api/v1/health"))


def test_a_write_that_meets_damage_while_running_goes_on_in_memory_and_the_next_start_sets_the_file_aside(
        tmp_path, broker, recorder, topics):
    store = write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=free_port())
    db = tmp_path / "callbell.db"
    history(db)
    with running_hub(store) as hub:
        # The last page of the events' index by call: where the next call's events go, and a
        # page the hub has not read since it started (one it holds in its cache would not fail).
        overwrite_pages(db, [leaf_pages(db, "idx_events_call")[-1][0]])
        recorder.client.publish(topics.event("room-1"), json.dumps(event("e-dmg-1")), qos=1)
        wait_until(lambda: (recorder.last(topics.lamp("room-1")) or {}).get("state") == "called",
                   what="room-1 lit though its call cannot be written")
        wait_until(lambda: hub.dispatcher.db_problem, what="the dispatcher in memory")
        health = hub.api.ok("GET", "/api/v1/health")
        print(f"health after a write met damage: {health['database']}")
        assert health["status"] == "degraded" and health["database"]["problem"].startswith("writing: damaged")
        press_to_lamp_ms(recorder, topics, "room-2", 4)  # the other rooms go on, in memory
        assert recorder.last(topics.lamp("room-1"))["state"] == "called"
    # Stopped: the memory is not written into a damaged file. The next start sets it aside.
    with running_hub(store) as hub:
        assert hub.api.ok("GET", "/api/v1/health")["database"]["set_aside"]
        assert list(tmp_path.glob("callbell.db.damaged-*[0-9Z]"))


def test_an_export_of_a_damaged_log_answers_503_or_breaks_off_visibly_never_a_shorter_file(tmp_path, broker):
    store = write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=free_port())
    db = tmp_path / "callbell.db"
    history(db)
    pages = [p for p, _ in leaf_pages(db, "events")]
    with running_hub(store) as hub:
        overwrite_pages(db, [pages[len(pages) // 2]])  # midway: the export starts well
        with pytest.raises(http.client.IncompleteRead):
            with urllib.request.urlopen(f"{hub.api.base}/api/v1/events.csv", timeout=10) as r:
                assert r.status == 200
                r.read()
        assert hub.api.ok("GET", "/api/v1/health")["database"]["problem"].startswith("reading: damaged")
        overwrite_pages(db, [pages[1]])  # among its first rows: refused before it starts
        status, body = hub.api.get("/api/v1/events.csv")
        print(f"events.csv, damaged among its first rows: {status} {body}")
        assert status == 503 and body["error"]["code"] == "database"


def health_check_failed(health: dict) -> bool:
    return health["database"]["last_check"]["ok"] is False


def test_the_integrity_check_is_due_at_the_quiet_hour_in_the_store_zone():
    berlin = ZoneInfo("Europe/Berlin")
    evening = datetime(2026, 12, 6, 19, 0, tzinfo=berlin).timestamp()
    assert datetime.fromtimestamp(next_check_at(evening, berlin), berlin) == datetime(2026, 12, 7, 3, 30, tzinfo=berlin)
    night = datetime(2026, 12, 7, 2, 0, tzinfo=berlin).timestamp()
    assert datetime.fromtimestamp(next_check_at(night, berlin), berlin) == datetime(2026, 12, 7, 3, 30, tzinfo=berlin)
    # the night the clocks go forward (Europe: last Sunday of March, 02:00 → 03:00)
    spring = datetime(2027, 3, 27, 12, 0, tzinfo=berlin).timestamp()
    assert next_check_at(spring, berlin) - spring == pytest.approx(14.5 * 3600), "23 h that day"


# -- a full disk ---------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A 16 MB file system of our own (tmpfs with a size limit) to fill up."""
    folder = tmp_path / "small"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16M", "tmpfs", str(folder)], check=True)
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` to the last byte; returns the filler file."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def test_on_a_full_disk_lamps_keep_working_health_is_degraded_sign_in_is_503_and_all_is_stored_once_freed(
        tmp_path, broker, device, small_disk, recorder, topics):
    db = small_disk / "callbell.db"
    store = write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=free_port(), db=str(db),
                        demo=False)
    store.write_text(store.read_text().replace('id = "ana"\n', 'id = "ana"\npin = "1234"\n', 1))
    token = new_token()
    Credentials(db).add_token("monitor", "admin", digest(token), time.time())
    auth = {"Authorization": f"Bearer {token}"}
    hub = HubProcess(store, load_store_config(store).http.port, tmp_path / "hub.log", health_headers=auth).start()
    try:
        device.press("room-1")
        wait_until(lambda: lit(device, "room-1"), timeout=10, what="room-1 lit before the disk fills")
        filler = fill(small_disk)
        started = time.perf_counter()
        shown = len(recorder.of(topics.lamp("room-3")))
        print(f"disk full: {os.statvfs(small_disk).f_bavail} blocks free")
        figures("disk full while running (from the disk filling)",
                alerted_after_s(lambda path: hub.api.request("GET", path, headers=auth)[1], started),
                press_to_lamp_ms(recorder, topics, "room-3"))
        # The first of those presses met the full disk: its batch was worked again in memory at
        # once, so its lamp never went dark in between and its cancel came after it.
        assert [m["state"] for m in recorder.json_of(topics.lamp("room-3"))[shown:]] == ["called", "idle"] * 5

        device.press("room-2")
        wait_until(lambda: lit(device, "room-2"), timeout=10, what="room-2 lit on a full disk")
        status, health = hub.api.request("GET", "/api/v1/health", headers=auth)
        print(f"health on a full disk: {health}")
        assert health["status"] == "degraded" and "full" in health["database"]["problem"]
        [trouble] = wait_until(lambda: [t for t in hub.api.request("GET", "/api/v1/troubles", headers=auth)[1]["troubles"]
                                        if t["kind"] == "database"], what="a database trouble")
        assert "full" in trouble["text"] and trouble["alerted"], "the manager is alerted"
        status, body = hub.api.post("/api/v1/session", {"associate": "ana", "pin": "1234"})
        print(f"sign-in on a full disk: {status} {body}")
        assert status == 503 and body["error"]["code"] == "database" and "full" in body["error"]["message"]
        assert lit(device, "room-1"), "the call made before the disk filled still shows"

        filler.unlink()
        wait_until(lambda: hub.api.request("GET", "/api/v1/health", headers=auth)[1]["status"] == "ok", timeout=30,
                   what="health ok once space is freed")
        calls = hub.api.request("GET", "/api/v1/calls?status=open", headers=auth)[1]
        assert sorted(c["room"] for c in calls) == ["room-1", "room-2"], "the call made in memory is on disk"
        cancelled = hub.api.request("GET", "/api/v1/calls?status=closed&room=room-3", headers=auth)[1]
        assert len(cancelled) == 5 and {c["status"] for c in cancelled} == {"cancelled"}
        assert hub.api.post("/api/v1/session", {"associate": "ana", "pin": "1234"})[0] == 200
        assert not any(t["kind"] == "database" for t in
                       hub.api.request("GET", "/api/v1/troubles", headers=auth)[1]["troubles"])
    finally:
        hub.stop()
        print(hub.output()[-4000:])  # shown if the test fails


# -- backup, restore, recover ---------------------------------------------------------------
def test_a_backup_made_under_presses_restores_the_same_calls_and_the_same_push_key(tmp_path, broker, recorder, topics):
    store = write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=free_port())
    config = load_store_config(store)
    hub = HubProcess(store, config.http.port, tmp_path / "hub.log").start()
    key = hub.api.ok("GET", "/api/v1/push/key")
    pressing, sent = threading.Event(), []

    def press() -> None:
        n = 0
        while not pressing.is_set():
            n += 1
            recorder.publish(topics.event(f"room-{n % 3 + 1}"), event(f"e-{n}"))
            recorder.publish(topics.event(f"room-{n % 3 + 1}"), event(f"c-{n}", type="cancel"))
            sent.append(n)
            time.sleep(0.01)
    presser = threading.Thread(target=press)
    presser.start()
    try:
        wait_until(lambda: len(hub.api.ok("GET", "/api/v1/calls?status=all")) >= 20, timeout=20,
                   what="calls stored before the backup")
        made = callbell("backup", "--config", str(store), "--to", str(tmp_path / "backups"), cwd=tmp_path)
        assert made.returncode == 0, made.stderr
        print(made.stderr)
        refused = callbell("restore", "--config", str(store), "--from", made.stdout.strip(), cwd=tmp_path)
        assert refused.returncode == 2 and "stop it first" in refused.stderr, "no restore while the hub runs"
    finally:
        pressing.set()
        presser.join()
    backup = Path(made.stdout.strip())
    manifest = json.loads((backup / "manifest.json").read_text())
    assert {f["role"] for f in manifest["files"]} == {"database", "vapid-key", "config"}
    hub.stop()

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    restored = callbell("restore", "--config", str(fresh / "store.toml"), "--from", str(backup), cwd=fresh)
    assert restored.returncode == 0, restored.stderr
    print(restored.stderr)
    backed_up = {r[0]: r[1:] for r in sqlite3.connect(backup / "callbell.db").execute(
        "SELECT id, room, status, pressed_at FROM calls")}
    assert len(backed_up) == manifest["database"]["calls"] >= 20
    new_hub = HubProcess(fresh / "store.toml", config.http.port, tmp_path / "new-hub.log").start()
    try:
        calls = new_hub.api.ok("GET", "/api/v1/calls?status=all&limit=5000")
        assert {c["id"]: (c["room"], c["status"]) for c in calls} == {i: r[:2] for i, r in backed_up.items()}
        assert new_hub.api.ok("GET", "/api/v1/push/key") == key, "phones' subscriptions still match the key"
    finally:
        new_hub.stop()


def test_db_recover_saves_every_row_that_can_still_be_read(tmp_path):
    store = write_store(tmp_path / "store.toml", broker_url="mqtt://127.0.0.1:1", http_port=free_port())
    db = tmp_path / "callbell.db"
    history(db, 5000)
    events, calls = count(db, "events"), count(db, "calls")
    lost = damage_middle(db, "events", 3)
    with pytest.raises(sqlite3.DatabaseError, match="malformed"):
        sqlite3.connect(db).execute("SELECT * FROM events").fetchall()
    out = tmp_path / "recovered.db"
    done = callbell("db", "recover", "--config", str(store), "--from", str(db), "--to", str(out), cwd=tmp_path)
    print(done.stderr + done.stdout)
    assert done.returncode == 0, done.stderr
    assert count(out, "events") == events - lost, "every event off the damaged pages is saved"
    assert count(out, "calls") == calls
    assert "unreadable rowids" in done.stderr and f"{calls:,} rows saved" in done.stderr
    # The recovered file is a database the hub runs on.
    restored = callbell("restore", "--config", str(store), "--from", str(out), cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    assert count(db, "calls") == calls and list(tmp_path.glob("callbell.db.replaced-*[0-9Z]"))


def test_a_hub_started_on_a_full_disk_lights_the_lamps_keeps_its_open_calls_and_stores_them_once_freed(
        tmp_path, broker, device, small_disk, recorder, topics):
    db = small_disk / "callbell.db"
    store = write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=free_port(), db=str(db))
    port = load_store_config(store).http.port
    hub = HubProcess(store, port, tmp_path / "hub.log").start()
    device.press("room-1")
    wait_until(lambda: lit(device, "room-1"), timeout=10, what="room-1 lit")
    wait_until(lambda: hub.api.ok("GET", "/api/v1/calls"), what="room-1's call stored")
    hub.stop()
    filler = fill(small_disk)
    started = time.perf_counter()
    hub = HubProcess(store, port, tmp_path / "hub-full.log").start()
    try:
        print(f"started on a full disk: {hub.api.ok('GET', '/api/v1/health')}")
        figures("disk full at start (from the hub's start)",
                alerted_after_s(lambda path: hub.api.ok("GET", path), started),
                press_to_lamp_ms(recorder, topics, "room-3"))
        device.press("room-2")
        wait_until(lambda: lit(device, "room-2"), timeout=10, what="room-2 lit by a hub started on a full disk")
        assert lit(device, "room-1"), "the call open before the restart still shows"
        health = hub.api.ok("GET", "/api/v1/health")
        assert health["status"] == "degraded" and health["database"]["problem"].startswith("writing: ")
        filler.unlink()
        wait_until(lambda: hub.api.ok("GET", "/api/v1/health")["status"] == "ok", timeout=30,
                   what="health ok once space is freed")
        assert sorted(c["room"] for c in hub.api.ok("GET", "/api/v1/calls?status=open")) == ["room-1", "room-2"]
        assert len(hub.api.ok("GET", "/api/v1/calls?status=closed&room=room-3")) == 5
    finally:
        hub.stop()
        print(hub.output()[-4000:])  # shown if the test fails


def test_errors_of_the_file_itself_are_told_apart_from_errors_of_one_input():
    from hub.store.damage import kind_of
    import errno
    assert kind_of(sqlite3.OperationalError("database or disk is full")) == "full"
    assert kind_of(OSError(errno.ENOSPC, "No space left on device")) == "full"
    assert kind_of(sqlite3.DatabaseError("database disk image is malformed")) == "damaged"
    assert kind_of(sqlite3.DatabaseError("file is not a database")) == "damaged"
    assert kind_of(sqlite3.OperationalError("disk I/O error")) == "io"
    # one input's fault, or a mistake: the dispatcher's retry of each input alone, or a crash
    assert kind_of(sqlite3.IntegrityError("injected: this input cannot be stored")) is None
    assert kind_of(sqlite3.OperationalError("no such table: calls")) is None
    assert kind_of(PermissionError(errno.EACCES, "Permission denied")) is None
