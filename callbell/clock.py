"""Clocks. The domain core never reads time itself; it is handed a clock.

``time()`` is wall-clock seconds since the epoch (what is stored and shown); ``monotonic()``
is seconds on a clock that never jumps (what durations on one machine are measured with).
"""
from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float: ...
    def monotonic(self) -> float: ...


class SystemClock:
    """The real clocks of this machine."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock tests move by hand, so a 15-minute expiry is tested in microseconds.

    >>> c = FakeClock(1000.0); c.advance(90); c.time()
    1090.0
    """

    def __init__(self, start: float = 1_763_800_000.0):
        self._wall = start
        self._mono = 0.0

    def time(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._wall += seconds
        self._mono += seconds
