"""The chain uplink: the store's event log, sent up to head office and back-filled (docs/chain.md).

Every event of the hub's append-only log goes up in *ranges* (callbell/chain_wire.py) through
the store broker, whose bridge carries them to the chain's central RabbitMQ. The bridge is no
outbox — a store broker killed inside its autosave window loses what it had queued — so the
hub keeps the truth: central publishes, retained, the highest sequence number below which it
holds everything (``chain/received``), and the hub resends from its SQLite log whenever that
mark stops moving while there is more to send (after a reconnect, a lost message, a gap).

Two parts: :class:`UplinkPlan`, the pure back-fill decision (no I/O, the clock passed in), and
:class:`Uplink`, its transport: a thread with its own SQLite reader connection and its own
:class:`~callbell.mqtt.MqttLink`. It never writes the database. Wired in hub/service.py when
store.toml has ``[chain] enabled = true``::

    uplink = Uplink(config, broker_url, db_path)
    dispatcher.communicators.append(uplink.start())   # woken by every stored batch
    ...
    uplink.stop()
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from callbell.chain_wire import MAX_RANGE_EVENTS, ChainEvent, ChainTopics, EventRange, parse_bridge_state, parse_received
from callbell.mqtt import Message, MqttLink
from callbell.protocol import ProtocolError
from hub.plugins import HubParts, Plugin
from hub.store import Reader

log = logging.getLogger("callbell.uplink")

#: Events sent beyond central's mark at most: the uplink waits for central to confirm before it
#: sends more. Bounds what sits in the store broker's queue while central is away (that queue
#: is lost if the broker dies before it saves), and what a resend repeats. 5,000 events are
#: about two busy store days, ~1 MB; well below the broker's max_queued_messages in messages.
WINDOW_EVENTS = 5000

#: Seconds central's mark may stand still, while events beyond it are out, before the uplink
#: takes them as lost and resends from the mark. Longer than central's slowest normal
#: confirmation (a bridge reconnect, a busy consumer), short enough that a gap closes within
#: a minute. Raise it for a chain whose central is often far behind.
RESEND_AFTER_S = 30.0

#: Environment variable with the uplink's broker URL (and password), over [chain] url.
URL_VARIABLE = "CALLBELL_UPLINK_URL"

#: The uplink looks at the log this often even when no batch woke it, seconds (catches events
#: written by something other than the dispatcher, and timers like RESEND_AFTER_S).
POLL_S = 1.0


@dataclass
class UplinkPlan:
    """What to send next, from central's mark and what was already sent. Pure: the clock is
    passed in (seconds, any monotonic origin).

        plan = UplinkPlan(window=5000, resend_after_s=30)
        plan.central_mark(0, now)          # central holds nothing of this store yet
        plan.next_range(last_seq=120, now=now)   # → (0, 120): send seq 1..120
        plan.sent(120)
        plan.central_mark(120, now + 1)    # confirmed
    """

    window: int = WINDOW_EVENTS
    resend_after_s: float = RESEND_AFTER_S
    batch: int = MAX_RANGE_EVENTS
    #: Central's mark: every event up to it is held there. None until central has said.
    mark: int | None = None
    #: The highest seq handed to the broker since the last (re)start or resend.
    upto: int = 0
    #: When the mark last moved (or the bridge came up), on the caller's clock.
    moved_at: float = 0.0
    #: The bridge to central, as the store broker reports it; None when it does not report.
    bridge_up: bool | None = None
    resends: int = 0
    stale_marks: int = 0
    log: list[str] = field(default_factory=list)

    def central_mark(self, seq: int, now: float) -> None:
        """Central says it holds every event up to ``seq``. A mark below one already heard is
        an old retained copy (a restarted store broker replays what it saved) and is ignored:
        central's consumer stores events before it moves a mark, so its mark never goes back."""
        if self.mark is not None and seq <= self.mark:
            if seq < self.mark:
                self.stale_marks += 1
            return
        self.mark = seq
        self.moved_at = now

    def bridge(self, up: bool, now: float) -> None:
        """The store broker's bridge went up or down. Coming up restarts the stall timer: the
        broker first delivers what it queued, and central's mark moves with it."""
        if up and self.bridge_up is not True:
            self.moved_at = now
        self.bridge_up = up

    def next_range(self, last_seq: int, now: float) -> tuple[int, int] | None:
        """The range of the log to send now, as (after, upto): events with after < seq ≤ upto;
        None when there is nothing to send yet. ``last_seq`` is the log's newest seq."""
        if self.mark is None:
            return None  # where central stands is not known: nothing sensible to send
        if self.upto < self.mark:
            self.upto = self.mark  # a restart, or central has more than this run sent
        if (self.upto > self.mark and now - self.moved_at >= self.resend_after_s
                and self.bridge_up is not False):
            self.log.append(f"central's mark stood at {self.mark} for {now - self.moved_at:.0f} s with "
                            f"{self.upto - self.mark} event(s) beyond it: resending from {self.mark + 1}")
            self.upto = self.mark
            self.moved_at = now
            self.resends += 1
        end = min(last_seq, self.mark + self.window, self.upto + self.batch)
        if end <= self.upto:
            return None
        return self.upto, end

    def sent(self, upto: int) -> None:
        """The range up to ``upto`` was handed to the broker."""
        self.upto = max(self.upto, upto)


