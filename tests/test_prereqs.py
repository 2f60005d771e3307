"""tests/prereqs.py, which scripts/test runs before pytest: on this machine it finds everything;
where a piece is missing it says so in one line naming the Debian package."""
import subprocess
import sys

from tests import prereqs
from tests.helpers import ROOT

#: What the dynamic loader printed for Playwright's real driver on a minimal Debian bookworm
#: (debootstrap --variant=minbase, with chromium installed, without libatomic1).
NO_LIBATOMIC = ("{driver}: error while loading shared libraries: libatomic.so.1: cannot open shared "
                "object file: No such file or directory\n")


def test_this_machine_has_everything_the_suite_needs_and_the_check_says_nothing():
    r = subprocess.run([sys.executable, "-m", "tests.prereqs"], capture_output=True, text=True, cwd=ROOT, timeout=180)
    assert (r.returncode, r.stderr) == (0, "")


def test_a_driver_that_cannot_load_libatomic_is_reported_in_one_line_naming_libatomic1(tmp_path):
    driver = tmp_path / "node"  # stands in for the loader refusing Playwright's Node binary
    driver.write_text(f"#!/bin/sh\nprintf '%s' '{NO_LIBATOMIC.format(driver=driver)}' >&2\nexit 127\n")
    driver.chmod(0o755)
    assert prereqs.check_driver([str(driver), "cli.js", "--version"]) == (
        "error: Playwright's driver cannot start: libatomic.so.1 missing — install the Debian package libatomic1")


def test_the_real_driver_starts_here():
    assert prereqs.check_driver(prereqs.driver_command()) is None


def test_an_unknown_missing_library_is_named_with_how_to_find_its_package():
    line = prereqs.library_hint("libfoo.so.7")
    assert line == "libfoo.so.7 missing — install the Debian package that provides it (apt-file search libfoo.so.7)"


def test_missing_commands_are_named_once_per_package():
    lines = prereqs.check_commands(which=lambda command: None)
    assert "error: mosquitto, mosquitto_passwd not found — install the Debian package mosquitto" in lines
    assert "error: pgrep not found — install the Debian package procps" in lines
    assert "error: openssl not found — install the Debian package openssl" in lines
    assert len(lines) == len(set(prereqs.COMMANDS.values()))


def test_the_test_script_checks_the_prerequisites_before_pytest_and_installs_their_packages():
    script = (ROOT / "scripts" / "test").read_text()
    assert script.index("-m tests.prereqs") < script.index("-m pytest")
    installed = set(script.split("apt_install ", 1)[1].split("\n")[0].split())
    needed = set(prereqs.COMMANDS.values()) | set(prereqs.FILES.values()) | {"chromium", "libatomic1"}
    assert needed <= installed, needed - installed
