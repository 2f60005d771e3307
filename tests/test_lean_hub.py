"""The store hub stays lean whatever else is installed (issue 26.6): with the chain extra beside
it (chDB brings pandas, numpy and pyarrow, all importable in the test venv), a real hub process
that takes a press, answers an API read and streams an export has loaded none of them.

What a process has loaded is read from ``/proc/<pid>/maps``: each of the three is mostly C
extensions, and an imported one maps its ``.so`` files. That reads the real process as it runs,
without a hook in the hub. The same hub started after ``import pandas`` (what sqlite-utils did
on its own before hub/store/lean_sqlite_utils.py) is the control: it shows the check sees them,
and gives the memory the hub saves (docs/benchmarks.md).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from callbell.broker import free_port
from tests.helpers import ROOT, HubProcess, Recorder, event, wait_until, write_store
from tests.test_device_process import DEVICE_TOML, DeviceProcess

#: The libraries that must stay out of a store hub, as folders in the paths of their .so files.
HEAVY = ("numpy", "pandas", "pyarrow")

#: Most RSS a lean hub may have after the exercise, MB: ~67 MB measured (docs/benchmarks.md),
#: ~185 MB with the three loaded; the margin is for another Python or sqlite build.
LEAN_RSS_MB = 100


def loaded(pid: int) -> set[str]:
    """Which of HEAVY have a shared object mapped in process ``pid``."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {name for name in HEAVY if f"/{name}/" in maps or f"/{name}.libs/" in maps}


def rss_mb(pid: int) -> float:
    """The process's resident set size, MB (VmRSS, which /proc gives in kB)."""
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


class HubAfterPandas(HubProcess):
    """The same hub, started by a Python that imported pandas first: the hub as it was when
    sqlite-utils pulled pandas (and with it numpy and pyarrow) in."""

    def start(self, timeout: float = 20.0) -> "HubAfterPandas":
        code = ("import pandas, sys; from app.cli import main; "
                f"sys.exit(main(['hub', '--config', {str(self.config)!r}]))")
        self._log = open(self.log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
                                     cwd=str(self.config.parent))
        wait_until(self._healthy, timeout, 0.05, "the hub to serve /api/v1/health")
        return self


def exercise(hub: HubProcess, recorder: Recorder, store: str) -> None:
    """A press, an API read and an export: the paths that touch the database."""
    recorder.publish(f"callbell/{store}/room/room-1/event", event(f"press-{store}"))
    wait_until(lambda: hub.api.get("/api/v1/calls?status=open")[1], what="the press to be a call")
    status, _ = hub.api.get("/api/v1/calls.csv")
    assert status == 200
    status, _ = hub.api.get("/api/v1/stats")
    assert status == 200


def test_a_hub_with_pandas_numpy_and_pyarrow_installed_loads_none_of_them(tmp_path, broker):
    probe = subprocess.run([sys.executable, "-c", "import pandas, numpy, pyarrow"], capture_output=True, text=True)
    assert probe.returncode == 0, f"this test needs the chain extra in the test venv (pip install -e '.[test]'): {probe.stderr}"
    recorder = Recorder(broker.url, [])
    figures = {}
    try:
        for kind, name in ((HubProcess, "lean"), (HubAfterPandas, "after-pandas")):
            folder = tmp_path / name
            folder.mkdir()
            port = free_port()
            # A store each: the two hubs share the test broker, not their calls.
            config = write_store(folder / "store.toml", broker_url=broker.url, http_port=port, store_id=name)
            hub = kind(config, port, folder / "hub.log").start()
            try:
                exercise(hub, recorder, name)
                figures[name] = (loaded(hub.proc.pid), rss_mb(hub.proc.pid))
            finally:
                hub.stop()
    finally:
        recorder.close()
    print(f"hub RSS: lean {figures['lean'][1]:.1f} MB, after pandas {figures['after-pandas'][1]:.1f} MB")
    assert figures["after-pandas"][0] == set(HEAVY), "the check must see them when they are loaded"
    assert figures["lean"][0] == set(), f"the hub loaded {sorted(figures['lean'][0])}"
    assert figures["lean"][1] < LEAN_RSS_MB, f"the hub uses {figures['lean'][1]:.1f} MB"


def test_a_device_process_with_them_installed_loads_none_of_them_either(tmp_path, broker):
    config = tmp_path / "device.toml"
    config.write_text(DEVICE_TOML.format(url=broker.url))
    device = DeviceProcess(config)
    try:
        device.send("press room-1")  # the press path: pins, lamp, outbox (sqlite3); no hub needed
        wait_until(lambda: "lamp room-1 called" in device.lines, timeout=10, what="the press taken")
        assert loaded(device.proc.pid) == set()
    finally:
        device.quit()


def test_the_benchmarks_doc_quotes_the_memory_bound_this_test_holds_the_hub_to():
    doc = (ROOT / "docs" / "benchmarks.md").read_text()
    assert f"`LEAN_RSS_MB` = {LEAN_RSS_MB}" in doc
