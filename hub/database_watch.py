"""Watching the database file: what health says of it, its trouble, the nightly integrity check.

The hub learns that its database fails in five ways (docs/hub.md, "When the database fails"):

- the dispatcher cannot write it and works in memory (``Dispatcher.db_problem``);
- a reader (the API) cannot read it (:meth:`DatabaseWatch.read_failed`, from hub/api/errors.py);
- its disk has less than MIN_FREE_BYTES free (told before a write fails);
- the integrity check (``PRAGMA quick_check``) at a quiet hour finds damage;
- at start it was found damaged and set aside (hub.store.damage.check_at_start).

Each is shown by ``/api/v1/health`` and raised as a ``database`` trouble (docs/hub.md): the
first four under one trouble (key ``db``), cleared when none of them holds any more; a file set
aside under its own (key ``set-aside``), which stays until a person acknowledges it (the fault
does not pass by itself: someone must know that the history is in the file set aside).

    watch = DatabaseWatch(path, clock, tz, dispatcher, set_aside=found)
    watch.start()      # the quiet-hour check and the trouble's upkeep, on a thread of its own
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Callable

from callbell.clock import Clock
from hub.store import damage

log = logging.getLogger("callbell.hub.database")

#: Local store time of the daily integrity check, (hour, minute): before opening, when a check
#: that reads the whole file (0.44 s for 489 MB, cached, on the development machine) disturbs nobody. It runs on a read
#: connection of its own, never on the dispatcher's thread, so presses are not held up.
INTEGRITY_CHECK_AT = (3, 30)

#: Seconds a failed read keeps the database shown as failing in health and its trouble open.
#: A damaged page fails every read that touches it; five minutes without one is long enough
#: to believe the API's reads are sound again (the quiet-hour check decides for the file).
READ_ERROR_SHOWN_S = 300.0
#: The same for an API request that failed on a full or failing disk (a sign-in's session):
#: short, because the free space below says for as long as the disk stays full.
FULL_ERROR_SHOWN_S = 5.0

#: Free bytes on the database's file system below which it counts as full: SQLite's write-ahead
#: log alone grows by up to 4 MB between checkpoints, so less than this fails soon. Seen before
#: a write fails: a person is told while the hub still writes.
MIN_FREE_BYTES = 8 * 1024 * 1024

#: Seconds between the watch's looks at the dispatcher's and readers' state (raising or
#: clearing the trouble). Bounds how late a person hears of a full disk.
WATCH_EVERY_S = 1.0

#: The trouble keys (hub.domain.troubles): the database failing now, and a file set aside at start.
KEY_NOW = "db"
KEY_SET_ASIDE = "set-aside"


def next_check_at(now: float, tz: tzinfo, at: tuple[int, int] = INTEGRITY_CHECK_AT) -> float:
    """The next INTEGRITY_CHECK_AT after ``now`` (seconds since the epoch) in the zone ``tz``."""
    local = datetime.fromtimestamp(now, tz)
    due = local.replace(hour=at[0], minute=at[1], second=0, microsecond=0)
    if due.timestamp() <= now:
        due = (local + timedelta(days=1)).replace(hour=at[0], minute=at[1], second=0, microsecond=0)
    return due.timestamp()


class DatabaseWatch:
    """What is known of the database file's health, and the thread that checks it."""

    def __init__(self, path: Path, clock: Clock, tz: tzinfo, *, written: Callable[[], str | None],
                 report: Callable[..., None] | None = None, clear: Callable[..., None] | None = None,
                 troubles: Callable[[], list[dict]] = list, set_aside: damage.SetAside | None = None):
        """``written``: why the file cannot be written now (Dispatcher.db_problem), or None;
        ``report(kind, key, detail=...)`` / ``clear(kind, key)``: raise and clear a trouble
        (Dispatcher.report_trouble / clear_trouble); ``troubles``: the open troubles' objects
        (Dispatcher.open_troubles); ``set_aside``: what the start found."""
        self.path = Path(path)
        self.clock, self.tz = clock, tz
        self._written = written
        self._report, self._clear, self._troubles = report, clear, troubles
        self.set_aside = set_aside
        self._read_error: tuple[float, str] | None = None  # (monotonic time, reason)
        #: The last integrity check: {"at": epoch s, "ok": bool, "found": str | None}.
        self.last_check: dict | None = None
        self._raised: str | None = None  # the reason the open ``db`` trouble was raised with
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what health shows ------------------------------------------------------------------
    def read_failed(self, error: BaseException) -> None:
        """A request (the API: a read, or a sign-in's write) failed on the database (any thread)."""
        shown = READ_ERROR_SHOWN_S if damage.kind_of(error) == "damaged" else FULL_ERROR_SHOWN_S
        self._read_error = (time.monotonic() + shown, f"reading: {damage.describe(error)}")

    def free_space(self) -> str | None:
        """Why the database's file system counts as full (MIN_FREE_BYTES, or no inodes), or None."""
        try:
            st = os.statvfs(self.path.parent)
        except OSError as e:
            return f"io: cannot look at the disk: {e}"
        free = st.f_bavail * st.f_frsize
        if free < MIN_FREE_BYTES:
            return f"full: {free / 1e6:.1f} MB free on the database's disk"
        if st.f_files and st.f_favail == 0:
            return "full: no free inodes on the database's disk"
        return None

    def problem(self) -> str | None:
        """Why the database is failing now, or None: the first of not written, not read, and
        damage found by the last check."""
        written = self._written()
        if written:
            return f"writing: {written}"
        read = self._read_error
        if read is not None and time.monotonic() < read[0]:
            return read[1]
        space = self.free_space()
        if space:
            return f"disk: {space}"
        if self.last_check and not self.last_check["ok"]:
            return f"integrity check: {self.last_check['found']}"
        return None

    def health(self) -> dict:
        """The database's part of /api/v1/health."""
        found = {"problem": self.problem()}
        if self.set_aside:
            found["set_aside"] = self.set_aside.as_dict()
        if self.last_check:
            found["last_check"] = self.last_check
        return found

    # -- the integrity check ----------------------------------------------------------------
    def check_now(self) -> bool:
        """Run ``PRAGMA quick_check`` on a read connection of its own (this thread, never the
        dispatcher's); note the result and raise or clear the trouble. True if sound."""
        started = time.monotonic()
        try:
            found = damage.quick_check(self.path)
        except sqlite3.Error as e:
            found = damage.describe(e)
        took = time.monotonic() - started
        self.last_check = {"at": self.clock.time(), "ok": found is None, "found": found, "took_s": round(took, 3)}
        if found is None:
            log.info("database integrity check: ok (%.2f s)", took)
        else:
            log.error("DATABASE INTEGRITY CHECK FAILED for %s: %s. Back up what can be read and recover: "
                      "docs/hub.md, 'Backup, restore and recovery'", self.path, found)
        self.update()
        return found is None

    # -- the trouble ------------------------------------------------------------------------
    def update(self) -> None:
        """Raise the ``db`` trouble when the database starts failing, clear it when it stops."""
        problem = self.problem()
        if problem and not self._raised:
            self._raised = problem
            if self._report:
                self._report("database", KEY_NOW, detail={"error": problem, "file": str(self.path)})
        elif not problem and self._raised:
            self._raised = None
            if self._clear:
                self._clear("database", KEY_NOW)
        if self.set_aside and self._clear:  # a file set aside: shown until someone has seen it
            for t in self._troubles():
                if t["kind"] == "database" and t["key"] == KEY_SET_ASIDE and t["acknowledged_by"]:
                    self._clear("database", KEY_SET_ASIDE)

    def start(self) -> "DatabaseWatch":
        if self.set_aside and self._report:
            self._report("database", KEY_SET_ASIDE, detail={"moved_to": str(self.set_aside.moved_to),
                                                             "error": self.set_aside.reason})
        self._thread = threading.Thread(target=self._run, name="database-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)

    def _run(self) -> None:
        due = next_check_at(self.clock.time(), self.tz)
        while not self._stop.wait(WATCH_EVERY_S):
            try:
                self.update()
                if self.clock.time() >= due:
                    self.check_now()
                    due = next_check_at(self.clock.time(), self.tz)
            except Exception:  # the watch must outlive any surprise
                log.exception("database watch failed; going on")
