"""The baselines the dashboard's fan-out to N pages is measured against (imported by
bench/press_to_dashboard.py; not a benchmark on its own):

- **the raw broker fan-out**: Mosquitto delivering one QoS 1 message to N subscribers, with no
  application in the path, received the way bench/press_to_dashboard.py receives the pages.
  Subscriber 0 is a plain paho client with its own network thread (like the raw round trip,
  and like the measured page on its own thread); the other N − 1 are bare MQTT 3.1.1
  subscribers on one asyncio event loop in this process (like the other N − 1 pages), each
  parsing its socket's bytes and answering PUBACK. Every publish is timed to every
  subscriber, giving the same three figures as the pages: subscriber 0, every subscriber, and
  the last subscriber per message;
- **the send floor**: N ``send()`` calls to N loopback connections in a tight loop, the least
  any server needs to hand one message to N pages on this machine.
"""
from __future__ import annotations

import asyncio
import os
import random
import socket
import threading
import time

from press_to_lamp import DEVICE_ID, WAIT_S, BenchError, Client, device_event, gap, progress

#: Keepalive the bare subscribers announce, seconds: longer than any phase, so they need not ping.
BARE_KEEPALIVE_S = 600

#: Subscribers connected per round (each round awaited): 500 connects at once would be a SYN flood.
CONNECT_ROUND = 50


def _packet(first: int, body: bytes) -> bytes:
    """An MQTT packet: fixed header byte, remaining length (variable-length integer), body."""
    n, length = len(body), bytearray()
    while True:
        n, digit = divmod(n, 128)
        length.append(digit | 0x80 if n else digit)
        if not n:
            return bytes([first]) + bytes(length) + body


def _utf8(s: str) -> bytes:
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


class BareSubscriber:
    """One MQTT 3.1.1 subscriber speaking the protocol by hand: CONNECT, SUBSCRIBE at QoS 1,
    then PUBLISH in, PUBACK out. ``seen[seq] = perf_counter()`` at the read that completed the
    message whose payload starts with the 8-digit ``seq``."""

    def __init__(self, client_id: str, topic: str, on_arrival):
        self.client_id = client_id
        self.topic = topic
        self.on_arrival = on_arrival
        self.seen: dict[int, float] = {}
        self.error: str | None = None
        self.subscribed = asyncio.Event()
        self._buf = b""

    async def run(self, host: str, port: int) -> None:
        writer = None
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            writer.write(_packet(0x10, _utf8("MQTT") + bytes([4, 0x02])  # 3.1.1, clean session
                                 + BARE_KEEPALIVE_S.to_bytes(2, "big") + _utf8(self.client_id)))
            writer.write(_packet(0x82, (1).to_bytes(2, "big") + _utf8(self.topic) + bytes([1])))
            while True:
                data = await reader.read(65536)
                t = time.perf_counter()
                if not data:
                    raise ConnectionError("the broker closed the connection")
                self._buf += data
                self._parse(writer, t)
        except asyncio.CancelledError:
            pass
        except Exception as e:  # noqa: BLE001 - reported by the phase
            self.error = repr(e)
            self.subscribed.set()  # do not keep the phase waiting
        finally:
            if writer is not None:
                writer.close()

    def _parse(self, writer, t: float) -> None:
        buf = self._buf
        while len(buf) >= 2:
            length, mult, i = 0, 1, 1
            while True:
                if i >= len(buf):
                    self._buf = buf
                    return
                digit = buf[i]
                length += (digit & 0x7F) * mult
                mult *= 128
                i += 1
                if not digit & 0x80:
                    break
            if len(buf) < i + length:
                break
            kind, flags, body = buf[0] >> 4, buf[0] & 0x0F, buf[i:i + length]
            buf = buf[i + length:]
            if kind == 2 and body[1] != 0:  # CONNACK refused
                raise ConnectionError(f"the broker refused {self.client_id}: code {body[1]}")
            if kind == 9:  # SUBACK
                if body[2] == 0x80:
                    raise ConnectionError(f"the broker refused the subscription to {self.topic}")
                self.subscribed.set()
            elif kind == 3:  # PUBLISH
                qos = (flags >> 1) & 3
                n = int.from_bytes(body[:2], "big")
                at = 2 + n
                if qos:
                    writer.write(_packet(0x40, body[at:at + 2]))  # PUBACK with its packet id
                    at += 2
                seq = int(body[at:at + 8])
                if seq not in self.seen:
                    self.seen[seq] = t
                    self.on_arrival(seq)
        self._buf = buf


