#!/usr/bin/env python3
"""Press → retained lamp latency of the Callbell hub, measured against the raw broker round trip.

Starts its own Mosquitto (callbell.broker.Broker, in a temporary folder) and the hub (by
default as its own process, as in production), then measures in the same run:

1. baseline: the raw broker round trip. One plain paho client publishes (QoS 1, MQTT 5,
   TCP_NODELAY) to a topic another plain client subscribes to; time from publish() to
   on_message.
2. press → lamp: a plain paho "device" publishes a `call` event exactly as a device does
   (QoS 1, MQTT 5, Message Expiry Interval = EVENT_EXPIRY_S) to {p}/{store}/room/{room}/event;
   a subscriber on {p}/{store}/room/+/lamp times publish() → the retained lamp with
   state "called" for that room. The room is then reset (not timed: two `presence` events,
   answered then done, or one `cancel`) so the next press opens a new call.

Presses go one at a time (latency, not throughput), spread evenly over the rooms in random
order, with a small random gap. Progress goes to stderr, the result table to stdout.

    python bench/press_to_lamp.py                       # 1, 40 and 200 rooms, 500 presses each
    python bench/press_to_lamp.py --rooms 200 --presses 500 --json result.json
    python bench/press_to_lamp.py --hub inprocess       # hub in this process (shares the GIL)
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import paho.mqtt.client as paho  # noqa: E402
from paho.mqtt import __version__ as PAHO_VERSION  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402
from paho.mqtt.subscribeoptions import SubscribeOptions  # noqa: E402

from callbell.broker import Broker, BrokerError, find_mosquitto, free_port  # noqa: E402
from callbell.protocol import EVENT_EXPIRY_S, Event, Topics, event_id_prefix  # noqa: E402

#: A device declares the expiry it set in the event itself where the contract has that field.


def device_event(**fields) -> bytes:
    """An event payload as a Callbell device builds it: its id begins with the device's own."""
    prefix = event_id_prefix(fields["device"])
    if not fields["id"].startswith(prefix):
        fields["id"] = prefix + fields["id"]
    return Event(**fields, expiry_s=EVENT_EXPIRY_S).to_json()


STORE_ID = "bench"
DEVICE_ID = "bench-pi"

#: The benchmark store's [mqtt] extras. Its one device (DEVICE_ID) stands for a whole store's
#: devices, far above one real device's rate: the per-device limits (hub/domain/admission.py)
#: are lifted, so the hub itself is measured. bench/storm_isolation.py keeps the real limits.
BENCH_MQTT = "device_rate_per_s = 1000000\ndevice_burst = 1000000"
#: Seconds to wait for any one message before declaring the run broken.
WAIT_S = 10.0
#: Targets from the issues (ms / ratio).
TARGET_P99_MS = 20.0
TARGET_P99_STRICT_MS = 10.0
TARGET_RATIO = 3.0


class BenchError(RuntimeError):
    pass


def say(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- statistics ---------------------------------------------------------------------------
def percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), q in [0, 100]."""
    if not sorted_values:
        return math.nan
    k = (len(sorted_values) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def summarize(samples_ms: list[float]) -> dict:
    s = sorted(samples_ms)
    return {"n": len(s), "min": s[0], "p50": percentile(s, 50), "p90": percentile(s, 90),
            "p99": percentile(s, 99), "max": s[-1], "mean": sum(s) / len(s)}


# -- machine ------------------------------------------------------------------------------
def machine_info(data_dir: Path, load_at_start: str) -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                cpu = value.strip()
                break
    except OSError:
        cpu = platform.processor() or "unknown"
    try:
        cpus = len(os.sched_getaffinity(0))  # what `nproc` prints
    except AttributeError:
        cpus = os.cpu_count()
    try:
        out = subprocess.run([find_mosquitto(), "-h"], capture_output=True, text=True, timeout=5)
        mosq = next((w for w in (out.stdout + out.stderr).split() if w[:1].isdigit()), "unknown")
    except (OSError, BrokerError, subprocess.SubprocessError):
        mosq = "unknown"
    import sqlite3
    return {"nproc": cpus, "cpu": cpu, "kernel": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "mosquitto": mosq,
            "paho_mqtt": PAHO_VERSION,
            "sqlite": sqlite3.sqlite_version, "data_fs": filesystem_of(data_dir),
            "loadavg": f"{load_at_start} at the start, {loadavg()} at the end"}


def loadavg() -> str:
    """1/5/15-minute load averages: other work on the machine skews the p99."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def filesystem_of(path: Path) -> str:
    """Filesystem type of the folder holding the database and broker data (fsync cost)."""
    best, fs = "", "unknown"
    try:
        target = str(path.resolve())
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and (target == parts[1] or target.startswith(parts[1].rstrip("/") + "/")):
                if len(parts[1]) >= len(best):
                    best, fs = parts[1], parts[2]
    except OSError:
        pass
    return fs


