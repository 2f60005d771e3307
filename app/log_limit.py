"""A cap on repeated log lines: the same message, over and over, says nothing new and can fill
a disk. Under an attack on the hub (issue 17) asyncio logged "Too many open files" thousands of
times a second, 384 MB in 70 s.

    handler.addFilter(RepeatLimit())     # app.cli installs it on every command's log

A line counts as a repeat of another when it comes from the same logger, at the same level,
from the same message template (``log.warning("rejected %s", x)`` is one template whatever
``x`` is). Each template may log :data:`BURST` lines per :data:`WINDOW_S`; the rest are
dropped and counted, and the first line let through after that says how many were dropped.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

#: Lines of one template let through per window. Enough to see what is happening and a
#: traceback or two; a burst of distinct problems is never held back (each has its own template).
BURST = 10

#: Length of the window, seconds. A repeat that keeps going shows up once a minute with its count.
WINDOW_S = 60.0

#: Most templates tracked at once; past it the oldest windows are forgotten. Templates are
#: the program's own format strings, so real programs use a few hundred at most.
MAX_TEMPLATES = 1000


class RepeatLimit(logging.Filter):
    """Lets through at most ``burst`` lines of each template per ``window_s`` seconds (clock:
    ``now``, monotonic seconds) and notes on the next line let through how many were dropped."""

    def __init__(self, burst: int = BURST, window_s: float = WINDOW_S,
                 now: Callable[[], float] = time.monotonic):
        super().__init__()
        self.burst, self.window_s, self.now = burst, window_s, now
        self._lock = threading.Lock()
        self._windows: dict[tuple, list] = {}  # template → [window start, lines, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, record.msg if isinstance(record.msg, str) else type(record.msg))
        now = self.now()
        with self._lock:
            w = self._windows.get(key)
            if w is None or now - w[0] >= self.window_s:
                dropped = w[2] if w is not None else 0
                if w is None and len(self._windows) >= MAX_TEMPLATES:
                    self._windows.pop(next(iter(self._windows)))
                self._windows[key] = w = [now, 0, 0]
                if dropped:
                    record.msg = f"{record.msg} [{dropped} more like this in the last {self.window_s:g} s not logged]"
            if w[1] >= self.burst:
                w[2] += 1
                return False
            w[1] += 1
            return True
