"""Watching the database file: what health says of it, its trouble, the nightly integrity check.

The hub learns that its database fails in four ways (docs/hub.md, "When the database fails"):

- the dispatcher cannot write it and works in memory (``Dispatcher.db_problem``);
- a reader (the API) cannot read it (:meth:`DatabaseWatch.read_failed`, from hub/api/errors.py);
- the integrity check (``PRAGMA quick_check``) at a quiet hour finds damage;
- at start it was found damaged and set aside (hub.store.damage.check_at_start).

Each is shown by ``/api/v1/health`` and raised as a ``database`` trouble (docs/hub.md): the
first three under one trouble (key ``db``), cleared when none of them holds any more; a file set
aside under its own (key ``set-aside``), which nothing clears: it stays until a person
acknowledges it.

    watch = DatabaseWatch(path, clock, tz, dispatcher, set_aside=found)
    watch.start()      # the quiet-hour check and the trouble's upkeep, on a thread of its own
"""
from __future__ import annotations

import logging
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
#: that reads the whole file (0.5 s per 100 MB on a Pi 4) disturbs nobody. It runs on a read
#: connection of its own, never on the dispatcher's thread, so presses are not held up.
INTEGRITY_CHECK_AT = (3, 30)

#: Seconds a failed read keeps the database shown as failing in health and its trouble open.
#: A damaged page fails every read that touches it; five minutes without one is long enough
#: to believe the API's reads are sound again (the quiet-hour check decides for the file).
READ_ERROR_SHOWN_S = 300.0

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
                 set_aside: damage.SetAside | None = None):
        """``written``: why the file cannot be written now (Dispatcher.db_problem), or None;
        ``report(kind, key, detail=...)`` / ``clear(kind, key)``: raise and clear a trouble
        (Dispatcher.report_trouble / clear_trouble); ``set_aside``: what the start found."""
        self.path = Path(path)
        self.clock, self.tz = clock, tz
        self._written = written
        self._report, self._clear = report, clear
        self.set_aside = set_aside
        self._read_error: tuple[float, str] | None = None  # (monotonic time, reason)
        #: The last integrity check: {"at": epoch s, "ok": bool, "found": str | None}.
        self.last_check: dict | None = None
        self._raised: str | None = None  # the reason the open ``db`` trouble was raised with
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what health shows ------------------------------------------------------------------
    def read_failed(self, error: BaseException) -> None:
        """A reader (the API) could not read the database (any thread)."""
        self._read_error = (time.monotonic(), f"reading: {damage.describe(error)}")

    def problem(self) -> str | None:
        """Why the database is failing now, or None: the first of not written, not read, and
        damage found by the last check."""
        written = self._written()
        if written:
            return f"writing: {written}"
        read = self._read_error
        if read is not None and time.monotonic() - read[0] < READ_ERROR_SHOWN_S:
            return read[1]
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
                self._report("database", KEY_NOW, detail={"reason": problem, "file": str(self.path)})
        elif not problem and self._raised:
            self._raised = None
            if self._clear:
                self._clear("database", KEY_NOW)

    def start(self) -> "DatabaseWatch":
        if self.set_aside and self._report:
            self._report("database", KEY_SET_ASIDE, detail={**self.set_aside.as_dict(), "reason": (
                f"damaged at start ({self.set_aside.reason}); moved aside, started on a new database")})
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