# -- MQTT clients (plain paho, no Callbell code) -------------------------------------------
def _nodelay(client, userdata, sock) -> None:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass


class Client:
    """A plain paho MQTT 5 client with TCP_NODELAY; ``on_message(t, msg)`` gets the arrival
    time (perf_counter, taken first thing on paho's network thread)."""

    def __init__(self, host: str, port: int, client_id: str, subscriptions=(), on_message=None):
        self.c = paho.Client(callback_api_version=paho.CallbackAPIVersion.VERSION2,
                             client_id=client_id, protocol=paho.MQTTv5)
        self.c.on_socket_open = _nodelay
        self._on_message = on_message
        connected, subscribed = threading.Event(), threading.Event()
        self.c.on_connect = lambda c, u, f, rc, p: connected.set() if not rc.is_failure else None
        self.c.on_subscribe = lambda *a: subscribed.set()
        self.c.on_message = self._message
        self.c.connect(host, port, keepalive=30, clean_start=True)
        self.c.loop_start()
        if not connected.wait(WAIT_S):
            self.close()
            raise BenchError(f"{client_id} could not connect to the broker")
        for topic in subscriptions:
            subscribed.clear()
            # retainAsPublished: live lamp messages keep their retain flag, so we can check it.
            self.c.subscribe(topic, options=SubscribeOptions(qos=1, retainAsPublished=True))
            if not subscribed.wait(WAIT_S):
                self.close()
                raise BenchError(f"{client_id} could not subscribe to {topic}")

    def _message(self, client, userdata, msg) -> None:
        t = time.perf_counter()
        if self._on_message:
            self._on_message(t, msg)

    def publish(self, topic: str, payload: bytes, expiry_s: int | None = EVENT_EXPIRY_S):
        props = None
        if expiry_s is not None:
            props = Properties(PacketTypes.PUBLISH)
            props.MessageExpiryInterval = expiry_s
        info = self.c.publish(topic, payload, qos=1, properties=props)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise BenchError(f"publish to {topic} failed: {paho.error_string(info.rc)}")
        return info

    def close(self) -> None:
        try:
            self.c.disconnect()
        finally:
            self.c.loop_stop()


class Waiter:
    """Waits for the first message matching a predicate armed before the publish."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pred = None
        self._hit: tuple[float, dict] | None = None
        self._event = threading.Event()

    def arm(self, pred) -> None:
        with self._lock:
            self._pred, self._hit = pred, None
            self._event.clear()

    def offer(self, t: float, *key) -> None:
        with self._lock:
            if self._pred is not None and self._pred(*key):
                self._pred, self._hit = None, (t, key[-1])
                self._event.set()

    def wait(self, what: str) -> tuple[float, dict]:
        if not self._event.wait(WAIT_S):
            raise BenchError(f"timed out after {WAIT_S:g} s waiting for {what}")
        return self._hit


# -- the system under test ----------------------------------------------------------------
def write_store_config(path: Path, rooms: list[str], broker_url: str, http_port: int,
                       demo: bool = True, mqtt_extra: str = BENCH_MQTT, extra: str = "") -> Path:
    blocks = "\n".join(f'[[rooms]]\nid = "{r}"\nzone = "floor"\n' for r in rooms)
    path.write_text(f"""# written by bench/press_to_lamp.py
[store]
id = "{STORE_ID}"
name = "Benchmark store"
timezone = "UTC"

[mqtt]
url = "{broker_url}"
{mqtt_extra}

[database]
path = "callbell.db"

