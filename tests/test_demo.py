"""`callbell demo` as a user runs it: starts, the simulated store comes alive, Ctrl-C stops all."""
import os
import signal
import subprocess
import sys
import time

from callbell.broker import free_port
from tests.helpers import ROOT, Api, wait_until


def test_the_demo_runs_a_living_store_and_stops_cleanly_on_ctrl_c(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "demo", "--port", str(port), "--data", str(tmp_path / "demo"),
         "--pace", "20", "--fresh"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    api = Api(f"http://127.0.0.1:{port}")
    try:
        def serving():
            try:
                return api.get("/api/v1/health")[0] == 200
            except OSError:
                return False
        wait_until(serving, timeout=30, what="the demo to serve")
        assert api.get("/")[0] == 200
        done = wait_until(lambda: [c for c in api.ok("GET", "/api/v1/calls?status=closed") if c["status"] == "done"],
                          timeout=40, what="simulated associates to finish a call")
        assert done[0]["answered_by"] and done[0]["response_s"] > 0
        # The simulated associates follow the escalation: whoever answered had been alerted.
        assert all(c["answered_by"] in {x["associate"] for x in c["alerted"]} for c in done)
        assert len(api.ok("GET", "/api/v1/devices")) == 2  # 8 rooms on two simulated Pis
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert f"open http://localhost:{port}/" in out
    assert "Traceback" not in err
    time.sleep(0.5)
    leftover = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout
    assert not leftover.strip(), "the demo left its broker running"