class _LogReader(Reader):
    """The event log, read on this thread's own connection (hub.store.Reader's)."""

    def last_seq(self) -> int:
        return self._conn().execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]

    def events_range(self, after: int, upto: int) -> list[ChainEvent]:
        """Events with after < seq ≤ upto, in order, each with its call's press time."""
        rows = self._conn().execute(
            "SELECT e.seq, e.at, e.recorded_at, e.kind, e.call, e.room, e.actor, e.source, e.detail, "
            "c.pressed_at FROM events e LEFT JOIN calls c ON c.id = e.call "
            "WHERE e.seq > ? AND e.seq <= ? ORDER BY e.seq", (after, upto)).fetchall()
        return [ChainEvent(seq=r[0], at=r[1], recorded_at=r[2], kind=r[3], call=r[4], room=r[5], actor=r[6],
                           source=r[7], detail=_detail(r[8]), pressed_at=r[9]) for r in rows]


def _detail(text: str | None) -> dict | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return {"text": text[:1000]}  # never written by the hub; sent as found, not dropped
    return value if isinstance(value, dict) else {"value": value}


class Uplink(Plugin):
    """Sends the store's log to head office and back-fills what central misses.

    ``url``: the store broker, with an account allowed to publish ``{p}/{store}/chain/events``
    and read ``chain/received`` and ``chain/bridge`` (``callbell chain store-config``).
    ``clock``: monotonic seconds (tests pass a fake)."""

    def __init__(self, store: str, prefix: str, tz: str, standard_s: float, url: str, db_path: Path, *,
                 window: int = WINDOW_EVENTS, resend_after_s: float = RESEND_AFTER_S, poll_s: float = POLL_S,
                 clock: Callable[[], float] = time.monotonic):
        self.topics = ChainTopics(prefix, store)
        self.store, self.tz, self.standard_s = store, tz, standard_s
        self.plan = UplinkPlan(window=window, resend_after_s=resend_after_s)
        self.db_path = Path(db_path)
        self.poll_s = poll_s
        self.clock = clock
        self.sent_events = 0
        self.rejected = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # the plan is read by the thread, fed by paho's
        self._thread: threading.Thread | None = None
        self.link = MqttLink(url, f"{prefix}-{store}-uplink",
                             subscriptions=[(self.topics.received, 1), (self.topics.bridge, 1)],
                             on_message=self._message, on_connected=lambda _: self._wake.set())

    @classmethod
    def from_config(cls, config, hub_broker_url: str) -> "Uplink":
        """The uplink of a store config with ``[chain] enabled``: its URL from the environment
        (URL_VARIABLE), else ``[chain] url``, else the hub's own broker URL."""
        c = config.chain
        url = os.environ.get(URL_VARIABLE) or c.url or hub_broker_url
        return cls(config.store.id, config.mqtt.prefix, config.store.timezone, config.store.standard_s, url,
                   config.database.path, window=c.window, resend_after_s=c.resend_after_s)

    @classmethod
    def for_hub(cls, hub: HubParts) -> "Uplink | None":
        """With ``[chain] enabled``: the event log up to head office (docs/chain.md)."""
        return cls.from_config(hub.config, hub.broker_url) if hub.config.chain.enabled else None

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> "Uplink":
        self.link.start()
        self._thread = threading.Thread(target=self._run, name="chain-uplink", daemon=True)
        self._thread.start()
        log.info("chain uplink for store %s via %s", self.store, self.link.address)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(5)
        self.link.stop()

    def send(self, batch) -> None:
        """Dispatcher communicator: a batch was stored; look at the log now (never blocks)."""
        if getattr(batch, "events", None):
            self._wake.set()

    # -- central's answers (paho's thread) -----------------------------------------------------
    def _message(self, m: Message) -> None:
        try:
            if m.topic == self.topics.received:
                seq = parse_received(m.payload)
                with self._lock:
                    self.plan.central_mark(seq, self.clock())
            elif m.topic == self.topics.bridge:
                up = parse_bridge_state(m.payload)
                with self._lock:
                    self.plan.bridge(up, self.clock())
                log.info("bridge to central %s", "up" if up else "down")
        except ProtocolError as e:
            self.rejected += 1
            log.warning("ignored %s: %s", m.topic, e)
        self._wake.set()

    # -- the sending thread ---------------------------------------------------------------------
    def _run(self) -> None:
        reader = _LogReader(self.db_path)  # its connection belongs to this thread
        while not self._stop.is_set():
            self._wake.wait(self.poll_s)
            self._wake.clear()
            try:
                self._send_what_is_due(reader)
            except Exception:  # a locked or damaged file: try again at the next poll
                log.exception("chain uplink could not read the event log")

    def _send_what_is_due(self, reader: _LogReader) -> None:
        if not self.link.connected:
            return  # paho would hold the ranges in RAM only; the log is the better queue
        last = reader.last_seq()
        while not self._stop.is_set():
            with self._lock:
                due = self.plan.next_range(last, self.clock())
                for line in self.plan.log:
                    log.warning("%s", line)
                self.plan.log.clear()
            if due is None:
                return
            after, upto = due
            events = reader.events_range(after, upto)
            message = EventRange(self.store, after, upto, tuple(events), self.tz, self.standard_s)
            self.link.publish(self.topics.events, message.to_json(), qos=1)
            self.sent_events += len(events)
            with self._lock:
                self.plan.sent(upto)
