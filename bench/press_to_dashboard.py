#!/usr/bin/env python3
"""Press → dashboard (SSE) latency of the Callbell hub, with 1, 50 and 500 pages connected.

Starts its own Mosquitto and hub (as bench/press_to_lamp.py does, whose helpers it imports),
then, for each client count N (default 1, 50, 500):

1. connects N SSE clients to GET /api/v1/stream, all in this one process: client 0 (the
   measured one) reads a plain blocking socket on its own thread; the other N-1 are asyncio
   streams on one event loop thread, so 500 connections are cheap. All wait for their
   `snapshot` before anything is timed.
2. baselines, same run: the raw broker round trip (plain paho publish → on_message); the raw
   broker fan-out to N MQTT subscribers received like the N pages, and the send floor (N
   loopback send() calls in a tight loop), both from bench/fanout_baselines.py.
3. press → dashboard: a plain paho "device" publishes a `call` event exactly as a device does;
   time from publish() to the SSE `call` message with status "open" for that room arriving at
   the measured client. The press → retained lamp time of the same press is recorded too.
   The room is then reset (not timed: `presence` answered, then done), and the next press
   waits until every client has the call's `done` message (or --settle-s passes).
4. checks: every client got every call's `open` message (missing = lost); a client whose
   `open` message arrived more than --lag-ms after publish() counts as lagged; a stream that
   ended or failed during the phase counts as dropped. Also reported: the time until the LAST
   client had the message (fan-out complete; client-side timestamps on the shared event loop,
   so an upper bound).

Only 127.0.0.1 is used. Progress goes to stderr, the table to stdout.

    python bench/press_to_dashboard.py                           # 40 rooms, 1/50/500 clients
    python bench/press_to_dashboard.py --clients 1 50 500 --presses 200 --json out.json
    python bench/press_to_dashboard.py --rooms 1 40 200 --json rooms.json   # each: 1/50/500 clients
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import socket
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from press_to_lamp import (  # noqa: E402
    run_room_counts,
    DEVICE_ID, STORE_ID, WAIT_S, BenchError, Client, Observer,
    device_event, gap, loadavg, machine_info, measure_baseline, progress, say,
    summarize, bench_store)

from fanout_baselines import measure_broker_fanout, send_floor  # noqa: E402
from callbell.protocol import Topics  # noqa: E402

HOST = "127.0.0.1"
_ID = re.compile(r'"id":\s*"([^"]*)"')
_STATUS = re.compile(r'"status":\s*"([^"]*)"')

#: Bytes of one `call` message as the stream sends it (a call with one alerted associate),
#: for the send floor.
SEND_FLOOR_BYTES = 600


# -- SSE parsing (sans I/O, shared by the measured thread and the asyncio clients) ------------
class SSEParser:
    """Feeds raw HTTP response bytes; handles headers, chunked encoding and SSE framing, and
    calls ``on_message(kind, data_text, t)`` for each complete message."""

    def __init__(self, on_message):
        self.on_message = on_message
        self._head = b""
        self._headers_done = False
        self._chunked = False
        self._raw = b""        # undecoded body bytes (chunked)
        self._need = None      # bytes left in the current chunk
        self._sse = b""        # decoded SSE text not yet framed
        self.status = None

    def feed(self, data: bytes, t: float) -> None:
        if not self._headers_done:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            head, data = self._head[:end].decode("latin-1"), self._head[end + 4:]
            self._headers_done = True
            lines = head.split("\r\n")
            self.status = int(lines[0].split()[1])
            if self.status != 200:
                raise BenchError(f"GET /api/v1/stream answered {lines[0]}")
            self._chunked = any(l.lower().replace(" ", "") == "transfer-encoding:chunked" for l in lines[1:])
        if self._chunked:
            self._raw += data
            out = []
            while True:
                if self._need is None:
                    nl = self._raw.find(b"\r\n")
                    if nl < 0:
                        break
                    size = int(self._raw[:nl].split(b";")[0], 16)
                    self._raw = self._raw[nl + 2:]
                    if size == 0:
                        self._need = -1
                        break
                    self._need = size
                if self._need < 0:
                    break
                if len(self._raw) < self._need + 2:
                    break
                out.append(self._raw[:self._need])
                self._raw = self._raw[self._need + 2:]
                self._need = None
            data = b"".join(out)
        if not data:
            return
        self._sse += data
        while True:
            end = self._sse.find(b"\n\n")
            if end < 0:
                return
            block, self._sse = self._sse[:end], self._sse[end + 2:]
            kind, datas = "message", []
            for line in block.split(b"\n"):
                if line.startswith(b"event:"):
                    kind = line[6:].strip().decode()
                elif line.startswith(b"data:"):
                    datas.append(line[5:].lstrip(b" ").decode())
            if datas:
                self.on_message(kind, "\n".join(datas), t)


def _request(port: int) -> bytes:
    return (f"GET /api/v1/stream HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
            "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n").encode()


class StreamClient:
    """What one SSE client saw: snapshot, and the arrival time of each (call id, status)."""

    def __init__(self, index: int):
        self.index = index
        self.snapshot = threading.Event()
        self.seen: dict[tuple[str, str], float] = {}
        self.ended = False
        self.error: str | None = None
        self.closing = False
        self.parser = SSEParser(self._message)
        self.hook = None  # called (call object, t) for every call message (measured client)

    def _message(self, kind: str, data: str, t: float) -> None:
        if kind == "snapshot":
            self.snapshot.set()
        elif kind == "call":
            if self.hook is None:
                # The crowd: two regex searches instead of json.loads, so that 500 clients on one
                # event loop cost this process as little as possible. The call object's first
                # "id" and "status" keys are the call's own (hub.views.call_object).
                ident, status = _ID.search(data), _STATUS.search(data)
                if ident and status:
                    self.seen.setdefault((ident.group(1), status.group(1)), t)
                return
            c = json.loads(data)
            self.seen.setdefault((c["id"], c["status"]), t)
            self.hook(c, t)


class MeasuredClient(StreamClient):
    """Client 0: a blocking socket on its own thread, timestamp taken as recv() returns."""

    def __init__(self, port: int):
        super().__init__(0)
        self.sock = socket.create_connection((HOST, port), timeout=WAIT_S)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(None)
        self.sock.sendall(_request(port))
        self.thread = threading.Thread(target=self._run, name="sse-measured", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                data = self.sock.recv(65536)
                t = time.perf_counter()
                if not data:
                    self.ended = True
                    return
                self.parser.feed(data, t)
        except Exception as e:  # noqa: BLE001 - reported as a dropped client
            if not self.closing:
                self.error = repr(e)
                self.ended = True

    def close(self) -> None:
        self.closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)


class Crowd:
    """The other N-1 clients: asyncio streams on one event-loop thread."""

    def __init__(self, port: int, n: int):
        self.port = port
        self.clients = [StreamClient(i) for i in range(1, n + 1)]
        self.loop = asyncio.new_event_loop()
        self.tasks: list[asyncio.Task] = []
        self.thread = threading.Thread(target=self.loop.run_forever, name="sse-crowd", daemon=True)
        self.thread.start()
        if self.clients:
            asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(WAIT_S * 6)

    async def _start(self) -> None:
        for i in range(0, len(self.clients), 50):  # connect in batches: no SYN flood
            batch = self.clients[i:i + 50]
            opened = await asyncio.gather(*(asyncio.open_connection(HOST, self.port) for _ in batch))
            for c, (r, w) in zip(batch, opened):
                self.tasks.append(self.loop.create_task(self._read(c, r, w)))
            await asyncio.sleep(0.01)

    async def _read(self, c: StreamClient, reader: asyncio.StreamReader, writer) -> None:
        try:
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            writer.write(_request(self.port))
            await writer.drain()
            while True:
                data = await reader.read(65536)
                t = time.perf_counter()
                if not data:
                    c.ended = True
                    return
                c.parser.feed(data, t)
        except asyncio.CancelledError:
            pass
        except Exception as e:  # noqa: BLE001
            c.error, c.ended = repr(e), True
        finally:
            writer.close()

    def close(self) -> None:
        async def stop():
            for c in self.clients:
                c.closing = True
            for t in self.tasks:
                t.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
        try:
            if self.tasks:
                asyncio.run_coroutine_threadsafe(stop(), self.loop).result(15)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            self.loop.close()


def stream_clients(port: int) -> int:
    with urllib.request.urlopen(f"http://{HOST}:{port}/api/v1/health", timeout=5) as r:
        return int(json.loads(r.read()).get("stream_clients", -1))


#: The hub's own fan-out histograms (hub.metrics): per page, and until the last page.
FANOUT_FAMILIES = ("callbell_stream_to_page_seconds", "callbell_stream_to_all_pages_seconds")


def hub_fanout(port: int) -> dict[str, list[tuple[float, float]]]:
    """The hub's fan-out histograms from GET /metrics: family → [(upper bound s, cumulative count)]."""
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, list[tuple[float, float]]] = {f: [] for f in FANOUT_FAMILIES}
    for line in text.splitlines():
        for f in FANOUT_FAMILIES:
            prefix = f + '_bucket{le="'
            if line.startswith(prefix):
                le = line[len(prefix):line.index('"}')]
                out[f].append((float(le), float(line.rsplit(" ", 1)[1])))
    return out


