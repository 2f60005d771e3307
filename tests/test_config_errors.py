"""Bad config files, store.toml and device.toml alike: every mistake is one line
``FILE line N: key: what is wrong`` (no line where there is none to name), never a traceback;
every mistake of a file is reported at once, by ``callbell check`` and by the hub's start."""
import subprocess
import sys
from pathlib import Path

import pytest

from callbell.settings import ConfigError
from firmware.config import load_device_config
from hub.config import load_store_config
from tests.helpers import ROOT

STORE = """\
[store]
id = "s1"
standard_s = 90

[[rooms]]
id = "r1"

[[rooms]]
id = "r2"
"""

DEVICE = """\
[device]
id = "pi-a"
store = "s1"
heartbeat_s = 10

[[rooms]]
id = "r1"
slot = 1

[[rooms]]
id = "r2"
slot = 2
"""

LOADERS = {"store.toml": (load_store_config, STORE), "device.toml": (load_device_config, DEVICE)}


def problem(tmp_path: Path, name: str, content: str | bytes | None) -> str:
    """The error for ``name`` written with ``content`` (None: a directory), file path elided."""
    load, _ = LOADERS[name]
    path = tmp_path / name
    if content is None:
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ConfigError) as e:
        load(path)
    message = str(e.value)
    assert message.startswith(str(path)), message
    return message.replace(str(path), "FILE")


def test_both_good_files_load(tmp_path):
    assert load_store_config(_write(tmp_path / "store.toml", STORE)).store.id == "s1"
    assert load_device_config(_write(tmp_path / "device.toml", DEVICE)).device.id == "pi-a"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("name, old, new, expect", [
    ("store.toml", "standard_s = 90", 'standard_s = "fast"',
     "FILE line 3: store.standard_s: Input should be a valid number, unable to parse string as a number"),
    ("store.toml", "standard_s = 90", "standard_s = true",
     "FILE line 3: store.standard_s: Input should be a valid number, got true (a TOML boolean)"),
    ("store.toml", 'id = "r2"', 'id = "r2"\nreasons = "help"', "FILE line 10: rooms[1].reasons: Input should be a valid list"),
    ("device.toml", "heartbeat_s = 10", 'heartbeat_s = "ten"', "FILE line 4: device.heartbeat_s: must be a number, got 'ten'"),
    ("device.toml", "heartbeat_s = 10", "heartbeat_s = false", "FILE line 4: device.heartbeat_s: must be a number, got False"),
    ("device.toml", 'id = "pi-a"', "id = 5", "FILE line 2: device.id: must be 1-64 characters of a-z 0-9 - _, got 5"),
])
def test_a_value_of_the_wrong_type_names_line_and_key(tmp_path, name, old, new, expect):
    assert problem(tmp_path, name, LOADERS[name][1].replace(old, new)) == expect


@pytest.mark.parametrize("name, old, new, expect", [
    ("store.toml", 'id = "r2"', 'id = "r2"\ncolour = "red"', "FILE line 10: rooms[1].colour: unknown key (misspelt?)"),
    ("store.toml", "standard_s = 90", "standrd_s = 90", "FILE line 3: store.standrd_s: unknown key: did you mean standard_s?"),
    ("device.toml", "heartbeat_s = 10", 'brokr = "mqtt://x"', "FILE line 4: device.brokr: unknown key (misspelt?)"),
])
def test_an_unknown_key_names_line_and_key(tmp_path, name, old, new, expect):
    assert problem(tmp_path, name, LOADERS[name][1].replace(old, new)) == expect


@pytest.mark.parametrize("name, old, new, expect", [
    ("store.toml", 'id = "s1"\n', "", "FILE line 1: store.id: missing (required)"),
    ("store.toml", STORE[STORE.index("[[rooms]]"):], "", "FILE: rooms: missing (required)"),
    ("device.toml", 'store = "s1"\n', "", "FILE line 1: device.store: missing"),
    ("device.toml", DEVICE[DEVICE.index("[[rooms]]"):], "", "FILE: rooms: missing: at least one [[rooms]] entry"),
])
def test_a_missing_required_key_is_named(tmp_path, name, old, new, expect):
    assert problem(tmp_path, name, LOADERS[name][1].replace(old, new)) == expect