[http]
host = "127.0.0.1"
port = {http_port}
demo = {"true" if demo else "false"}

[[zones]]
id = "floor"

{blocks}
[[associates]]
id = "ana"
zone = "floor"

[[associates]]
id = "maria"
role = "manager"
{extra}
""")
    return path


def make_token(config: Path, role: str) -> str:
    """A new API token of ``role`` for the store of ``config``, made as an installer does."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    done = subprocess.run([sys.executable, "-m", "app.cli", "token", "create", "--config", str(config),
                           "--role", role, "--name", f"bench-{role}"], cwd=str(config.parent),
                          env=env, capture_output=True, text=True, timeout=60)
    if done.returncode != 0 or not done.stdout.strip():
        raise BenchError(f"callbell token create failed: {done.stderr.strip()}")
    return done.stdout.strip().splitlines()[-1]


def die_with_parent() -> None:
    """Child side of Popen: on Linux, get SIGTERM if the benchmark dies (even kill -9)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class HubProcess:
    def __init__(self, config: Path, http_port: int, log: Path):
        self.config, self.http_port, self.log_path = config, http_port, log
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "hub", "--config", str(self.config)],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env,
            cwd=str(self.config.parent),
            start_new_session=True,  # Ctrl-C reaches the benchmark, which stops the hub itself
            preexec_fn=die_with_parent if sys.platform.startswith("linux") else None)

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(f"the hub exited with code {self.proc.returncode}:\n{self.tail()}")

    def tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log:
            self._log.close()


class HubInProcess:
    def __init__(self, config: Path, http_port: int, log: Path):
        self.config, self.http_port = config, http_port
        self.service = None
        self.thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self) -> None:
        import logging
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        from hub.config import load_store_config
        from hub.service import HubService
        self.service = HubService(load_store_config(self.config))

        def run():
            try:
                self.service.run()
            except BaseException as e:  # noqa: BLE001 - reported by check()
                self._error = e
        self.thread = threading.Thread(target=run, name="hub", daemon=True)
        self.thread.start()

    def check(self) -> None:
        if self._error is not None or (self.thread and not self.thread.is_alive()):
            raise BenchError(f"the hub stopped: {self._error!r}")

    def tail(self) -> str:
        return ""

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
        if self.thread is not None:
            self.thread.join(10)


def wait_healthy(hub, timeout_s: float = 30.0, token: str | None = None) -> None:
    """Until the hub's health says broker: true (``token``: a device token, when not in demo)."""
    url = f"http://127.0.0.1:{hub.http_port}/api/v1/health"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        hub.check()
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=1) as r:
                if json.loads(r.read()).get("broker") is True:
                    return
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise BenchError(f"the hub did not report broker: true on {url} within {timeout_s:g} s\n{hub.tail()}")


# -- measurements -------------------------------------------------------------------------
def gap(rng: random.Random, lo_ms: float, hi_ms: float) -> None:
    time.sleep(rng.uniform(lo_ms, hi_ms) / 1000.0)


def measure_baseline(host: str, port: int, n: int, warmup: int, rng: random.Random,
                     gap_ms: tuple[float, float]) -> list[float]:
    topic = f"bench-rtt/{os.getpid()}/ping"
    waiter = Waiter()
    sub = Client(host, port, f"bench-rtt-sub-{os.getpid()}", [topic],
                 lambda t, m: waiter.offer(t, m.payload))
    pub = Client(host, port, f"bench-rtt-pub-{os.getpid()}")
    samples: list[float] = []
    try:
        for i in range(warmup + n):
            # Same size and properties as a real call event.
            payload = device_event(id=f"rtt-{i:06d}", device=DEVICE_ID, type="call", reason="help",
                                   at=time.time())
            waiter.arm(lambda p, want=payload: p == want)
            t0 = time.perf_counter()
            pub.publish(topic, payload)
            t1, _ = waiter.wait("the baseline message")
            if i >= warmup:
                samples.append((t1 - t0) * 1000.0)
            progress("baseline", i + 1 - warmup, n, samples)
            gap(rng, *gap_ms)
    finally:
        pub.close()
        sub.close()
    return samples


_last_progress = [0.0]


