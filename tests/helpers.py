"""Test helpers: a recording MQTT client, an HTTP client for the hub, a hub process."""
from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from callbell.broker import free_port
from callbell.protocol import EVENT_EXPIRY_S, event_id_prefix
from hub.config import load_store_config
from hub.domain.call import ACTIVE
from hub.service import HubService

ROOT = Path(__file__).resolve().parent.parent


def wait_until(predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.01, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def run_sql(db: Path, script: str) -> None:
    """Run ``script`` on the database file ``db`` from a connection of its own, as another
    program would (tests inject faults with triggers this way)."""
    conn = sqlite3.connect(db, timeout=10)
    try:
        conn.executescript(script)
    finally:
        conn.close()


class Recorder:
    """A plain paho client (no Callbell code) that records what it sees and publishes for tests."""

    def __init__(self, url: str, topics: list[str], client_id: str | None = None, persistent: bool = False):
        host, port = url.removeprefix("mqtt://").split(":")
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.client = paho.Client(callback_api_version=paho.CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"test-{id(self)}", protocol=paho.MQTTv5)
        self.client.on_message = self._on_message
        ready = threading.Event()
        self.client.on_subscribe = lambda *a: ready.set()
        if persistent:  # the broker queues QoS 1 messages for us while we are away
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
            self.client.connect(host, int(port), clean_start=False, properties=props)
        else:
            self.client.connect(host, int(port))
        self.client.loop_start()
        for t in topics:
            ready.clear()
            self.client.subscribe(t, qos=1)
            ready.wait(5)

    def _on_message(self, client, userdata, msg):
        with self._lock:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))

    def of(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.messages if t == topic]

    def json_of(self, topic: str) -> list[dict]:
        return [json.loads(p) for p in self.of(topic)]

    def last(self, topic: str) -> dict | None:
        found = self.json_of(topic)
        return found[-1] if found else None

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    def publish(self, topic: str, payload: bytes | str | dict, qos: int = 1, retain: bool = False,
                expiry_s: int | None = EVENT_EXPIRY_S) -> None:
        """Publish as a device does: QoS 1 with the event expiry interval (None: without)."""
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        props = None
        if expiry_s is not None:
            props = Properties(PacketTypes.PUBLISH)
            props.MessageExpiryInterval = expiry_s
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=props)
        info.wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Api:
    """Minimal JSON HTTP client for the hub (standard library only)."""

    def __init__(self, base: str):
        self.base = base.rstrip("/")

    def request(self, method: str, path: str, body=None, raw: bytes | None = None,
                headers: dict | None = None) -> tuple[int, object]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, _decode(r.read(), r.headers.get("Content-Type", ""))
        except urllib.error.HTTPError as e:
            return e.code, _decode(e.read(), e.headers.get("Content-Type", ""))

    def get(self, path: str):
        return self.request("GET", path)

    def post(self, path: str, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def ok(self, method: str, path: str, body=None):
        status, data = self.request(method, path, body)
        assert 200 <= status < 300, f"{method} {path} → {status}: {data}"
        return data


def _decode(raw: bytes, content_type: str):
    if "json" in content_type:
        return json.loads(raw)
    return raw.decode()


def write_store(path: Path, *, broker_url: str | None, http_port: int, db: str = "callbell.db",
                rooms: int = 3, standard_s: float = 90, expiry_s: float = 900, store_id: str = "test-store",
                demo: bool = True, extra: str = "", flood: bool = False) -> Path:
    """A small store config; ``demo=False`` turns authentication on (docs/security.md);
    ``extra``: more TOML, appended (an ``[alerts]`` section, say); ``flood``: lift the
    per-device rate limit (hub.domain.admission), for tests whose few simulated devices press
    far faster than any room would (one device standing in for a whole store's load)."""
    room_blocks = "\n".join(
        f'[[rooms]]\nid = "room-{i}"\nname = "Room {i}"\nzone = "{"a" if i <= 2 else "b"}"\n'
        for i in range(1, rooms + 1))
    mqtt = f'url = "{broker_url}"' if broker_url else f"embedded_port = {free_port()}"
    if flood:
        mqtt += "\ndevice_rate_per_s = 1000000\ndevice_burst = 1000000"
    path.write_text(f"""
[store]
id = "{store_id}"
name = "Test store"
timezone = "Europe/Berlin"
standard_s = {standard_s}
expiry_s = {expiry_s}

[mqtt]
{mqtt}

[database]
path = "{db}"

[http]
host = "127.0.0.1"
port = {http_port}
demo = {"true" if demo else "false"}

[[zones]]
id = "a"
[[zones]]
id = "b"

{room_blocks}

[[associates]]
id = "ana"
name = "Ana"
zone = "a"
[[associates]]
id = "ben"
name = "Ben"
zone = "b"
[[associates]]
id = "maria"
role = "manager"
{extra}
""")
    return path


def read_sse(port: int, until, headers: dict | None = None, timeout: float = 8.0) -> list[dict]:
    """SSE messages from the hub's /api/v1/stream, each ``{"event", "id", "data"}`` with the
    data parsed as JSON, until ``until(messages)`` is true (an int n: n messages) or the timeout."""
    if isinstance(until, int):
        until = (lambda msgs, n=until: len(msgs) >= n)
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    s.sendall(f"GET /api/v1/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n{extra}\r\n".encode())
    buf, messages = b"", []
    deadline = time.monotonic() + timeout
    try:
        while not until(messages) and time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            buf += chunk
            while b"\n\n" in buf:
                block, buf = buf.split(b"\n\n", 1)
                msg = {}
                for line in block.decode().splitlines():
                    if ":" in line and not line.startswith(":"):
                        k, _, v = line.partition(":")
                        msg[k] = v.strip()
                if "event" in msg:
                    msg["data"] = json.loads(msg["data"])
                    messages.append(msg)
    finally:
        s.close()
    return messages


class Page:
    """A dashboard page as dashboard/live.js keeps it: the calls it shows, from the hub's event
    stream, reconnecting with ``Last-Event-ID`` whenever the stream ends (a hub restart, say)."""

    def __init__(self, port: int):
        self.port = port
        self.calls: dict[str, dict] = {}   # call id → call, the active ones
        self.last_id: str | None = None
        self.connections = 0
        self.snapshots = 0
        self.resumes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def rooms(self) -> dict[str, str]:
        """Room → status of the calls the page shows."""
        return {c["room"]: c["status"] for c in list(self.calls.values())}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)  # a daemon: a stream waiting for its next message may outlive this

    def _apply(self, msgs: list[dict]) -> bool:
        for m in msgs[self._seen:]:
            if m["event"] == "snapshot":
                self.calls = {c["id"]: c for c in m["data"]["calls"]}
                self.snapshots += 1
            elif m["event"] == "call":
                c = m["data"]
                if c["status"] in ACTIVE:
                    self.calls[c["id"]] = c
                else:
                    self.calls.pop(c["id"], None)
            elif m["event"] == "resumed":
                self.resumes += 1
            if m.get("id"):
                self.last_id = m["id"]
        self._seen = len(msgs)
        return self._stop.is_set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._seen = 0
            self.connections += 1
            try:
                read_sse(self.port, self._apply, {"Last-Event-ID": self.last_id} if self.last_id else None,
                         timeout=3600)
            except OSError:
                pass  # the hub is down: try again, as EventSource does
            self._stop.wait(0.2)


