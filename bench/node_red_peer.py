#!/usr/bin/env python3
"""A peer measured side by side: Node-RED relaying press → lamp, against Callbell's hub.

Node-RED is the usual do-it-yourself answer to "MQTT in, MQTT out". This benchmark gives it
the easiest possible version of Callbell's press → lamp path: a flow of three nodes that only
relays — `mqtt in` (QoS 1, JSON) on ``nodered/bench/room/+/event`` → a `function` node that
turns the event into a lamp message (``{"state": "called", "call": <event id>, …}``) →
`mqtt out` (QoS 1, retained) on ``nodered/bench/room/<room>/lamp``. No database, no
assignment, no state. Callbell's hub, on the same broker, does the real thing on
``callbell/bench/…``: stores the press durably in SQLite, opens a call, assigns it, publishes
the retained lamp.

Measured in the same run, through the same Mosquitto, in rounds (default 5) so that a change
in the machine's load hits all three alike; the order of the three rotates every round:

1. raw: the broker's QoS 1 round trip, plain paho publish → on_message (press_to_lamp.py);
2. callbell: press → retained lamp `called` through the hub (press_to_lamp.py's
   measure_presses: same device payloads, rooms in random order, reset by two presences);
3. node-red: the same device payload published to Node-RED's event topic → its retained lamp
   for that room carrying the event's id.

Node-RED (pinned to NODE_RED_VERSION, the last line that runs on Node.js 18-20; 5.x needs
Node.js 22.9) is installed with npm into var/node-red/ under the repository (git-ignored) the
first time, with progress on stderr. Needs `node` and `npm` on PATH and the npm registry.

    python bench/node_red_peer.py                              # 40 rooms, 500 samples each
    python bench/node_red_peer.py --rounds 5 --presses 500 --rooms 40 --json peer.json
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory_soak import proc_sample  # noqa: E402
from press_to_lamp import (  # noqa: E402
    DEVICE_ID, ROOT, STORE_ID, BenchError, Client, Waiter, die_with_parent, bench_store,
    device_event, gap, loadavg, machine_info, measure_baseline, measure_presses, progress, say,
    summarize)

from callbell.broker import free_port  # noqa: E402
from callbell.protocol import Topics  # noqa: E402

#: Node-RED release measured. 4.1.x is the last line supporting Node.js 18-20 (5.x: ≥ 22.9).
NODE_RED_VERSION = "4.1.8"
#: Where npm installs it: git-ignored (/var/ in .gitignore), reused by later runs.
INSTALL_DIR = ROOT / "var" / "node-red"
#: Topic prefix of Node-RED's copy of the path, so that the hub never sees its events.
NODE_RED_PREFIX = "nodered"
#: Seconds allowed for `npm install` (a cold cache fetches about 300 packages) and for
#: Node-RED to start its flow and connect to the broker.
NPM_TIMEOUT_S = 600.0
START_TIMEOUT_S = 60.0
#: Seconds between npm progress lines.
NPM_PROGRESS_S = 3.0
#: Preloaded into the second Node-RED (`node --require`): TCP_NODELAY on every socket. mqtt.js
#: (Node-RED's MQTT client) opens its socket without it, so a lamp PUBLISH written right after
#: the PUBACK of the event waits (Nagle) for the broker's delayed TCP ACK, about 40 ms on Linux.
#: Callbell's MQTT client sets TCP_NODELAY; this variant shows the relay without that wait.
NODELAY_JS = """\
const net = require("net");
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) { this.setNoDelay(true); return connect.apply(this, args); };
"""

#: The relay's function node: the lamp message Callbell's hub would publish for this press
#: (same fields as callbell.protocol.LampState), topic …/event → …/lamp.
RELAY_JS = """\
const e = msg.payload;
return {
  topic: msg.topic.replace(/\\/event$/, "/lamp"),
  payload: JSON.stringify({v: 1, state: "called", call: e.id, reason: e.reason || null,
                           since: e.at, by: null})
};
"""


# -- installing Node-RED ----------------------------------------------------------------------
def node_red_script(version: str) -> Path:
    return INSTALL_DIR / version / "node_modules" / "node-red" / "red.js"


def install_marker(version: str) -> Path:
    """Written after a successful install: an interrupted npm run leaves none, so it reruns."""
    return INSTALL_DIR / version / "installed"


def install_node_red(version: str) -> Path:
    """npm-install node-red@``version`` into INSTALL_DIR/<version> unless it is there already;
    returns the path of its red.js. Progress (packages fetched) goes to stderr."""
    script = node_red_script(version)
    if script.exists() and install_marker(version).exists():
        say(f"Node-RED {version} already installed in {script.parent.relative_to(ROOT)}")
        return script
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise BenchError(f"'{tool}' is not on PATH: install Node.js (18-20 for Node-RED {version})")
    prefix = INSTALL_DIR / version
    prefix.mkdir(parents=True, exist_ok=True)
    say(f"installing Node-RED {version} with npm into {prefix.relative_to(ROOT)} (once; about 300 packages)")
    cmd = ["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--no-save",
           "--loglevel=http", f"node-red@{version}"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=die_with_parent)
    fetched, tail = [0], []

    def read() -> None:
        for line in proc.stdout:
            if " http fetch " in line:
                fetched[0] += 1
            tail.append(line.rstrip())
            del tail[:-20]
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    t0 = time.monotonic()
    try:
        while proc.poll() is None:
            if time.monotonic() - t0 > NPM_TIMEOUT_S:
                proc.kill()
                raise BenchError(f"npm install took longer than {NPM_TIMEOUT_S:g} s")
            time.sleep(NPM_PROGRESS_S)
            say(f"npm: {fetched[0]} package(s) fetched, {time.monotonic() - t0:.0f} s")
    except KeyboardInterrupt:
        proc.kill()
        raise
    reader.join(5)
    if proc.returncode != 0 or not script.exists():
        raise BenchError(f"npm install node-red@{version} failed (exit {proc.returncode}):\n" + "\n".join(tail))
    install_marker(version).write_text(f"node-red@{version}\n")
    say(f"Node-RED {version} installed in {time.monotonic() - t0:.0f} s")
    return script


# -- running the flow -------------------------------------------------------------------------
def relay_flow(broker_host: str, broker_port: int, topics: Topics) -> list[dict]:
    """Node-RED's flow file: mqtt in → function → mqtt out, MQTT 5, QoS 1, retained out."""
    return [
        {"id": "callbell-peer", "type": "tab", "label": "press → lamp relay"},
        {"id": "bench-broker", "type": "mqtt-broker", "name": "bench", "broker": broker_host,
         "port": str(broker_port), "clientid": f"{topics.prefix}-relay-{os.getpid()}", "autoConnect": True,
         "usetls": False, "protocolVersion": "5", "keepalive": "30", "cleansession": True,
         "autoUnsubscribe": True, "birthTopic": "", "closeTopic": "", "willTopic": ""},
        {"id": "events", "type": "mqtt in", "z": "callbell-peer", "name": "device events",
         "topic": f"{topics.base}/room/+/event", "qos": "1", "datatype": "json",
         "broker": "bench-broker", "nl": False, "rap": True, "rh": 0, "inputs": 0,
         "x": 150, "y": 80, "wires": [["to-lamp"]]},
        {"id": "to-lamp", "type": "function", "z": "callbell-peer", "name": "event → lamp",
         "func": RELAY_JS, "outputs": 1, "timeout": 0, "noerr": 0, "initialize": "", "finalize": "",
         "libs": [], "x": 350, "y": 80, "wires": [["lamps"]]},
        {"id": "lamps", "type": "mqtt out", "z": "callbell-peer", "name": "retained lamp", "topic": "",
         "qos": "1", "retain": "true", "respTopic": "", "contentType": "", "userProps": "",
         "correl": "", "expiry": "", "broker": "bench-broker", "x": 550, "y": 80, "wires": []},
    ]