def progress(what: str, done: int, total: int, samples: list[float]) -> None:
    now = time.monotonic()
    if done <= 0 or (done < total and now - _last_progress[0] < 2.0):
        return
    _last_progress[0] = now
    s = sorted(samples)
    say(f"{what}: {done}/{total}  p50 {percentile(s, 50):.2f} ms  p99 {percentile(s, 99):.2f} ms  "
        f"max {s[-1]:.2f} ms")


class Observer:
    """Subscriber to lamps, call objects and rejections of the benchmark store."""

    def __init__(self, host: str, port: int, topics: Topics):
        self.topics = topics
        self.waiter = Waiter()
        self.lamps: dict[str, dict] = {}
        self.rejected: list[dict] = []
        self.unretained_lamps = 0
        self._lock = threading.Lock()
        self.client = Client(host, port, f"bench-observer-{os.getpid()}",
                             [f"{topics.base}/room/+/lamp", f"{topics.base}/call/+", topics.hub_rejected],
                             self._message)

    def _message(self, t: float, msg) -> None:
        try:
            kind, ident = self.topics.parse(msg.topic)
            data = json.loads(msg.payload)
        except ValueError:
            return
        if kind == "hub-rejected":
            with self._lock:
                self.rejected.append(data)
            return
        if kind == "lamp":
            with self._lock:
                self.lamps[ident] = data
                if not msg.retain:
                    self.unretained_lamps += 1
        self.waiter.offer(t, kind, ident, data)

    def close(self) -> None:
        self.client.close()


def measure_presses(host: str, port: int, rooms: list[str], n: int, warmup: int, reset: str,
                    rng: random.Random, gap_ms: tuple[float, float], hub,
                    device_per_room: bool = False) -> tuple[list[float], dict]:
    """``device_per_room``: each room's events come from a device of its own (``bench-pi-{room}``),
    as in a store, rather than all from DEVICE_ID."""
    topics = Topics("callbell", STORE_ID)
    obs = Observer(host, port, topics)
    device = Client(host, port, f"bench-device-{os.getpid()}")
    run = f"{os.getpid():x}{rng.getrandbits(24):06x}"
    samples: list[float] = []
    per_room: dict[str, int] = {}
    try:
        # The hub publishes every room's lamp (retained) at start: all must be there and idle.
        deadline = time.monotonic() + WAIT_S
        while len(obs.lamps) < len(rooms) and time.monotonic() < deadline:
            time.sleep(0.05)
        missing = [r for r in rooms if r not in obs.lamps]
        if missing:
            raise BenchError(f"no retained lamp for {len(missing)} room(s), e.g. {missing[0]}")
        busy = [r for r in rooms if obs.lamps[r].get("state") != "idle"]
        if busy:
            raise BenchError(f"{len(busy)} room(s) not idle at the start, e.g. {busy[0]}")

        schedule: list[str] = []
        while len(schedule) < warmup + n:
            rnd = rooms[:]
            rng.shuffle(rnd)
            schedule += rnd
        for i, room in enumerate(schedule[:warmup + n]):
            dev = f"{DEVICE_ID}-{room}" if device_per_room else DEVICE_ID
            ev = device_event(id=f"b-{run}-{i:06d}-c", device=dev, type="call", reason="help",
                              at=time.time())
            obs.waiter.arm(lambda kind, ident, d, room=room:
                           kind == "lamp" and ident == room and d.get("state") == "called")
            t0 = time.perf_counter()
            device.publish(topics.event(room), ev)
            t1, lamp = obs.waiter.wait(f"lamp 'called' of {room} (press {i})")
            if i >= warmup:
                samples.append((t1 - t0) * 1000.0)
                per_room[room] = per_room.get(room, 0) + 1
            # Reset, not timed: the next press on this room must open a new call.
            call = lamp.get("call")
            closed = ("done",) if reset == "presence" else ("cancelled",)
            obs.waiter.arm(lambda kind, ident, d, call=call:
                           kind == "call" and ident == call and d.get("status") in closed)
            if reset == "presence":  # answered, then done
                for k in ("a", "d"):
                    device.publish(topics.event(room), device_event(
                        id=f"b-{run}-{i:06d}-p{k}", device=dev, type="presence", at=time.time()))
            else:
                device.publish(topics.event(room), device_event(
                    id=f"b-{run}-{i:06d}-x", device=dev, type="cancel", at=time.time()))
            obs.waiter.wait(f"call {call} of {room} to be {closed[0]}")
            if obs.lamps.get(room, {}).get("state") != "idle":
                raise BenchError(f"lamp of {room} is {obs.lamps.get(room)} after the reset, not idle")
            ours = [r for r in obs.rejected if r.get("topic") in {topics.event(x) for x in rooms}]
            if ours:  # (another benchmark's refused traffic, on rooms not measured here, is not ours)
                raise BenchError(f"the hub rejected a benchmark message: {ours[0]}")
            progress("press → lamp", i + 1 - warmup, n, samples)
            if i % 50 == 0:
                hub.check()
            gap(rng, *gap_ms)
        checks = {"rejected": len([r for r in obs.rejected if r.get("topic") in {topics.event(x) for x in rooms}]), "unretained_lamps": obs.unretained_lamps,
                  "rooms_pressed": len(per_room),
                  "presses_per_room": [min(per_room.values()), max(per_room.values())] if per_room else [0, 0]}
    finally:
        device.close()
        obs.close()
    return samples, checks


