"""The device's on-disk outbox: every event is written here before it is published and deleted
only when the broker has acknowledged it. paho's own queue lives in RAM, so without this a
power cut during a Wi-Fi drop would lose the presses made meanwhile.

Age of a press (``age_ms`` on the wire) is computed at publish time:

- same boot: from the monotonic clock saved with the event — exact, immune to clock changes;
- after a reboot the monotonic clock restarted, so the wall clocks are compared instead:
  ``age = wall_now − wall_at_press``, never below 0. Its error is bounded by how far the
  Pi's clock was adjusted between the two (a Pi without an RTC boots with the last saved time
  until NTP syncs — document: keep NTP on; a reboot delay itself is counted correctly once NTP
  has synced, and an unsynced clock makes a press look younger, never older).

An event older than ``OUTBOX_MAX_AGE_S`` (callbell.protocol: a week) is not sent but dropped,
logged and counted (``outbox_expired`` in the health message): the hub refuses a press older
than that, since it could only land in a past week's statistics as a missed call.

When full (``limit`` events), the newest event is refused and logged, the oldest kept: the
oldest are real calls still unserved, while a flood of new ones comes from a stuck button.

An acknowledged event is kept a little longer (``LINGER_S``): Mosquitto acknowledges a message
before it saves it (the embedded broker saves every 2 s), so a broker crash soon after the
acknowledgement could lose it. If the connection drops within the linger, the event is sent
again (the hub ignores repeats).
"""
from __future__ import annotations

import logging
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from callbell.clock import Clock
from callbell.protocol import OUTBOX_MAX_AGE_S, make_event_id

log = logging.getLogger("callbell.device.outbox")

#: Seconds an acknowledged event stays in the outbox. Must cover the broker's ack-to-disk window
#: (its autosave period: 2 s for the embedded broker and the generated config) plus the time to
#: notice a dead connection (1.5 × keepalive = 7.5 s).
LINGER_S = 15.0


def boot_id() -> str:
    """Changes at every boot of the machine (Linux); used to know if a saved monotonic time
    is still comparable."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown-boot"


@dataclass(frozen=True)
class Pending:
    seq: int
    id: str
    room: str
    type: str
    reason: str | None
    badge: str | None
    mono: float
    wall: float
    boot: str

    def age_ms(self, clock: Clock, current_boot: str) -> int:
        if self.boot == current_boot:
            age = clock.monotonic() - self.mono
        else:
            age = clock.time() - self.wall
        return max(0, round(age * 1000))


class OutboxFull(Exception):
    pass


class Outbox:
    """A durable FIFO of events (thread-safe; one connection guarded by a lock)."""

    def __init__(self, path: Path, device: str, clock: Clock, limit: int = 10_000):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.device = device
        self.clock = clock
        self.limit = limit
        self.boot = boot_id()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")  # a press must survive a power cut
        self._db.execute("CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                         "id TEXT UNIQUE, room TEXT, type TEXT, reason TEXT, badge TEXT, mono REAL, "
                         "wall REAL, boot TEXT, acked REAL)")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(outbox)")}
        if "acked" not in columns:  # an outbox written by version 0.1.0 before the linger
            self._db.execute("ALTER TABLE outbox ADD COLUMN acked REAL")
        # Ack times are monotonic seconds of the run that saw them; a new run resends all.
        self._db.execute("UPDATE outbox SET acked = NULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        row = self._db.execute("SELECT value FROM meta WHERE key = 'token'").fetchone()
        if row is None:
            # A fresh outbox gets a fresh token, so ids stay unique even if the file is wiped.
            self._token = secrets.token_hex(2)
            self._db.execute("INSERT INTO meta VALUES ('token', ?)", (self._token,))
        else:
            self._token = row[0]
        self.refused = 0
        self.expired = 0  # events dropped unsent for being older than OUTBOX_MAX_AGE_S

    def add(self, room: str, type: str, reason: str | None = None, badge: str | None = None,
            mono: float | None = None, wall: float | None = None) -> Pending:
        """Store an event; returns it with its id. Raises OutboxFull when at the limit."""
        mono = self.clock.monotonic() if mono is None else mono
        wall = self.clock.time() if wall is None else wall
        with self._lock:
            depth = self._db.execute("SELECT COUNT(*) FROM outbox WHERE acked IS NULL").fetchone()[0]
            if depth >= self.limit:
                self.refused += 1
                log.error("outbox full (%d events unsent); refusing a %s in %s — is the broker "
                          "reachable?", depth, type, room)
                raise OutboxFull(f"outbox holds {depth} events")
            self._db.execute("BEGIN IMMEDIATE")
            cur = self._db.execute(
                "INSERT INTO outbox (room, type, reason, badge, mono, wall, boot) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (room, type, reason, badge, mono, wall, self.boot))
            seq = cur.lastrowid
            event_id = make_event_id(self.device, self._token, seq)
            self._db.execute("UPDATE outbox SET id = ? WHERE seq = ?", (event_id, seq))
            self._db.execute("COMMIT")
        return Pending(seq, event_id, room, type, reason, badge, mono, wall, self.boot)

    def free(self, wait_s: float) -> bool:
        """True when no write has held the outbox for ``wait_s`` seconds or more (a hung
        SD card would: every press waits behind it)."""
        if not self._lock.acquire(timeout=wait_s):
            return False
        self._lock.release()
        return True

    def pending(self) -> list[Pending]:
        with self._lock:
            rows = self._db.execute("SELECT seq, id, room, type, reason, badge, mono, wall, boot "
                                    "FROM outbox ORDER BY seq").fetchall()
        return [Pending(*r) for r in rows]

    def expire(self, entry: Pending, age_ms: int) -> None:
        """Drop ``entry`` unsent: it is older than OUTBOX_MAX_AGE_S (``age_ms``, milliseconds)."""
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE seq = ?", (entry.seq,))
        self.expired += 1
        log.error("dropped %s (%s in %s) unsent: it is %.1f days old, and the hub refuses presses older than "
                  "%d days", entry.id, entry.type, entry.room, age_ms / 86_400_000, OUTBOX_MAX_AGE_S // 86400)

    def delivered(self, seq: int) -> None:
        """The broker acknowledged it: it leaves after the linger (see :meth:`sweep`)."""
        with self._lock:
            self._db.execute("UPDATE outbox SET acked = ? WHERE seq = ?", (self.clock.monotonic(), seq))

    def sweep(self, connected_since: float) -> int:
        """Delete events acknowledged over LINGER_S ago on the current connection (opened at
        monotonic ``connected_since``); returns how many."""
        with self._lock:
            cur = self._db.execute("DELETE FROM outbox WHERE acked IS NOT NULL AND acked >= ? AND acked < ?",
                                   (connected_since, self.clock.monotonic() - LINGER_S))
            return cur.rowcount

    def __len__(self) -> int:
        """Events not yet acknowledged by the broker."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM outbox WHERE acked IS NULL").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
