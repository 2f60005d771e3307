"""How a long-running command (the device, the demo) waits to be stopped."""
from __future__ import annotations

import signal
import threading


def wait_for_signal() -> None:
    """Block until SIGINT (Ctrl-C) or SIGTERM (systemd stopping the unit)."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
