#!/usr/bin/env python3
"""Sustained ingest of the Callbell hub: presses per second until it saturates.

Starts its own Mosquitto and hub (helpers from bench/press_to_lamp.py), then offers events at
increasing rates (default 100, 200, 400, 800, 1600, 3200 per second), each rate for --seconds
(default 60). Each room cycles call → presence (answered) → presence (done), so every third
event opens a new call; the events are published exactly as a device does (MQTT 5, QoS 1,
Message Expiry Interval), from --devices plain paho clients (rooms split between them).

After each rate it waits for the hub to catch up and then reads the hub's SQLite file
read-only: every event sent must be in table ``inbox`` (zero loss), no event id twice and
exactly one new call per call event (zero duplicates), and no event with outcome "no effect".
During each rate it samples the hub's CPU (utime + stime from /proc/PID/stat), the broker's
CPU, the hub's dispatcher backlog (GET /api/v1/health) and Mosquitto's stored-message count
($SYS/broker/store/messages/count, published every second for this run).

A rate is "saturated" when the hub stores less than 95 % of the offered rate, or is still
more than 1 s behind when the publishers stop, or the publishers cannot keep the offered rate.
The ramp stops after the first saturated rate. Only 127.0.0.1 is used.

    python bench/ingest.py                              # 60 s per rate
    python bench/ingest.py --seconds 10 --rates 100 300 1000 --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import paho.mqtt.client as paho  # noqa: E402

from press_to_lamp import (  # noqa: E402
    _nodelay, STORE_ID, WAIT_S, BenchError, Client, device_event, loadavg,
    machine_info, say, bench_store)

from callbell.protocol import Topics  # noqa: E402

HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
CYCLE = ("call", "presence", "presence")


def cpu_seconds(pid: int | None) -> float:
    """utime + stime of a process, seconds (NaN if it cannot be read)."""
    if pid is None:
        return float("nan")
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    fields = text[text.rfind(")") + 2:].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat


def health(port: int) -> dict:
    with urllib.request.urlopen(f"http://{HOST}:{port}/api/v1/health", timeout=2) as r:
        return json.loads(r.read())


class Device(Client):
    """A publishing client like press_to_lamp's, with a device's in-flight window (set before
    connecting, as paho requires)."""

    def __init__(self, host: str, port: int, client_id: str, inflight: int = 100):
        self.c = paho.Client(callback_api_version=paho.CallbackAPIVersion.VERSION2,
                             client_id=client_id, protocol=paho.MQTTv5)
        self.c.on_socket_open = _nodelay
        self.c.max_inflight_messages_set(inflight)  # as a Callbell device (callbell.mqtt.MAX_INFLIGHT)
        self._on_message = None
        connected = threading.Event()
        self.c.on_connect = lambda c, u, f, rc, p: connected.set() if not rc.is_failure else None
        self.c.connect(host, port, keepalive=30, clean_start=True)
        self.c.loop_start()
        if not connected.wait(WAIT_S):
            self.close()
            raise BenchError(f"{client_id} could not connect to the broker")


class ReadOnlyDB:
    def __init__(self, path: Path):
        self.path = path

    def query(self, sql: str, *params):
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def stored(self, prefix: str) -> int:
        return self.query("SELECT COUNT(*) FROM inbox WHERE id LIKE ?", "%-" + prefix + "%")[0][0]


class Sampler(threading.Thread):
    """Every 0.5 s: hub dispatcher backlog. Mosquitto's stored count arrives by $SYS."""

    def __init__(self, http_port: int, broker_host: str, broker_port: int):
        super().__init__(name="sampler", daemon=True)
        self.http_port = http_port
        self.stop_event = threading.Event()
        self.backlog_max = 0
        self.store_count_max = 0
        self.store_count_last = 0
        self.errors = 0
        self.sys = Client(broker_host, broker_port, f"bench-ingest-sys-{os.getpid()}",
                          ["$SYS/broker/store/messages/count"], self._sys)

    def _sys(self, t, msg) -> None:
        try:
            n = int(msg.payload)
        except ValueError:
            return
        self.store_count_last = n
        self.store_count_max = max(self.store_count_max, n)

    def reset(self) -> None:
        self.backlog_max = 0
        self.store_count_max = self.store_count_last

    def run(self) -> None:
        while not self.stop_event.wait(0.5):
            try:
                self.backlog_max = max(self.backlog_max, int(health(self.http_port).get("backlog") or 0))
            except (OSError, ValueError):
                self.errors += 1

    def close(self) -> None:
        self.stop_event.set()
        self.join(5)
        self.sys.close()


