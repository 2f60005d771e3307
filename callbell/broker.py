"""A Mosquitto broker run as a child process: the embedded broker of ``callbell hub`` and the
demo, and the real broker of the tests and benchmarks.

"Embedded" means started, configured and supervised by Callbell, so a demo needs nothing else
running; it is still the real Mosquitto, with the durability settings a store needs:

- ``persistence`` saved every ``AUTOSAVE_S`` seconds: by default Mosquitto saves every 30
  minutes, and a crash loses every queued QoS 1 message since. Saving after *every* change
  (``autosave_on_changes``) would rewrite and sync the whole file twice per press — ~2 ms on
  the press→lamp path, and wear on an SD card — and still leave a window, since Mosquitto
  acknowledges before it saves. Callbell devices close that window themselves: they keep an
  acknowledged event for longer than AUTOSAVE_S and resend it if the connection drops
  (firmware/outbox.py, LINGER_S);
- ``max_queued_messages`` raised: the default (1000) drops messages for an offline client
  silently;
- ``set_tcp_nodelay``: no Nagle delay on the broker's side either;
- ``sys_interval``: the ``$SYS`` counters the hub watches for dropped messages.
"""
from __future__ import annotations

import getpass
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

log = logging.getLogger("callbell.broker")

#: QoS 1 messages queued per offline client before Mosquitto drops. A store day is a few
#: thousand presses; 100 000 covers a hub that is down for days.
MAX_QUEUED_MESSAGES = 100_000

#: Seconds between Mosquitto's ``$SYS`` counters (only changed ones are sent). The hub watches
#: the dropped-message count (hub.mqtt_edge.BrokerWatch): a queue that overflows is reported
#: within this. Mosquitto's default, stated so the bound is ours.
SYS_INTERVAL_S = 10

#: Seconds between Mosquitto's saves of its queues to disk. Devices resend what the broker
#: acknowledged within their linger (15 s), which must stay well above this.
AUTOSAVE_S = 2

#: How long Mosquitto keeps an MQTT 3.1.1 persistent session of a client that went away.
PERSISTENT_CLIENT_EXPIRATION = "14d"

#: Seconds to wait for a started broker to accept connections.
START_TIMEOUT_S = 10.0

#: Seconds between checks that the supervised broker is alive, and restart backoff cap.
SUPERVISE_PERIOD_S = 0.5


class BrokerError(RuntimeError):
    pass


def find_mosquitto() -> str:
    found = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto")
         if os.access(p, os.X_OK)), None)
    if not found:
        raise BrokerError(
            "Mosquitto is not installed. Install it (Debian/Raspberry Pi OS: "
            "'sudo apt-get install mosquitto'), or set [mqtt] url in the store config to an "
            "existing broker.")
    return found


#: Where free_port looks first: below the kernel's ephemeral range. A port the kernel hands
#: out for port 0 comes from that range, and so does every outgoing connection's local port:
#: between choosing it and binding it, a busy test run's connections could take it.
LISTEN_PORTS = (20000, 32768)


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return LISTEN_PORTS[1]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now, outside the range outgoing connections use. Mosquitto cannot
    bind port 0, so the port is chosen here, at random, and checked by binding it."""
    low, high = LISTEN_PORTS[0], min(LISTEN_PORTS[1], _ephemeral_start())
    rng = random.SystemRandom()
    for _ in range(50) if high - low > 100 else ():
        port = rng.randrange(low, high)
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # no room below the ephemeral range: ask the kernel
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped by its new parent) is dead."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class Broker:
    """A Mosquitto process with its data (persistence, config, log) in ``data_dir``.

        broker = Broker(Path("var/broker"))
        broker.start()            # picks a free port unless one is given
        print(broker.url)         # mqtt://127.0.0.1:41234
        broker.kill()             # SIGKILL, as a crash; broker.start() again on the same port
        broker.stop()
    """

    def __init__(self, data_dir: Path, port: int | None = None, host: str = "127.0.0.1",
                 extra_config: str = ""):
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port or free_port(host)
        self.extra_config = extra_config
        self._proc: subprocess.Popen | None = None
        self._supervisor: threading.Thread | None = None
        self._stopping = threading.Event()
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_file(self) -> Path:
        return self.data_dir / "mosquitto.log"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "mosquitto.pid"

    def _stop_stale(self) -> None:
        """Stop a broker of ours still running from a hub that was killed (kill -9 leaves the
        child running). SIGTERM makes it save its queued messages, which ours then loads."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            return
        if "mosquitto" not in cmdline or str(self.data_dir.resolve()) not in cmdline:
            return
        log.warning("taking over from a broker left running by a previous hub (pid %d)", pid)
        try:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.05)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def config_text(self) -> str:
        d = self.data_dir.resolve()
        # Run as root, Mosquitto drops privileges to user 'mosquitto', which then cannot write
        # our data dir; naming the current user keeps it on the account that owns the files.
        return "\n".join([
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {d}/",
            "persistence_file mosquitto.db",
            "autosave_on_changes false",
            f"autosave_interval {AUTOSAVE_S}",
            f"max_queued_messages {MAX_QUEUED_MESSAGES}",
            f"sys_interval {SYS_INTERVAL_S}",
            f"persistent_client_expiration {PERSISTENT_CLIENT_EXPIRATION}",
            "set_tcp_nodelay true",
            f"user {getpass.getuser()}",
            f"log_dest file {d}/mosquitto.log",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            self.extra_config,
            "",
        ])

    def start(self) -> "Broker":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._stop_stale()
        conf = self.data_dir / "mosquitto.conf"
        conf.write_text(self.config_text())
        self._proc = subprocess.Popen(
            [find_mosquitto(), "-c", str(conf.resolve())],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C in the terminal reaches us, not the broker
        )
        self.pid_file.write_text(str(self._proc.pid))
        if not wait_for_port(self.host, self.port, START_TIMEOUT_S):
            err = b""
            if self._proc.poll() is not None and self._proc.stderr:
                err = self._proc.stderr.read()
            self.kill()
            tail = ""
            if self.log_file.exists():
                tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-5:])
            raise BrokerError(f"Mosquitto did not start on {self.host}:{self.port}: "
                              f"{err.decode(errors='replace').strip()} {tail}".strip())
        log.info("broker listening on %s (data in %s)", self.url, self.data_dir)
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash or power cut would."""
        if self._proc and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait()

    def stop(self) -> None:
        self._stopping.set()
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._proc and self._proc.stderr:
            self._proc.stderr.close()

    def supervise(self) -> None:
        """Restart the broker whenever it dies, until stop(); for the hub's embedded broker."""
        def watch() -> None:
            while not self._stopping.wait(SUPERVISE_PERIOD_S):
                if self._proc is not None and self._proc.poll() is not None:
                    log.error("embedded broker exited (code %s); restarting", self._proc.returncode)
                    try:
                        self.start()
                        self.restarts += 1
                    except BrokerError as e:
                        log.error("%s", e)
        self._supervisor = threading.Thread(target=watch, name="broker-supervisor", daemon=True)
        self._supervisor.start()

    def __enter__(self) -> "Broker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
