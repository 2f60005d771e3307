"""Server-Sent Events: every change, live, to every open page; resumable with Last-Event-ID.

Pages are shown a batch of changes *before* it is committed (the dispatcher calls
:meth:`StreamChannel.send`, then :meth:`~StreamChannel.stored` or :meth:`~StreamChannel.undone`),
so the disk sync stays off the press → dashboard path, as it is off the press → lamp path.
That is safe because of how ids work:

- A message's id is ``<epoch>-<seq>``: ``seq`` is the sequence number of the last stored event
  it reflects, ``epoch`` names this hub process's run of sequence numbers. A new epoch begins
  when the hub starts and when a batch that pages were already shown is rolled back, because
  from then on a ``seq`` can be handed out again for a different event.
- A page that reconnects with an id of the current epoch (``Last-Event-ID`` or ``?last=``) is
  sent every call changed after ``seq``, read from the database, then the live stream: no gap,
  no duplicate rows. An id of another epoch (an earlier hub, a rolled-back batch) or none gets a
  ``snapshot``. Pages connected during a rollback are sent a fresh ``snapshot`` in-stream.
- A page that connects while a shown batch is being committed waits for the commit before it
  reads the database, so that batch is in its snapshot or replay.

The fan-out writes a live message to each page whose task is waiting for one, without waking
the task, through the page's :class:`Connection` (how: hub.api.page_writer). While a page's
connection pushes back its messages wait, in order, and are written as it drains; a page that
takes nothing for PAGE_STALL_S, or falls 1000 messages behind, is dropped and catches up when
it reconnects.

Message kinds (``event:`` field):

- ``snapshot``: ``{"calls": [call...], "devices": [...], "associates": [associate...],
  "standard_s", "escalation", "now"}`` — everything open; replaces what the page holds
- ``call``: a call object (docs/spec/PROTOCOL.md) after any change — its ``alerted`` list says who was
  asked, when and at which escalation step; ``acknowledged_by`` who took it
- ``device``: ``{"id", "status", "at"}`` when a device goes online or offline
- ``associate``: an associate object (``GET /api/v1/associates``) when their state, call or
  position changes noticeably
- ``trouble``: a trouble object (hub.views.trouble_object) when a trouble opens, is alerted,
  acknowledged or cleared; the snapshot's ``troubles`` lists the open ones. A trouble changed
  in a batch that could not be stored is still sent (with no id): it must reach people.
- ``rejected``: ``{"topic", "reason", "excerpt"}``
- ``resumed``: ``{"from", "to", "calls"}`` after a replay
- ``heartbeat``: ``{"now"}`` (the hub's clock, seconds) after HEARTBEAT_S without a message;
  it has no id, so it does not move the page's Last-Event-ID
"""
from __future__ import annotations

import asyncio
import collections
import functools
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
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

#: Longest a page's connection may push back without taking a byte, seconds, before the page
#: is dropped (to reconnect and catch up). Meanwhile its live messages wait, in order, and are
#: written as it drains: a phone on a slow Wi-Fi, or a reader starved of CPU on a loaded hub,
#: falls behind for a moment without losing its stream. A page that stopped reading is dropped
#: after this, and what it holds up is at most CLIENT_BUFFER messages or BACKLOG_BYTES.
PAGE_STALL_S = 10.0
#: Most bytes of live messages held for one page that pushes back: beyond this it is dropped.
BACKLOG_BYTES = 16 * 1024 * 1024
#: How often the messages held for a page that pushes back are retried, seconds.
BACKLOG_RETRY_S = 0.02

#: Longest silence on a stream, seconds: after this long without a message the page is sent a
#: ``heartbeat`` event. A page that hears nothing for two beats takes its stream for stalled
#: (a Wi-Fi that drops packets without closing the connection), says "connection lost" and
#: reconnects (dashboard/live.js): within 10 s of the stall. An SSE comment would keep proxies
#: happy but the browser never shows it to the page, so only an event lets the page notice.
#: Costs one 40-byte write per page per beat when the store is quiet.
HEARTBEAT_S = 4.0
#: How often an open stream checks that its session or token still holds, seconds: a page
#: signed out elsewhere, an expired session or a revoked token stops receiving within this.
RECHECK_S = 15.0

