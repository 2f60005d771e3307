"""The lock a running hub holds on its database, so that ``callbell restore`` knows it runs.

An ``flock`` on ``<database>.lock``: the kernel releases it when the process ends, even by
kill -9 or a power cut, so a stale lock never keeps a restore out."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path


def lock_path(db: Path) -> Path:
    return Path(f"{db}.lock")


def hold_lock(db: Path) -> int | None:
    """Take the lock on ``db``: its file descriptor (keep it open while the lock is needed;
    close it to let go), or None if another process holds it. Raises OSError if the lock file
    cannot be made (a read-only or full disk)."""
    Path(db).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(db), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
