"""A push button with the semantics of a call button: press, and hold.

Debouncing is done here, not by gpiozero's ``bounce_time`` (which its mock pins ignore, so
tests could not see it): the first edge acts at once — the lamp must light within a
millisecond — and edges within ``debounce_ms`` after it are contact bounce. If the contact
settles in a different state than the last accepted edge (a very short tap), a check at the
end of the window catches it.

A line must stay down ``min_press_ms`` to be a press. The lamp still lights on the first edge;
a line that is back up before ``min_press_ms`` was a glitch (a spike picked up by the cable),
and the room is told to take the lamp back (``when_void``) instead of sending a call. Whether
the line was still down at ``min_press_ms`` is read from the times of the edges, not from the
pin when a timer fires, so a late timer on a busy Pi decides the same way.

A line down for ``stuck_s`` is a stuck button or a shorted cable (``when_stuck``); it is
reported, its press is not repeated, and ``when_unstuck`` follows when it is let go.
"""
from __future__ import annotations

import threading
from collections import deque
from typing import Callable

from gpiozero import DigitalInputDevice

from callbell.clock import Clock


#: Seconds down after which a press is taken for the start of a hold (the shopper is
#: cancelling): the button light starts to fade. A tap is well under this (about 0.15 s); much
#: later and the shopper holds a button that shows nothing for most of the hold.
HOLD_HINT_S = 0.5

#: Least time a line must be down to be a press, milliseconds. The quickest human tap holds a
#: contact for about 50 ms (a typical one 100-150 ms); a spike induced into a long button cable
#: by a fluorescent fitting, a contactor or a static discharge lasts microseconds to a few ms
#: (the board's 1 kΩ/100 nF filter stretches it by ~0.1 ms). 20 ms sits between the two with
#: room on both sides, and is short enough that a staff press is sent without a noticeable wait.
MIN_PRESS_MS = 20.0

#: Seconds a line may stay down before it counts as stuck (a jammed button, a shorted or
#: crushed cable). Twice the longest deliberate hold anyone makes on a call button (a cancel is
#: 2 s; a confused shopper may lean on it for 10-15 s), and short enough that a store hears of
#: a dead room within a minute.
STUCK_S = 30.0

#: Edges remembered within one press (to find the line's level at ``min_press_ms`` and the time
#: it was let go). A bouncing contact makes a handful; a line that chatters longer only needs
#: its latest.
EDGES_KEPT = 64