#: A client that is this many events behind gets a fresh snapshot instead of a replay.
MAX_REPLAY = 5000

#: Longest a connecting page waits, seconds, for the commit of a batch pages were already
#: shown before it reads the database. A commit takes milliseconds; this only bounds a stalled disk.
COMMIT_WAIT_S = 30.0

#: Longest the dispatcher waits, seconds, after handing a batch to the event loop, for the loop
#: to write it to every page before it goes on to write the batch's rows. Both threads need
#: the interpreter lock: without the wait, the loop gave it up at every send() to a
#: dispatcher busy with Python work and waited to get it back, so the last of 500 pages had a
#: press about twice as late, and one page 0.1-0.2 ms later (docs/benchmarks.md). A new input
#: ends the wait at once (the dispatcher's ``wake``); the bound only covers a stalled loop.
PAGES_FIRST_MAX_S = 0.05


def heartbeat(now: float) -> bytes:
    """A ``heartbeat`` message (no id: a page's Last-Event-ID stays on the last change)."""
    return b'event: heartbeat\ndata: {"now":%.3f}\n\n' % now


def event_id(epoch: str, seq: int) -> str:
    """The SSE id of a message reflecting events up to ``seq`` in ``epoch``."""
    return f"{epoch}-{seq}"


def parse_event_id(text: str | None) -> tuple[str, int] | None:
    """``(epoch, seq)`` from an SSE id; None if it is not one of ours (no epoch: an old page)."""
    epoch, sep, seq = (text or "").rpartition("-")
    if not sep or not epoch or not seq.isdigit():
        return None
    return epoch, int(seq)


class Delivery:
    """One live message on its way to the pages connected when it was shown (for the metrics)."""

    __slots__ = ("shown", "pending")

    def __init__(self, shown: float):
        self.shown = shown  # perf_counter() when the dispatcher showed it, seconds
        self.pending = 0    # pages still to be handed it; only the event loop changes it


@dataclass(frozen=True)
class Item:
    seq: int | None
    kind: str
    data: dict
    epoch: str = ""
    delivery: Delivery | None = field(default=None, compare=False)

    @functools.cached_property
    def wire(self) -> bytes:
        """The message as sent: built once, however many pages are connected."""
        head = f"id: {event_id(self.epoch, self.seq)}\n" if self.seq is not None else ""
        return f"{head}event: {self.kind}\ndata: {json.dumps(self.data, separators=(',', ':'))}\n\n".encode()

    @functools.cached_property
    def chunk(self) -> bytes:
        """The message framed as one chunk of HTTP/1.1 chunked encoding (hub.api.page_writer)."""
        return b"%x\r\n%s\r\n" % (len(self.wire), self.wire)


#: Put in a client's queue after a rollback: send this page a fresh snapshot.
_RESNAPSHOT = object()


class Connection:
    """How the fan-out writes a live message to this page while its task waits: ``write(item)``,
    False when it was not written. ``pushing_back()`` tells the two cases apart: true while the
    page's buffers are full (the message waits, PAGE_STALL_S at most), false when it has gone
    (it is dropped at once). ``abort()`` closes the connection of a page dropped for taking
    nothing, whose response cannot be ended because it takes no bytes. The HTTP route sets
    them once the response has started (hub.api.page_writer); until then every message goes
    through the page's task. ``direct``: the transport writer ``write`` uses, if any (for tests)."""

    __slots__ = ("write", "direct", "pushing_back", "abort")

    def __init__(self):
        self.write: Callable[[Item], bool] | None = None
        self.direct: Callable[[bytes], bool] | None = None
        self.pushing_back: Callable[[], bool] = lambda: False
        self.abort: Callable[[], None] = lambda: None