def run_rate(rate: float, seconds: float, rooms: list[str], devices: list[Client], topics: Topics,
             db: ReadOnlyDB, hub, broker, sampler: Sampler, step: int) -> dict:
    prefix = f"i{os.getpid():x}-{step:02d}-"
    n = int(rate * seconds)
    calls_before = db.query("SELECT COUNT(*) FROM calls")[0][0]
    room_pos = {r: 0 for r in rooms}
    sampler.reset()
    hub_cpu0, broker_cpu0 = cpu_seconds(hub.proc.pid if hasattr(hub, "proc") else os.getpid()), cpu_seconds(broker.pid)
    call_events = 0
    t_start = time.monotonic()
    next_report = t_start + 5
    for i in range(n):
        due = t_start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        room = rooms[i % len(rooms)]
        kind = CYCLE[room_pos[room] % 3]
        room_pos[room] += 1
        call_events += kind == "call"
        dev = devices[(i % len(rooms)) % len(devices)]
        dev.publish(topics.event(room), device_event(
            id=f"{prefix}{i:08d}", device=f"bench-dev-{devices.index(dev)}", type=kind,
            **({"reason": "help"} if kind == "call" else {}), at=time.time()))
        if time.monotonic() >= next_report:
            next_report += 5
            say(f"  {rate:g}/s: {i + 1}/{n} sent, {db.stored(prefix)} stored, "
                f"backlog max {sampler.backlog_max}, broker store max {sampler.store_count_max}")
        if i % 500 == 0:
            hub.check()
    t_sent = time.monotonic()
    send_s = t_sent - t_start
    stored_at_end = db.stored(prefix)
    # Catch up: wait until everything is stored, or nothing moves for 10 s.
    last, last_change = stored_at_end, time.monotonic()
    t_done = None
    while True:
        stored = db.stored(prefix)
        now = time.monotonic()
        if stored >= n:
            t_done = now
            break
        if stored != last:
            last, last_change = stored, now
        elif now - last_change > 10:
            break
        time.sleep(0.05)
    hub_cpu1, broker_cpu1 = cpu_seconds(hub.proc.pid if hasattr(hub, "proc") else os.getpid()), cpu_seconds(broker.pid)
    wall = (t_done or time.monotonic()) - t_start
    time.sleep(0.3)
    stored = db.stored(prefix)
    distinct = db.query("SELECT COUNT(DISTINCT id) FROM inbox WHERE id LIKE ?", "%-" + prefix + "%")[0][0]
    no_effect = db.query("SELECT COUNT(*) FROM inbox WHERE id LIKE ? AND outcome = 'no effect'", "%-" + prefix + "%")[0][0]
    calls_new = db.query("SELECT COUNT(*) FROM calls")[0][0] - calls_before
    ingest_rate = stored / wall if wall > 0 else float("nan")
    behind_s = (t_done - t_sent) if t_done else float("inf")
    res = {
        "offered_per_s": rate, "sent": n, "send_s": send_s, "sent_per_s": n / send_s,
        "stored": stored, "lost": n - stored, "duplicates": (stored - distinct) + max(0, calls_new - call_events),
        "calls_expected": call_events, "calls_new": calls_new, "no_effect": no_effect,
        "stored_per_s": ingest_rate, "behind_at_stop": n - stored_at_end, "catch_up_s": behind_s,
        "hub_cpu_pct": 100 * (hub_cpu1 - hub_cpu0) / wall,
        "broker_cpu_pct": 100 * (broker_cpu1 - broker_cpu0) / wall,
        "backlog_max": sampler.backlog_max, "broker_store_max": sampler.store_count_max,
    }
    res["publisher_limited"] = res["sent_per_s"] < 0.95 * rate
    # The hub fell behind what was actually sent (whatever the publishers managed).
    res["hub_saturated"] = (stored < 0.95 * n or ingest_rate < 0.95 * min(rate, res["sent_per_s"])
                            or behind_s > 1.0)
    res["saturated"] = res["hub_saturated"] or res["publisher_limited"]
    return res