# -- report -------------------------------------------------------------------------------
def report(result: dict) -> str:
    m, cfg = result["machine"], result["config"]
    lines = [
        "",
        "Callbell benchmark: press → retained lamp",
        f"machine : {m['nproc']} CPU(s), {m['cpu']}; {m['kernel']}",
        f"software: Python {m['python']}, Mosquitto {m['mosquitto']}, paho-mqtt {m['paho_mqtt']}, "
        f"SQLite {m['sqlite']}; data on {m['data_fs']}",
        f"run     : hub {cfg['hub']}, {cfg['rooms']} room(s), {cfg['presses']} presses "
        f"(+{cfg['warmup']} warm-up), baseline {cfg['baseline']} samples, reset by {cfg['reset']}, "
        f"gap {cfg['gap_ms'][0]:g}-{cfg['gap_ms'][1]:g} ms",
    ]
    if cfg["broker_config"]:
        lines.append(f"broker  : Callbell's mosquitto.conf plus: {'; '.join(cfg['broker_config'])}")
    lines += [f"load    : {m['loadavg']}", "",
              f"{'ms':<26}{'n':>6}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}{'mean':>8}"]
    for label, key in (("raw broker round trip", "baseline"), ("press → retained lamp", "press")):
        s = result[key]
        lines.append(f"{label:<26}{s['n']:>6}{s['p50']:>8.2f}{s['p90']:>8.2f}{s['p99']:>8.2f}"
                     f"{s['max']:>8.2f}{s['mean']:>8.2f}")
    lines.append("")
    lines.append(f"press p50 / raw p50 = {result['ratio_p50']:.2f}×")
    for t in result["targets"]:
        lines.append(f"target {t['name']:<32} {'met' if t['met'] else 'MISSED'} ({t['value']})")
    c = result["checks"]
    lines.append(f"checks: {c['rejected']} rejected, {c['unretained_lamps']} lamp(s) without retain, "
                 f"{c['rooms_pressed']} room(s) pressed ({c['presses_per_room'][0]}-"
                 f"{c['presses_per_room'][1]} each)")
    return "\n".join(lines)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@dataclass
class BenchStore:
    """What a benchmark runs against: its folder, broker, hub and room ids."""
    tmp: Path
    broker: Broker
    hub: "HubProcess | HubInProcess"
    rooms: list[str]
    http_port: int
    token: str | None = None  # a device token, when the hub signs in (demo=False)


