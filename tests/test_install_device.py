"""scripts/install-device, run into a scratch root (no apt, no user, no systemd)."""
import subprocess

from tests.helpers import ROOT


def test_the_pi_install_script_builds_a_venv_a_config_and_a_unit_and_keeps_the_config_on_upgrade(tmp_path):
    root = tmp_path / "pi"
    cmd = [str(ROOT / "scripts" / "install-device"), "--no-apt", "--no-user", "--no-systemd", "--root", str(root)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "config ok: device pi-fitting-a" in r.stdout
    venv = root / "opt/callbell/venv"
    assert subprocess.run([str(venv / "bin/callbell"), "--version"], capture_output=True, text=True).stdout.startswith("callbell ")
    assert "include-system-site-packages = true" in (venv / "pyvenv.cfg").read_text()
    config = root / "etc/callbell/device.toml"
    assert 'outbox = "/var/lib/callbell/outbox.db"' in config.read_text()
    unit = (root / "etc/systemd/system/callbell-device.service").read_text()
    assert "ExecStart=/opt/callbell/venv/bin/callbell device --config /etc/callbell/device.toml" in unit
    assert "@" not in unit.split("[Service]")[1].split("[Install]")[0].replace("SupplementaryGroups", "")

    config.write_text(config.read_text().replace('id = "pi-fitting-a"', 'id = "pi-backroom"'))
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)  # an upgrade
    assert r.returncode == 0 and "keeping" in r.stdout and "device pi-backroom" in r.stdout


def test_the_pi_install_script_turns_the_hardware_watchdog_on_once(tmp_path):
    """systemd pings the Pi's watchdog (system.conf.d); the boot config enables it, and a
    second run does not add the line again. The unit is watched by systemd too."""
    root = tmp_path / "pi"
    boot = root / "boot/firmware/config.txt"
    boot.parent.mkdir(parents=True)
    boot.write_text("[all]\ndtparam=audio=on\n")
    cmd = [str(ROOT / "scripts" / "install-device"), "--no-apt", "--no-user", "--no-systemd", "--root", str(root)]
    for run in range(2):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
    conf = (root / "etc/systemd/system.conf.d/callbell-watchdog.conf").read_text()
    assert "[Manager]" in conf and "RuntimeWatchdogSec=15s" in conf
    text = boot.read_text()
    assert text.startswith("[all]\ndtparam=audio=on\n") and text.count("dtparam=watchdog=on") == 1
    assert "keeping /boot/firmware/config.txt (watchdog already on)" in r.stdout
    unit = (root / "etc/systemd/system/callbell-device.service").read_text()
    assert "Type=notify" in unit and "WatchdogSec=20s" in unit


def test_the_pi_install_script_explains_itself():
    r = subprocess.run([str(ROOT / "scripts" / "install-device"), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "Raspberry Pi" in r.stdout and "Upgrade" in r.stdout
    r = subprocess.run([str(ROOT / "scripts" / "install-device"), "--bogus"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown option" in r.stderr