@pytest.mark.parametrize("name, old, new, expect", [
    ("store.toml", 'id = "r2"', 'id = "r2', "FILE line 9: rooms[1].id: not valid TOML: Illegal character '\\n' (column 9)"),
    ("store.toml", "standard_s = 90", "standard_s = 90\nid = \"s2\"",
     "FILE line 4: store.id: not valid TOML: Cannot overwrite a value (column 10)"),
    ("device.toml", "slot = 2", "slot = = 2", "FILE line 12: rooms[1].slot: not valid TOML: Invalid value (column 8)"),
])
def test_invalid_toml_names_the_line_and_the_key_there(tmp_path, name, old, new, expect):
    assert problem(tmp_path, name, LOADERS[name][1].replace(old, new)) == expect


@pytest.mark.parametrize("name", LOADERS)
def test_a_file_that_is_not_utf8_names_the_line_and_byte(tmp_path, name):
    latin1 = LOADERS[name][1].replace('id = "r2"', 'id = "r\u00e92"').encode("latin-1")
    line = 9 if name == "store.toml" else 11
    assert problem(tmp_path, name, latin1) == (
        f"FILE line {line}: rooms[1].id: not UTF-8 text (byte 0xe9 at column 8); save the file as UTF-8")


@pytest.mark.parametrize("name", LOADERS)
def test_a_directory_instead_of_a_file_says_so(tmp_path, name):
    assert problem(tmp_path, name, None) == "FILE: is a directory, not a config file"


@pytest.mark.parametrize("name", LOADERS)
@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n"])
def test_an_empty_file_says_it_is_empty(tmp_path, name, content):
    assert problem(tmp_path, name, content) == (
        "FILE: is empty: no settings in it (see the examples folder for a complete file)")


