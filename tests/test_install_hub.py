"""scripts/install-hub, run into a scratch root (no apt, no user, no systemd): what it makes,
that phones trusting its CA accept the hub's certificate, and that running it again (an
upgrade) keeps the config, the certificates and everything else as they were."""
import hashlib
import socket
import ssl
import subprocess
import threading
import tomllib

from tests.helpers import ROOT

SCRIPT = ROOT / "scripts" / "install-hub"
BROKER = "mqtt://broker.store.lan:1883?protocol=3"


def files_under(root) -> dict[str, str]:
    """Every file the script wrote outside the venv, with a hash of its content and its mode."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() + oct(p.stat().st_mode)
            for p in sorted(root.rglob("*")) if p.is_file() and "opt/callbell/venv" not in str(p)}


def tls_handshake(ca, cert, key, name: str) -> str:
    """A TLS handshake as a phone that trusts ``ca`` makes it to ``name``: the negotiated version."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(ca))
    a, b = socket.socketpair()
    errors = []

    def serve():
        try:
            with server_ctx.wrap_socket(a, server_side=True):
                pass
        except OSError as e:
            errors.append(e)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    with client_ctx.wrap_socket(b, server_hostname=name) as s:
        version = s.version()
    t.join(5)
    return version


def test_the_hub_install_script_makes_a_venv_config_certificate_unit_and_log_rotation(tmp_path):
    root = tmp_path / "hub"
    cmd = [str(SCRIPT), "--no-apt", "--no-user", "--no-systemd", "--root", str(root),
           "--host", "callbell.store.lan", "--host", "192.168.1.20", "--broker", BROKER]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "config ok: store demo-store, 8 rooms, an existing broker, https port 8443" in r.stdout
    venv = root / "opt/callbell/venv"
    assert subprocess.run([str(venv / "bin/callbell"), "--version"], capture_output=True, text=True).stdout.startswith("callbell ")

    config_file = root / "etc/callbell/store.toml"
    config = tomllib.loads(config_file.read_text())
    assert config["mqtt"]["url"] == BROKER
    assert config["database"]["path"] == "/var/lib/callbell/callbell.db"  # where the unit may write
    assert config["http"] | {"host": None} == {
        "host": None, "port": 8443, "demo": False, "certfile": "/etc/callbell/tls/server.crt",
        "keyfile": "/etc/callbell/tls/server.key", "public_url": "https://callbell.store.lan:8443"}
    assert config_file.stat().st_mode & 0o077 == 0o040  # secrets may go in it: not world-readable

    tls = root / "etc/callbell/tls"
    assert (tls / "ca.key").stat().st_mode & 0o077 == 0
    for name in ("callbell.store.lan", "192.168.1.20", "localhost"):
        assert tls_handshake(tls / "ca.crt", tls / "server.crt", tls / "server.key", name).startswith("TLSv1.")

    unit = (root / "etc/systemd/system/callbell-hub.service").read_text()
    assert "ExecStart=/opt/callbell/venv/bin/callbell hub --config /etc/callbell/store.toml" in unit
    assert "LimitNOFILE=65536" in unit and "Type=notify" in unit and "WatchdogSec=30s" in unit
    rotate = (root / "etc/logrotate.d/callbell-hub").read_text()
    assert "/var/lib/callbell/broker/mosquitto.log {" in rotate and "copytruncate" in rotate

    # An upgrade: the edited config and the certificates stay; nothing else changes either.
    config_file.write_text(config_file.read_text().replace('id = "demo-store"', 'id = "store-0042"'))
    before = files_under(root)
    r = subprocess.run(cmd[:-2], capture_output=True, text=True, timeout=600)  # without --broker
    assert r.returncode == 0, r.stdout + r.stderr
    assert "keeping" in r.stdout and "config ok: store store-0042" in r.stdout
    assert "kept ca.crt" in r.stdout and "kept server.crt" in r.stdout
    assert files_under(root) == before


def test_the_hub_install_script_keeps_an_existing_config_when_given_another_broker(tmp_path):
    """--broker writes a new config only; an existing one is not rewritten behind its owner's back."""
    root = tmp_path / "hub"
    config = root / "etc/callbell/store.toml"
    config.parent.mkdir(parents=True)
    config.write_text((ROOT / "examples/store.toml").read_text())
    r = subprocess.run([str(SCRIPT), "--no-apt", "--no-user", "--no-systemd", "--root", str(root),
                        "--host", "hub.lan", "--broker", BROKER], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert config.read_text() == (ROOT / "examples/store.toml").read_text()
    assert f'set [mqtt] url = "{BROKER}" in /etc/callbell/store.toml yourself' in r.stdout


def test_the_hub_install_script_explains_itself():
    r = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "Debian" in r.stdout and "Upgrade" in r.stdout and "Uninstall" in r.stdout
    r = subprocess.run([str(SCRIPT), "--bogus"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown option" in r.stderr
    r = subprocess.run([str(SCRIPT), "--port", "https"], capture_output=True, text=True)
    assert r.returncode == 2 and "--port must be a number" in r.stderr
