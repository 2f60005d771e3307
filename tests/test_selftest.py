"""The installer's self-test (`callbell device selftest`), on mock pins."""
import subprocess
import sys

from callbell.clock import FakeClock
from firmware.config import DeviceConfig, DeviceSection, RoomPins
from firmware.selftest import SelfTest
from firmware.wiring import mock_pins
from tests.helpers import ROOT


def config(tmp_path):
    return DeviceConfig(DeviceSection(id="pi-a", store="s", outbox=tmp_path / "o.db"),
                        [RoomPins(id="room-1", slot=1), RoomPins(id="room-2", slot=2, no_size=True)])


def run(tmp_path, skip=(), glitch=()):
    factory = mock_pins()
    clock = FakeClock()  # the edges' times: a press is held 30 ms of it, a glitch none
    cfg = config(tmp_path)
    lines = []
    seen = []

    def press(room, role):
        if (room, role) in skip:
            return
        r = next(r for r in cfg.rooms if r.id == room)
        pin = factory.pin(int(getattr(r, role).removeprefix("GPIO")))
        pin.drive_low()
        if (room, role) not in glitch:
            clock.advance(0.03)
        pin.drive_high()

    test = SelfTest(cfg, pin_factory=factory, say=lines.append, pattern_s=0.01, button_timeout_s=0.5, press=press,
                    clock=clock)
    for parts in test.parts.values():
        parts.lamp._on_change = seen.append
    ok = test.run()
    return ok, lines, seen


def test_the_self_test_shows_every_lamp_pattern_and_passes_when_every_button_answers(tmp_path):
    ok, lines, seen = run(tmp_path)
    assert ok and lines[-1].startswith("PASSED: all 5 buttons answered")
    assert {"on", "slow", "fast", "off"} <= set(seen)
    asked = [l for l in lines if "press the" in l]
    assert len(asked) == 5  # room-2 has no size button


def test_a_button_that_does_not_answer_is_named_with_its_pin(tmp_path):
    ok, lines, _ = run(tmp_path, skip={("room-2", "presence")})
    assert not ok
    assert any("NOT PRESSED: room-2 presence (GPIO13, header pin 33)" in l for l in lines)
    assert lines[-2].startswith("FAILED: 1 of 5 buttons did not answer: room-2 presence")


def test_the_self_test_command_runs_on_mock_pins(tmp_path):
    r = subprocess.run([sys.executable, "-m", "app.cli", "-q", "device", "selftest", "--mock",
                        "--pattern-s", "0.01", "--config", str(ROOT / "examples" / "device.toml")],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "PASSED: all 12 buttons answered" in r.stdout


def test_a_glitch_on_a_line_does_not_pass_for_a_press(tmp_path):
    ok, lines, _ = run(tmp_path, glitch={("room-1", "call")})
    assert not ok
    assert any("NOT PRESSED: room-1 call (GPIO17, header pin 11)" in l for l in lines)
