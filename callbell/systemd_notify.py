"""The wire to systemd: readiness and watchdog pings (the sd_notify protocol), hub and device.

    systemd = SystemdNotify.from_environment()   # does nothing when not run by systemd
    systemd.ready()                                # once serving: "READY=1"
    while working:
        ...                                        # one round of the loop that does the work
        systemd.ping()                             # "WATCHDOG=1", at most every ping_interval_s

The protocol (sd_notify(3)): newline-separated ``KEY=VALUE`` lines in one datagram to the unix
socket named by ``$NOTIFY_SOCKET`` (a leading ``@`` names an abstract socket). With
``WatchdogSec=`` in the unit, systemd sets ``$WATCHDOG_USEC`` and kills (then restarts) the
service when no ``WATCHDOG=1`` arrives for that long. So a ping must come from the loop whose
stall should count as a hang — never from a timer thread of its own, which would go on pinging
for a process whose real work is stuck.

No dependency: a datagram socket is all it takes. Sending never raises: a watchdog that cannot
reach systemd must not stop the work it watches (systemd will then restart the service, which
is the right outcome).
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Callable, Mapping

log = logging.getLogger("callbell.systemd")

#: Pings per watchdog period: systemd's advice (sd_watchdog_enabled(3)) is to ping at half
#: the period, so one late round of the loop does not count as a hang.
PINGS_PER_PERIOD = 2


class SystemdNotify:
    """Talks to systemd over ``$NOTIFY_SOCKET``; every method is a no-op without it.

    ``address``: the socket path (or ``@name`` for an abstract one), None when not run by
    systemd. ``watchdog_s``: the watchdog period, seconds (``$WATCHDOG_USEC`` / 10⁶), None
    when the unit sets no ``WatchdogSec=``. ``monotonic``: the clock pings are spaced on.
    """

    def __init__(self, address: str | None, watchdog_s: float | None = None,
                 monotonic: Callable[[], float] = time.monotonic):
        self.address = address
        self.watchdog_s = watchdog_s
        #: Seconds between pings: half the watchdog period (None: no watchdog, no pings).
        self.ping_interval_s = watchdog_s / PINGS_PER_PERIOD if watchdog_s else None
        self._monotonic = monotonic
        self._last_ping = float("-inf")
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None  # opened on the first send, not here
        #: Datagrams sent, for tests and health.
        self.sent = 0

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> "SystemdNotify":
        """From ``$NOTIFY_SOCKET`` and ``$WATCHDOG_USEC`` (honouring ``$WATCHDOG_PID``: a
        watchdog meant for another process, such as a parent shell, is not ours)."""
        env = os.environ if env is None else env
        watchdog_s = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            watchdog_s = int(usec) / 1_000_000
        return cls(env.get("NOTIFY_SOCKET") or None, watchdog_s)

    @property
    def enabled(self) -> bool:
        """True when systemd listens (``$NOTIFY_SOCKET`` is set)."""
        return self.address is not None

    @property
    def watchdog(self) -> bool:
        """True when systemd expects pings (``WatchdogSec=`` in the unit)."""
        return self.enabled and self.ping_interval_s is not None

    def ready(self, status: str | None = None) -> None:
        """The service is up: ``Type=notify`` units count as started from here."""
        self.send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def stopping(self) -> None:
        """The service is shutting down on purpose (no watchdog alarm while it does)."""
        self.send("STOPPING=1")

    def ping(self) -> None:
        """Call from each round of the working loop: sends ``WATCHDOG=1`` when
        ``ping_interval_s`` has passed since the last one; otherwise costs a clock read."""
        if self.ping_interval_s is None or self.address is None:
            return
        now = self._monotonic()
        if now - self._last_ping < self.ping_interval_s:
            return
        self._last_ping = now
        self.send("WATCHDOG=1")

    def send(self, state: str) -> bool:
        """One datagram of ``KEY=VALUE`` lines. Returns False (and logs) when it failed."""
        if self.address is None:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        with self._lock:
            try:
                if self._socket is None:
                    self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._socket.sendto(state.encode(), target)
            except OSError as e:
                log.warning("cannot notify systemd at %s (%s): %s", self.address, state.split("\n")[0], e)
                return False
            self.sent += 1
        return True

    def close(self) -> None:
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None
