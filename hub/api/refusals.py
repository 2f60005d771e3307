"""Refused HTTP requests, recorded per source and minute rather than one by one.

Each refused request (a 401, a bad body, a 413) used to become a ``rejected`` row, a warning in
the log and a message on the dispatcher's queue, the one that carries presses to their lamps:
260 anonymous requests a second raised press → lamp p99 from 2.9 to 25.6 ms (issue 17). Now:

- the first :data:`DETAILED_PER_MINUTE` refusals of a source in a minute are recorded in full,
  as before (reason, path, query excerpt), so a misbehaving integration is easy to read;
- the rest of that minute are only counted, in memory, and recorded as one row when the
  minute is over: ``count`` requests, the last reason;
- nothing of it goes to MQTT ``hub/rejected`` or the pages (devices and screens have no use
  for a refused HTTP request); the dispatcher records it among its other work.

So a flood from one source costs the press path at most DETAILED_PER_MINUTE + 1 queued
records a minute. ``/metrics`` counts every refused request (``callbell_rejected_total``).

The MQTT edge (hub/mqtt_edge.py) sums refused MQTT messages the same way, per device and
minute, with ``Refusals(record, clock, channel="mqtt", what="messages")``.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable

from callbell.clock import Clock

log = logging.getLogger("callbell.hub.http")

#: Refusals of one source per window recorded one by one; the rest of the window is counted.
#: A person mistyping or a misconfigured client is seen in full; a flood is summed.
DETAILED_PER_MINUTE = 5

#: Length of a source's window, seconds ("per minute").
WINDOW_S = 60.0

#: How often windows that are over are looked for and their counts recorded, seconds.
FLUSH_EVERY_S = 5.0

#: Most sources with an open window at once (an attacker may have many addresses); past it,
#: further sources are counted together under "other" until windows close.
MAX_SOURCES = 10_000


@dataclass
class _Window:
    start: float  # hub clock, s
    detailed: int = 0
    counted: int = 0  # refusals after the detailed ones
    topic: str = ""
    reason: str = ""


class Refusals:
    """Sums refused HTTP requests (or, with ``channel="mqtt"``, MQTT messages) per source per
    minute and hands them to ``record`` (the dispatcher's ``reject``: ``record(channel, topic,
    reason, excerpt, source=, count=)``)."""

    def __init__(self, record: Callable[..., None], clock: Clock, channel: str = "http", what: str = "requests"):
        self.record, self.clock = record, clock
        self.channel, self.what = channel, what
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "Refusals":
        self._thread = threading.Thread(target=self._run, name="refusals", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Record what is counted so far and stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.flush(everything=True)

    def note(self, source: str, topic: str, reason: str, excerpt: str = "") -> bool:
        """One refused request from ``source`` (a client address) to ``topic`` ("GET /path");
        True when it was recorded in full, False when only counted."""
        now = self.clock.time()
        with self._lock:
            if source not in self._windows and len(self._windows) >= MAX_SOURCES:
                source = "other"
            w = self._windows.get(source)
            if w is None:
                w = self._windows[source] = _Window(now)
            if w.detailed < DETAILED_PER_MINUTE:
                w.detailed += 1
                detailed = True
            else:
                w.counted += 1
                w.topic, w.reason = topic, reason
                detailed = False
        if detailed:
            self.record(self.channel, topic, reason, excerpt, source=source)
        return detailed

    def flush(self, everything: bool = False) -> None:
        """Record the counts of the windows that are over (all of them with ``everything``)."""
        now = self.clock.time()
        with self._lock:
            over = [(s, w) for s, w in self._windows.items() if everything or now - w.start >= WINDOW_S]
            for source, _ in over:
                del self._windows[source]
        for source, w in over:
            if w.counted:
                self.record(self.channel, w.topic, f"{w.counted} more refused {self.what} from {source} within "
                            f"{WINDOW_S:g} s (the first {w.detailed} are recorded one by one); the last: {w.reason}",
                            "", source=source, count=w.counted)

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_EVERY_S):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - a record that failed must not end the counting
                log.exception("could not record refused %s", self.what)
