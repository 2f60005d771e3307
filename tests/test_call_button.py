"""The call button on its own, on gpiozero's mock pins: what its timers do around close()."""
import threading
import time

from gpiozero import DigitalInputDevice

from callbell.clock import SystemClock
from firmware.button import CallButton
from firmware.wiring import mock_pins


def test_a_button_closed_while_its_hold_timer_is_firing_ends_quietly(monkeypatch):
    errors = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    factory = mock_pins()
    pin = factory.pin(17)
    button = CallButton(DigitalInputDevice(17, pull_up=True, pin_factory=factory), SystemClock(),
                        hold_s=0.05, debounce_ms=1)
    held = []
    button.when_held = held.append
    pin.drive_low()
    with button._lock:  # the hold timer fires and waits here, as when close() races it
        time.sleep(0.2)
        button.close()
    button._hold_timer.join(2)
    assert not button._hold_timer.is_alive()
    assert errors == [] and held == []  # neither a read of the closed pin nor a hold after close