@contextmanager
def running_hub(store_file: Path, clock=None) -> Iterator[HubService]:
    """The hub in this process (fast), with an ``api`` client; stopped on the way out.
    ``clock``: the hub's clock (default: the system's)."""
    service = HubService(load_store_config(store_file), clock=clock)
    ready = threading.Event()
    thread = threading.Thread(target=service.run, args=(ready,), daemon=True)
    thread.start()
    assert ready.wait(20), "hub did not start"
    service.api = Api(f"http://127.0.0.1:{service.http_port}")
    try:
        yield service
    finally:
        service.stop()
        thread.join(10)


class HubProcess:
    """The real hub, as its own process (``python -m app.cli hub``)."""

    def __init__(self, config: Path, port: int, log: Path, *, preexec_fn: Callable[[], None] | None = None,
                 env: dict | None = None, health_headers: dict | None = None):
        """``preexec_fn`` runs in the child before the hub (e.g. to lower its limits); ``env``
        is added to the environment; ``health_headers`` go with the health check (a token,
        when authentication is on)."""
        self.config, self.port, self.log = config, port, log
        self.proc: subprocess.Popen | None = None
        self.api = Api(f"http://127.0.0.1:{port}")
        self.preexec_fn, self.env, self.health_headers = preexec_fn, env or {}, health_headers

    def start(self, timeout: float = 20.0) -> "HubProcess":
        env = {**os.environ, "PYTHONPATH": str(ROOT), **self.env}
        self._log = open(self.log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "app.cli", "hub", "--config", str(self.config)],
                                     stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=str(self.config.parent),
                                     preexec_fn=self.preexec_fn)
        wait_until(self._healthy, timeout, 0.05, "the hub to serve /api/v1/health")
        return self

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"hub exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
        try:
            status, body = self.api.request("GET", "/api/v1/health", headers=self.health_headers)
            return status == 200 and body.get("broker")
        except OSError:
            return False

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._log.close()

    def stop(self) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if hasattr(self, "_log") and not self._log.closed:
            self._log.close()
        return self.proc.returncode if self.proc else 0

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def event(id: str, type: str = "call", device: str = "pi-test", age_ms: float = 0, **extra) -> dict:
    """An event as a Callbell device sends it (declaring the message expiry it sets); its id
    begins with the device's, as every device's does (added when ``id`` lacks it)."""
    if not id.startswith(event_id_prefix(device)):
        id = event_id_prefix(device) + id
    return {"v": 1, "id": id, "device": device, "type": type, "age_ms": age_ms, "at": time.time(),
            "expiry_s": EVENT_EXPIRY_S, **extra}
