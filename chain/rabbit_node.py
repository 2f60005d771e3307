"""A RabbitMQ node run as a child process, in a folder of its own: for tests, benchmarks and a
one-machine trial of a chain. Production runs Debian's rabbitmq-server service instead, with
the files of ``callbell chain broker-config`` (docs/chain.md).

The node is configured only through ``RABBITMQ_*`` environment variables, so it never touches
``/etc/rabbitmq`` or ``/var/lib/rabbitmq``, and several can run at once. Started as root, it
runs as the ``rabbitmq`` user (as the Debian service does), owning its folder::

    node = RabbitNode(folder, conf_text=rabbitmq_conf(...), mqtt_port=port)
    node.start()          # waits until the MQTT listener accepts connections
    node.kill()           # SIGKILL, as a crash; node.start() again keeps its data
    node.stop()
"""
from __future__ import annotations

import logging
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

from callbell.broker import BrokerError, free_port, wait_for_port

log = logging.getLogger("callbell.rabbit")

#: Where Debian's package puts the real start script (``/usr/sbin/rabbitmq-server`` is a
#: wrapper that insists on running from /var/lib/rabbitmq).
SERVER_SCRIPTS = ("/usr/lib/rabbitmq/bin/rabbitmq-server", "/usr/local/sbin/rabbitmq-server")

#: Seconds to wait for a node to accept MQTT connections. A first boot on 2 cores takes ~12 s
#: (the Erlang VM, the schema, the plugin's client-id tracker); a restart ~6-8 s.
START_TIMEOUT_S = 60.0

#: What a node logs once it has booted and serves (RabbitMQ 3.x).
BOOTED = "Server startup complete"

#: Seconds a node is given to stop after SIGTERM before it is killed.
STOP_TIMEOUT_S = 20.0

#: The account a node started by root runs as (Debian's package creates it).
NODE_USER = "rabbitmq"


def find_rabbitmq() -> str:
    found = next((p for p in SERVER_SCRIPTS if os.access(p, os.X_OK)), None) or shutil.which("rabbitmq-server")
    if not found:
        raise BrokerError("RabbitMQ is not installed (Debian: sudo apt-get install rabbitmq-server)")
    return found


class RabbitNode:
    """One RabbitMQ node with its data, logs and config in ``folder``."""

    def __init__(self, folder: Path, conf_text: str, mqtt_port: int, *, host: str = "127.0.0.1",
                 files: dict[str, str] | None = None, name: str | None = None):
        """``conf_text``: rabbitmq.conf; ``files``: more files to write into the folder
        (definitions.json, say), name → text; ``mqtt_port``: a listener to wait for."""
        self.folder = Path(folder)
        self.conf_text = conf_text
        self.files = files or {}
        self.mqtt_port = mqtt_port
        self.host = host
        self.dist_port = free_port()
        self.name = name or f"callbell-{os.getpid()}-{self.dist_port}@localhost"
        self._proc: subprocess.Popen | None = None
        self._as = _node_account()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_file(self) -> Path:
        return self.folder / "log" / f"{self.name}.log"

    def env(self) -> dict[str, str]:
        f = self.folder
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
            "HOME": str(f),  # the Erlang cookie lives here
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_CONFIG_FILE": str(f / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(f / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(f / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(f / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(f / "mnesia"),
            "RABBITMQ_LOG_BASE": str(f / "log"),
            "RABBITMQ_PID_FILE": str(f / "rabbitmq.pid"),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_LOGS": str(self.log_file),
        }

    def _write(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        files = {"rabbitmq.conf": self.conf_text, "enabled_plugins": "[rabbitmq_mqtt].\n",
                 "rabbitmq-env.conf": "", **self.files}
        for name, text in files.items():
            (self.folder / name).write_text(text)
        if self._as:
            uid, gid = self._as
            for path in [self.folder, *self.folder.rglob("*")]:
                os.chown(path, uid, gid)

    def start(self) -> "RabbitNode":
        self._write()
        script = find_rabbitmq()
        ids = self._as

        def drop() -> None:  # in the child, before exec: the node runs as rabbitmq, not root
            os.setsid()
            if ids:
                os.setgroups([])
                os.setgid(ids[1])
                os.setuid(ids[0])

        booted_before = self._boots()
        out = open(self.folder / "startup.log", "ab")
        self._proc = subprocess.Popen([script], env=self.env(), cwd=self.folder, stdin=subprocess.DEVNULL,
                                      stdout=out, stderr=subprocess.STDOUT, preexec_fn=drop)
        out.close()
        # The listener opens before the node has finished booting; a client that connects in
        # between may wait for its CONNACK until its keepalive runs out. So: the log's word.
        deadline = time.monotonic() + START_TIMEOUT_S
        while self._boots() <= booted_before and time.monotonic() < deadline and self.running:
            time.sleep(0.1)
        if not wait_for_port(self.host, self.mqtt_port, max(0.1, deadline - time.monotonic())):
            tail = self.output()[-2000:]
            self.kill()
            raise BrokerError(f"RabbitMQ did not listen on {self.host}:{self.mqtt_port} within "
                              f"{START_TIMEOUT_S:.0f} s:\n{tail}")
        log.info("RabbitMQ node %s up (MQTT on %s:%d)", self.name, self.host, self.mqtt_port)
        return self

    def _boots(self) -> int:
        """How many times the log says the node finished booting."""
        try:
            return self.log_file.read_text(errors="replace").count(BOOTED)
        except OSError:
            return 0

    def output(self) -> str:
        parts = []
        for p in (self.folder / "startup.log", self.log_file):
            if p.exists():
                parts.append(p.read_text(errors="replace"))
        return "\n".join(parts)

    def _signal_all(self, sig: int) -> None:
        """The script execs the Erlang VM, which starts helpers (epmd is shared and left
        alone; erl_child_setup and inet_gethost belong to the node): signal its session."""
        try:
            os.killpg(self._proc.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL, as a crash or power cut would."""
        if self._proc and self._proc.poll() is None:
            self._signal_all(signal.SIGKILL)
            self._proc.wait()

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._signal_all(signal.SIGTERM)
            try:
                self._proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()

    def wait_down(self, timeout_s: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                return True
            time.sleep(0.05)
        return False

    def __enter__(self) -> "RabbitNode":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _node_account() -> tuple[int, int] | None:
    """(uid, gid) to run the node as: the rabbitmq user when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pw = pwd.getpwnam(NODE_USER)
    except KeyError:
        return None
    return pw.pw_uid, pw.pw_gid
