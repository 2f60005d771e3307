"""Prometheus metrics, served at ``GET /metrics`` in the text exposition format 0.0.4
(written here: a few counters and one histogram need no client library).

What is measured, and where:

- calls by status now (``callbell_calls``) and the transitions since the hub started
  (``callbell_call_events_total``: pressed, reminder, acknowledged, answered, done, cancelled,
  missed, …) — from the dispatcher's batches, on its thread;
- the press→lamp latency (``callbell_press_to_lamp_seconds``): from a message coming off the
  broker socket to the room's changed lamp being handed to the MQTT client — the dispatcher
  measures it (``Dispatcher.on_lamp_latency``);
- the fan-out to the pages (``callbell_stream_to_page_seconds``, per page and message, and
  ``callbell_stream_to_all_pages_seconds``, per message until the last page had it): from the
  dispatcher showing a change to its bytes being handed to a page's connection — measured by
  the SSE stream on the HTTP event loop (``StreamChannel.on_page``, ``on_all_pages``);
- messages and requests rejected since start, by channel (``callbell_rejected_total``);
- devices online and offline, and each device's outbox (events it still has to send) from its
  last health message — read from the store when scraped.
"""
from __future__ import annotations

import bisect
import json
import threading
import time
from collections import Counter

from hub.dispatcher import Batch, Dispatcher
from hub.domain.call import ACTIVE

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Upper bounds of the latency buckets, seconds. A healthy hub answers in 1-5 ms (docs/
#: benchmarks.md); the upper buckets catch a batch stuck behind a slow disk or a burst.
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

#: Upper bounds of the fan-out buckets, seconds: ten per decade from 0.1 ms to 2.5 s, so a
#: percentile read from them (bench/press_to_dashboard.py) is within about 12 %. One page takes
#: tenths of a millisecond, 500 pages milliseconds to tens.
FANOUT_BUCKETS_S = tuple(round(0.0001 * 10 ** (i / 10), 7) for i in range(45))


class Histogram:
    """A Prometheus histogram: cumulative buckets, sum and count. Thread-safe."""

    def __init__(self, buckets: tuple[float, ...]):
        self.buckets = tuple(sorted(buckets))
        self._counts = [0] * (len(self.buckets) + 1)  # last: above every bound
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        with self._lock:
            self._counts[bisect.bisect_left(self.buckets, value)] += 1
            self._sum += value

    def lines(self, name: str) -> list[str]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        out, running = [], 0
        for bound, n in zip(self.buckets, counts):
            running += n
            out.append(f'{name}_bucket{{le="{_number(bound)}"}} {running}')
        running += counts[-1]
        out += [f'{name}_bucket{{le="+Inf"}} {running}', f"{name}_sum {_number(total)}", f"{name}_count {running}"]
        return out


class Metrics:
    """Collects what the dispatcher does and renders it for Prometheus.

    A communicator (``send`` runs on the dispatcher thread); ``render`` runs on an HTTP thread.
    """

    def __init__(self, dispatcher: Dispatcher, clock=time.time):
        self.dispatcher = dispatcher
        self.clock = clock
        self.latency = Histogram(LATENCY_BUCKETS_S)
        self._calls: dict[str, int] = {s: 0 for s in ACTIVE}
        self._overdue = 0
        self._events: Counter[str] = Counter()
        self._lock = threading.Lock()  # _events: written by the dispatcher, read by HTTP threads
        dispatcher.on_lamp_latency = self.latency.observe
        self.to_page = Histogram(FANOUT_BUCKETS_S)
        self.to_all_pages = Histogram(FANOUT_BUCKETS_S)

    def watch_stream(self, stream) -> None:
        """Measure the fan-out of ``stream`` (a hub.stream.StreamChannel)."""
        stream.on_page = self.to_page.observe
        stream.on_all_pages = self.to_all_pages.observe

    def send(self, batch: Batch) -> None:
        with self._lock:
            for _, t in batch.events:
                self._events[t.kind] += 1
        if batch.calls or batch.lamps:
            active = self.dispatcher.floor.active_calls()  # the dispatcher thread: safe to read
            counts = Counter(c.status for c in active)
            self._calls = {s: counts.get(s, 0) for s in ACTIVE}
            self._overdue = sum(1 for c in active if c.overdue)

    def render(self, devices: list[dict], broker_connected: bool) -> str:
        """The exposition text. ``devices`` are the store's device rows (Reader.devices)."""
        d = self.dispatcher
        out: list[str] = []
        with self._lock:
            events = sorted(self._events.items())
        rejected = sorted(d.rejected_by_channel.copy().items())  # copy(): atomic against the dispatcher

        def family(name: str, kind: str, help_text: str, samples: list[tuple[dict, float]]) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                out.append(f"{name}{_labels(labels)} {_number(value)}")

        family("callbell_calls", "gauge", "Active calls by status.",
               [({"status": s}, n) for s, n in self._calls.items()])
        family("callbell_calls_overdue", "gauge", "Open calls past the service standard.", [({}, self._overdue)])
        family("callbell_call_events_total", "counter", "Call transitions since the hub started, by kind.",
               [({"kind": k}, n) for k, n in events])
        out.append("# HELP callbell_press_to_lamp_seconds From a message leaving the broker socket to "
                   "its room's changed lamp being published, seconds.")
        out.append("# TYPE callbell_press_to_lamp_seconds histogram")
        out += self.latency.lines("callbell_press_to_lamp_seconds")
        for name, hist, text in (
                ("callbell_stream_to_page_seconds", self.to_page,
                 "From a change being shown to the pages to its message being handed to one page's connection, seconds."),
                ("callbell_stream_to_all_pages_seconds", self.to_all_pages,
                 "From a change being shown to the pages to the last of them having its message, seconds.")):
            out += [f"# HELP {name} {text}", f"# TYPE {name} histogram"] + hist.lines(name)
        family("callbell_rejected_total", "counter", "Messages and requests rejected since the hub started, by channel.",
               [({"channel": c}, n) for c, n in rejected])
        family("callbell_mqtt_events_total", "counter", "Button events received since the hub started.",
               [({"outcome": "accepted"}, d.counters["received"] - d.counters["duplicates"]),
                ({"outcome": "duplicate"}, d.counters["duplicates"])])
        statuses = Counter(row["status"] for row in devices if row.get("status"))
        family("callbell_devices", "gauge", "Devices by their last status.",
               [({"status": s}, statuses.get(s, 0)) for s in ("online", "offline", "never", "retired")])
        family("callbell_device_online", "gauge", "1 while the device says it is online.",
               [({"device": row["id"]}, 1 if row.get("status") == "online" else 0) for row in devices])
        outbox, age = [], []
        now = self.clock()
        for row in devices:
            health = _health(row.get("health"))
            if isinstance(health.get("outbox"), (int, float)) and not isinstance(health.get("outbox"), bool):
                outbox.append(({"device": row["id"]}, health["outbox"]))
            if row.get("health_at") is not None:
                age.append(({"device": row["id"]}, max(0.0, round(now - row["health_at"], 3))))
        family("callbell_device_outbox", "gauge", "Events waiting on the device to be sent, from its last health message.",
               outbox)
        family("callbell_device_health_age_seconds", "gauge", "Seconds since the device's last health message.", age)
        family("callbell_broker_connected", "gauge", "1 while the hub is connected to the broker.",
               [({}, 1 if broker_connected else 0)])
        family("callbell_dispatcher_backlog", "gauge", "Inputs waiting for the dispatcher.", [({}, d.backlog)])
        family("callbell_failed_writes_total", "counter",
               "Batches that could not be stored (rolled back and retried) since the hub started.",
               [({}, d.counters["failed_writes"])])
        return "\n".join(out) + "\n"


def _health(raw) -> dict:
    try:
        health = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return health if isinstance(health, dict) else {}


def _labels(labels: dict) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}"


def _escape(value: str) -> str:
    """Label values escape backslash, double quote and line feed (format 0.0.4)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))
