"""A fitting room as the device sees it: its buttons and its lamp, local first.

A press lights the lamp and the button light at once, in the button callback, before anything
touches the disk or the network; then the event is handed to ``send`` (the outbox). The hub's
lamp state, when it arrives, is the truth — except that a state older than a press not yet
delivered is not allowed to turn the lamp back off.

The shopper sees every press answered on the button light: a press again while the call waits
blinks fast until the broker has it, then winks twice (taken); a hold fades the light out
before it cancels, so letting go early is a choice (firmware/lamp.py has the patterns).
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

from callbell.protocol import DEFAULT_REASON, LampState
from firmware.button import CallButton
from firmware.lamp import LAMP_COLOURS, LAMP_PATTERNS, LIGHT_PATTERNS, WINK_S, Output

log = logging.getLogger("callbell.device.room")

#: send(room, type, reason, pressed_mono) → queues the event; returns its outbox id or None.
Send = Callable[[str, str, str | None, float], str | None]
#: on_line(room, button, stuck, pressed_mono): a line became stuck (True) or was let go (False).
OnLine = Callable[[str, str, bool, float], None]


class FittingRoom:
    """One room: call button (+ optional size and presence buttons), door lamp, button light.

        room = FittingRoom("fitting-1", call=CallButton(...), lamp=Output(LED("GPIO23")),
                           light=Output(LED("GPIO24")), send=device.send)
        room.show_hub(LampState("acknowledged", by="ana"))
    """

    def __init__(self, id: str, *, call: CallButton, lamp: Output, light: Output | None, send: Send,
                 size: CallButton | None = None, presence: CallButton | None = None,
                 size_reason: str = "size", on_display: Callable[[str, str, str], None] | None = None,
                 on_line: OnLine | None = None):
        self.id = id
        self.call_button, self.size_button, self.presence_button = call, size, presence
        self.lamp, self.light = lamp, light
        self._send = send
        self._on_display = on_display
        self.size_reason = size_reason
        self.hub_state = LampState("idle")
        self.fault = False
        self._pending: tuple[str, str] | None = None  # (type, event id) sent, not yet confirmed
        #: A press again while the call waits: its event id until the broker has it, then
        #: "taken" while the light winks (WINK_S).
        self._reminder: str | None = None
        self._wink_timer: threading.Timer | None = None
        self._holding = False  # down long enough to be a hold: cancelling unless let go
        #: What the first edge of the press in progress showed before it was known to be a
        #: press: "pending" or "reminder" (taken back if it was a glitch), or None.
        self._provisional: str | None = None
        self.stuck: set[str] = set()  # buttons whose line is stuck down
        self._on_line = on_line
        self._lock = threading.RLock()
        self.shown: tuple[str, str] = ("", "")

        for button, reason in ((call, DEFAULT_REASON), (size, size_reason)):
            if button is None:
                continue
            button.when_down = self._lamp_on_now
            button.when_void = self._not_a_press
            button.when_holding = self._cancelling
            button.when_short = lambda t, r=reason: self._shopper("call", r, t)
            button.when_held = lambda t: self._shopper("cancel", None, t)
        if presence:
            presence.when_press = lambda t: self._send(self.id, "presence", None, t)
        for name, button in (("call", call), ("size", size), ("presence", presence)):
            if button is not None:
                button.when_stuck = lambda t, n=name: self._line(n, True, t)
                button.when_unstuck = lambda t, n=name: self._line(n, False, t)
        self._render()

    # -- shopper ----------------------------------------------------------------------------
    def _lamp_on_now(self, t: float) -> None:
        """Press-down: show the call at once, before deciding whether it is a short press (on
        a call already waiting, the light blinks: this press is heard too)."""
        with self._lock:
            self._provisional = None
            if self.hub_state.state == "idle" and self._pending is None:
                self._pending = ("call", "")
                self._provisional = "pending"
            elif self.hub_state.state != "idle":
                self._reminder = ""
                self._provisional = "reminder"
            self._render()

    def _not_a_press(self, t: float) -> None:
        """The line was down for less than the minimum press time: a glitch on the cable, not
        a shopper. Take back what the first edge showed; nothing is sent."""
        with self._lock:
            if self._provisional == "pending" and self._pending == ("call", ""):
                self._pending = None
            elif self._provisional == "reminder" and self._reminder == "":
                self._reminder = None
            self._provisional = None
            self._render()

    def _line(self, button: str, stuck: bool, pressed_mono: float) -> None:
        """A button's line is stuck down (a jammed button, a shorted cable) or free again. A
        stuck call button cannot call: its light shows the fault pattern until it is free."""
        with self._lock:
            (self.stuck.add if stuck else self.stuck.discard)(button)
            self._render()
        if self._on_line:
            self._on_line(self.id, button, stuck, pressed_mono)

    def _cancelling(self, t: float) -> None:
        """The button is still down: a hold. The light fades out toward the cancel."""
        with self._lock:
            self._holding = True
            self._render()

    def _shopper(self, kind: str, reason: str | None, pressed_mono: float) -> None:
        # Sent outside the lock: sending publishes, and the MQTT thread calls delivered() while
        # holding the client's own lock (see Device._publish on lock order).
        event_id = self._send(self.id, kind, reason, pressed_mono)
        with self._lock:
            self._holding = False
            self._provisional = None
            if kind == "cancel":
                self._pending = ("cancel", event_id or "")
                self._reminder = None
            elif self.hub_state.state == "idle":
                self._pending = ("call", event_id or "")
            else:
                self._pending = None  # a reminder: the hub already shows the call
                self._reminder = event_id or "taken"  # no outbox: nothing to wait for
                if self._reminder == "taken":
                    self._winks()
            self._render()

    def _winks(self) -> None:
        """The press again is taken: wink for WINK_S, then show the state again."""
        self._reminder = "taken"
        if self._wink_timer:
            self._wink_timer.cancel()
        self._wink_timer = threading.Timer(WINK_S, self._wink_done)
        self._wink_timer.daemon = True
        self._wink_timer.start()

    def _wink_done(self) -> None:
        with self._lock:
            if self._reminder == "taken":
                self._reminder = None
                self._render()

    # -- hub --------------------------------------------------------------------------------
    def show_hub(self, state: LampState) -> None:
        """The hub's retained lamp state for this room arrived."""
        with self._lock:
            self.hub_state = state
            if self._pending:
                kind, marker = self._pending
                confirms = (state.state != "idle") if kind == "call" else (state.state == "idle")
                if confirms or marker == "delivered":
                    self._pending = None
            self._render()

    def delivered(self, event_id: str) -> None:
        """The broker has our event: from now on the hub's next word is final."""
        with self._lock:
            if self._pending and self._pending[1] == event_id:
                self._pending = (self._pending[0], "delivered")
            if event_id and self._reminder == event_id:
                self._winks()
                self._render()

    def set_fault(self, fault: bool) -> None:
        with self._lock:
            if fault != self.fault:
                self.fault = fault
                self._render()

    # -- output -----------------------------------------------------------------------------
    @property
    def lamp_state(self) -> str:
        """What the door lamp shows: idle, called, acknowledged or overdue."""
        if self._pending and self._pending[0] == "call":
            return "called" if self.hub_state.state == "idle" else self.hub_state.state
        if self._pending and self._pending[0] == "cancel":
            return "idle"
        return self.hub_state.state

    @property
    def light_state(self) -> str:
        """What the button light shows: idle, pending, called, acknowledged, overdue,
        reminding, reminded, cancelling or fault (firmware/lamp.py)."""
        if self._holding:
            return "cancelling"  # shown even in a fault: the shopper's hand is on the button
        if self.fault or "call" in self.stuck:
            return "fault"
        if self._pending and self._pending[0] == "call":
            return "pending"
        if self._reminder is not None and self.hub_state.state != "idle":
            return "reminded" if self._reminder == "taken" else "reminding"
        return self.lamp_state

    def _render(self) -> None:
        lamp, light = self.lamp_state, self.light_state
        self.lamp.show(LAMP_PATTERNS[lamp], LAMP_COLOURS[lamp])
        if self.light:
            self.light.show(LIGHT_PATTERNS[light])
        if (lamp, light) != self.shown:
            before = self.shown
            self.shown = (lamp, light)
            if self._on_display:
                if lamp != before[0]:
                    self._on_display(self.id, "lamp", lamp)
                if light != before[1]:
                    self._on_display(self.id, "light", light)

    def stuck_part(self, wait_s: float) -> str | None:
        """The part of this room whose press handling has been busy for ``wait_s`` seconds
        or more ("call button", "room"), or None when a press would be handled now."""
        for name, button in (("call button", self.call_button), ("size button", self.size_button),
                             ("presence button", self.presence_button)):
            if button is not None and not button.free(wait_s):
                return name
        if not self._lock.acquire(timeout=wait_s):
            return "room"
        self._lock.release()
        return None

    def close(self) -> None:
        if self._wink_timer:
            self._wink_timer.cancel()
        for part in (self.call_button, self.size_button, self.presence_button, self.lamp, self.light):
            if part:
                part.close()

    def stop_holding_lamps(self) -> None:
        """The program is stopping: leave the lamp and the button light in a state that needs
        no program, and keep them there after it has gone (docs/firmware.md, "When the program
        stops"). A room with a call keeps its lamp and light on steady — the shopper is still
        waiting and the hub still has the call — and an idle room stays dark. Blinking needs a
        running program, so every pattern but "off" becomes steady on. The buttons are closed."""
        with self._lock:
            if self._wink_timer:
                self._wink_timer.cancel()
            on = self.lamp_state != "idle"
            for part in (self.call_button, self.size_button, self.presence_button):
                if part:
                    part.close()
            self.lamp.hold(on, LAMP_COLOURS.get(self.lamp_state))
            if self.light:
                self.light.hold(on)
