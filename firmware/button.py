"""A push button with the semantics of a call button: press, and hold.

Debouncing is done here, not by gpiozero's ``bounce_time`` (which its mock pins ignore, so
tests could not see it): the first edge acts at once — the lamp must light within a
millisecond — and edges within ``debounce_ms`` after it are contact bounce. If the contact
settles in a different state than the last accepted edge (a very short tap), a check at the
end of the window catches it.
"""
from __future__ import annotations

import threading
from typing import Callable

from gpiozero import DigitalInputDevice

from callbell.clock import Clock


#: Seconds down after which a press is taken for the start of a hold (the shopper is
#: cancelling): the button light starts to fade. A tap is well under this (about 0.15 s); much
#: later and the shopper holds a button that shows nothing for most of the hold.
HOLD_HINT_S = 0.5


class CallButton:
    """Wire: one side to the GPIO, the other to GND (internal pull-up).

        b = CallButton(DigitalInputDevice("GPIO17", pull_up=True), clock, hold_s=2.0, debounce_ms=30)
        b.when_down = room.light_up          # at once, on the press
        b.when_holding = room.cancelling     # still down after HOLD_HINT_S: a hold, not a tap
        b.when_short = room.call             # released before hold_s: (pressed_mono)
        b.when_held = room.cancel            # held hold_s: (pressed_mono)

    Times passed to the handlers are the monotonic time of the press, seconds.

    It takes a plain ``DigitalInputDevice``, not gpiozero's ``Button``: Button's hold support
    runs a thread per button that wakes ten times a second, which was most of the device's
    idle CPU; holds are timed here, by a timer that exists only while a button is down.
    """

    def __init__(self, button: DigitalInputDevice, clock: Clock, hold_s: float = 2.0, debounce_ms: float = 30.0):
        self.button = button
        self.clock = clock
        self.hold_s = hold_s
        self.debounce_s = debounce_ms / 1000.0
        self.when_down: Callable[[float], None] | None = None
        self.when_short: Callable[[float], None] | None = None
        self.when_held: Callable[[float], None] | None = None
        self.when_holding: Callable[[float], None] | None = None
        self._pressed = False
        self._pressed_at = 0.0
        self._last_edge = -1e9
        self._held = False
        self._closed = False  # a timer that fires after close() must not read the closed pin
        self._lock = threading.RLock()
        self._hold_timer: threading.Timer | None = None
        self._hint_timer: threading.Timer | None = None
        self._settle_timer: threading.Timer | None = None
        button.when_activated = lambda: self._edge(True)
        button.when_deactivated = lambda: self._edge(False)

    def _edge(self, down: bool) -> None:
        now = self.clock.monotonic()
        with self._lock:
            if now - self._last_edge < self.debounce_s:
                self._schedule_settle(self._last_edge + self.debounce_s - now)
                return
            if down == self._pressed:
                return
            self._last_edge = now
            self._accept(down, now)

    def _accept(self, down: bool, now: float) -> None:
        self._pressed = down
        if down:
            self._pressed_at = now
            self._held = False
            if self.when_down:  # first: the lamp must not wait for a timer thread to start
                self.when_down(now)
            self._hold_timer = threading.Timer(self.hold_s, self._hold_reached)
            self._hold_timer.daemon = True
            self._hold_timer.start()
            if HOLD_HINT_S < self.hold_s:
                self._hint_timer = threading.Timer(HOLD_HINT_S, self._hint_reached)
                self._hint_timer.daemon = True
                self._hint_timer.start()
        else:
            for t in (self._hold_timer, self._hint_timer):
                if t:
                    t.cancel()
            if not self._held and self.when_short:
                self.when_short(self._pressed_at)

    def _schedule_settle(self, delay: float) -> None:
        if self._settle_timer is None or not self._settle_timer.is_alive():
            self._settle_timer = threading.Timer(max(delay, 0.0) + 0.001, self._settle)
            self._settle_timer.daemon = True
            self._settle_timer.start()

    def _settle(self) -> None:
        with self._lock:
            if self._closed:
                return
            actual = self.button.is_active
            if actual != self._pressed:
                now = self.clock.monotonic()
                self._last_edge = now
                self._accept(actual, now)

    def _hint_reached(self) -> None:
        with self._lock:
            if self._closed:
                return
            if self._pressed and self.button.is_active and not self._held and self.when_holding:
                self.when_holding(self._pressed_at)

    def _hold_reached(self) -> None:
        with self._lock:
            if self._closed:
                return
            if self._pressed and self.button.is_active and not self._held:
                self._held = True
                if self.when_held:
                    self.when_held(self._pressed_at)

    def free(self, wait_s: float) -> bool:
        """True when no handler of this button holds it for ``wait_s`` seconds or more (the
        device's watchdog asks: a press stuck in a handler would hold up every later one)."""
        if not self._lock.acquire(timeout=wait_s):
            return False
        self._lock.release()
        return True

    def close(self) -> None:
        with self._lock:  # a timer already running waits, then sees _closed
            self._closed = True
            for t in (self._hold_timer, self._hint_timer, self._settle_timer):
                if t:
                    t.cancel()
            self.button.close()
