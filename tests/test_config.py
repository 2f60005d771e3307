"""Config files: a mistake is reported with file, line and key, and never as a traceback."""
import subprocess
import sys
from pathlib import Path

import pytest

from callbell.settings import ConfigError
from firmware.config import load_device_config
from hub.config import load_store_config
from tests.helpers import ROOT

GOOD = """
[store]
id = "s1"

[[zones]]
id = "a"

[[rooms]]
id = "r1"
zone = "a"

[[rooms]]
id = "r2"
zone = "a"
"""


def write(tmp_path: Path, text: str, name: str = "store.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_the_example_store_and_device_configs_load():
    store = load_store_config(ROOT / "examples" / "store.toml")
    assert store.store.id == "demo-store" and len(store.rooms) == 8 and store.store.standard_s == 90
    device = load_device_config(ROOT / "examples" / "device.toml")
    assert device.rooms[0].call == "GPIO17" and device.rooms[0].lamp == "GPIO23"


def test_defaults_fill_what_a_small_store_leaves_out(tmp_path):
    c = load_store_config(write(tmp_path, GOOD))
    assert c.store.standard_s == 90 and c.store.expiry_s == 900 and c.mqtt.url is None
    assert c.database.path == tmp_path / "callbell.db"  # relative to the config file


@pytest.mark.parametrize("change, expect", [
    (lambda t: t.replace('id = "r2"\nzone = "a"', 'id = "r2"\nzone = "mens"'),
     "line 14: rooms[1].zone: unknown zone 'mens'"),
    (lambda t: t.replace('id = "s1"', 'id = "s1"\nstandrd_s = 60'), "line 4: store.standrd_s: unknown key"),
    (lambda t: t.replace('id = "s1"', 'id = "s1"\nstandard_s = -5'), "line 4: store.standard_s: Input should be greater than 0"),
    (lambda t: t.replace('id = "s1"', 'id = "S 1"'), "line 3: store.id"),
    (lambda t: t.replace('id = "r2"', 'id = "r1"'), "rooms: id 'r1' is used twice"),
    (lambda t: t.replace('id = "s1"', 'id = "s1"\ntimezone = "Mars/Olympus"'), "unknown time zone 'Mars/Olympus'"),
    (lambda t: t + "\n[mqtt]\nurl = \"http://x\"\n", "mqtt.url"),
    (lambda t: t.replace("[store]", "[store"), "not valid TOML"),
    (lambda t: t.replace('id = "s1"', 'id = "s1"\noccupancy_band = [0.8, 0.6]'),
     "line 4: store.occupancy_band: occupancy_band must be two shares, low before high"),
])
def test_a_bad_store_config_names_line_and_key(tmp_path, change, expect):
    with pytest.raises(ConfigError) as e:
        load_store_config(write(tmp_path, change(GOOD)))
    assert expect in str(e.value)
    assert str(tmp_path / "store.toml") in str(e.value)


DEVICE = """
[device]
id = "pi-a"
store = "s1"

[[rooms]]
id = "r1"
slot = 1

[[rooms]]
id = "r2"
slot = 2
"""


@pytest.mark.parametrize("change, expect", [
    (lambda t: t.replace("slot = 2", "slot = 2\ncall = \"GPIO17\""), "GPIO17 is already used by r1.call"),
    (lambda t: t.replace("slot = 2", "call = \"GPIO99\"\nlamp = \"GPIO5\""), "GPIO99 is not a usable GPIO"),
    (lambda t: t.replace("slot = 2", "call = \"PIN-X\"\nlamp = \"GPIO5\""), "bad pin name 'PIN-X'"),
    (lambda t: t.replace("slot = 2", "call = \"GPIO5\""), "lamp: pin missing"),
    (lambda t: t.replace('id = "r2"', 'id = "r1"'), "room 'r1' is listed twice"),
    (lambda t: t.replace('store = "s1"', 'store = "s1"\nbroker = "ftp://x"'), "broker URL must start with mqtt://"),
])
def test_a_bad_device_config_says_what_is_wrong(tmp_path, change, expect):
    with pytest.raises(ConfigError) as e:
        load_device_config(write(tmp_path, change(DEVICE), "device.toml"))
    assert expect in str(e.value)


@pytest.mark.parametrize("command", ["hub", "device"])
def test_the_command_line_reports_a_bad_config_without_a_traceback(tmp_path, command):
    bad = write(tmp_path, "[store]\nid = 5\n" if command == "hub" else "[device]\nid = \"x\"\n", "bad.toml")
    r = subprocess.run([sys.executable, "-m", "app.cli", command, "--config", str(bad)],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and "Traceback" not in r.stderr
    assert "line" in r.stderr or "missing" in r.stderr.lower()


def test_a_missing_config_file_is_a_clear_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "app.cli", "hub", "--config", str(tmp_path / "nope.toml")],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("room, expect", [
    ('lamp_kind = "rgb"', "an RGB lamp needs lamp (red), lamp_green and lamp_blue pins"),
    ('lamp_green = "GPIO9"\nlamp_blue = "GPIO10"', 'lamp_green and lamp_blue are only for lamp_kind = "rgb"'),
    ('lamp_brightness = 0.5', 'needs lamp_kind = "pwm" or "rgb"'),
    ('lamp_kind = "neon"', "must be one of led, pwm, rgb"),
    ('slot = 7', "must be 1 to 4"),
    ('colour = "red"', "unknown key"),
])
def test_lamp_options_are_checked(tmp_path, room, expect):
    text = DEVICE.replace('id = "r1"\nslot = 1', f'id = "r1"\nslot = 1\n{room}').replace("slot = 1\nslot = 7", "slot = 7")
    with pytest.raises(ConfigError) as e:
        load_device_config(write(tmp_path, text, "device.toml"))
    assert expect in str(e.value) and "line" in str(e.value)
