"""What the test suite needs from the machine, checked before pytest starts (scripts/test).

    python -m tests.prereqs        # one line per missing piece, naming its Debian package; exit 1

A minimal Debian (debootstrap --variant=minbase) lacks things a developer's machine has by
accident: Playwright's bundled Node driver needs ``libatomic.so.1`` (package ``libatomic1``),
which Chromium does not pull in and which a developer gets only through ``libgcc-12-dev``.
Without it every browser test errors after minutes of setup; this says so in a second.

Each check returns None or one line: what failed, and the package that provides it.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

#: Shared libraries a minimal system may lack → the Debian package that provides each.
LIBRARY_PACKAGES = {
    "libatomic.so.1": "libatomic1",
    "libstdc++.so.6": "libstdc++6",
    "libnss3.so": "libnss3",
    "libnspr4.so": "libnspr4",
    "libasound.so.2": "libasound2",
    "libgbm.so.1": "libgbm1",
    "libdrm.so.2": "libdrm2",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libfontconfig.so.1": "libfontconfig1",
}

#: Commands the tests run → their Debian packages.
COMMANDS = {
    "mosquitto": "mosquitto",
    "mosquitto_passwd": "mosquitto",          # tests/test_broker_security.py
    "openssl": "openssl",                     # certificates for the HTTPS and TLS tests
    "pgrep": "procps",                        # tests/test_demo.py: nothing left running
    "rabbitmq-server": "rabbitmq-server",     # tests/chain
}

#: Files the pages' tests need → their Debian packages.
FILES = {
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf": "fonts-noto-color-emoji",  # 🔔 not boxes
}

SBIN = "/usr/local/sbin:/usr/sbin:/sbin"

#: Seconds a check may take: a cold Chromium start on a loaded Pi takes a few.
CHECK_TIMEOUT_S = 60

_MISSING_LIBRARY = re.compile(r"error while loading shared libraries: (\S+?): cannot open shared object file")


def missing_library(stderr: str) -> str | None:
    """The shared library the dynamic loader could not find, from a program's stderr."""
    m = _MISSING_LIBRARY.search(stderr)
    return Path(m.group(1)).name if m else None


def library_hint(library: str) -> str:
    package = LIBRARY_PACKAGES.get(library)
    if package:
        return f"{library} missing — install the Debian package {package}"
    return f"{library} missing — install the Debian package that provides it (apt-file search {library})"


def check_driver(command: list[str]) -> str | None:
    """Playwright's Node driver starts (``command``: the driver with ``--version``)."""
    try:
        r = subprocess.run(command, capture_output=True, text=True, timeout=CHECK_TIMEOUT_S)
    except OSError as e:
        return f"error: Playwright's driver cannot start: {e} — reinstall the Python package playwright"
    if r.returncode == 0:
        return None
    library = missing_library(r.stderr)
    if library:
        return f"error: Playwright's driver cannot start: {library_hint(library)}"
    last = (r.stderr.strip().splitlines() or [f"exit code {r.returncode}"])[-1]
    return f"error: Playwright's driver cannot start: {last}"


def driver_command() -> list[str]:
    from playwright._impl._driver import compute_driver_executable
    node, cli = compute_driver_executable()
    return [str(node), str(cli), "--version"]


def check_chromium() -> str | None:
    """Debian's Chromium launches headless under Playwright and renders a page."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        return "error: Chromium is not installed — install the Debian package chromium"
    from playwright.sync_api import Error, sync_playwright
    from tests.browser import CHROMIUM_ARGS
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, timeout=CHECK_TIMEOUT_S * 1000)
            page = browser.new_page()
            page.set_content("<p id=ok>ok</p>")
            text = page.inner_text("#ok")
            browser.close()
    except Error as e:
        library = missing_library(str(e))
        if library:
            return f"error: Chromium cannot start: {library_hint(library)}"
        return f"error: Chromium cannot start headless: {str(e).strip().splitlines()[0]}"
    return None if text == "ok" else f"error: Chromium rendered {text!r} instead of 'ok'"


def check_mosquitto() -> str | None:
    """Mosquitto starts and listens (the tests run real brokers)."""
    from callbell.broker import Broker, free_port
    from callbell.settings import ConfigError
    with tempfile.TemporaryDirectory(prefix="callbell-prereqs-") as folder:
        try:
            broker = Broker(Path(folder), port=free_port()).start()
        except ConfigError:
            return "error: Mosquitto is not installed — install the Debian package mosquitto"
        except Exception as e:  # noqa: BLE001 - whatever stops it, say it in one line
            return f"error: Mosquitto does not start: {str(e).strip().splitlines()[0]} — check the Debian package mosquitto"
        broker.stop()
    return None


def which(command: str) -> str | None:
    """The command's path; the sbin folders too (Mosquitto and RabbitMQ live there, and a
    user's PATH on Debian leaves them out)."""
    return shutil.which(command) or shutil.which(command, path=SBIN)


def check_commands(which: Callable[[str], str | None] = which) -> list[str]:
    packages: dict[str, list[str]] = {}
    for command, package in COMMANDS.items():
        if not which(command):
            packages.setdefault(package, []).append(command)
    return [f"error: {', '.join(c)} not found — install the Debian package {p}" for p, c in packages.items()]


def check_files() -> list[str]:
    return [f"error: {f} missing — install the Debian package {p}" for f, p in FILES.items() if not Path(f).exists()]


def problems() -> list[str]:
    """Every missing piece, one line each (the browser only once its driver starts)."""
    found = check_commands() + check_files()
    driver = check_driver(driver_command())
    found += [driver] if driver else [m for m in (check_chromium(),) if m]
    mosquitto = check_mosquitto() if which("mosquitto") else None
    return found + ([mosquitto] if mosquitto else [])


def main() -> int:
    found = problems()
    for line in found:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