@pytest.mark.parametrize("command, name", [("hub", "store.toml"), ("device", "device.toml")])
def test_the_command_line_prints_the_one_line_error_and_exits_2(tmp_path, command, name):
    path = tmp_path / name
    path.write_bytes(LOADERS[name][1].replace("[[rooms]]", "[[rooms]", 1).encode())
    r = subprocess.run([sys.executable, "-m", "app.cli", command, "--config", str(path)],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(f"error: {path} line ") and "not valid TOML" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


# -- every mistake at once: callbell check (issue 26.5) ------------------------------------------

THREE_MISTAKES = STORE.replace("standard_s = 90", 'standrd_s = 90\ntimezone = "Mars/Olympus"').replace(
    'id = "r2"', 'id = "r2"\nzone = "mens"')
THREE_MISTAKES_REPORTED = [
    "FILE line 3: store.standrd_s: unknown key: did you mean standard_s?",
    "FILE line 4: store.timezone: unknown time zone 'Mars/Olympus' (use an IANA name such as Europe/Berlin)",
    "FILE line 11: rooms[1].zone: unknown zone 'mens' (zones: none)",
]


def test_three_mistakes_in_different_places_are_all_reported_with_their_lines(tmp_path):
    # Two wrong values and a check across sections, which pydantic makes only once every value
    # is right: the loader checks again with the wrong keys left out.
    assert problem(tmp_path, "store.toml", THREE_MISTAKES).splitlines() == THREE_MISTAKES_REPORTED


def test_the_checks_across_sections_report_every_mistake_together(tmp_path):
    text = STORE + """
[[zones]]
id = "a"
[[zones]]
id = "a"

[[associates]]
id = "ana"
zone = "kids"

[[devices]]
id = "pi-a"
rooms = ["r1", "r9"]
"""
    assert problem(tmp_path, "store.toml", text).splitlines() == [
        "FILE line 13: zones: id 'a' is used twice",
        "FILE line 16: associates: no manager: give one associate role = \"manager\" (the failsafe every "
        "unanswered call reaches)",
        "FILE line 18: associates[0].zone: unknown zone 'kids'",
        "FILE line 22: devices[0].rooms[1]: unknown room 'r9'",
    ]


def check(*paths: Path, command: str = "check") -> subprocess.CompletedProcess:
    """``callbell check`` (or another command) on ``paths``, as a person runs it."""
    options = [arg for path in paths for arg in ("--config", str(path))]
    return subprocess.run([sys.executable, "-m", "app.cli", command, *options],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_callbell_check_passes_the_example_configs_and_exits_0():
    examples = [ROOT / "examples" / name for name in ("store.toml", "device.toml", "chain.toml")]
    r = check(*examples)
    assert r.returncode == 0, r.stderr
    assert [line.split(": fine: ")[0] for line in r.stdout.splitlines()] == [str(p) for p in examples]
    assert r.stdout.startswith(f"{examples[0]}: fine: store 'demo-store': 8 rooms"), r.stdout


def test_callbell_check_reports_every_mistake_of_every_file_and_exits_1(tmp_path):
    store, device = tmp_path / "store.toml", tmp_path / "device.toml"
    store.write_text(THREE_MISTAKES)
    device.write_text(DEVICE.replace("heartbeat_s = 10", 'heartbeat_s = "ten"'))
    r = check(store, ROOT / "examples" / "store.toml", device)
    assert r.returncode == 1
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert errors == ["error: " + line.replace("FILE", str(store)) for line in THREE_MISTAKES_REPORTED] + [
        f"error: {device} line 4: device.heartbeat_s: must be a number, got 'ten'"]
    assert f"{store}: 3 mistakes" in r.stderr and f"{device}: 1 mistake;" in r.stderr
    assert r.stdout.startswith(f"{ROOT / 'examples' / 'store.toml'}: fine"), r.stdout
    assert "Traceback" not in r.stderr


def test_the_hub_start_reports_the_same_mistakes_as_callbell_check(tmp_path):
    store = tmp_path / "store.toml"
    store.write_text(THREE_MISTAKES)
    by_check, by_hub = check(store), check(store, command="hub")
    assert by_hub.returncode == 2
    assert by_hub.stderr.splitlines() == [line for line in by_check.stderr.splitlines() if line.startswith("error: ")]


def test_a_file_of_no_known_kind_says_which_tables_would_tell(tmp_path):
    path = tmp_path / "other.toml"
    path.write_text('[shop]\nid = "s1"\n')
    r = check(path)
    assert r.returncode == 1
    assert r.stderr.startswith(f"error: {path}: neither a store config ([store]), a device config ([device]) "
                               "nor a chain config ([chain])"), r.stderr


#: What reading a store's or a device's config must not load: the web stack and the MQTT
#: client take seconds to import on a loaded Pi, which a typo's report should not wait for.
HEAVY_MODULES = {"fastapi", "uvicorn", "starlette", "paho", "sqlite_utils"}


@pytest.mark.parametrize("command, config", [("check", "store.toml"), ("check", "device.toml"),
                                             ("hub", "broken")])
def test_checking_a_config_imports_neither_the_web_stack_nor_mqtt(tmp_path, command, config):
    path = ROOT / "examples" / config
    if config == "broken":  # the hub stops at a bad config before it loads what it would run
        path = tmp_path / "store.toml"
        path.write_text(THREE_MISTAKES)
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "app.cli", command, "--config", str(path)],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == (0 if config != "broken" else 2), r.stderr[-2000:]
    imported = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in r.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert "hub" in imported or "firmware" in imported  # the config was read
    assert not imported & HEAVY_MODULES, sorted(imported & HEAVY_MODULES)


def test_a_device_config_reports_an_unknown_key_beside_a_wrong_value(tmp_path):
    text = DEVICE.replace("heartbeat_s = 10", 'heartbeat_s = "ten"\nbrokr = "mqtt://x"').replace("slot = 2", "slot = 9")
    assert problem(tmp_path, "device.toml", text).splitlines() == [
        "FILE line 4: device.heartbeat_s: must be a number, got 'ten'",
        "FILE line 5: device.brokr: unknown key (misspelt?)",
        "FILE line 13: rooms[1].slot: must be 1 to 4 (the default pin map), got 9",
    ]
