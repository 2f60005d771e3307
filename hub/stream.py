"""Server-Sent Events: every change, live, to every open page; resumable with Last-Event-ID.

Each message's id is the sequence number of the last stored event it reflects, so a page that
reconnects sends ``Last-Event-ID: N`` and is sent every call changed after N (read from the
database), then the live stream — no gap, no duplicate rows. A new page gets a ``snapshot``
(all open calls and devices) first.

Message kinds (``event:`` field):

- ``snapshot``: ``{"calls": [call...], "devices": [...], "associates": [associate...],
  "standard_s", "escalation", "now"}``
- ``call``: a call object (PROTOCOL.md) after any change — its ``alerted`` list says who was
  asked, when and at which escalation step; ``acknowledged_by`` who took it
- ``device``: ``{"id", "status", "at"}`` when a device goes online or offline
- ``associate``: an associate object (``GET /api/v1/associates``) when their state, call or
  position changes noticeably
- ``rejected``: ``{"topic", "reason", "excerpt"}``
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
import threading
from dataclasses import dataclass
from typing import AsyncIterator, Callable
from zoneinfo import ZoneInfo

from callbell.clock import Clock, SystemClock
from hub.dispatcher import Batch
from hub.store import Reader
from hub.views import associate_object, call_object, iso

log = logging.getLogger("callbell.hub.stream")

#: Messages buffered per client before it is dropped as too slow. A dropped page reconnects
#: and catches up from the database, so this bounds memory without losing anything.
CLIENT_BUFFER = 1000

#: Seconds between keep-alive comments; lets proxies keep the connection and lets us notice a
#: client that went away.
PING_S = 15.0
#: How often an open stream checks that its session or token still holds, seconds: a page
#: signed out elsewhere, an expired session or a revoked token stops receiving within this.
RECHECK_S = 15.0

#: A client that is this many events behind gets a fresh snapshot instead of a replay.
MAX_REPLAY = 5000


@dataclass(frozen=True)
class Item:
    seq: int | None
    kind: str
    data: dict

    @functools.cached_property
    def wire(self) -> bytes:
        """The message as sent: built once, however many pages are connected."""
        head = f"id: {self.seq}\n" if self.seq is not None else ""
        return f"{head}event: {self.kind}\ndata: {json.dumps(self.data, separators=(',', ':'))}\n\n".encode()


class _Client:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.queue: asyncio.Queue = asyncio.Queue(CLIENT_BUFFER)
        self.dropped = False
        self.closed = False

    def close(self) -> None:  # runs on the event loop
        self.closed = True
        try:
            self.queue.put_nowait(None)
        except asyncio.QueueFull:
            self.dropped = True

    def offer(self, items: list[Item]) -> None:  # runs on the event loop
        for item in items:
            try:
                self.queue.put_nowait(item)
            except asyncio.QueueFull:
                self.dropped = True
                return


def _offer_all(clients: list[_Client], items: list[Item]) -> None:  # runs on the event loop
    for c in clients:
        c.offer(items)


class StreamChannel:
    """The dispatcher's SSE communicator: fans each batch out to the connected pages."""

    def __init__(self, reader: Reader, tz: ZoneInfo, info: Callable[[], dict],
                 associates: Callable[[], dict[str, dict]] = dict, clock: Clock | None = None):
        self.reader = reader
        self.tz = tz
        self.info = info
        self.associates = associates
        self.clock = clock or SystemClock()
        self._clients: set[_Client] = set()
        self._lock = threading.Lock()

    @property
    def clients(self) -> int:
        return len(self._clients)

    def send(self, batch: Batch) -> None:  # dispatcher thread
        items = [Item(seq, "call", call_object(row, self.tz)) for seq, row in
                 sorted(batch.calls.values(), key=lambda c: c[0])]
        items += [Item(seq, "device", {**d, "at": iso(d["at"], self.tz)}) for seq, d in batch.devices]
        now = self.clock.time()
        items += [Item(seq, "associate", associate_object(view, self.tz, now))
                  for seq, view in batch.associates.values()]
        items += [Item(None, "rejected", {"topic": r.topic, "reason": r.reason, "excerpt": r.excerpt})
                  for r in batch.rejected]
        if not items:
            return
        with self._lock:
            clients = list(self._clients)
        # One hand-over per event loop (there is one: uvicorn's), not one per page: each
        # call_soon_threadsafe wakes the loop through a pipe, and 500 pages made 500 wake-ups.
        by_loop: dict[asyncio.AbstractEventLoop, list[_Client]] = {}
        for c in clients:
            by_loop.setdefault(c.loop, []).append(c)
        for loop, group in by_loop.items():
            try:
                loop.call_soon_threadsafe(_offer_all, group, items)
            except RuntimeError:  # loop closed
                for c in group:
                    self._remove(c)

    def close(self) -> None:
        """End every stream (the hub is stopping); pages reconnect to the next hub."""
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            try:
                c.loop.call_soon_threadsafe(c.close)
            except RuntimeError:
                pass

    def _remove(self, c: _Client) -> None:
        with self._lock:
            self._clients.discard(c)

    async def events(self, last_event_id: str | None, is_disconnected: Callable,
                     still_allowed: Callable[[], bool] | None = None) -> AsyncIterator[bytes]:
        """The byte stream of one SSE client. ``still_allowed`` (blocking; run on a worker
        thread every RECHECK_S) ends the stream when the client's credentials no longer hold."""
        loop = asyncio.get_running_loop()
        client = _Client(loop)
        with self._lock:
            self._clients.add(client)  # before reading the database: nothing falls in between
        try:
            last = await asyncio.to_thread(self._catch_up_plan, last_event_id)
            sent_up_to, first = last
            for item in first:
                yield item.wire
            checked = sent = loop.time()
            while True:
                now = loop.time()
                if still_allowed is not None and now - checked >= RECHECK_S:
                    checked = now
                    if not await asyncio.to_thread(still_allowed):
                        log.info("SSE client signed out, expired or revoked; stream closed")
                        return
                if client.dropped:
                    log.info("SSE client too slow; dropped (it will reconnect and catch up)")
                    return
                # Wake for the next item, the next ping (PING_S of silence) or the next check.
                wait = PING_S - (now - sent)
                if still_allowed is not None:
                    wait = min(wait, RECHECK_S - (now - checked))
                try:
                    item = await asyncio.wait_for(client.queue.get(), max(wait, 0.01))
                except asyncio.TimeoutError:
                    if loop.time() - sent >= PING_S:
                        if await is_disconnected():
                            return
                        yield b": ping\n\n"
                        sent = loop.time()
                    continue
                if item is None:  # the hub is stopping
                    return
                if item.seq is not None and item.seq <= sent_up_to:
                    continue  # already part of the snapshot or replay
                yield item.wire
                sent = loop.time()
        finally:
            self._remove(client)

    def _catch_up_plan(self, last_event_id: str | None) -> tuple[int, list[Item]]:
        seq = None
        if last_event_id:
            try:
                seq = int(last_event_id)
            except ValueError:
                seq = None
        if seq is not None and seq >= 0 and self.reader.count_changes_since(seq) <= MAX_REPLAY:
            last, changed = self.reader.changes_since(seq)
            items = [Item(s, "call", call_object(row, self.tz)) for s, row in changed]
            views, now = self.associates(), self.clock.time()
            people = [Item(s, "associate", associate_object(views[who], self.tz, now))
                      for who, s in self.reader.associates_changed_since(seq).items() if who in views and s <= last]
            items = sorted(items + people, key=lambda i: i.seq)
            items.append(Item(last, "resumed", {"from": seq, "to": last, "calls": len(changed)}))
            return last, items
        last, calls, devices = self.reader.snapshot()
        now = self.clock.time()
        data = {
            **self.info(),
            "calls": [call_object(r, self.tz) for r in calls],
            "associates": [associate_object(v, self.tz, now) for v in self.associates().values()],
            "devices": [{"id": d["id"], "status": d["status"], "at": iso(d["status_at"], self.tz),
                         "health": json.loads(d["health"]) if d["health"] else None} for d in devices],
        }
        return last, [Item(last, "snapshot", data)]
