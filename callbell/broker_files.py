"""A Mosquitto's own files, for any broker we configure: its password file (``$7$`` hashes, as
``mosquitto_passwd`` writes them), files written atomically with their modes, and a small CA
with openssl. Used by ``callbell broker-config`` (app/broker_config.py) for a store and by
``callbell chain`` (chain/) for a chain's bridges; no store or chain logic here."""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from callbell.mqtt import BrokerAddress
from callbell.settings import ConfigError

#: Where ``broker-config`` writes and ``device provision`` looks, unless told otherwise.
DEFAULT_BROKER_DIR = Path("/etc/mosquitto/callbell")
#: Where Mosquitto keeps its queues (Debian's default, owned by user mosquitto).
DEFAULT_DATA_DIR = Path("/var/lib/mosquitto")
#: Where a Pi keeps its CA certificate, next to /etc/callbell/device.toml (docs/firmware.md).
DEFAULT_DEVICE_CA = "/etc/callbell/ca.crt"
#: The user Mosquitto drops its privileges to when started as root (Debian's package).
DEFAULT_BROKER_USER = "mosquitto"

#: MQTT over TLS (IANA); the LAN reaches the broker only here.
TLS_PORT = 8883
#: Plain MQTT, bound to 127.0.0.1 for the hub on the broker's machine.
LOCAL_PORT = 1883


#: PBKDF2-SHA512 rounds of a ``$7$`` hash: mosquitto_passwd's default, so a hash costs the
#: broker what its own tool's would (~0.1 ms) on every connect.
PBKDF2_ITERATIONS = 101
#: Salt length of a ``$7$`` hash, bytes (mosquitto_passwd's).
SALT_BYTES = 12
#: Random bytes in a generated password: 192 bits, far beyond guessing over a network. URL-
#: safe base64 keeps it free of characters a URL or an env file would need escaped.
PASSWORD_BYTES = 24


#: Validity of a certificate made by ``--make-certs``, days. The CA lives ten years; the
#: server certificate 825 days, the longest that Apple devices accept.
CA_DAYS = 3650
SERVER_DAYS = 825

FILE_MODES = {
    # Mosquitto reads these after dropping to its user: group-readable, owned root:mosquitto.
    "passwd": 0o640, "acl": 0o640, "server.key": 0o640,
    # Public, or read as root before the drop.
    "mosquitto.conf": 0o644, "ca.crt": 0o644, "server.crt": 0o644,
    # Secrets Mosquitto never needs: root (the admin, or systemd for hub.env) only.
    "hub.env": 0o600, "ca.key": 0o600, "device.toml": 0o600,
}


# -- passwords ------------------------------------------------------------------------------
def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """Mosquitto's ``$7$`` hash: ``$7$ITERATIONS$BASE64(salt)$BASE64(PBKDF2-SHA512)``."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """True if ``password`` matches a ``$7$`` (PBKDF2-SHA512) or ``$6$`` (salted SHA-512) hash."""
    parts = encoded.split("$")
    try:
        if len(parts) == 5 and parts[1] == "7":
            iterations, salt, digest = int(parts[2]), base64.b64decode(parts[3]), base64.b64decode(parts[4])
            mine = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
        elif len(parts) == 4 and parts[1] == "6":
            salt, digest = base64.b64decode(parts[2]), base64.b64decode(parts[3])
            mine = hashlib.sha512(password.encode() + salt).digest()
        else:
            return False
    except ValueError:
        return False
    return hmac.compare_digest(mine, digest)


@dataclass
class PasswordFile:
    """Mosquitto's ``passwd``: ``user:hash`` lines, kept in order; other lines are kept too."""

    path: Path
    entries: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "PasswordFile":
        entries = {}
        if path.exists():
            for line in path.read_text().splitlines():
                user, sep, encoded = line.partition(":")
                if sep and user and not line.startswith("#"):
                    entries[user] = encoded.strip()
        return cls(path, entries)

    def verifies(self, user: str, password: str | None) -> bool:
        return password is not None and user in self.entries and verify_password(password, self.entries[user])

    def set(self, user: str, password: str) -> None:
        self.entries[user] = hash_password(password)

    def text(self) -> str:
        return "".join(f"{user}:{encoded}\n" for user, encoded in self.entries.items())


