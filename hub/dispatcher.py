"""The dispatcher: the one thread that runs the domain and writes the database.

Inputs arrive on a queue — MQTT messages from the broker thread, commands from HTTP handlers —
and are worked in batches:

1. apply each to the :class:`~hub.domain.call.Floor` (the pure state machine), the
   :class:`~hub.domain.associates.Roster` and the clock's timers, then run the escalation ladder
   (:class:`~hub.domain.escalation.Escalation`: re-open, alert whoever is due), collecting the
   transitions;
2. publish the lamps that changed — derived state, so they need not wait for the disk;
3. append the transitions to the event log and rewrite the changed calls, all in **one**
   transaction; show the changes to the pages (the SSE stream, whose ids survive a rollback:
   see hub.stream), and commit;
4. hand the changes to the other communicators (call topics, metrics, push);
5. only then acknowledge the MQTT messages and answer the HTTP callers.

Because the broker gets its PUBACK only after step 3, a hub killed at any moment loses no
press: the broker still holds the unacknowledged message and delivers it again, and the event
id (kept in the ``inbox`` table) makes the repeat harmless. Batching turns a burst of presses
into one disk sync instead of one each. A batch that cannot be stored is rolled back and its
inputs are worked again a second later, each in a batch of its own: should one input be what
fails, it does not hold the others back.

Troubles (hub.domain.troubles: a device silent, the broker gone, ...) are decided in step 1
like the rest, from what the inputs say and the clock. They are held in memory and reach the
communicators even from a batch that cannot be stored; their events are written with the next
batch that can be.
"""
from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path
from typing import Callable, Collection, Iterable, Mapping, Protocol

from callbell.clock import Clock
from callbell.mqtt import Message
from callbell.protocol import Event, LampState, Location, ProtocolError, Rejection, Topics, check_device
from hub.domain import rollup
from hub.domain.associates import DEFAULT_PRESENCE_S, Associate, Roster
from hub.domain.call import DomainError, Floor, Room, Timing, Transition
from hub.domain.escalation import Escalation, Ladder
from hub.domain.layout import Layout, Place, Point
from hub.domain.troubles import (DEFAULT_ALERT_ROLE, TRANSITIONS as TROUBLE_TRANSITIONS, BrokerWatch, DeviceWatch,
                                  Expected, Troubles, pick_alerted)
from hub.inputs import DeviceEvent, DeviceHealth, DeviceStatus, LocationFix, Received, Unreadable
from hub.store import Writer, call_row
from hub.views import trouble_object

log = logging.getLogger("callbell.hub")

#: Most inputs worked in one transaction. Bounds how long an HTTP caller waits behind a burst.
MAX_BATCH = 200

#: Longest sleep of the dispatcher between timer checks, seconds. Deadlines are computed
#: exactly; this only bounds the damage of a clock jump.
MAX_IDLE_S = 1.0

#: Seconds before the inputs of a batch that could not be stored are worked again (a disk
#: that failed for a moment). The broker would redeliver them only after a reconnect.
RETRY_AFTER_FAILED_WRITE_S = 1.0

#: Transitions held in memory while the database cannot be written, stored once it can:
#: troubles must reach people whatever the disk does (hub.domain.troubles).
HELD_IN_MEMORY = TROUBLE_TRANSITIONS + ("device_retired", "device_unretired")

#: Cleared troubles a page that connects is still sent (the newest), beside the open ones.
KEEP_CLEARED_TROUBLES = 50

#: A location-feed position that moved less than this, metres, is not announced to the pages
#: (it is still used at once). A feed may report every second; pages need to see a walk, not
#: every step.
ANNOUNCE_MOVE_M = 5.0


@dataclass
class Batch:
    """What one round of work changed, for the communicators."""

    events: list[tuple[int, Transition]] = field(default_factory=list)
    calls: dict[str, tuple[int, dict]] = field(default_factory=dict)  # id → (last seq, stored row)
    lamps: dict[str, LampState] = field(default_factory=dict)
    rejected: list[Rejection] = field(default_factory=list)
    devices: list[tuple[int, dict]] = field(default_factory=list)  # (seq, {"id", "status", "at"})
    #: associate id → (seq of their last event in this batch or None, view from Roster.views)
    associates: dict[str, tuple[int | None, dict]] = field(default_factory=dict)
    #: trouble id → its trouble object (hub.views.trouble_object), for every trouble changed
    troubles: dict[str, dict] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.events or self.calls or self.lamps or self.rejected or self.devices or self.associates
                    or self.troubles)


