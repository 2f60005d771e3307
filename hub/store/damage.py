"""A damaged or full database: telling its errors apart, checking the file, setting it aside.

SQLite reports three kinds of trouble with the file itself, each handled differently by the hub
(docs/hub.md, "When the database fails"):

- **full**: ``database or disk is full`` — nothing can be written until space is freed; what
  is stored can still be read. The hub works on in memory and writes back once it can.
- **damaged**: ``database disk image is malformed``, ``file is not a database`` — the file is
  corrupt. At start it is set aside (renamed, never deleted) and the hub starts on a new one;
  while running, the hub works on in memory until restarted.
- **io**: ``disk I/O error``, ``unable to open database file`` — the disk or its file system
  failed; treated like a full disk (it may come back).

Any other error (a constraint, a trigger, a bug) is about one input, not the file, and is
handled by the dispatcher's retry of each input alone.
"""
from __future__ import annotations

import errno
import logging
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger("callbell.hub.database")

#: The files of one SQLite database in WAL mode: the file itself and its two companions.
COMPANIONS = ("", "-wal", "-shm")

#: Longest text of a check's findings kept for health and the trouble, characters.
FINDINGS_MAX_CHARS = 300

_FULL = ("database or disk is full", "no space left")
_DAMAGED = ("malformed", "file is not a database", "database corrupt", "disk image")
_IO = ("disk i/o error", "unable to open database file", "readonly database", "read-only file system")


def kind_of(error: BaseException) -> str | None:
    """``"full"``, ``"damaged"`` or ``"io"`` when ``error`` is about the database file itself
    (docstring above), else None (an error about one input, or not a database error)."""
    if isinstance(error, OSError):  # a file beside the database (a key, a lock)
        return {errno.ENOSPC: "full", errno.EDQUOT: "full", errno.EIO: "io", errno.EROFS: "io"}.get(error.errno)
    if isinstance(error, sqlite3.IntegrityError) or not isinstance(error, sqlite3.DatabaseError):
        return None
    text = str(error).lower()
    if any(s in text for s in _FULL):
        return "full"
    if any(s in text for s in _DAMAGED):
        return "damaged"
    if any(s in text for s in _IO):
        return "io"
    return None


def describe(error: BaseException) -> str:
    """A one-line reason for health, logs and the trouble, e.g. ``full: database or disk is full``."""
    return f"{kind_of(error) or 'error'}: {error}"


def open_read_only(path: Path, timeout_s: float = 5.0) -> sqlite3.Connection:
    """A read-only connection to ``path``. On a full disk a WAL database cannot even be opened
    (SQLite must make its ``-shm`` file): then it is read as ``immutable``, without locks or
    the shared-memory file, which is right after a clean stop (the log was written back and
    removed); a log left by a crash is not seen. Raises sqlite3.Error if neither works."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout_s)
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        return conn
    except sqlite3.OperationalError as e:
        conn.close()
        if kind_of(e) not in ("io", "full"):
            raise
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True, timeout=timeout_s)
    conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    return conn


def quick_check(path: Path, *, timeout_s: float = 5.0) -> str | None:
    """Run SQLite's ``PRAGMA quick_check`` on ``path`` on a read-only connection of its own:
    None if the file is sound, else what is wrong (shortened). Reads the whole file: 0.44 s
    for 489 MB in the page cache on the development machine (docs/hub.md). Raises sqlite3.Error when the
    file cannot be read at all (its error says why: :func:`kind_of`)."""
    conn = open_read_only(Path(path), timeout_s)
    try:
        rows = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
    finally:
        conn.close()
    if rows == ["ok"]:
        return None
    return "; ".join(rows)[:FINDINGS_MAX_CHARS]


@dataclass
class SetAside:
    """A damaged database moved out of the way at start."""
    original: Path
    moved_to: Path
    reason: str

    def as_dict(self) -> dict:
        return {"file": str(self.moved_to), "reason": self.reason}


def stamp(at: float) -> str:
    """A timestamp for a file name, UTC: ``20261206T183000Z``."""
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def set_aside(path: Path, at: float, label: str = "damaged") -> Path:
    """Rename ``path`` and its ``-wal``/``-shm`` files to ``<name>.<label>-<UTC time>`` (never
    deleted: ``callbell db recover`` reads what it can from them). Returns the new path."""
    path = Path(path)
    target = path.with_name(f"{path.name}.{label}-{stamp(at)}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.{label}-{stamp(at)}-{n}")
    for suffix in COMPANIONS:
        src = Path(f"{path}{suffix}")
        if src.exists():
            os.replace(src, Path(f"{target}{suffix}"))
    return target


def check_at_start(path: Path, at: float) -> SetAside | None:
    """Before the hub opens ``path``: a damaged file is set aside (the hub then makes a new
    one) and what was done is returned; a sound, missing or merely unwritable file (a full
    disk: the dispatcher copes) is left as it is and None returned."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        found = quick_check(path)
    except sqlite3.Error as e:
        if kind_of(e) != "damaged":
            log.warning("could not check the database %s at start (%s); going on", path, e)
            return None
        found = str(e)
    if found is None:
        return None
    moved = set_aside(path, at)
    log.error("THE DATABASE %s IS DAMAGED (%s). It was moved aside to %s and the hub starts on a new, "
              "empty database: lamps and calls work, the call history before now is in the moved file. "
              "Save what can be read with: callbell db recover --config store.toml --from %s",
              path, found, moved, moved)
    return SetAside(path, moved, found)
