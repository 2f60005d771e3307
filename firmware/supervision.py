"""Supervision of the lamp supply and the door lamps, from the optional sense inputs.

Pure decisions on readings (no pins, time passed in seconds), so they are tested without
hardware; the device reads the pins every SENSE_POLL_S and feeds them here
(hardware/README.md, "Supervision" has the circuits).

    supply = SupplyCheck()
    supply.reading(now, present=False)      # True when the verdict changed
    supply.lost                             # after SUPPLY_LOST_S without the supply

    lamp = LampCheck()
    lamp.reading(now, on=True, current=False)
    lamp.fault                              # "dark", "lit_when_off" or None
"""
from __future__ import annotations

from collections import deque

#: Seconds between readings of the sense inputs. A fast blink is on for 0.2 s, so a lamp is
#: read at least twice in every flash. Ten readings a second of a supply and three lamps cost
#: 0.15 % of a core on the development VM (a Pi 4 core is 3-4 times slower: about 0.5 %), and
#: only when a sense input is fitted.
SENSE_POLL_S = 0.1

#: Seconds the supply must read absent before it counts as lost: a brown-out of a few
#: milliseconds as a load switches on is not a loss, a blown fuse or a pulled plug is.
SUPPLY_LOST_S = 0.5

#: Seconds of readings a lamp fault is judged over: every reading taken while the lamp was
#: switched on (or off) in this window must disagree with it. A reading taken in the instant a
#: blinking lamp switches may disagree on a healthy lamp; one agreeing reading is enough to
#: keep it healthy.
LAMP_FAULT_S = 2.0

#: Least number of disagreeing readings in the window before a lamp fault is declared (a
#: fast blink gives about ten in 2 s while on, steady light twenty).
LAMP_FAULT_READINGS = 5


class SupplyCheck:
    """The 12 V lamp supply, from a sense input that is active while the supply is there."""

    def __init__(self, lost_after_s: float = SUPPLY_LOST_S):
        self.lost_after_s = lost_after_s
        self.lost = False
        self.since: float | None = None  # when it went missing (monotonic s), while lost
        self._absent_since: float | None = None

    def reading(self, now: float, present: bool) -> bool:
        """One reading at monotonic time ``now`` (s); returns True when ``lost`` changed."""
        if present:
            self._absent_since = None
            if self.lost:
                self.lost, self.since = False, None
                return True
            return False
        if self._absent_since is None:
            self._absent_since = now
        if not self.lost and now - self._absent_since >= self.lost_after_s:
            self.lost, self.since = True, self._absent_since
            return True
        return False


class LampCheck:
    """A door lamp against its current sense: it must draw current when switched on and none
    when switched off.

    ``dark``: switched on, no current (a dead lamp, a broken wire, a tripped room fuse).
    ``lit_when_off``: switched off, current flows (a shorted MOSFET: the lamp cannot go off).
    A fault stays until a reading shows the lamp doing what it is told (one is enough: a dead
    lamp never draws current, so no switching instant can clear ``dark`` by mistake).
    """

    def __init__(self, window_s: float = LAMP_FAULT_S, readings: int = LAMP_FAULT_READINGS):
        self.window_s = window_s
        self.readings = readings
        self.fault: str | None = None
        self.since: float | None = None  # monotonic s of the first reading of the fault
        self._on: deque[tuple[float, bool]] = deque()  # (time, current) while switched on
        self._off: deque[tuple[float, bool]] = deque()

    def reading(self, now: float, on: bool, current: bool) -> bool:
        """One reading at monotonic time ``now`` (s); returns True when ``fault`` changed."""
        (self._on if on else self._off).append((now, current))
        for q in (self._on, self._off):
            while q and q[0][0] < now - self.window_s:
                q.popleft()
        before = self.fault
        if self.fault == "dark" and on and current or self.fault == "lit_when_off" and not on and not current:
            self.fault, self.since = None, None
        if self.fault is None:
            if len(self._on) >= self.readings and not any(c for _, c in self._on):
                self.fault, self.since = "dark", self._on[0][0]
            elif len(self._off) >= self.readings and all(c for _, c in self._off):
                self.fault, self.since = "lit_when_off", self._off[0][0]
        return self.fault != before
