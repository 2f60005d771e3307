"""A non-editable install is the whole product: the wheel is built from a copy of the source,
installed with its dependencies into a fresh venv (nothing of the checkout on its path), and
its ``callbell demo`` serves the dashboard.

The venv gets its dependencies the ordinary way (pip resolving the wheel's requirements, from
the warm cache and the local index), not borrowed from the test venv through a .pth: borrowing
would hide a dependency the wheel forgot to declare, which is the point of the test. It takes
about 20 s of the test's ~35 s.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from callbell.broker import free_port
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parent.parent

#: What a wheel is not built from: the venv, build output, the demo's data, caches.
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "var", "*.egg-info", "__pycache__",
                                    ".hypothesis", ".pytest_cache", "node_modules")

#: Seconds for each step (a loaded 2-core machine builds in ~3 s and installs in ~20 s).
BUILD_TIMEOUT_S = 120
INSTALL_TIMEOUT_S = 240
DEMO_START_S = 30


def build_wheel(tmp_path: Path) -> tuple[Path, str]:
    """The wheel, built verbosely (setuptools' warnings show only with -v) from a copy of the
    source, so the checkout gets no build/ folder; and the build's output."""
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=NOT_SOURCE)
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(tmp_path / "dist"),
                          str(src)], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("callbell-*.whl")
    return wheel, out.stdout + out.stderr


def setuptools_warnings(output: str) -> list[str]:
    """Warnings in a build's output, less distutils' note that pip turned byte-compiling off."""
    return [line for line in output.splitlines()
            if "warn" in line.lower() and "byte-compiling is disabled" not in line]


def test_the_wheel_installed_in_a_fresh_venv_runs_the_demo_and_builds_without_warnings(tmp_path):
    wheel, build_output = build_wheel(tmp_path)
    assert setuptools_warnings(build_output) == []

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    out = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", str(wheel)],
                         capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert setuptools_warnings(out.stdout) == []

    # From an empty folder, without PYTHONPATH: only the installed package can answer.
    run = tmp_path / "run"
    run.mkdir()
    port = free_port()
    log = open(tmp_path / "demo.log", "wb")
    demo = subprocess.Popen([str(venv / "bin" / "callbell"), "demo", "--port", str(port), "--data", "data"],
                            cwd=run, stdout=log, stderr=subprocess.STDOUT,
                            env={**{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")},
                                 "HOME": str(tmp_path)})

    def dashboard() -> bool:
        if demo.poll() is not None:
            raise AssertionError(f"demo exited with {demo.returncode}:\n{(tmp_path / 'demo.log').read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                return r.status == 200 and b"<html" in r.read().lower()
        except OSError:
            return False
    try:
        wait_until(dashboard, DEMO_START_S, 0.1, "the installed demo to serve /")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=5) as r:
            assert json.loads(r.read())["status"] == "ok"  # its embedded broker and database too
        site = subprocess.run([str(python), "-c", "import app.demo; print(app.demo.EXAMPLE_STORE)"],
                              cwd=run, capture_output=True, text=True, check=True).stdout
        assert str(venv) in site and "site-packages" in site, site
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(20)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait()
        log.close()
    assert demo.returncode == 0, (tmp_path / "demo.log").read_text()[-3000:]