@contextmanager
def bench_store(args, prefix: str, broker_config: str = "", rooms: int | None = None,
                demo: bool = True, mqtt_extra: str = BENCH_MQTT, extra: str = "") -> Iterator[BenchStore]:
    """Mosquitto and the hub (``args.hub``: process or in-process) with ``rooms`` rooms
    (default ``args.rooms``), in a temporary folder under ``args.tmp``, shared by every
    benchmark here. ``demo=False``: the hub asks for sign-in, as a store runs it, and the
    benchmark makes itself a device token (``callbell token create``) for the health check.
    On the way out — normally, on an error or on Ctrl-C/SIGTERM — both are
    stopped and the folder removed (unless ``args.keep``); errors end the program with a message and exit code 1, Ctrl-C
    with 130."""
    # Ctrl-C and SIGTERM both clean up (SIGINT explicitly: a shell may start us with it ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=args.tmp))
    broker = hub = None
    try:
        say(f"temporary folder {tmp}")
        broker = Broker(tmp / "broker", extra_config=broker_config).start()
        if broker.host not in ("127.0.0.1", "localhost", "::1"):
            raise BenchError(f"the broker listens on {broker.host}, not loopback")
        say(f"Mosquitto on {broker.url}")
        n_rooms = args.rooms if rooms is None else rooms
        room_ids = [f"room-{i:03d}" for i in range(1, n_rooms + 1)]
        http_port = free_port()
        config = write_store_config(tmp / "store.toml", room_ids, broker.url, http_port, demo=demo,
                                    mqtt_extra=mqtt_extra, extra=extra)
        token = None if demo else make_token(config, "device")
        hub = (HubProcess if args.hub == "process" else HubInProcess)(config, http_port, tmp / "hub.log")
        hub.start()
        wait_healthy(hub, token=token)
        say(f"hub ({args.hub}) healthy on http://127.0.0.1:{http_port} with {n_rooms} room(s)")
        yield BenchStore(tmp, broker, hub, room_ids, http_port, token)
    except KeyboardInterrupt:
        say("interrupted; cleaning up")
        raise SystemExit(130)
    except (BenchError, BrokerError, OSError, RuntimeError) as e:
        say(f"error: {e}")
        tail = hub.tail() if hub is not None else ""
        if tail:
            say(f"hub log tail:\n{tail}")
        raise SystemExit(1)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the cleanup
        try:
            if hub is not None:
                hub.stop()
            if broker is not None:
                broker.stop()
        finally:
            if args.keep:
                say(f"kept {tmp}")
            else:
                shutil.rmtree(tmp, ignore_errors=True)
            signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="press_to_lamp.py",
        description="Measure Callbell's press → retained lamp latency (device event in, lamp "
                    "state out, through Mosquitto and the hub) against the raw Mosquitto round "
                    "trip, both in the same run on this machine. Starts and stops its own "
                    "broker and hub in a temporary folder.",
        epilog="Example: python bench/press_to_lamp.py --rooms 1 40 200 --presses 500 --json out.json. "
               "Progress goes to stderr, the table to stdout. See docs/benchmarks.md.")
    ap.add_argument("--rooms", type=int, nargs="+", default=[1, 40, 200], metavar="N",
                    help="rooms in the store; several counts run one after another, each with its "
                         "own broker, hub and baseline (default: 1 40 200)")
    ap.add_argument("--presses", type=int, default=500, help="timed presses per room count (default: %(default)s)")
    ap.add_argument("--baseline", type=int, default=500, metavar="N",
                    help="timed raw round trips per room count (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=20, metavar="N",
                    help="untimed presses and round trips before each measurement (default: %(default)s)")
    ap.add_argument("--hub", choices=("process", "inprocess"), default="process",
                    help="run the hub as 'python -m app.cli hub' like production (default), "
                         "or in this process (shares the GIL with the clients: slower, for profiling)")
    ap.add_argument("--reset", choices=("presence", "cancel"), default="presence",
                    help="how a room is made idle after each press, not timed: two presence "
                         "events (answered, done) or one cancel (default: %(default)s)")
    ap.add_argument("--gap-ms", type=float, nargs=2, default=(5.0, 25.0), metavar=("MIN", "MAX"),
                    help="random pause between samples, ms (default: 5 25)")
    ap.add_argument("--seed", type=int, default=None, help="random seed (room order and gaps)")
    ap.add_argument("--tmp", type=Path, default=None, metavar="DIR",
                    help="where to create the temporary folder for broker and database "
                         "(default: the system's; pick a folder on the disk the hub will use, "
                         "since SQLite's fsync cost depends on it)")
    ap.add_argument("--broker-config", action="append", default=[], metavar="LINE",
                    help="extra mosquitto.conf line, appended after Callbell's own (repeatable; "
                         "for experiments, e.g. 'autosave_on_changes false')")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, database)")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the figures and samples as JSON")
    args = ap.parse_args(argv)
    if min(args.rooms) < 1 or args.presses < 1 or args.baseline < 1 or args.warmup < 0:
        ap.error("--rooms, --presses and --baseline must be at least 1, --warmup at least 0")
    if not 0 <= args.gap_ms[0] <= args.gap_ms[1]:
        ap.error("--gap-ms needs 0 <= MIN <= MAX")

    return run_room_counts(args, measure_rooms, summary)