class _Client:
    def __init__(self, loop: asyncio.AbstractEventLoop, connection: Connection | None):
        self.loop = loop
        self.queue: asyncio.Queue = asyncio.Queue(CLIENT_BUFFER)
        self.dropped = False
        self.connection = connection
        #: True while the page's task waits on its empty queue: only then may the fan-out
        #: write to the page itself, and nothing it sends can be overtaken.
        self.parked = False
        #: The seq the page's snapshot or replay covers: older live messages are not sent.
        self.sent_up_to = 0
        #: Live messages held, in order, while the page's connection pushes back; written
        #: straight to it as it drains (see PAGE_STALL_S).
        self.backlog: collections.deque[Item] = collections.deque()
        self.backlog_bytes = 0
        #: loop.time() the page last took something (a write, a send that ended, a drained
        #: buffer), while it is watched for pushing back.
        self.took_at = 0.0
        self.watched = False
        self._delivered: Callable = lambda d, handed: None

    def close(self) -> None:  # runs on the event loop
        self._clear_backlog()
        try:
            self.queue.put_nowait(None)
        except asyncio.QueueFull:
            self.dropped = True

    def _drop(self) -> None:
        self.dropped = True  # it reconnects and catches up from the database
        self.close()

    def took(self) -> None:  # runs on the event loop: the page's task sent it something
        self.took_at = self.loop.time()

    def sending(self) -> None:  # runs on the event loop: the page's task is about to send
        """A send waits while the connection pushes back: watch it, so that a page that takes
        nothing is dropped even while its task waits."""
        if self.connection is not None and self.connection.pushing_back():
            self._watch()

    def offer(self, items: list, delivered: Callable) -> None:  # runs on the event loop
        self._delivered = delivered
        for item in items:
            if self.dropped:
                return
            if self.backlog:
                if isinstance(item, Item):
                    self._hold(item)
                    continue
                self._clear_backlog()  # a fresh snapshot supersedes what was held
            if (self.parked and self.queue.empty() and isinstance(item, Item)
                    and self.connection is not None and self.connection.write is not None):
                # Straight to the page's connection: waking a task per page for each message
                # was half the fan-out's time with hundreds of pages.
                if item.seq is not None and item.seq <= self.sent_up_to:
                    delivered(item.delivery, handed=False)
                    continue
                if self.connection.write(item):
                    delivered(item.delivery, handed=True)
                    continue
                if not self.connection.pushing_back():
                    self._drop()  # it has gone
                    return
                self._hold(item)
                self._watch()
                continue
            try:
                self.queue.put_nowait(item)
            except asyncio.QueueFull:
                self.dropped = True
                return
            if self.connection is not None and self.connection.pushing_back():
                self._watch()  # its task may be waiting on the full connection

    def _hold(self, item: Item) -> None:
        self.backlog.append(item)
        self.backlog_bytes += len(item.chunk)
        if len(self.backlog) > CLIENT_BUFFER or self.backlog_bytes > BACKLOG_BYTES:
            log.info("SSE client holds %d messages (%d bytes) it has not taken", len(self.backlog), self.backlog_bytes)
            self._drop()

    def _clear_backlog(self) -> None:
        self.backlog.clear()
        self.backlog_bytes = 0

    def _watch(self) -> None:
        if not self.watched:
            self.watched = True
            self.took_at = self.loop.time()
            self.loop.call_later(BACKLOG_RETRY_S, self._check)

    def _check(self) -> None:  # runs on the event loop, every BACKLOG_RETRY_S while it pushes back
        conn = self.connection
        if self.dropped or conn is None:
            self.watched = False
            return
        if self.backlog and self.parked and self.queue.empty() and conn.write is not None:
            while self.backlog:
                item = self.backlog[0]
                if item.seq is not None and item.seq <= self.sent_up_to:
                    handed = False
                elif conn.write(item):
                    handed = True
                    self.took_at = self.loop.time()
                else:
                    break
                self.backlog.popleft()
                self.backlog_bytes -= len(item.chunk)
                self._delivered(item.delivery, handed=handed)
        pushing_back = conn.pushing_back()
        if self.backlog and not pushing_back and self.parked and self.queue.empty():
            self.watched = False
            self._drop()  # not written, and not pushing back: it has gone
            return
        if not pushing_back:
            self.took_at = self.loop.time()
            if not self.backlog:
                self.watched = False  # it keeps up again
                return
        if self.loop.time() - self.took_at > PAGE_STALL_S:
            self.watched = False
            log.info("SSE client took nothing for %.0f s; dropped (it will reconnect and catch up)", PAGE_STALL_S)
            self._drop()
            conn.abort()  # it takes no bytes, so its response cannot be ended: close it
            return
        self.loop.call_later(BACKLOG_RETRY_S, self._check)