class NodeRedProcess:
    """Node-RED (``node red.js``) with the relay flow, its user folder in ``folder``."""

    def __init__(self, script: Path, folder: Path, broker_host: str, broker_port: int, topics: Topics,
                 nodelay: bool = False):
        self.folder, self.log_path = folder, folder / "node-red.log"
        folder.mkdir(parents=True, exist_ok=True)
        preload = []
        if nodelay:
            (folder / "nodelay.js").write_text(NODELAY_JS)
            preload = ["--require", str(folder / "nodelay.js")]
        (folder / "flows.json").write_text(json.dumps(relay_flow(broker_host, broker_port, topics), indent=1))
        # Editor and HTTP nodes off (not on the message path), no telemetry or update checks.
        (folder / "settings.js").write_text(f"""module.exports = {{
    uiHost: "127.0.0.1",
    uiPort: {free_port()},
    flowFile: "flows.json",
    credentialSecret: false,
    httpAdminRoot: false,
    httpNodeRoot: false,
    diagnostics: {{ enabled: false }},
    telemetry: {{ enabled: false }},
    logging: {{ console: {{ level: "info", metrics: false, audit: false }} }},
}};
""")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["node", *preload, str(script), "--userDir", str(folder), "--settings", str(folder / "settings.js")],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, cwd=str(folder),
            start_new_session=True, preexec_fn=die_with_parent)

    def tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(f"Node-RED exited with code {self.proc.returncode}:\n{self.tail()}")

    def wait_connected(self) -> str:
        """Wait until the flow runs and its broker node is connected; returns Node-RED's version."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            self.check()
            log = self.log_path.read_text(errors="replace")
            if "Started flows" in log and "Connected to broker" in log:
                m = re.search(r"Node-RED version: v?(\S+)", log)
                return m.group(1) if m else "unknown"
            time.sleep(0.1)
        raise BenchError(f"Node-RED did not start its flow and connect within {START_TIMEOUT_S:g} s:\n{self.tail()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def measure_relay(host: str, port: int, topics: Topics, rooms: list[str], n: int, warmup: int,
                  rng: random.Random, gap_ms: tuple[float, float], node_red: NodeRedProcess) -> tuple[list[float], dict]:
    """Press → Node-RED's retained lamp: publish() of a device event → the lamp for that room
    carrying the event's id. Rooms in random order, as measure_presses does."""
    waiter = Waiter()
    unretained = [0]

    def on_lamp(t: float, msg) -> None:
        try:
            kind, room = topics.parse(msg.topic)
            data = json.loads(msg.payload)
        except ValueError:
            return
        if kind == "lamp":
            if not msg.retain:
                unretained[0] += 1
            waiter.offer(t, room, data)

    sub = Client(host, port, f"bench-nr-observer-{os.getpid()}", [f"{topics.base}/room/+/lamp"], on_lamp)
    device = Client(host, port, f"bench-nr-device-{os.getpid()}")
    run = f"{os.getpid():x}{rng.getrandbits(24):06x}"
    samples: list[float] = []
    try:
        schedule: list[str] = []
        while len(schedule) < warmup + n:
            shuffled = rooms[:]
            rng.shuffle(shuffled)
            schedule += shuffled
        for i, room in enumerate(schedule[:warmup + n]):
            ident = f"nr-{run}-{i:06d}-c"
            ev = device_event(id=ident, device=DEVICE_ID, type="call", reason="help", at=time.time())
            waiter.arm(lambda r, d, room=room, ident=ident: r == room and d.get("call") == ident
                       and d.get("state") == "called")
            t0 = time.perf_counter()
            device.publish(topics.event(room), ev)
            t1, _ = waiter.wait(f"Node-RED's lamp for {room} (press {i})")
            if i >= warmup:
                samples.append((t1 - t0) * 1000.0)
            progress("node-red relay", i + 1 - warmup, n, samples)
            if i % 50 == 0:
                node_red.check()
            gap(rng, *gap_ms)
    finally:
        device.close()
        sub.close()
    return samples, {"unretained_lamps": unretained[0]}