class _Tally:
    """How many subscribers have each message; wakes the publisher when all have it."""

    def __init__(self, n: int):
        self.n = n
        self.counts: dict[int, int] = {}
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.waiting_for: int | None = None

    def arrived(self, seq: int) -> None:
        with self.lock:
            c = self.counts[seq] = self.counts.get(seq, 0) + 1
            if seq == self.waiting_for and c >= self.n:
                self.done.set()

    def arm(self, seq: int) -> None:
        with self.lock:
            self.waiting_for = seq
            self.done.clear()
            if self.counts.get(seq, 0) >= self.n:
                self.done.set()


def measure_broker_fanout(host: str, port: int, n_subscribers: int, n: int, warmup: int,
                          loop: asyncio.AbstractEventLoop, rng: random.Random,
                          gap_ms: tuple[float, float], label: str) -> dict[str, list[float]]:
    """Publish ``warmup + n`` QoS 1 messages (the size of a call event), one at a time, each
    after every subscriber had the one before; returns ms lists ``measured`` (subscriber 0),
    ``all`` (every subscriber, every message) and ``last`` (last subscriber per message).
    The bare subscribers run on ``loop`` (an event loop running on another thread)."""
    topic = f"bench-fanout/{os.getpid()}/{rng.getrandbits(32):08x}"
    tally = _Tally(n_subscribers)
    measured_seen: dict[int, float] = {}

    def on_measured(t: float, msg) -> None:
        seq = int(msg.payload[:8])
        if seq not in measured_seen:
            measured_seen[seq] = t
            tally.arrived(seq)

    sub0 = Client(host, port, f"bench-fanout-0-{os.getpid()}", [topic], on_measured)
    bare = [BareSubscriber(f"bench-fanout-{i}-{os.getpid()}", topic, tally.arrived)
            for i in range(1, n_subscribers)]
    tasks: list[asyncio.Task] = []
    pub = None

    async def connect() -> None:
        for k in range(0, len(bare), CONNECT_ROUND):
            round_ = bare[k:k + CONNECT_ROUND]
            tasks.extend(loop.create_task(s.run(host, port)) for s in round_)
            await asyncio.wait_for(asyncio.gather(*(s.subscribed.wait() for s in round_)), WAIT_S)

    async def disconnect() -> None:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    try:
        asyncio.run_coroutine_threadsafe(connect(), loop).result(WAIT_S * 6)
        failed = [s for s in bare if s.error]
        if failed:
            raise BenchError(f"{len(failed)} fan-out subscriber(s) failed, e.g. {failed[0].error}")
        pub = Client(host, port, f"bench-fanout-pub-{os.getpid()}")
        measured, all_ms, last_ms = [], [], []
        for seq in range(warmup + n):
            payload = b"%08d " % seq + device_event(id=f"fan-{seq:06d}", device=DEVICE_ID, type="call",
                                                    reason="help", at=time.time())
            tally.arm(seq)
            t0 = time.perf_counter()
            pub.publish(topic, payload)
            if not tally.done.wait(WAIT_S):
                got = tally.counts.get(seq, 0)
                raise BenchError(f"raw fan-out: message {seq} reached {got} of {n_subscribers} subscriber(s)")
            if seq >= warmup:
                ts = [measured_seen[seq]] + [s.seen[seq] for s in bare]
                measured.append((ts[0] - t0) * 1000.0)
                all_ms += [(t - t0) * 1000.0 for t in ts]
                last_ms.append((max(ts) - t0) * 1000.0)
                progress(f"{label} raw fan-out", seq + 1 - warmup, n, last_ms)
            gap(rng, *gap_ms)
        return {"measured": measured, "all": all_ms, "last": last_ms}
    finally:
        if pub is not None:
            pub.close()
        sub0.close()
        asyncio.run_coroutine_threadsafe(disconnect(), loop).result(15)


def send_floor(n_sockets: int, size: int, repeats: int = 200) -> list[float]:
    """What handing one message to ``n_sockets`` loopback TCP connections costs at the least:
    ms for one tight loop of ``send()`` calls, one per connection, from this thread (a sender in
    any language makes the same system calls). The receivers read between rounds, not during
    them, so no wake-up is included: a lower bound. Returns ``repeats`` samples."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=min(n_sockets, 4096))
    senders, receivers = [], []
    try:
        for _ in range(n_sockets):
            r = socket.create_connection(listener.getsockname())
            s, _ = listener.accept()
            for sock in (r, s):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            receivers.append(r)
            senders.append(s)
        payload = b"x" * size
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for s in senders:
                s.send(payload)
            samples.append((time.perf_counter() - t0) * 1000.0)
            for r in receivers:
                r.recv(65536)
        return samples
    finally:
        for sock in senders + receivers + [listener]:
            sock.close()