def histogram_percentiles(before: list[tuple[float, float]], after: list[tuple[float, float]],
                          qs=(0.5, 0.9, 0.99)) -> dict:
    """Percentiles, ms, of what was observed between two scrapes of a cumulative histogram,
    interpolated linearly inside a bucket (the hub's buckets are 10 per decade: within ~12 %)."""
    bounds = [le for le, _ in after]
    counts = [a - b for (_, a), (_, b) in zip(after, before)]
    n = counts[-1] if counts else 0
    out = {"n": int(n)}
    for q in qs:
        if not n:
            out[f"p{round(q * 100)}"] = float("nan")
            continue
        rank = q * n
        lo_bound, lo_count = 0.0, 0.0
        for le, c in zip(bounds, counts):
            if c >= rank:
                hi = le if le != float("inf") else lo_bound
                frac = (rank - lo_count) / (c - lo_count) if c > lo_count else 1.0
                out[f"p{round(q * 100)}"] = (lo_bound + (hi - lo_bound) * frac) * 1000.0
                break
            lo_bound, lo_count = le, c
    return out


# -- one phase: N clients ---------------------------------------------------------------------
def run_phase(n_clients: int, args, broker, hub, rooms: list[str], rng: random.Random) -> dict:
    topics = Topics("callbell", STORE_ID)
    say(f"[{n_clients} client(s)] connecting")
    measured = crowd = obs = device = None
    try:
        measured = MeasuredClient(hub.http_port)
        crowd = Crowd(hub.http_port, n_clients - 1)
        everyone: list[StreamClient] = [measured] + crowd.clients
        deadline = time.monotonic() + WAIT_S * 3
        for c in everyone:
            if not c.snapshot.wait(max(0.0, deadline - time.monotonic())):
                raise BenchError(f"SSE client {c.index} got no snapshot "
                                 f"({sum(x.snapshot.is_set() for x in everyone)}/{n_clients} did)")
        on_hub = stream_clients(hub.http_port)
        say(f"[{n_clients} client(s)] all connected (hub counts {on_hub} stream client(s))")

        say(f"[{n_clients} client(s)] baseline: {args.baseline} raw round trips (+{args.warmup} warm-up)")
        base = measure_baseline(broker.host, broker.port, args.baseline, args.warmup, rng, tuple(args.gap_ms))
        fan = None
        if args.fanout:
            say(f"[{n_clients} client(s)] raw broker fan-out to {n_clients} subscriber(s): "
                f"{args.fanout} messages (+{args.warmup} warm-up)")
            fan = measure_broker_fanout(broker.host, broker.port, n_clients, args.fanout, args.warmup,
                                        crowd.loop, rng, tuple(args.gap_ms), f"[{n_clients}]")
        # The least any server could take to hand a call message to N pages on this machine.
        floor = send_floor(n_clients, SEND_FLOOR_BYTES)
        say(f"[{n_clients} client(s)] {n_clients} loopback send() call(s) in a tight loop: "
            f"p50 {summarize(floor)['p50']:.3f} ms")

        obs = Observer(broker.host, broker.port, topics)
        device = Client(broker.host, broker.port, f"bench-device-{os.getpid()}")
        t_deadline = time.monotonic() + WAIT_S
        while len(obs.lamps) < len(rooms) and time.monotonic() < t_deadline:
            time.sleep(0.05)
        busy = [r for r in rooms if obs.lamps.get(r, {}).get("state") != "idle"]
        if busy:
            raise BenchError(f"{len(busy)} room(s) not idle at the start, e.g. {busy[0]}")

        # The measured client's hook: first 'open' call message for the armed room.
        armed: dict = {}
        hit = threading.Event()
        lock = threading.Lock()

        def hook(c: dict, t: float) -> None:
            with lock:
                if armed and c.get("status") == "open" and c.get("room") == armed["room"] and "t" not in armed:
                    armed.update(t=t, call=c["id"])
                    hit.set()
        measured.hook = hook

        schedule: list[str] = []
        while len(schedule) < args.warmup + args.presses:
            rnd = rooms[:]
            rng.shuffle(rnd)
            schedule += rnd
        run = f"{os.getpid():x}{rng.getrandbits(24):06x}"
        sse_ms, lamp_ms, last_ms, calls = [], [], [], []  # calls: (call id, t0, timed?)
        unsettled = 0
        say(f"[{n_clients} client(s)] press → dashboard: {args.presses} presses (+{args.warmup} warm-up)")
        for i, room in enumerate(schedule[:args.warmup + args.presses]):
            if i == args.warmup:
                fanout_before = hub_fanout(hub.http_port)
            ev = device_event(id=f"d-{run}-{i:06d}-c", device=DEVICE_ID, type="call", reason="help",
                              at=time.time())
            with lock:
                armed.clear()
                armed["room"] = room
                hit.clear()
            obs.waiter.arm(lambda kind, ident, d, room=room:
                           kind == "lamp" and ident == room and d.get("state") == "called")
            t0 = time.perf_counter()
            device.publish(topics.event(room), ev)
            t_lamp, lamp = obs.waiter.wait(f"lamp 'called' of {room} (press {i})")
            if not hit.wait(WAIT_S):
                raise BenchError(f"the measured SSE client got no 'open' call for {room} (press {i})"
                                 + (f"; its stream ended: {measured.error}" if measured.ended else ""))
            with lock:
                t_sse, call = armed["t"], armed["call"]
            if call != lamp.get("call"):
                raise BenchError(f"SSE call {call} is not the lamp's call {lamp.get('call')}")
            timed = i >= args.warmup
            if timed:
                sse_ms.append((t_sse - t0) * 1000.0)
                lamp_ms.append((t_lamp - t0) * 1000.0)
            calls.append((call, t0, timed))
            # Reset (not timed), then let every client receive 'done' before the next press.
            obs.waiter.arm(lambda kind, ident, d, call=call:
                           kind == "call" and ident == call and d.get("status") == "done")
            for k in ("a", "d"):
                device.publish(topics.event(room), device_event(
                    id=f"d-{run}-{i:06d}-p{k}", device=DEVICE_ID, type="presence", at=time.time()))
            obs.waiter.wait(f"call {call} of {room} to be done")
            settle = time.monotonic() + args.settle_s
            while time.monotonic() < settle:
                if all(c.ended or (call, "done") in c.seen for c in everyone):
                    break
                time.sleep(0.001)
            else:
                unsettled += 1
            if obs.rejected:
                raise BenchError(f"the hub rejected a benchmark message: {obs.rejected[0]}")
            if timed:
                progress(f"[{n_clients}] press → dashboard", i + 1 - args.warmup, args.presses, sse_ms)
            if i % 50 == 0:
                hub.check()
            gap(rng, *args.gap_ms)

        time.sleep(0.2)  # let late messages arrive before the checks
        fanout_after = hub_fanout(hub.http_port)
        on_hub_side = {key: histogram_percentiles(fanout_before[f], fanout_after[f])
                       for key, f in zip(("page", "last"), FANOUT_FAMILIES)}
        missing_total, lagged, dropped = 0, 0, 0
        for c in everyone:
            miss = sum(1 for call, _, _ in calls if (call, "open") not in c.seen)
            missing_total += miss
            late = any((c.seen[(call, "open")] - t0) * 1000.0 > args.lag_ms
                       for call, t0, timed in calls if timed and (call, "open") in c.seen)
            lagged += late
            dropped += c.ended
        all_ms = []  # every client's delay for every timed press (client-side timestamps)
        for call, t0, timed in calls:
            if timed:
                ts = [c.seen.get((call, "open")) for c in everyone]
                ts = [t for t in ts if t is not None]
                if ts:
                    last_ms.append((max(ts) - t0) * 1000.0)
                    all_ms += [(t - t0) * 1000.0 for t in ts]
        clients_with_missing = sum(1 for c in everyone
                                   if any((call, "open") not in c.seen for call, _, _ in calls))
        errors = sorted({c.error for c in everyone if c.error})
        b, s, l = summarize(base), summarize(sse_ms), summarize(lamp_ms)
        return {
            "clients": n_clients, "hub_stream_clients": on_hub,
            "baseline": b, "sse": s, "lamp": l, "fanout_last": summarize(last_ms),
            "all_clients": summarize(all_ms),
            "ratio_p50": s["p50"] / b["p50"],
            # Mosquitto alone delivering to as many subscribers as there are pages (bench/fanout_baselines.py).
            "broker_fanout": None if fan is None else {k: summarize(v) for k, v in fan.items()},
            "send_floor": summarize(floor),
            # Measured by the hub (its /metrics), for every stream message of the timed presses
            # (open, answered, done): shown → handed to a page's connection, and to the last page.
            "hub_side": on_hub_side,
            "checks": {"calls": len(calls), "lost_messages": missing_total,
                       "clients_missing_a_call": clients_with_missing,
                       "clients_lagged": lagged, "lag_ms": args.lag_ms,
                       "clients_dropped": dropped, "errors": errors[:5],
                       "presses_not_settled": unsettled, "rejected": len(obs.rejected)},
            # (no samples for all_clients: that would be N × presses values)
            "samples_ms": {"baseline": base, "sse": sse_ms, "lamp": lamp_ms, "fanout_last": last_ms,
                           "broker_fanout_last": None if fan is None else fan["last"]},
        }
    finally:
        for thing in (device, obs, crowd, measured):
            if thing is not None:
                try:
                    thing.close()
                except Exception as e:  # noqa: BLE001
                    say(f"closing {type(thing).__name__}: {e!r}")