# -- files ----------------------------------------------------------------------------------
@dataclass
class Written:
    """One file written (or kept), for the report the commands print."""
    path: Path
    what: str
    kept: bool = False

    def line(self) -> str:
        mode = f"{self.path.stat().st_mode & 0o777:04o}" if self.path.exists() else "----"
        return f"  {mode}  {self.path}  {'(kept) ' if self.kept else ''}{self.what}"


def write_file(path: Path, text: str, mode: int) -> None:
    """Write ``text`` atomically with exactly ``mode``: a secret is never readable by others,
    not even for a moment (the file is created with its mode, then renamed into place). A
    replaced file keeps its owner and group (root:mosquitto), so Mosquitto can still read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        if path.exists() and os.geteuid() == 0:
            old = path.stat()
            os.fchown(fd, old.st_uid, old.st_gid)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_mode(path: Path) -> int:
    return FILE_MODES.get(path.name, FILE_MODES["device.toml"] if path.suffix == ".toml" else 0o644)


def make_certs(certs: Path, host: str, store_id: str, also: tuple[str, ...] = ()) -> list[Written]:
    """A CA and a server certificate for ``host`` (and the names or addresses in ``also``,
    localhost, 127.0.0.1), with openssl. Existing files are kept: re-running never replaces a
    CA the devices (or phones) already trust."""
    openssl = shutil.which("openssl")
    if not openssl:
        raise ConfigError("--make-certs needs openssl (Debian: sudo apt-get install openssl)")
    certs.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt, key, crt = (certs / n for n in ("ca.key", "ca.crt", "server.key", "server.crt"))
    done = []

    def run(*args: str) -> None:
        # umask 077: openssl creates its keys readable by others unless told; not for a moment.
        r = subprocess.run([openssl, *args], capture_output=True, text=True, preexec_fn=lambda: os.umask(0o077))
        if r.returncode != 0:
            raise ConfigError(f"openssl {args[0]} failed: {r.stderr.strip()}")

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]  # fast on a Pi
    if ca_crt.exists() and ca_key.exists():
        done += [Written(ca_key, "CA private key: keep it offline", kept=True), Written(ca_crt, "CA certificate", kept=True)]
    else:
        run("req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca_crt), "-days", str(CA_DAYS),
            "-subj", f"/CN=Callbell CA {store_id}",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        done += [Written(ca_key, "CA private key: keep it offline"), Written(ca_crt, "CA certificate (copy to every device)")]
    if crt.exists() and key.exists():
        done += [Written(key, "server key", kept=True), Written(crt, "server certificate", kept=True)]
    else:
        san = list(dict.fromkeys([f"DNS:{name}" if not re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+", name)
                                  else f"IP:{name}" for name in (host, *also)] + ["DNS:localhost", "IP:127.0.0.1"]))
        with tempfile.TemporaryDirectory() as tmp:
            csr, ext = Path(tmp) / "server.csr", Path(tmp) / "server.ext"
            ext.write_text(f"subjectAltName={','.join(san)}\nbasicConstraints=critical,CA:FALSE\n"
                           "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
                           "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")
            run("req", "-new", *ec, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={host}")
            run("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
                "-out", str(crt), "-days", str(SERVER_DAYS), "-extfile", str(ext))
        (certs / "ca.srl").unlink(missing_ok=True)
        done += [Written(key, "server key"), Written(crt, f"server certificate for {', '.join(san)}")]
    for w in done:
        if not w.kept:
            os.chmod(w.path, file_mode(w.path))
    return done


def password_in(path: Path, user: str) -> str | None:
    """The password of ``user`` in a device.toml's or hub.env's broker URL, if any."""
    try:
        text = path.read_text()
    except OSError:
        return None
    for m in re.finditer(r"(mqtts?://[^\s\"']+)", text):
        try:
            a = BrokerAddress.parse(m.group(1))
        except ValueError:
            continue
        if a.username == user:
            return a.password
    return None