def run_room_counts(args, measure_rooms, summary) -> int:
    """One ``measure_rooms(args, n, rng)`` per room count of ``--rooms``, each on its own broker
    and hub; the summary when there are several, and ``--json`` with every run."""
    rng = random.Random(args.seed)
    runs = [measure_rooms(args, n, rng) for n in args.rooms]
    if len(runs) > 1:
        print(summary(runs), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"runs": runs}, indent=1) + "\n")
        say(f"wrote {args.json}")
    return 0


def measure_rooms(args, n_rooms: int, rng: random.Random) -> dict:
    """One complete run with ``n_rooms`` rooms: its own broker and hub, baseline, presses.
    Prints its report and returns the figures."""
    load_at_start = loadavg()
    with bench_store(args, "callbell-bench-", "\n".join(args.broker_config), rooms=n_rooms) as store:
        broker, hub, rooms, tmp = store.broker, store.hub, store.rooms, store.tmp
        host, port = broker.host, broker.port
        say(f"baseline: {args.baseline} raw round trips (+{args.warmup} warm-up)")
        base = measure_baseline(host, port, args.baseline, args.warmup, rng, tuple(args.gap_ms))
        say(f"press → lamp: {args.presses} presses (+{args.warmup} warm-up) over {n_rooms} room(s)")
        press, checks = measure_presses(host, port, rooms, args.presses, args.warmup, args.reset,
                                        rng, tuple(args.gap_ms), hub)
        hub.check()

        b, p = summarize(base), summarize(press)
        ratio = p["p50"] / b["p50"]
        result = {
            "machine": machine_info(tmp, load_at_start),
            "config": {"hub": args.hub, "rooms": n_rooms, "presses": args.presses,
                       "baseline": args.baseline, "warmup": args.warmup, "reset": args.reset,
                       "gap_ms": list(args.gap_ms), "seed": args.seed,
                       "broker_config": args.broker_config},
            "baseline": b, "press": p, "ratio_p50": ratio,
            "targets": [
                {"name": f"press p99 < {TARGET_P99_MS:g} ms", "met": p["p99"] < TARGET_P99_MS,
                 "value": f"{p['p99']:.2f} ms"},
                {"name": f"press p99 <= {TARGET_P99_STRICT_MS:g} ms", "met": p["p99"] <= TARGET_P99_STRICT_MS,
                 "value": f"{p['p99']:.2f} ms"},
                {"name": f"press p50 <= {TARGET_RATIO:g}× raw p50", "met": ratio <= TARGET_RATIO,
                 "value": f"{ratio:.2f}×"},
            ],
            "checks": checks,
            "samples_ms": {"baseline": base, "press": press},
        }
        print(report(result), flush=True)
        return result


def summary(runs: list[dict]) -> str:
    """One line per room count, for a run over several."""
    lines = ["", "Summary (ms; each row its own broker, hub and baseline)",
             f"{'rooms':>6}{'raw p50':>9}{'raw p99':>9}{'press p50':>11}{'p90':>8}{'p99':>8}{'max':>8}"
             f"{'p50/raw':>9}  load at start / end"]
    for r in runs:
        b, p = r["baseline"], r["press"]
        load = r["machine"]["loadavg"].replace(" at the start, ", " / ").replace(" at the end", "")
        lines.append(f"{r['config']['rooms']:>6}{b['p50']:>9.2f}{b['p99']:>9.2f}{p['p50']:>11.2f}{p['p90']:>8.2f}"
                     f"{p['p99']:>8.2f}{p['max']:>8.2f}{r['ratio_p50']:>8.2f}×  {load}")
    return "\n".join(lines)

if __name__ == "__main__":
    sys.exit(main())