# -- report -----------------------------------------------------------------------------------
def report(result: dict) -> str:
    m, cfg = result["machine"], result["config"]
    lines = [
        "",
        "Callbell benchmark: press → dashboard (SSE)",
        f"machine : {m['nproc']} CPU(s), {m['cpu']}; {m['kernel']}",
        f"software: Python {m['python']}, Mosquitto {m['mosquitto']}, paho-mqtt {m['paho_mqtt']}, "
        f"SQLite {m['sqlite']}; data on {m['data_fs']}",
        f"run     : hub {cfg['hub']}, {cfg['rooms']} room(s), {cfg['presses']} presses "
        f"(+{cfg['warmup']} warm-up) and {cfg['baseline']} raw round trips per client count, "
        f"gap {cfg['gap_ms'][0]:g}-{cfg['gap_ms'][1]:g} ms",
        f"load    : {m['loadavg']}", "",
        f"{'clients':>7} {'raw p50':>8}{'raw p99':>8} {'sse p50':>8}{'sse p90':>8}{'sse p99':>8}{'sse max':>8}"
        f" {'lamp p50':>9}{'lamp p99':>9} {'all p50':>8}{'all p99':>8} {'last p50':>9}{'last p99':>9} {'sse/raw':>8}",
    ]
    for ph in result["phases"]:
        b, s, l, f, a = ph["baseline"], ph["sse"], ph["lamp"], ph["fanout_last"], ph["all_clients"]
        lines.append(f"{ph['clients']:>7} {b['p50']:>8.2f}{b['p99']:>8.2f} {s['p50']:>8.2f}{s['p90']:>8.2f}"
                     f"{s['p99']:>8.2f}{s['max']:>8.2f} {l['p50']:>9.2f}{l['p99']:>9.2f} {a['p50']:>8.2f}{a['p99']:>8.2f} "
                     f"{f['p50']:>9.2f}{f['p99']:>9.2f} {ph['ratio_p50']:>7.2f}×")
    lines += ["", "ms. sse = publish() → 'open' call message at the measured client; lamp = same press's "
              "retained lamp; all = every client, every press; last = until the last client had it",
              "(all/last: timestamps of the clients sharing one event loop here, so upper bounds).", "",
              f"{'clients':>7} {'calls':>6} {'lost msgs':>10} {'clients missing':>16} "
              f"{'lagged':>7} {'dropped':>8} {'unsettled':>10}"]
    for ph in result["phases"]:
        c = ph["checks"]
        lines.append(f"{ph['clients']:>7} {c['calls']:>6} {c['lost_messages']:>10} "
                     f"{c['clients_missing_a_call']:>16} {c['clients_lagged']:>7} {c['clients_dropped']:>8} "
                     f"{c['presses_not_settled']:>10}")
        for e in c["errors"]:
            lines.append(f"        error: {e}")
    lines.append(f"lagged = a client got some 'open' message > {cfg['lag_ms']:g} ms after publish(); "
                 f"unsettled = presses after which not every client had 'done' within {cfg['settle_s']:g} s")
    lines += ["", "Measured by the hub (GET /metrics), every stream message of the timed presses: "
              "shown to the pages → handed to a page's connection", "",
              f"{'clients':>7} {'messages':>9} {'page p50':>9}{'page p90':>9}{'page p99':>9}"
              f" {'last p50':>9}{'last p90':>9}{'last p99':>9}"]
    for ph in result["phases"]:
        pg, la = ph["hub_side"]["page"], ph["hub_side"]["last"]
        lines.append(f"{ph['clients']:>7} {la['n']:>9} {pg['p50']:>9.2f}{pg['p90']:>9.2f}{pg['p99']:>9.2f}"
                     f" {la['p50']:>9.2f}{la['p90']:>9.2f}{la['p99']:>9.2f}")
    lines.append("ms, interpolated in the hub's histogram buckets (10 per decade); last = until the last "
                 "page connected when it was shown had it")
    if any(ph.get("broker_fanout") for ph in result["phases"]):
        lines += ["", "Fan-out against its own baseline: Mosquitto alone delivering a QoS 1 message to as many "
                  "subscribers as there are pages, received the same way (one on its own thread, the rest on "
                  "one event loop)", "",
                  f"{'clients':>7} {'floor p50':>10} {'raw fan p50':>12}{'all p50':>9}{'last p50':>9}{'last p99':>9}"
                  f" {'sse p50':>8}{'all p50':>9}{'last p50':>9}{'last p99':>9} {'sse/fan':>8}{'all/fan':>8}{'last/fan':>9}"]
        for ph in result["phases"]:
            fan = ph.get("broker_fanout")
            if not fan:
                continue
            m, a, la = fan["measured"], fan["all"], fan["last"]
            s, sa, sl = ph["sse"], ph["all_clients"], ph["fanout_last"]
            lines.append(f"{ph['clients']:>7} {ph['send_floor']['p50']:>10.3f} {m['p50']:>12.2f}{a['p50']:>9.2f}{la['p50']:>9.2f}{la['p99']:>9.2f}"
                         f" {s['p50']:>8.2f}{sa['p50']:>9.2f}{sl['p50']:>9.2f}{sl['p99']:>9.2f}"
                         f" {s['p50'] / m['p50']:>7.2f}×{sa['p50'] / a['p50']:>7.2f}×{sl['p50'] / la['p50']:>8.2f}×")
        lines.append("ms from publish(); left: the broker to N subscribers (raw fan = subscriber 0), right: press → "
                     "dashboard to N pages (as in the first table); ratios of the p50s")
        lines.append(f"floor = N send() calls of {SEND_FLOOR_BYTES} bytes to N loopback connections in a tight loop, "
                     "no receiver waiting: the least any sender needs to reach the last page")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="press_to_dashboard.py",
        description="Measure Callbell's press → dashboard latency: device event in, SSE `call` "
                    "message (status open) out of GET /api/v1/stream, with 1, 50 and 500 SSE "
                    "clients connected, against the raw Mosquitto round trip and Mosquitto's own "
                    "fan-out to as many subscribers, measured in the same run. Starts and stops its own broker and hub in a temporary folder; all "
                    "traffic stays on 127.0.0.1.",
        epilog="Example: python bench/press_to_dashboard.py --clients 1 50 500 --presses 200 "
               "--json out.json. Progress goes to stderr, the table to stdout. See docs/benchmarks.md.")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 50, 500], metavar="N",
                    help="SSE client counts, one phase each (default: 1 50 500)")
    ap.add_argument("--rooms", type=int, nargs="+", default=[40], metavar="N",
                    help="rooms in the store; several counts run one after another, each with its "
                         "own broker and hub, e.g. --rooms 1 40 200 (default: 40)")
    ap.add_argument("--presses", type=int, default=200, help="timed presses per client count (default: %(default)s)")
    ap.add_argument("--baseline", type=int, default=200, metavar="N",
                    help="timed raw round trips per client count (default: %(default)s)")
    ap.add_argument("--fanout", type=int, default=200, metavar="N",
                    help="timed messages of the raw broker fan-out to as many MQTT subscribers as "
                         "pages, the baseline for the fan-out; 0 skips it (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=20, metavar="N",
                    help="untimed presses and round trips before each measurement (default: %(default)s)")
    ap.add_argument("--hub", choices=("process", "inprocess"), default="process",
                    help="hub as its own process like production (default) or in this process")
    ap.add_argument("--gap-ms", type=float, nargs=2, default=(5.0, 25.0), metavar=("MIN", "MAX"),
                    help="random pause between samples, ms (default: 5 25)")
    ap.add_argument("--lag-ms", type=float, default=100.0,
                    help="a client whose 'open' message comes later than this after publish() "
                         "counts as lagged (default: %(default)s)")
    ap.add_argument("--settle-s", type=float, default=5.0,
                    help="after each reset, wait up to this long for every client to have the "
                         "call's 'done' message (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=None, help="random seed (room order and gaps)")
    ap.add_argument("--tmp", type=Path, default=None, metavar="DIR",
                    help="where to create the temporary folder (default: the system's)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, database)")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the figures and samples as JSON")
    args = ap.parse_args(argv)
    if min(args.rooms) < 1 or args.presses < 1 or args.baseline < 1 or args.warmup < 0 or min(args.clients) < 1 \
            or args.fanout < 0:
        ap.error("--rooms, --presses, --baseline and --clients must be at least 1, --warmup and --fanout at least 0")
    if not 0 <= args.gap_ms[0] <= args.gap_ms[1]:
        ap.error("--gap-ms needs 0 <= MIN <= MAX")

    # The measured client's thread must not wait 5 ms for the GIL behind the other clients.
    sys.setswitchinterval(0.0005)

    return run_room_counts(args, measure_rooms, summary)


def measure_rooms(args, n_rooms: int, rng: random.Random) -> dict:
    """Every client count with ``n_rooms`` rooms, on its own broker and hub. Prints its report
    and returns the figures."""
    load_at_start = loadavg()
    with bench_store(args, "callbell-bench-sse-", rooms=n_rooms) as store:
        broker, hub, rooms, tmp = store.broker, store.hub, store.rooms, store.tmp
        phases = []
        for n in args.clients:
            phases.append(run_phase(n, args, broker, hub, rooms, rng))
            hub.check()
            ph = phases[-1]
            say(f"[{n_rooms} rooms, {n} client(s)] sse p50 {ph['sse']['p50']:.2f} ms, p99 {ph['sse']['p99']:.2f} ms; "
                f"lost {ph['checks']['lost_messages']}, dropped {ph['checks']['clients_dropped']}")
        result = {
            "machine": machine_info(tmp, load_at_start),
            "config": {"hub": args.hub, "rooms": n_rooms, "presses": args.presses,
                       "baseline": args.baseline, "warmup": args.warmup, "clients": args.clients,
                       "gap_ms": list(args.gap_ms), "lag_ms": args.lag_ms, "settle_s": args.settle_s,
                       "seed": args.seed},
            "phases": phases,
        }
        print(report(result), flush=True)
        return result


def summary(runs: list[dict]) -> str:
    """One line per room and client count, for a run over several room counts."""
    lines = ["", "Summary (ms; each room count its own broker and hub, each row its own baseline)",
             f"{'rooms':>6}{'clients':>8}{'raw p50':>9}{'lamp p50':>9}{'sse p50':>9}{'sse p99':>9}"
             f"{'last p50':>9}{'last p99':>9}{'sse/raw':>9}{'hub last p50':>13}{'p99':>7}"
             f"{'lost':>6}{'dropped':>8}{'lagged':>7}  load at start / end"]
    for r in runs:
        load = r["machine"]["loadavg"].replace(" at the start, ", " / ").replace(" at the end", "")
        for ph in r["phases"]:
            b, s, l, f, c = ph["baseline"], ph["sse"], ph["lamp"], ph["fanout_last"], ph["checks"]
            lines.append(f"{r['config']['rooms']:>6}{ph['clients']:>8}{b['p50']:>9.2f}{l['p50']:>9.2f}"
                         f"{s['p50']:>9.2f}{s['p99']:>9.2f}{f['p50']:>9.2f}{f['p99']:>9.2f}{ph['ratio_p50']:>8.2f}×"
                         f"{ph['hub_side']['last']['p50']:>13.2f}{ph['hub_side']['last']['p99']:>7.2f}"
                         f"{c['lost_messages']:>6}{c['clients_dropped']:>8}{c['clients_lagged']:>7}  {load}")
    lines.append("hub last = measured by the hub: shown to the pages → the last page's connection has it (every message)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