def verdict(r: dict) -> str:
    if r["hub_saturated"]:
        return "SATURATED" + (" (publishers short too)" if r["publisher_limited"] else "")
    return "PUBLISHER-LIMITED (hub kept up)" if r["publisher_limited"] else "ok"


def report(result: dict) -> str:
    m, cfg = result["machine"], result["config"]
    lines = [
        "", "Callbell benchmark: sustained ingest",
        f"machine : {m['nproc']} CPU(s), {m['cpu']}; {m['kernel']}",
        f"software: Python {m['python']}, Mosquitto {m['mosquitto']}, paho-mqtt {m['paho_mqtt']}, "
        f"SQLite {m['sqlite']}; data on {m['data_fs']}",
        f"run     : hub {cfg['hub']}, {cfg['rooms']} room(s), {cfg['devices']} device client(s), "
        f"{cfg['seconds']:g} s per rate",
        f"load    : {m['loadavg']}", "",
        f"{'offered/s':>9} {'sent/s':>7} {'stored/s':>9} {'sent':>7} {'lost':>5} {'dup':>4} {'no eff':>6} "
        f"{'behind':>7} {'catch-up s':>10} {'hub CPU':>8} {'mosq CPU':>9} {'backlog':>8} {'mosq store':>10}  verdict",
    ]
    for r in result["rates"]:
        lines.append(f"{r['offered_per_s']:>9g} {r['sent_per_s']:>7.0f} {r['stored_per_s']:>9.0f} {r['sent']:>7} "
                     f"{r['lost']:>5} {r['duplicates']:>4} {r['no_effect']:>6} {r['behind_at_stop']:>7} "
                     f"{r['catch_up_s']:>10.2f} {r['hub_cpu_pct']:>7.0f}% {r['broker_cpu_pct']:>8.0f}% "
                     f"{r['backlog_max']:>8} {r['broker_store_max']:>10}  "
                     f"{verdict(r)}")
    lines.append("")
    lines.append(result["verdict"])
    lines.append("behind = events sent but not yet stored when the publishers stopped; backlog = "
                 "hub dispatcher queue (max of 0.5 s samples); mosq store = $SYS store count (max).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="ingest.py",
        description="Offer device events to Callbell's hub at increasing rates, each for a "
                    "sustained period, and check from the hub's SQLite file (read-only) that "
                    "none was lost or duplicated; report where the hub saturates, with its CPU "
                    "and the broker's queue. Starts and stops its own broker and hub in a "
                    "temporary folder; all traffic stays on 127.0.0.1.",
        epilog="Example: python bench/ingest.py --seconds 60 --json out.json. Progress goes to "
               "stderr, the table to stdout. See docs/benchmarks.md.")
    ap.add_argument("--rates", type=float, nargs="+", default=[100, 200, 400, 800, 1600, 3200],
                    metavar="R", help="events per second to offer, in order (default: 100 200 400 800 1600 3200)")
    ap.add_argument("--seconds", type=float, default=60.0, help="seconds per rate (default: %(default)s)")
    ap.add_argument("--rooms", type=int, default=40, help="rooms in the store (default: %(default)s)")
    ap.add_argument("--devices", type=int, default=4, help="publishing MQTT clients (default: %(default)s)")
    ap.add_argument("--all", action="store_true", help="keep going after the first saturated rate")
    ap.add_argument("--hub", choices=("process", "inprocess"), default="process",
                    help="hub as its own process like production (default) or in this process")
    ap.add_argument("--tmp", type=Path, default=None, metavar="DIR",
                    help="where to create the temporary folder (default: the system's; SQLite's "
                         "fsync cost depends on the disk)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, database)")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args(argv)
    if args.rooms < 1 or args.devices < 1 or args.seconds <= 0 or min(args.rates) <= 0:
        ap.error("--rooms, --devices, --seconds and --rates must be positive")

    load_at_start = loadavg()
    with bench_store(args, "callbell-bench-ingest-", "sys_interval 1") as store:
        broker, hub, rooms, tmp, http_port = store.broker, store.hub, store.rooms, store.tmp, store.http_port
        sampler = None
        devices: list[Client] = []
        try:
            db = ReadOnlyDB(tmp / "callbell.db")
            topics = Topics("callbell", STORE_ID)
            for k in range(args.devices):
                devices.append(Device(broker.host, broker.port, f"bench-ingest-dev-{os.getpid()}-{k}"))
            sampler = Sampler(http_port, broker.host, broker.port)
            sampler.start()

            rates, saturated_at = [], None
            for step, rate in enumerate(args.rates):
                say(f"{rate:g} events/s for {args.seconds:g} s")
                r = run_rate(rate, args.seconds, rooms, devices, topics, db, hub, broker, sampler, step)
                rates.append(r)
                say(f"  {rate:g}/s: stored {r['stored']}/{r['sent']} at {r['stored_per_s']:.0f}/s, "
                    f"hub CPU {r['hub_cpu_pct']:.0f}%, lost {r['lost']}, duplicates {r['duplicates']}: {verdict(r)}")
                if r["lost"] > 0 and r["catch_up_s"] == float("inf"):
                    say("  events still missing after 10 s without progress")
                if r["saturated"] and saturated_at is None:
                    saturated_at = r
                    if not args.all:
                        break
                hub.check()
            ok = [r for r in rates if not r["saturated"]]
            if saturated_at is None:
                summary = (f"not saturated up to {rates[-1]['offered_per_s']:g} events/s "
                           f"(hub CPU {rates[-1]['hub_cpu_pct']:.0f}%)")
            else:
                summary = (f"{'saturates' if saturated_at['hub_saturated'] else 'the publishers could not keep up'} "
                           f"at {saturated_at['offered_per_s']:g} events/s offered: stored "
                           f"{saturated_at['stored_per_s']:.0f}/s, hub CPU {saturated_at['hub_cpu_pct']:.0f}%"
                           + (f", {saturated_at['behind_at_stop']} events behind when the publishers stopped"
                              if saturated_at['hub_saturated'] else "")
                           + (f"; last sustained rate {ok[-1]['offered_per_s']:g}/s" if ok else ""))
            summary += (f". Loss: {sum(r['lost'] for r in rates)}, duplicates: "
                        f"{sum(r['duplicates'] for r in rates)} over {sum(r['sent'] for r in rates)} events.")
            result = {
                "machine": machine_info(tmp, load_at_start),
                "config": {"hub": args.hub, "rooms": args.rooms, "devices": args.devices,
                           "seconds": args.seconds, "rates": args.rates},
                "rates": rates, "verdict": summary,
            }
            print(report(result), flush=True)
            if args.json:
                args.json.write_text(json.dumps(result, indent=1, default=str) + "\n")
                say(f"wrote {args.json}")
            return 0
        except sqlite3.Error as e:
            raise BenchError(f"reading the hub's database: {e}") from None
        finally:
            if sampler is not None:
                sampler.close()
            for d in devices:
                d.close()


if __name__ == "__main__":
    sys.exit(main())