def _new_epoch() -> str:
    return secrets.token_hex(4)


class StreamChannel:
    """The dispatcher's SSE communicator: fans each batch out to the connected pages."""

    #: Shown each batch before its commit, then told :meth:`stored` or :meth:`undone`
    #: (see hub.dispatcher).
    before_commit = True

    def __init__(self, reader: Reader, tz: ZoneInfo, info: Callable[[], dict],
                 associates: Callable[[], dict[str, dict]] = dict, clock: Clock | None = None,
                 troubles: Callable[[], list[dict]] = list,
                 troubles_since: Callable[[int], list[tuple[int | None, dict]]] = lambda seq: []):
        """``troubles``: the open troubles' objects (the dispatcher's ``open_troubles``);
        ``troubles_since(seq)``: (seq, object) of those changed after ``seq``, for a replay."""
        self.reader = reader
        self.troubles = troubles
        self.troubles_since = troubles_since
        self.tz = tz
        self.info = info
        self.associates = associates
        self.clock = clock or SystemClock()
        #: The connected pages, oldest first (a dict keeps order): served in that order.
        self._clients: dict[_Client, None] = {}
        self._lock = threading.Lock()
        #: Signalled when shown changes are stored or undone, and when the hub stops.
        self._settled = threading.Condition(self._lock)
        self._epoch = _new_epoch()
        self._shown = 0   # highest seq pages were shown
        self._stored = 0  # highest seq known to be committed
        self._closing = False
        #: Called on the event loop with the seconds from a live message being shown to its
        #: bytes being handed to one page's connection (``on_page``), and to the last of the
        #: pages connected when it was shown (``on_all_pages``; not when one of them left or
        #: was dropped meanwhile). hub.metrics sets them.
        self.on_page: Callable[[float], None] | None = None
        self.on_all_pages: Callable[[float], None] | None = None
        #: The dispatcher's ``wake`` event (the hub sets it): :meth:`send` waits on it for the
        #: pages to have the batch before the dispatcher goes on (PAGES_FIRST_MAX_S).
        self.wake: threading.Event | None = None

    @property
    def epoch(self) -> str:
        return self._epoch

    @property
    def clients(self) -> int:
        return len(self._clients)

    def send(self, batch: Batch) -> None:  # dispatcher thread
        e = self._epoch  # only the dispatcher thread changes it
        shown = time.perf_counter()
        items = [Item(seq, "call", call_object(row, self.tz), e, Delivery(shown)) for seq, row in
                 sorted(batch.calls.values(), key=lambda c: c[0])]
        items += [Item(seq, "device", {**dev, "at": iso(dev["at"], self.tz)}, e, Delivery(shown))
                  for seq, dev in batch.devices]
        now = self.clock.time()
        items += [Item(seq, "associate", associate_object(view, self.tz, now), e, Delivery(shown))
                  for seq, view in batch.associates.values()]
        for tid, obj in batch.troubles.items():
            seq = max((s for s, t in batch.events if t.call is None and t.detail.get("trouble") == tid), default=None)
            items.append(Item(seq, "trouble", obj, e, Delivery(shown)))
        items += [Item(None, "rejected", {"topic": r.topic, "reason": r.reason, "excerpt": r.excerpt},
                       delivery=Delivery(shown)) for r in batch.rejected]
        if not items:
            return
        with self._lock:
            # Noted with the same lock as the list of clients: a page that joins after this
            # waits for the commit before reading the database (see events()).
            self._shown = max([self._shown] + [i.seq for i in items if i.seq is not None])
            clients = list(self._clients)
        for i in items:
            i.delivery.pending = len(clients)
        self._hand_over(clients, items)

    def stored(self) -> None:  # dispatcher thread
        """Everything shown so far is committed."""
        with self._settled:
            self._stored = self._shown
            self._settled.notify_all()

    def undone(self) -> None:  # dispatcher thread
        """What was shown since the last commit was rolled back: its sequence numbers will be
        handed out again. Start a new epoch and send every page a fresh snapshot."""
        with self._settled:
            self._epoch = _new_epoch()
            self._shown = self._stored
            self._settled.notify_all()
            clients = list(self._clients)
        log.warning("a change shown to %d page(s) was not stored; sending them a fresh snapshot", len(clients))
        self._hand_over(clients, [_RESNAPSHOT])

    def _hand_over(self, clients: list[_Client], items: list) -> None:
        """Give ``items`` to the event loop for ``clients``; then, if ``wake`` (the dispatcher's,
        hub.dispatcher) is given, wait until the loop has offered them to every page or the
        dispatcher has new input (PAGES_FIRST_MAX_S at most)."""
        # One hand-over per event loop (there is one: uvicorn's), not one per page: each
        # call_soon_threadsafe wakes the loop through a pipe, and 500 pages made 500 wake-ups.
        by_loop: dict[asyncio.AbstractEventLoop, list[_Client]] = {}
        for c in clients:
            by_loop.setdefault(c.loop, []).append(c)
        handed = False
        for loop, group in by_loop.items():
            try:
                loop.call_soon_threadsafe(self._offer_all, group, items)
                handed = True
            except RuntimeError:  # loop closed
                for c in group:
                    self._remove(c)
        if handed and self.wake is not None:
            self.wake.wait(PAGES_FIRST_MAX_S)

    def _offer_all(self, clients: list[_Client], items: list) -> None:  # runs on the event loop
        for c in clients:
            c.offer(items, self._delivered)
        if self.wake is not None:
            self.wake.set()

    def close(self) -> None:
        """End every stream (the hub is stopping); pages reconnect to the next hub."""
        with self._settled:
            self._closing = True
            self._settled.notify_all()
            clients = list(self._clients)
        for c in clients:
            try:
                c.loop.call_soon_threadsafe(c.close)
            except RuntimeError:
                pass

    def _remove(self, c: _Client) -> None:
        with self._lock:
            self._clients.pop(c, None)

    async def events(self, last_event_id: str | None, is_disconnected: Callable,
                     still_allowed: Callable[[], bool] | None = None,
                     connection: Connection | None = None) -> AsyncIterator[bytes]:
        """The byte stream of one SSE client. ``still_allowed`` (blocking; run on a worker
        thread every RECHECK_S) ends the stream when the client's credentials no longer hold.
        ``connection``: while this stream waits for its next message, the fan-out writes live
        messages through it directly (hub.api.routes.stream sets it); without, all go through
        this generator."""
        loop = asyncio.get_running_loop()
        client = _Client(loop, connection)
        with self._lock:
            self._clients[client] = None  # before reading the database: nothing falls in between
            shown = self._shown
        try:
            client.sent_up_to, first = await asyncio.to_thread(self._catch_up_plan, last_event_id, shown)
            for item in first:
                yield item.wire
            client.took()
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
                # Wake for the next item, the next heartbeat (HEARTBEAT_S of silence) or the next check.
                wait = HEARTBEAT_S - (now - sent)
                if still_allowed is not None:
                    wait = min(wait, RECHECK_S - (now - checked))
                try:
                    item, waiting = client.queue.get_nowait(), False
                except asyncio.QueueEmpty:
                    waiting = True
                try:
                    if waiting:
                        # asyncio.timeout rather than wait_for, which makes a task per message
                        # (Python 3.11): with 500 pages that is 500 tasks for each change.
                        client.parked = True
                        try:
                            async with asyncio.timeout(max(wait, 0.01)):
                                item = await client.queue.get()
                        finally:
                            client.parked = False
                except TimeoutError:
                    # Not while messages are held for the page: they are what it hears, and a
                    # heartbeat sent through the task would wait on the full connection.
                    if loop.time() - sent >= HEARTBEAT_S and not client.backlog:
                        if await is_disconnected():
                            return
                        client.sending()
                        yield heartbeat(self.clock.time())
                        client.took()
                        sent = loop.time()
                    continue
                if item is None:  # the hub is stopping, or the page pushed back on a direct write
                    if client.dropped:
                        log.info("SSE client too slow; dropped (it will reconnect and catch up)")
                    return
                if item is _RESNAPSHOT:  # a rollback: what this page was shown may not hold
                    client.sent_up_to, first = await asyncio.to_thread(self._catch_up_plan, None, 0)
                    for snap in first:
                        client.sending()
                        yield snap.wire
                    client.took()
                    sent = loop.time()
                    continue
                if item.seq is not None and item.seq <= client.sent_up_to:
                    self._delivered(item.delivery, handed=False)
                    continue  # already part of the snapshot or replay
                client.sending()
                yield item.wire
                client.took()
                self._delivered(item.delivery, handed=True)
                sent = loop.time()
        finally:
            self._remove(client)

    def _delivered(self, d: Delivery | None, handed: bool) -> None:  # on the event loop
        """A page has a live message (``handed``) or did not need it: note it for the metrics."""
        if d is None:
            return
        d.pending -= 1
        if self.on_page is None and self.on_all_pages is None:
            return
        took = time.perf_counter() - d.shown
        if handed and self.on_page is not None:
            self.on_page(took)
        if d.pending == 0 and self.on_all_pages is not None:
            self.on_all_pages(took)

    def _wait_until_stored(self, shown: int) -> str:
        """Wait until the changes pages were shown up to ``shown`` are committed (or undone);
        returns the epoch to read in."""
        with self._settled:
            if not self._settled.wait_for(lambda: self._stored >= shown or self._shown < shown or self._closing,
                                          COMMIT_WAIT_S):
                log.warning("a commit took over %.0f s; a connecting page may miss the last change", COMMIT_WAIT_S)
            return self._epoch

    def _catch_up_plan(self, last_event_id: str | None, shown: int) -> tuple[int, list[Item]]:
        """What a (re)connecting page is sent first: a replay or a snapshot, and the seq it covers."""
        e = self._wait_until_stored(shown)
        asked = parse_event_id(last_event_id)
        seq = asked[1] if asked is not None and asked[0] == e else None
        if seq is not None and self.reader.count_changes_since(seq) <= MAX_REPLAY:
            last, changed = self.reader.changes_since(seq)
            items = [Item(s, "call", call_object(row, self.tz), e) for s, row in changed]
            views, now = self.associates(), self.clock.time()
            people = [Item(s, "associate", associate_object(views[who], self.tz, now), e)
                      for who, s in self.reader.associates_changed_since(seq).items() if who in views and s <= last]
            items = sorted(items + people, key=lambda i: i.seq)
            # Troubles changed meanwhile (and any not stored yet: those have no id).
            items += [Item(s if s is not None and s <= last else None, "trouble", obj, e)
                      for s, obj in self.troubles_since(seq)]
            items.append(Item(last, "resumed", {"from": seq, "to": last, "calls": len(changed)}, e))
            return last, items
        last, calls, devices = self.reader.snapshot()
        now = self.clock.time()
        data = {
            **self.info(),
            "calls": [call_object(r, self.tz) for r in calls],
            "associates": [associate_object(v, self.tz, now) for v in self.associates().values()],
            "troubles": self.troubles(),
            "devices": [{"id": d["id"], "status": d["status"], "at": iso(d["status_at"], self.tz),
                         "health": json.loads(d["health"]) if d["health"] else None} for d in devices],
        }
        return last, [Item(last, "snapshot", data, e)]