class Communicator(Protocol):
    """A transport that passes the dispatcher's changes on (MQTT, SSE, push, webhook).

    One whose ``before_commit`` attribute is true (the pages) is sent each batch before its
    commit, and must then offer ``stored()`` (called after the commit) and ``undone()`` (called
    after a rollback); its ``send`` may block until the dispatcher's ``wake`` event is set. The
    others are sent only what is stored."""

    def send(self, batch: Batch) -> None: ...


@dataclass
class _Command:
    action: Callable[[Floor, float], list[Transition]]
    future: concurrent.futures.Future
    call: str | None


@dataclass
class _AssociateCommand:
    action: Callable[[Roster, float], list[Transition]]
    future: concurrent.futures.Future
    associate: str


@dataclass
class _TroubleCommand:
    """A change to the troubles or the devices watched (hub.domain.troubles): ``action(now,
    batch)``. ``future`` (if any) gets ``answer()`` once it is worked: troubles are held in
    memory, so the answer does not wait for the disk (their transitions are stored when it works)."""
    action: Callable[[float, "Batch"], list[Transition]]
    future: concurrent.futures.Future | None = None
    answer: Callable[[], object] = lambda: None


@dataclass
class _Alone:
    """An input of a batch that could not be stored, queued again to be worked in a batch of
    its own: if it is what made the write fail, the others are not held back with it."""
    item: object


@dataclass
class _Rejected:
    channel: str
    topic: str
    reason: str
    excerpt: str
    at: float
    source: str | None = None  # an HTTP client's address
    count: int = 1  # refusals this record stands for (hub.api.refusals sums a flood)