# -- report -----------------------------------------------------------------------------------
LABELS = {"raw": "raw broker round trip", "callbell": "Callbell press → lamp",
          "node-red": "Node-RED relay → lamp", "node-red-nodelay": "Node-RED, TCP_NODELAY"}
SYSTEMS = tuple(LABELS)


def report(result: dict) -> str:
    m, cfg = result["machine"], result["config"]
    lines = ["", "Callbell benchmark: press → retained lamp, Callbell hub vs a Node-RED relay",
             f"machine : {m['nproc']} CPU(s), {m['cpu']}; {m['kernel']}",
             f"software: Python {m['python']}, Mosquitto {m['mosquitto']}, paho-mqtt {m['paho_mqtt']}, "
             f"SQLite {m['sqlite']}; Node.js {result['node']}, Node-RED {result['node_red']}; data on {m['data_fs']}",
             f"run     : {cfg['rooms']} room(s), {cfg['rounds']} rounds, per system {cfg['samples']} timed "
             f"samples (+{cfg['warmup']} warm-up a round), gap {cfg['gap_ms'][0]:g}-{cfg['gap_ms'][1]:g} ms",
             f"load    : {m['loadavg']}", "",
             f"{'ms':<24}{'n':>6}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}{'mean':>8}{'p50/raw':>9}{'p99/raw':>9}"]
    raw = result["raw"]
    for key in SYSTEMS:
        s = result[key]
        lines.append(f"{LABELS[key]:<24}{s['n']:>6}{s['p50']:>8.2f}{s['p90']:>8.2f}{s['p99']:>8.2f}"
                     f"{s['max']:>8.2f}{s['mean']:>8.2f}{s['p50'] / raw['p50']:>8.2f}×{s['p99'] / raw['p99']:>8.2f}×")
    lines.append("")
    for peer, r in result["ratios"].items():
        slower = [q for q in ("p50", "p99") if r[q] > 1.0]
        verdict = f"Callbell slower at {' and '.join(slower)}" if slower else "Callbell no slower at p50 and p99"
        lines.append(f"Callbell / {LABELS[peer].strip():<22}: p50 {r['p50']:.2f}×, p99 {r['p99']:.2f}× ({verdict})")
    lines.append("per round, p50 ms (" + " / ".join(SYSTEMS) + "): " + "; ".join(
        " / ".join(f"{x[k]:.2f}" for k in SYSTEMS) for x in result["rounds"]))
    lines.append("memory at the end (RSS, MB): " + ", ".join(f"{k} {v:.1f}" for k, v in result["memory_mb"].items()))
    c = result["checks"]
    lines.append(f"checks: {c['rejected']} rejected by the hub; lamps without retain: "
                 + ", ".join(f"{k} {v}" for k, v in c["unretained_lamps"].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="node_red_peer.py",
        description="Measure Callbell's press → retained lamp next to a Node-RED flow that only "
                    "relays the same device event to a retained lamp message, and the raw "
                    "Mosquitto QoS 1 round trip, all through the same broker in the same run. "
                    "Installs Node-RED with npm into var/node-red/ the first time.",
        epilog="Example: python bench/node_red_peer.py --rooms 40 --presses 500 --json peer.json. "
               "Progress goes to stderr, the table to stdout. See docs/benchmarks.md.")
    ap.add_argument("--rooms", type=int, default=40, help="rooms in the store (default: %(default)s)")
    ap.add_argument("--presses", type=int, default=500,
                    help="timed samples per system (raw, Callbell, Node-RED), over all rounds (default: %(default)s)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="rounds; each measures all three, in rotating order (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=10, metavar="N",
                    help="untimed samples per system at the start of every round (default: %(default)s)")
    ap.add_argument("--gap-ms", type=float, nargs=2, default=(5.0, 25.0), metavar=("MIN", "MAX"),
                    help="random pause between samples, ms (default: 5 25)")
    ap.add_argument("--seed", type=int, default=None, help="random seed (room order and gaps)")
    ap.add_argument("--node-red-version", default=NODE_RED_VERSION,
                    help="Node-RED release to install and run (default: %(default)s)")
    ap.add_argument("--tmp", type=Path, default=None, metavar="DIR",
                    help="where to create the temporary folder (default: the system's)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, database, flow)")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the figures and samples as JSON")
    args = ap.parse_args(argv)
    if args.rooms < 1 or args.rounds < 1 or args.presses < args.rounds or args.warmup < 0:
        ap.error("--rooms and --rounds must be at least 1, --presses at least --rounds, --warmup at least 0")
    if not 0 <= args.gap_ms[0] <= args.gap_ms[1]:
        ap.error("--gap-ms needs 0 <= MIN <= MAX")
    args.hub = "process"  # what bench_store reads: the hub as in production

    try:
        script = install_node_red(args.node_red_version)
    except BenchError as e:
        say(f"error: {e}")
        return 1
    except KeyboardInterrupt:
        return 130
    node_version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip().lstrip("v")

    rng = random.Random(args.seed)
    load_at_start = loadavg()
    with bench_store(args, "callbell-bench-peer-") as store:
        host, port = store.broker.host, store.broker.port
        peers = {}  # system → (its topics, its Node-RED process)
        try:
            for system, nodelay in (("node-red", False), ("node-red-nodelay", True)):
                topics = Topics(f"{NODE_RED_PREFIX}-nodelay" if nodelay else NODE_RED_PREFIX, STORE_ID)
                peers[system] = (topics, NodeRedProcess(script, store.tmp / system, host, port, topics, nodelay))
            nr_version = ""
            for system, (_, proc) in peers.items():
                nr_version = proc.wait_connected()
                say(f"{system}: Node-RED {nr_version} running the relay flow (pid {proc.proc.pid})")
            per_round = [args.presses // args.rounds + (k < args.presses % args.rounds) for k in range(args.rounds)]
            samples = {system: [] for system in SYSTEMS}
            unretained = {system: 0 for system in SYSTEMS if system != "raw"}
            rounds, rejected = [], 0
            gap_ms = tuple(args.gap_ms)
            for k, n in enumerate(per_round):
                this_round = {}
                shift = k % len(SYSTEMS)  # rotate the order: no system always goes first
                for system in SYSTEMS[shift:] + SYSTEMS[:shift]:
                    say(f"round {k + 1}/{args.rounds}: {system}, {n} samples (+{args.warmup} warm-up)")
                    if system == "raw":
                        got = measure_baseline(host, port, n, args.warmup, rng, gap_ms)
                    elif system == "callbell":
                        got, checks = measure_presses(host, port, store.rooms, n, args.warmup, "presence",
                                                      rng, gap_ms, store.hub)
                        rejected += checks["rejected"]
                        unretained[system] += checks["unretained_lamps"]
                    else:
                        topics, proc = peers[system]
                        got, checks = measure_relay(host, port, topics, store.rooms, n, args.warmup,
                                                    rng, gap_ms, proc)
                        unretained[system] += checks["unretained_lamps"]
                    samples[system] += got
                    this_round[system] = summarize(got)["p50"]
                rounds.append(this_round)
                say(f"round {k + 1}: p50 " + ", ".join(f"{s} {v:.2f} ms" for s, v in this_round.items()))
                store.hub.check()
                for _, proc in peers.values():
                    proc.check()
            memory = {"callbell hub": proc_sample(store.hub.proc.pid)["rss_mb"],
                      **{system: proc_sample(proc.proc.pid)["rss_mb"] for system, (_, proc) in peers.items()}}
            stats = {key: summarize(v) for key, v in samples.items()}
            result = {
                "machine": machine_info(store.tmp, load_at_start), "node": node_version, "node_red": nr_version,
                "config": {"rooms": args.rooms, "rounds": args.rounds, "samples": args.presses,
                           "warmup": args.warmup, "gap_ms": list(args.gap_ms), "seed": args.seed},
                **stats,
                "ratios": {peer: {q: stats["callbell"][q] / stats[peer][q] for q in ("p50", "p99")}
                           for peer in peers},
                "rounds": rounds, "memory_mb": memory,
                "checks": {"rejected": rejected, "unretained_lamps": unretained},
                "samples_ms": samples,
            }
            print(report(result), flush=True)
            if args.json:
                args.json.write_text(json.dumps(result, indent=1) + "\n")
                say(f"wrote {args.json}")
            return 0
        finally:
            for _, proc in peers.values():
                proc.stop()

if __name__ == "__main__":
    sys.exit(main())