class CallButton:
    """Wire: one side to the GPIO, the other to GND (internal pull-up).

        b = CallButton(DigitalInputDevice("GPIO17", pull_up=True), clock, hold_s=2.0, debounce_ms=30)
        b.when_down = room.light_up          # at once, on the first edge: (pressed_mono)
        b.when_void = room.not_a_press       # it was a glitch shorter than min_press_ms
        b.when_press = room.presence         # down for min_press_ms: a real press
        b.when_holding = room.cancelling     # still down after HOLD_HINT_S: a hold, not a tap
        b.when_short = room.call             # released before hold_s: (pressed_mono)
        b.when_held = room.cancel            # held hold_s: (pressed_mono)
        b.when_stuck = device.line_stuck     # down for stuck_s: (pressed_mono)
        b.when_unstuck = device.line_freed   # a stuck line let go: (pressed_mono)

    Times passed to the handlers are the monotonic time of the press, seconds. ``min_press_ms``
    is milliseconds, ``stuck_s`` seconds.

    It takes a plain ``DigitalInputDevice``, not gpiozero's ``Button``: Button's hold support
    runs a thread per button that wakes ten times a second, which was most of the device's
    idle CPU; holds are timed here, by a timer that exists only while a button is down.
    """

    def __init__(self, button: DigitalInputDevice, clock: Clock, hold_s: float = 2.0, debounce_ms: float = 30.0,
                 min_press_ms: float = MIN_PRESS_MS, stuck_s: float = STUCK_S):
        self.button = button
        self.clock = clock
        self.hold_s = hold_s
        self.debounce_s = debounce_ms / 1000.0
        self.min_press_s = min_press_ms / 1000.0
        self.stuck_s = stuck_s
        self.when_down: Callable[[float], None] | None = None
        self.when_void: Callable[[float], None] | None = None
        self.when_press: Callable[[float], None] | None = None
        self.when_short: Callable[[float], None] | None = None
        self.when_held: Callable[[float], None] | None = None
        self.when_holding: Callable[[float], None] | None = None
        self.when_stuck: Callable[[float], None] | None = None
        self.when_unstuck: Callable[[float], None] | None = None
        self._pressed = False
        self._pressed_at = 0.0
        self._confirmed = False  # down for min_press_ms
        self._last_edge = -1e9
        self._held = False
        self._stuck = False
        self._edges: deque[tuple[float, bool]] = deque(maxlen=EDGES_KEPT)  # since the press
        self._closed = False  # a timer that fires after close() must not read the closed pin
        self._lock = threading.RLock()
        self._hold_timer: threading.Timer | None = None
        self._hint_timer: threading.Timer | None = None
        self._settle_timer: threading.Timer | None = None
        self._confirm_timer: threading.Timer | None = None
        self._stuck_timer: threading.Timer | None = None
        button.when_activated = lambda: self._edge(True)
        button.when_deactivated = lambda: self._edge(False)

    @property
    def stuck(self) -> bool:
        """The line has been down for ``stuck_s`` and is still down."""
        return self._stuck

    def _edge(self, down: bool) -> None:
        now = self.clock.monotonic()
        with self._lock:
            if self._pressed:
                self._edges.append((now, down))
            if now - self._last_edge < self.debounce_s:
                self._schedule_settle(self._last_edge + self.debounce_s - now)
                return
            if down == self._pressed:
                return
            self._last_edge = now
            self._accept(down, now)

    def _timer(self, seconds: float, fn) -> threading.Timer:
        t = threading.Timer(seconds, fn)
        t.daemon = True
        t.start()
        return t

    def _accept(self, down: bool, now: float, released_at: float | None = None) -> None:
        self._pressed = down
        if down:
            self._pressed_at = now
            self._held = self._stuck = False
            self._confirmed = self.min_press_s <= 0
            self._edges.clear()
            if self.when_down:  # first: the lamp must not wait for a timer thread to start
                self.when_down(now)
            if self._confirmed:
                if self.when_press:
                    self.when_press(now)
            else:
                self._confirm_timer = self._timer(self.min_press_s, self._confirm)
            self._hold_timer = self._timer(self.hold_s, self._hold_reached)
            if HOLD_HINT_S < self.hold_s:
                self._hint_timer = self._timer(HOLD_HINT_S, self._hint_reached)
            if self.stuck_s <= self.hold_s:  # else the hold starts it: a tap starts no thread for it
                self._stuck_timer = self._timer(self.stuck_s, self._stuck_reached)
            return
        for t in (self._hold_timer, self._hint_timer, self._confirm_timer, self._stuck_timer):
            if t:
                t.cancel()
        released_at = now if released_at is None else released_at
        if not self._confirmed and released_at - self._pressed_at < self.min_press_s:
            if self.when_void:
                self.when_void(self._pressed_at)
            return
        if not self._confirmed:  # its confirmation timer ran late; the edges say it was a press
            self._confirmed = True
            if self.when_press:
                self.when_press(self._pressed_at)
        if self._stuck:
            self._stuck = False
            if self.when_unstuck:
                self.when_unstuck(self._pressed_at)
        elif not self._held and self.when_short:
            self.when_short(self._pressed_at)

    def _level_at(self, t: float) -> bool:
        """Whether the line was down at monotonic time ``t`` of the current press."""
        level = True
        for at, down in self._edges:
            if at > t:
                break
            level = down
        return level

    def _last_release(self, default: float) -> float:
        """When the line last went up during the current press (its release, past bounce)."""
        return next((at for at, down in reversed(self._edges) if not down), default)

    def _confirm(self) -> None:
        with self._lock:
            if self._closed or not self._pressed or self._confirmed:
                return
            if self._level_at(self._pressed_at + self.min_press_s):
                self._confirmed = True
                if self.when_press:
                    self.when_press(self._pressed_at)
                return
            now = self.clock.monotonic()  # a glitch: void (not an edge: the debounce window stays)
            self._accept(False, now, released_at=self._last_release(now))
            if self.button.is_active:  # and a real press began since: the settle check takes it
                self._schedule_settle(0.0)

    def _schedule_settle(self, delay: float) -> None:
        if self._settle_timer is None or not self._settle_timer.is_alive():
            self._settle_timer = self._timer(max(delay, 0.0) + 0.001, self._settle)

    def _settle(self) -> None:
        with self._lock:
            if self._closed:
                return
            actual = self.button.is_active
            if actual != self._pressed:
                now = self.clock.monotonic()
                self._last_edge = now
                self._accept(actual, now, released_at=None if actual else self._last_release(now))

    def _hint_reached(self) -> None:
        with self._lock:
            if self._closed:
                return
            if self._pressed and self._confirmed and self.button.is_active and not self._held and self.when_holding:
                self.when_holding(self._pressed_at)

    def _hold_reached(self) -> None:
        with self._lock:
            if self._closed:
                return
            if self._pressed and self._confirmed and self.button.is_active and not self._held:
                self._held = True
                if self.stuck_s > self.hold_s:
                    self._stuck_timer = self._timer(self.stuck_s - self.hold_s, self._stuck_reached)
                if self.when_held:
                    self.when_held(self._pressed_at)

    def free(self, wait_s: float) -> bool:
        """True when no handler of this button holds it for ``wait_s`` seconds or more (the
        device's watchdog asks: a press stuck in a handler would hold up every later one)."""
        if not self._lock.acquire(timeout=wait_s):
            return False
        self._lock.release()
        return True

    def _stuck_reached(self) -> None:
        with self._lock:
            if self._closed:
                return
            if self._pressed and self.button.is_active and not self._stuck:
                self._stuck = True
                if self.when_stuck:
                    self.when_stuck(self._pressed_at)

    def close(self) -> None:
        with self._lock:  # a timer already running waits, then sees _closed
            self._closed = True
            for t in (self._hold_timer, self._hint_timer, self._settle_timer, self._confirm_timer, self._stuck_timer):
                if t:
                    t.cancel()
            self.button.close()