class Dispatcher:
    """Owns the Floor and the database Writer; everything else talks to it through queues."""

    def __init__(self, *, rooms: list[Room], timing: Timing, db_path: Path, topics: Topics,
                 clock: Clock, ack: Callable[[Message], None] = lambda m: None,
                 layout: Layout | None = None, ladder: Ladder | None = None,
                 associates: Iterable[Associate] = (), devices: Mapping[str, Collection[str]] | None = None,
                 rollup_rules: rollup.Rules | None = None, presence_s: float = DEFAULT_PRESENCE_S,
                 device_heartbeat_s: float = 10.0, heartbeats: Mapping[str, float] | None = None,
                 alert_role: str = DEFAULT_ALERT_ROLE):
        """Troubles (hub.domain.troubles): ``devices`` are expected to send their health every
        ``heartbeats[device]`` seconds (default ``device_heartbeat_s``; with no ``devices``,
        any device heard is expected from then on); ``alert_role`` is alerted of them."""
        self.rooms = {r.id: r for r in rooms}
        #: The statistics roll-ups the writer keeps: the store's zone and standard (UTC if not given).
        self.rollup_rules = rollup_rules or rollup.Rules(timezone.utc, timing.standard_s)
        #: Configured device id → the rooms it serves; None when the store lists no devices.
        self.devices = devices
        self.timing = timing
        self.db_path = Path(db_path)
        self.topics = topics
        self.clock = clock
        self.communicators: list[Communicator] = []
        #: Acknowledges an MQTT message to the broker; set by the MQTT channel that received it.
        self.acknowledge = ack
        self._queue: queue.Queue = queue.Queue()
        #: Set when an input arrives, and by the pages' fan-out when it has handed a batch to
        #: every page: a communicator shown batches before the commit (the pages) may wait on
        #: it before the dispatcher goes on (hub.stream.StreamChannel.send).
        self.wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._lamps: dict[str, LampState] = {}
        self.floor = Floor(rooms, timing)
        self.layout = layout or Layout.zones_only(rooms)
        self.escalation = Escalation(ladder or Ladder.default(timing.standard_s), self.layout)
        self._staff = list(associates)
        self.presence_s = presence_s
        self.roster = self._new_roster()
        self._views: dict[str, dict] = {}  # associate → last announced view
        self._announced: dict[str, tuple] = {}  # associate → what of it was last announced
        #: False while a write fails, and until every input it held back has been stored.
        self.healthy = True
        self._unstored = 0  # inputs of failed writes not stored since (dispatcher thread only)
        self.counters = {"received": 0, "duplicates": 0, "rejected": 0, "batches": 0, "failed_writes": 0}
        #: Rejections since start, by channel ("mqtt", "http", "buttons"), for /metrics.
        self.rejected_by_channel: dict[str, int] = {}
        #: Called with each press→lamp latency, seconds: from the message leaving the socket to
        #: its changed lamp being handed to the MQTT client (hub.metrics).
        self.on_lamp_latency: Callable[[float], None] | None = None
        self._start_error: BaseException | None = None
        #: Faults of the system itself (hub.domain.troubles); dispatcher thread only.
        self.troubles = Troubles()
        self.device_heartbeat_s = device_heartbeat_s
        self._heartbeats = dict(heartbeats or {})
        self.alert_role = alert_role
        self.device_watch = self._new_device_watch(0.0)  # made again at start, with the clock's time
        self.broker_watch = BrokerWatch(self.troubles)
        #: Trouble transitions (and retirements) of batches whose commit failed: held in memory,
        #: stored with the next batch that commits (dispatcher thread only).
        self._troubles_unstored: list[Transition] = []
        self._held: list[Transition] = []  # those of the batch being worked
        #: trouble id → (seq of its last stored event or None, trouble object): the open ones and
        #: those cleared lately, for pages that connect (safe to read from any thread).
        self._trouble_views: dict[str, tuple[int | None, dict]] = {}

    # -- life cycle -------------------------------------------------------------------------
    def start(self, timeout_s: float = 30.0) -> None:
        self._thread = threading.Thread(target=self._run, name="dispatcher", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError("dispatcher did not start")
        if self._start_error:
            raise self._start_error

    def stop(self) -> None:
        self._stopping.set()
        self._put(None)
        if self._thread:
            self._thread.join(timeout=10)
        while True:  # whatever arrived meanwhile will not be worked: say so to whoever waits
            try:
                self._refuse_pending([self._queue.get_nowait()])
            except queue.Empty:
                break

    @staticmethod
    def _refuse_pending(items: list) -> None:
        for item in items:
            future = getattr(item, "future", None)  # a queued trouble report has none
            if isinstance(item, (_Command, _AssociateCommand, _TroubleCommand)) and future is not None \
                    and not future.done():
                future.set_exception(DomainError("unavailable", "the hub is stopping; try again"))

    # -- inputs (any thread) ----------------------------------------------------------------
    def _put(self, item) -> None:
        self._queue.put(item)
        self.wake.set()  # a dispatcher letting the pages go first comes back for it

    def receive(self, received: Received) -> None:
        """An MQTT message from the broker and what it means, decoded at the edge
        (hub.inputs.Decoder, on the MQTT thread)."""
        self._put(received)

    def command(self, action: Callable[[Floor, float], list[Transition]],
                call: str | None = None) -> concurrent.futures.Future:
        """Run ``action(floor, now)`` on the dispatcher; the future gets the stored call row
        of ``call`` (or None) once the change is committed, or the DomainError."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._put(_Command(action, fut, call))
        return fut

    def associate_command(self, associate: str, action: Callable[[Roster, float], list[Transition]]
                          ) -> concurrent.futures.Future:
        """Run ``action(roster, now)`` on the dispatcher; the future gets the associate's view
        (:meth:`Roster.views`) once the change is committed, or the DomainError."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._put(_AssociateCommand(action, fut, associate))
        return fut

    def associates(self) -> dict[str, dict]:
        """Every associate's current view (a snapshot; safe from any thread)."""
        return dict(self._views)

    def reject(self, channel: str, topic: str, reason: str, excerpt: str = "", *,
               source: str | None = None, count: int = 1) -> None:
        """Record bad input that was refused elsewhere (an HTTP request: through
        hub.api.refusals, which sums floods); ``count`` refusals from ``source``."""
        self._put(_Rejected(channel, topic, reason, excerpt[:200], self.clock.time(), source, count))

    def report_trouble(self, kind: str, key: str, *, device: str | None = None, room: str | None = None,
                       detail: dict | None = None) -> None:
        """Open a trouble (hub.domain.troubles.Troubles.report) unless one of (kind, key) is open;
        from any thread, queued. In the dispatcher thread use ``self.troubles`` directly."""
        at = self.clock.time()
        self._put(_TroubleCommand(lambda now, batch: self.troubles.report(kind, key, at, device=device, room=room,
                                                                           detail=detail)))

    def clear_trouble(self, kind: str, key: str) -> None:
        """Clear the open trouble of (kind, key), if any; from any thread, queued."""
        at = self.clock.time()
        self._put(_TroubleCommand(lambda now, batch: self.troubles.clear(kind, key, at)))

    def acknowledge_trouble(self, trouble_id: str, associate: str, source: str = "api") -> concurrent.futures.Future:
        """``associate`` takes on an open trouble; the future gets the trouble object, or the
        DomainError (not_found, conflict, unknown_associate)."""
        def action(now: float, batch: Batch) -> list[Transition]:
            self.roster.get(associate)  # an unknown associate is refused
            return self.troubles.acknowledge(trouble_id, associate, now, source)
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._put(_TroubleCommand(action, fut, lambda: self._trouble_views.get(trouble_id, (None, None))[1]))
        return fut

    def retire_device(self, device: str, actor: str | None = None, source: str = "api") -> concurrent.futures.Future:
        """``device`` is taken out of service: no longer expected, its troubles clear (until it
        is heard again). The future gets ``{"id", "status": "retired"}`` or the DomainError
        (not_found: a device the hub neither expects nor has heard)."""
        def action(now: float, batch: Batch) -> list[Transition]:
            out = self.device_watch.retire(device, now, actor, source)
            if out:
                self._device_row(device, "retired", now, batch, out[0])
            return out[1:]
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._put(_TroubleCommand(action, fut, lambda: {"id": device, "status": "retired"}))
        return fut

    def broker_state(self, connected: bool) -> None:
        """The hub's link to the broker is up or down (from the MQTT thread; queued)."""
        at = self.clock.time()
        watch = self.broker_watch
        self._put(_TroubleCommand(lambda now, batch: watch.up(at) if connected else watch.down(at)))

    def open_troubles(self) -> list[dict]:
        """The open troubles' objects, oldest first (a snapshot; safe from any thread)."""
        return [obj for _, obj in sorted(self._trouble_views.values(), key=lambda v: v[1]["since_ts"])
                if obj["cleared_at"] is None]

    def troubles_changed_since(self, seq: int) -> list[tuple[int | None, dict]]:
        """(seq, trouble object) of the troubles known here whose last change is after ``seq``
        or not stored yet (a page catching up; safe from any thread)."""
        return [(s, obj) for s, obj in list(self._trouble_views.values()) if s is None or s > seq]

    def lamps(self) -> dict[str, LampState]:
        """Every room's current lamp state (a snapshot; safe from any thread)."""
        return dict(self._lamps)

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    # -- the dispatcher thread --------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._writer = Writer(self.db_path, self.rollup_rules)
            self._restore()
            self._restore_troubles()
            self.device_watch = self._new_device_watch(self.clock.time(), self._writer.retired_devices())
            # Configured devices never heard of are listed (status "never"), not left out.
            self._writer.expect_devices(sorted(self.devices or ()), self.clock.time())
            restored = self.floor.active_calls()
            if restored:
                log.info("restored %d open call(s) from %s", len(restored), self.db_path)
            # Catch up with time that passed while the hub was down, then publish every lamp.
            self._work([], all_lamps=True)
        except BaseException as e:  # reported to start()
            self._start_error = e
            self._ready.set()
            return
        self._ready.set()
        while not self._stopping.is_set():
            items = self._next_items()
            if items is None:
                break
            together = [i for i in items if not isinstance(i, _Alone)]
            if together or not items:
                self._work(together)
            for i in items:
                if isinstance(i, _Alone):
                    self._unstored -= 1  # counted again if it fails again
                    self._work([i.item], retry=True)
        self._writer.close()

    def _restore(self) -> None:
        """Rebuild the floor and the roster from what is stored (start, or after a failed write)."""
        w = self._writer
        self.floor = Floor(self.rooms.values(), self.timing)
        self.floor.restore(w.active_calls(), w.last_call_seq())
        old, self.roster = self.roster, self._new_roster()
        self.roster.restore(**w.associate_history())
        self.roster.keep_presence(old)  # phones heard are known in memory only

    def _restore_troubles(self) -> None:
        """Take up the troubles a stopped hub left open (at start only: after a failed write
        the troubles in memory are the truth, their transitions not stored yet)."""
        open_, last = self._writer.open_troubles()
        self.troubles.restore(open_, last)
        tz = self.rollup_rules.tz
        self._trouble_views = {t.id: (None, trouble_object(t, tz)) for t in self.troubles.open()}
        if open_:
            log.warning("%d trouble(s) still open from before the start: %s", len(open_),
                        ", ".join(f"{t.id} {t.kind} {t.key}" for t in open_))

    def _new_device_watch(self, started_at: float, retired: Collection[str] = ()) -> DeviceWatch:
        expected = {d: Expected(tuple(rooms), self._heartbeats.get(d, self.device_heartbeat_s))
                    for d, rooms in (self.devices or {}).items()}
        return DeviceWatch(expected, self.troubles, started_at, retired,
                           adopt_heartbeat_s=None if self.devices else self.device_heartbeat_s)

    def _new_roster(self) -> Roster:
        return Roster(self._staff, self.layout.zones, self.presence_s, self.escalation.ladder.receipt_s)

    def _next_items(self) -> list | None:
        now = self.clock.time()
        deadlines = [d for d in (self.floor.next_deadline(),
                                 self.escalation.next_deadline(self.floor.active_calls(), now),
                                 self.roster.next_deadline(now),
                                 self.troubles.next_deadline(), self.device_watch.next_deadline(),
                                 self.broker_watch.next_deadline()) if d is not None]
        deadline = min(deadlines, default=None)
        timeout = MAX_IDLE_S if deadline is None else min(MAX_IDLE_S, max(0.0, deadline - now))
        items = []
        try:
            items.append(self._queue.get(timeout=timeout))
        except queue.Empty:
            return items
        while len(items) < MAX_BATCH:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if None in items:
            # Unacknowledged MQTT messages come again from the broker; callers waiting on
            # commands get an answer now rather than a hung request.
            self._refuse_pending(items)
            return None
        return items

    def _work(self, items: list, all_lamps: bool = False, retry: bool = False) -> None:
        """Work ``items`` in one transaction. ``retry``: an input worked again alone after a
        failed write (its failure is logged in one line: the batch's was logged in full)."""
        now = self.clock.time()
        early = [c for c in self.communicators if getattr(c, "before_commit", False)]
        batch = Batch()
        acks: list[Message] = []
        replies: list[tuple[_Command, object]] = []
        arrivals: dict[str, float] = {}  # room → perf_counter() of its first message in this batch
        w = self._writer
        carried, self._troubles_unstored = self._troubles_unstored, []
        self._held = []
        trouble_replies: list[tuple[_TroubleCommand, DomainError | None]] = []
        try:
            w.begin()
            for t in carried:  # held in memory since a failed write: stored now
                w.append(t, now)
            for item in items:
                if isinstance(item, Received):
                    seen = len(batch.events)
                    self._on_message(item, batch)
                    acks.append(item.message)
                    for _, t in batch.events[seen:]:
                        arrivals.setdefault(t.room, item.mono)
                elif isinstance(item, _Command):
                    try:
                        self._record(item.action(self.floor, now), batch, now)
                        replies.append((item, None))
                    except DomainError as e:
                        replies.append((item, e))
                elif isinstance(item, _AssociateCommand):
                    try:
                        self._record(item.action(self.roster, now), batch, now)
                        replies.append((item, None))
                    except DomainError as e:
                        replies.append((item, e))
                elif isinstance(item, _TroubleCommand):
                    try:
                        self._record(item.action(now, batch), batch, now)
                        trouble_replies.append((item, None))
                    except DomainError as e:
                        trouble_replies.append((item, e))
                elif isinstance(item, _Rejected):
                    self._rejection(item.channel, item.topic, item.reason, item.excerpt, item.at, batch,
                                    item.source, item.count)
            # The lamps of the rooms the inputs touched go out now, before the clock's work,
            # the escalation and the rows are saved: a press lights its lamp first.
            self._publish_lamps(self._lamps_of({t.room for _, t in batch.events if t.room}), arrivals)
            self._record(self.floor.tick(now), batch, now)
            self._record(self.roster.reach(self.floor.active_calls(), now), batch, now)
            self._record(self.escalation.run(self.floor, self.roster, now), batch, now)
            self._record(self.device_watch.check(now) + self.broker_watch.check(now), batch, now)
            alerted = pick_alerted(((a.id, a.role, a.state) for a in self.roster), self.alert_role)
            self._record(self.troubles.alert(alerted, now), batch, now)
            self._take_troubles(batch)
            changed = self.floor.take_changed()
            self.roster.settle(changed)
            for call in changed:
                seq = max((s for s, t in batch.events if t.call == call.id), default=0)
                batch.calls[call.id] = (seq, call_row(call, seq))
            # Lamps go out before the commit: they are derived state. If the hub dies before
            # the commit, the broker (not yet acknowledged) delivers the press again and the
            # same lamp follows. This keeps the commit's disk sync off the press→lamp path.
            self._publish_lamps(self._changed_lamps(batch, all_lamps), arrivals)
            # The pages too see the batch before it is written (press → dashboard); if the
            # commit fails they are told, and sent a fresh snapshot of what was stored.
            if batch:
                self._send(batch, early)
            for _, row in batch.calls.values():
                w.save_row(row)
            w.commit()
        except Exception as e:
            # A failing disk must not take the hub down; state is rebuilt from what was stored,
            # and the inputs are worked again shortly (they are not acknowledged yet).
            if retry:
                log.error("could not store an input worked again alone (%s: %s); retrying in %.0f s",
                          type(e).__name__, e, RETRY_AFTER_FAILED_WRITE_S)
            else:
                log.exception("could not store a batch of %d input(s); state reloaded from the database; "
                              "retrying in %.0f s, each input alone", len(items), RETRY_AFTER_FAILED_WRITE_S)
            w.rollback()
            # Troubles are held in memory and must reach people even while nothing can be
            # stored (a database trouble among them): their transitions wait for the next commit.
            self._troubles_unstored = carried + self._held
            self._take_troubles(batch)
            self.healthy = False
            self.counters["failed_writes"] += 1
            self._restore()
            for c in early:
                self._safely(c, c.undone)
            self._send(Batch(lamps=self._changed_lamps(Batch(), all_lamps=True)))  # undo what went out
            if batch.troubles:  # not stored, but they must reach people: sent regardless
                for tid in batch.troubles:
                    self._trouble_views[tid] = (None, batch.troubles[tid])
                self._send(Batch(troubles=batch.troubles))
            self._answer_troubles(trouble_replies)
            for cmd, _ in replies:
                cmd.future.set_exception(DomainError("unavailable", f"could not store the change: {e}"))
            # Worked again one by one: should one of them be what fails (an input nobody
            # foresaw), the others are stored at the next try rather than failing with it forever.
            self._retry_later([i for i in items if isinstance(i, (Received, _Rejected))])
            return
        self.healthy = self._unstored == 0
        self.counters["batches"] += 1
        self._note_troubles(batch)
        self._answer_troubles(trouble_replies)
        for c in early:
            self._safely(c, c.stored)
        # Calls and rejections out before the acknowledgements: the broker saves after an
        # acknowledgement, and what is published behind that save waits for it.
        if batch:
            self._send(batch, [c for c in self.communicators if c not in early])
        for message in acks:
            self.acknowledge(message)
        extra = Batch()  # what only the pages need comes after
        self._announce_associates(extra, batch.events, now)
        if extra:
            self._send(extra)
        for cmd, error in replies:
            if error is not None:
                cmd.future.set_exception(error)
            elif isinstance(cmd, _AssociateCommand):
                cmd.future.set_result(self._views.get(cmd.associate))
            else:
                cmd.future.set_result(batch.calls.get(cmd.call, (0, None))[1] if cmd.call else None)

    def _hold(self, transitions: list[Transition]) -> None:
        """Keep trouble transitions made while nothing can be written (after a rollback) for
        the next batch that commits, instead of writing them now (dispatcher thread)."""
        self._troubles_unstored += transitions

    def _take_troubles(self, batch: Batch) -> None:
        """Put every trouble changed since the last time into ``batch`` (its object)."""
        tz = self.rollup_rules.tz
        for t in self.troubles.take_changed():
            batch.troubles[t.id] = trouble_object(t, tz)

    def _note_troubles(self, batch: Batch) -> None:
        """Keep the stored batch's troubles for pages that connect (open ones; cleared ones
        until KEEP_CLEARED_TROUBLES newer have cleared)."""
        for tid, obj in batch.troubles.items():
            seq = max((s for s, t in batch.events if t.detail.get("trouble") == tid and t.call is None), default=None)
            self._trouble_views[tid] = (seq, obj)
        cleared = [tid for tid, (_, obj) in self._trouble_views.items() if obj["cleared_at"] is not None]
        for tid in cleared[:-KEEP_CLEARED_TROUBLES]:
            del self._trouble_views[tid]

    def _answer_troubles(self, replies: list[tuple[_TroubleCommand, DomainError | None]]) -> None:
        for cmd, error in replies:
            if cmd.future is None:
                continue
            if error is not None:
                cmd.future.set_exception(error)
            else:
                cmd.future.set_result(cmd.answer())

    def _changed_lamps(self, batch: Batch, all_lamps: bool = False) -> dict[str, LampState]:
        """Lamps that differ from what was last published (every lamp with ``all_lamps``)."""
        if all_lamps:
            return self._lamps_of(self.rooms, every=True)
        return self._lamps_of({row["room"] for _, row in batch.calls.values()})

    def _lamps_of(self, rooms: Iterable[str], every: bool = False) -> dict[str, LampState]:
        """The lamps of ``rooms`` that differ from what was last published (all with ``every``),
        noted as published."""
        changed = {}
        for room in rooms:
            if room not in self.rooms:
                continue
            lamp = self.floor.lamp(room)
            if every or lamp != self._lamps.get(room):
                changed[room] = self._lamps[room] = lamp
        return changed

    def _publish_lamps(self, lamps: dict[str, LampState], arrivals: dict[str, float]) -> None:
        """Send ``lamps``; report each press→lamp latency (from ``arrivals``) to the metrics."""
        if not lamps:
            return
        self._send(Batch(lamps=lamps))
        if self.on_lamp_latency is not None:
            sent = time.perf_counter()
            for room in arrivals.keys() & lamps.keys():
                self.on_lamp_latency(sent - arrivals.pop(room))

    def _announce_associates(self, batch: Batch, events: list[tuple[int, Transition]], now: float) -> None:
        """Put every associate whose view changed noticeably into the batch (for SSE)."""
        views = self.roster.views(self.floor.active_calls(), self.layout, now)
        for who, view in views.items():
            gist = _gist(view)
            if self._announced.get(who) != gist:
                self._announced[who] = gist
                seq = max((s for s, t in events if t.actor == who and t.call is None), default=None)
                batch.associates[who] = (seq, view)
        self._views = views

    def _send(self, batch: Batch, to: list[Communicator] | None = None) -> None:
        """Hand ``batch`` to the communicators ``to`` (default: all)."""
        # The pages may hold this thread until they have the batch, or until ``wake`` says an
        # input arrived: inputs already waiting get no such wait.
        self.wake.clear()
        if not self._queue.empty():
            self.wake.set()
        for c in self.communicators if to is None else to:
            try:
                c.send(batch)
            except Exception:
                log.exception("%s failed to send changes", type(c).__name__)

    @staticmethod
    def _safely(c: Communicator, note: Callable[[], None]) -> None:
        """Call ``note`` (c.stored or c.undone); a failing communicator must not stop the others."""
        try:
            note()
        except Exception:
            log.exception("%s failed in %s", type(c).__name__, note.__name__)

    def _retry_later(self, items: list) -> None:
        """Queue ``items`` again after RETRY_AFTER_FAILED_WRITE_S (a failed write), each to be
        worked in a batch of its own."""
        if not items:
            return
        items = [_Alone(i) for i in items]
        self._unstored += len(items)
        timer = threading.Timer(RETRY_AFTER_FAILED_WRITE_S, lambda: [self._put(i) for i in items])
        timer.daemon = True
        timer.start()

    def _record(self, transitions: list[Transition], batch: Batch, now: float) -> None:
        for t in transitions:
            if t.kind in HELD_IN_MEMORY:
                self._held.append(t)  # noted before the write that may fail
            batch.events.append((self._writer.append(t, now), t))
            self.roster.observe(t)

    def _rejection(self, channel: str, topic: str, reason: str, excerpt: str, at: float, batch: Batch,
                   source: str | None = None, count: int = 1) -> None:
        self.counters["rejected"] += count
        self.rejected_by_channel[channel] = self.rejected_by_channel.get(channel, 0) + count
        log.warning("rejected %s %s%s: %s", channel, topic, f" from {source}" if source else "", reason)
        self._writer.reject(at, channel, topic, reason, excerpt, source, count)
        if channel != "http":  # devices (hub/rejected) and pages have no use for a refused HTTP request
            batch.rejected.append(Rejection(topic, reason, excerpt))

    # -- MQTT inputs ------------------------------------------------------------------------
    def _on_message(self, item: Received, batch: Batch) -> None:
        """The inputs of one message, each checked against the store (rooms, devices, people)."""
        msg = item.message
        for inp in item.inputs:
            if isinstance(inp, Unreadable):
                r = inp.rejection
                self._rejection(inp.channel, r.topic, r.reason, r.excerpt, item.at, batch)
                continue
            try:
                if isinstance(inp, DeviceEvent):
                    self._on_event(inp.room, inp.event, inp.sent_at, batch, configured=inp.configured)
                    if not inp.configured and not msg.retain:
                        self._heard(inp.event.device, item.at, batch, inp.room)
                elif isinstance(inp, DeviceStatus):
                    self._on_status(inp.device, inp.status, item.at, batch)
                    if inp.status == "offline":
                        self._record(self.device_watch.offline(inp.device, item.at), batch, item.at)
                    elif not msg.retain:
                        self._heard(inp.device, item.at, batch)
                elif isinstance(inp, DeviceHealth):
                    self._on_health(inp.device, inp.health, item.at)
                    if not msg.retain:  # a retained heartbeat may be a dead device's last
                        self._heard(inp.device, item.at, batch)
                elif isinstance(inp, LocationFix):
                    self._on_location(inp.associate, inp.location, item.at)
            except (ProtocolError, DomainError) as e:  # e.g. a device not allowed in that room
                channel = "buttons" if isinstance(inp, DeviceEvent) and inp.configured else "mqtt"
                r = Rejection.of(msg.topic, e.message if isinstance(e, DomainError) else str(e), msg.payload)
                self._rejection(channel, r.topic, r.reason, r.excerpt, item.at, batch)

    def _on_event(self, room: str, ev: Event, received_at: float, batch: Batch, *,
                  configured: bool = False) -> None:
        """``configured``: a third-party button the store config maps to ``room``; that
        mapping is its device check."""
        if room not in self.rooms:
            raise DomainError("unknown_room", f"unknown room {room!r}")
        if not configured:
            check_device(ev.device, room, self.devices)
        self.counters["received"] += 1
        w = self._writer
        if w.seen(ev.id):
            self.counters["duplicates"] += 1
            log.debug("duplicate event %s ignored", ev.id)
            return
        pressed_at = received_at - ev.age_ms / 1000.0
        now = self.clock.time()
        if ev.type == "call":
            transitions = self.floor.press(room, ev.reason, pressed_at, now, "device", None)
        elif ev.type == "cancel":
            transitions = self.floor.cancel(room, pressed_at, "device", None)
        else:
            transitions = self.floor.presence(room, pressed_at, "device", ev.badge)
        for t in transitions:
            t.detail.setdefault("device", ev.device)
            t.detail.setdefault("event", ev.id)
        self._record(transitions, batch, now)
        outcome = ",".join(t.kind for t in transitions) or "no effect"
        w.remember(ev.id, ev.device, room, ev.type, received_at, ev.age_ms, outcome)

    def _heard(self, device: str, at: float, batch: Batch, room: str | None = None) -> None:
        """A live message from ``device``: its silence troubles clear; a retired one is back."""
        out = self.device_watch.heard(device, at, room)
        if out and out[0].kind == "device_unretired":
            log.warning("retired device %s was heard again: expected again", device)
            self._device_row(device, "online", at, batch, out.pop(0))
        self._record(out, batch, at)

    def _device_row(self, device: str, status: str, at: float, batch: Batch, t: Transition) -> None:
        """Store ``t`` (a device's retirement or return) and show the device's new ``status``."""
        self._record([t], batch, at)
        self._writer.device_status(device, status, at)
        batch.devices.append((batch.events[-1][0], {"id": device, "status": status, "at": at}))

    def _on_status(self, device: str, status: str, at: float, batch: Batch) -> None:
        check_device(device, None, self.devices)
        shown = status
        if status == "offline" and self.device_watch.status(device, at) == "retired":
            shown = "retired"  # its last will after it was retired: it stays out of the list
        self._writer.device_status(device, shown, at)
        t = Transition(f"device_{status}", "", at, "device", None, device)
        seq = self._writer.append(t, at)
        batch.devices.append((seq, {"id": device, "status": shown, "at": at}))

    def _on_health(self, device: str, health: dict, at: float) -> None:
        check_device(device, None, self.devices)
        self._writer.device_health(device, health, at)

    def _on_location(self, associate: str, loc: Location, at: float) -> None:
        """The location feed: kept in memory (frequent, soon stale), used at once."""
        if associate not in self.roster:
            raise DomainError("unknown_associate", f"unknown associate {associate!r}")
        if loc.room is not None:
            if loc.room not in self.rooms:
                raise DomainError("unknown_room", f"unknown room {loc.room!r}")
            place = Place(room=loc.room)
        elif loc.zone is not None:
            if loc.zone not in self.layout.zone_points:
                raise DomainError("invalid", f"unknown zone {loc.zone!r}")
            place = Place(zone=loc.zone)
        else:
            if not self.layout.positioned:
                raise DomainError("invalid", "this store's rooms have no positions: send a room or a zone, not x and y")
            place = Place(point=Point(loc.x, loc.y))
        self.roster.locate(associate, place, at)


def _gist(view: dict) -> tuple:
    """What of an associate's view is worth announcing: all but small moves and times seen."""
    pos = view.get("position") or {}
    where = (pos.get("source"), pos.get("room"), pos.get("zone"),
             None if pos.get("x") is None else (round(pos["x"] / ANNOUNCE_MOVE_M), round(pos["y"] / ANNOUNCE_MOVE_M)))
    return (view["state"], view["declared"], view["call"], view["state_at"], view["idle_since"], where)
