"""A fitting room as the device sees it: its buttons and its lamp, local first.

A press lights the lamp and the button light at once, in the button callback, before anything
touches the disk or the network; then the event is handed to ``send`` (the outbox). The hub's
lamp state, when it arrives, is the truth — except that a state older than a press not yet
delivered is not allowed to turn the lamp back off.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

from callbell.protocol import DEFAULT_REASON, LampState
from firmware.button import CallButton
from firmware.lamp import LAMP_COLOURS, LAMP_PATTERNS, LIGHT_PATTERNS, Output

log = logging.getLogger("callbell.device.room")

#: send(room, type, reason, pressed_mono) → queues the event; returns its outbox id or None.
Send = Callable[[str, str, str | None, float], str | None]


class FittingRoom:
    """One room: call button (+ optional size and presence buttons), door lamp, button light.

        room = FittingRoom("fitting-1", call=CallButton(...), lamp=Output(LED("GPIO23")),
                           light=Output(LED("GPIO24")), send=device.send)
        room.show_hub(LampState("acknowledged", by="ana"))
    """

    def __init__(self, id: str, *, call: CallButton, lamp: Output, light: Output | None, send: Send,
                 size: CallButton | None = None, presence: CallButton | None = None,
                 size_reason: str = "size", on_display: Callable[[str, str, str], None] | None = None):
        self.id = id
        self.call_button, self.size_button, self.presence_button = call, size, presence
        self.lamp, self.light = lamp, light
        self._send = send
        self._on_display = on_display
        self.size_reason = size_reason
        self.hub_state = LampState("idle")
        self.fault = False
        self._pending: tuple[str, str] | None = None  # (type, event id) sent, not yet confirmed
        self._lock = threading.RLock()
        self.shown: tuple[str, str] = ("", "")

        call.when_down = self._lamp_on_now
        call.when_short = lambda t: self._shopper("call", DEFAULT_REASON, t)
        call.when_held = lambda t: self._shopper("cancel", None, t)
        if size:
            size.when_down = self._lamp_on_now
            size.when_short = lambda t: self._shopper("call", size_reason, t)
            size.when_held = lambda t: self._shopper("cancel", None, t)
        if presence:
            presence.when_down = lambda t: self._send(self.id, "presence", None, t)
        self._render()

    # -- shopper ----------------------------------------------------------------------------
    def _lamp_on_now(self, t: float) -> None:
        """Press-down: show the call at once, before deciding whether it is a short press."""
        with self._lock:
            if self.hub_state.state == "idle" and self._pending is None:
                self._pending = ("call", "")
            self._render()

    def _shopper(self, kind: str, reason: str | None, pressed_mono: float) -> None:
        # Sent outside the lock: sending publishes, and the MQTT thread calls delivered() while
        # holding the client's own lock (see Device._publish on lock order).
        event_id = self._send(self.id, kind, reason, pressed_mono)
        with self._lock:
            if kind == "cancel":
                self._pending = ("cancel", event_id or "")
            elif self.hub_state.state == "idle":
                self._pending = ("call", event_id or "")
            else:
                self._pending = None  # a reminder: the hub already shows the call
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
        """What the button light shows: off, pending, called, acknowledged, overdue or fault."""
        if self.fault:
            return "fault"
        if self._pending and self._pending[0] == "call":
            return "pending"
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

    def close(self) -> None:
        for part in (self.call_button, self.size_button, self.presence_button, self.lamp, self.light):
            if part:
                part.close()
