"""A production Mosquitto for a store: accounts, ACL, TLS and persistence from ``store.toml``.

``callbell broker-config`` writes into one folder (default ``/etc/mosquitto/callbell``):

- ``mosquitto.conf``: no anonymous clients; a TLS listener for the LAN; optionally a plain
  listener on 127.0.0.1 for the hub on the same machine; persistence saved on changes;
- ``passwd``: one account per device (``device-{id}``) and one for the hub
  (``callbell-hub``), each password hashed as Mosquitto's PBKDF2-SHA512 (``$7$``);
- ``acl``: the hub may do anything under its store's topics; a device may publish only its
  own rooms' events and its own status and health, and read only its own rooms' lamps, the
  hub's status and its own rejections (``device/{id}/rejected``) (docs/security.md has the table);
- ``hub.env``: the hub's broker URL with its password (``CALLBELL_MQTT_URL``, read by
  ``callbell hub``);
- ``devices/{id}.toml``: a freshly generated device's ``device.toml``, the only place its
  password is in plain text;
- ``certs/``: with ``--make-certs``, a small CA and a server certificate made with openssl.

``callbell device provision`` creates or reuses one device's account and writes its
``device.toml``. Passwords are hashed here rather than with ``mosquitto_passwd -b``, which
would put each password on a command line any local user can read in ``ps``; the format is
the one ``mosquitto_passwd`` writes and the tests check a real Mosquitto accepts it.
"""
from __future__ import annotations

import grp
import os
import pwd
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from callbell.broker import MAX_QUEUED_MESSAGES, PERSISTENT_CLIENT_EXPIRATION, SYS_INTERVAL_S
from callbell.protocol import Topics
from callbell.broker_files import (DEFAULT_BROKER_USER, DEFAULT_DATA_DIR, DEFAULT_DEVICE_CA, FILE_MODES, LOCAL_PORT,
                                   TLS_PORT, PasswordFile, Written, make_certs, new_password, password_in,
                                   write_file)
from callbell.settings import ConfigError

#: The hub's account name. Device accounts are ``device-{id}``, so no device id can take it.
HUB_USER = "callbell-hub"

#: With ``autosave_on_changes``, Mosquitto saves after this many changes to messages and
#: subscriptions: 1 saves after every one, so a crash loses at most the message it was
#: handling. It rewrites the whole file each time (~2 ms for a store's few retained lamps and
#: queued events) — a store's press rate makes that a few writes a minute. The embedded
#: broker (callbell/broker.py) trades this for latency; a production broker should not.
AUTOSAVE_EVERY_CHANGES = 1

def device_user(device_id: str) -> str:
    return f"device-{device_id}"


# -- mosquitto.conf and acl ------------------------------------------------------------------
@dataclass
class BrokerPlan:
    """What ``broker-config`` writes, and where the broker is reached."""
    out: Path
    host: str
    tls_port: int = TLS_PORT
    local_port: int | None = LOCAL_PORT  # None: no plain listener; the hub uses TLS too
    data_dir: Path = DEFAULT_DATA_DIR
    user: str = DEFAULT_BROKER_USER
    device_ca: str = DEFAULT_DEVICE_CA

    def __post_init__(self):
        self.out = Path(self.out).resolve()
        self.data_dir = Path(self.data_dir).resolve()

    @property
    def passwd(self) -> Path:
        return self.out / "passwd"

    @property
    def acl(self) -> Path:
        return self.out / "acl"

    @property
    def certs(self) -> Path:
        return self.out / "certs"

    @property
    def ca_file(self) -> Path:
        return self.certs / "ca.crt"

    def device_url(self, device_id: str, password: str, ca: str | None = None) -> str:
        """The broker URL a device connects with: TLS, its own account, the CA to trust."""
        return (f"mqtts://{device_user(device_id)}:{password}@{self.host}:{self.tls_port}"
                f"?ca={quote(ca or self.device_ca, safe='/')}")

    def hub_url(self, password: str) -> str:
        if self.local_port:
            return f"mqtt://{HUB_USER}:{password}@127.0.0.1:{self.local_port}"
        return f"mqtts://{HUB_USER}:{password}@{self.host}:{self.tls_port}?ca={quote(str(self.ca_file), safe='/')}"


def mosquitto_conf(plan: BrokerPlan, store_id: str) -> str:
    c = plan.certs
    lines = [
        f"# Mosquitto for Callbell store {store_id!r}, written by 'callbell broker-config'.",
        "# Re-run it after changing [[devices]] in store.toml, then: sudo systemctl reload mosquitto",
        "# (docs/security.md). Edits here are overwritten.",
        "",
        "# Every client signs in with its own account and is held to the ACL.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {plan.passwd}",
        f"acl_file {plan.acl}",
        "",
        "# The LAN (devices, phones' networks) reaches the broker only over TLS. On every",
        "# listener a client's id is its account name: one account cannot take over another's",
        "# session, nor push it off the broker, by connecting with its client id.",
        f"listener {plan.tls_port}",
        "use_username_as_clientid true",
        f"cafile {c / 'ca.crt'}",
        f"certfile {c / 'server.crt'}",
        f"keyfile {c / 'server.key'}",
        "tls_version tlsv1.2",
    ]
    if plan.local_port:
        lines += [
            "",
            "# The hub on this machine, without TLS: bound to the loopback address, so nothing",
            "# on the LAN can reach it (it still needs the hub's account).",
            f"listener {plan.local_port} 127.0.0.1",
            "use_username_as_clientid true",
        ]
    lines += [
        "",
        "# Queued QoS 1 messages (presses for a hub that is down, lamps for a device that is",
        "# off) survive a broker restart; saved after every change, not every 30 minutes.",
        "persistence true",
        f"persistence_location {plan.data_dir}/",
        "persistence_file mosquitto.db",
        "autosave_on_changes true",
        f"autosave_interval {AUTOSAVE_EVERY_CHANGES}",
        f"persistent_client_expiration {PERSISTENT_CLIENT_EXPIRATION}",
        "",
        "# The default (1000) silently drops messages for a client that is away: a hub down",
        f"# over a busy weekend would lose presses. {MAX_QUEUED_MESSAGES} covers days of a store.",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        "set_tcp_nodelay true",
        "# Past it messages are dropped without a word to their sender; the hub watches this",
        "# broker's $SYS count of them and raises a 'broker_dropping' trouble when it moves.",
        f"sys_interval {SYS_INTERVAL_S}",
        "",
        "# Started as root, Mosquitto reads the listeners' keys, then runs as this user, which",
        "# must be able to read passwd, acl and server.key and write persistence_location.",
        f"user {plan.user}",
        "",
    ]
    if (plan.out / "chain").is_dir():
        lines += ["# The bridge out to the chain's central broker ('callbell chain store-config', docs/chain.md).",
                  f"include_dir {plan.out / 'chain'}", ""]
    return "\n".join(lines)


def acl_text(config, extra: str = "") -> str:
    """The ACL: the hub's account, then each configured device's. Anything not listed is denied."""
    t = Topics(config.mqtt.prefix, config.store.id)
    lines = [
        f"# Mosquitto ACL for Callbell store {config.store.id!r}, written by 'callbell broker-config'",
        "# from store.toml's [[devices]]. Anything not granted here is denied. Add your own",
        "# accounts' rules (Home Assistant, Zigbee2MQTT, Shelly) to acl.local next to this file:",
        "# they are appended below.",
        "",
        "# The hub: everything of its store; Home Assistant discovery and its status; the",
        "# third-party buttons of store.toml's [[buttons]] (read only).",
        f"user {HUB_USER}",
        f"topic readwrite {t.base}/#",
        f"topic readwrite {config.home_assistant.discovery_prefix}/#",
        "# The broker's counts of dropped and held messages (hub.mqtt_edge.BrokerWatch).",
        "topic read $SYS/broker/publish/messages/dropped",
        "topic read $SYS/broker/store/messages/count",
    ]
    from hub.third_party_buttons import Button
    lines += [f"topic read {topic}" for topic in dict.fromkeys(Button.from_config(b).topic for b in config.buttons)]
    lines.append("")
    for d in config.devices:
        lines += [f"# Device {d.id}{' (' + d.name + ')' if d.name else ''}: rooms {', '.join(d.rooms)}",
                  f"user {device_user(d.id)}"]
        for room in d.rooms:
            lines += [f"topic write {t.event(room)}", f"topic read {t.lamp(room)}"]
        lines += [
            f"topic write {t.device_status(d.id)}",
            f"topic write {t.device_health(d.id)}",
            f"topic read {t.hub_status}",
            f"topic read {t.device_rejected(d.id)}",  # its own refusals only (issue 28)
            "",
        ]
    if extra.strip():
        lines += ["# From acl.local:", extra.rstrip(), ""]
    return "\n".join(lines)


# -- certificates ----------------------------------------------------------------------------
# -- device.toml ---------------------------------------------------------------------------------
_BROKER_LINE = re.compile(r"^broker\s*=.*$", re.M)
_DEVICE_TABLE = re.compile(r"^\[device\][^\n]*$", re.M)


def device_toml(config, device, url: str, existing: str | None = None) -> str:
    """A device.toml for ``device``; an existing one keeps everything but its broker line."""
    from firmware.pinmap import DEFAULT_SLOTS
    if existing is not None:
        if _BROKER_LINE.search(existing):
            return _BROKER_LINE.sub(lambda m: f'broker = "{url}"', existing, count=1)
        return _DEVICE_TABLE.sub(lambda m: f'{m.group(0)}\nbroker = "{url}"', existing, count=1)
    if len(device.rooms) > len(DEFAULT_SLOTS):
        raise ConfigError(f"device {device.id!r} has {len(device.rooms)} rooms and the default pin map "
                          f"{len(DEFAULT_SLOTS)} slots: write its device.toml's [[rooms]] pins by hand "
                          "(docs/firmware.md), then provision with --out naming that file "
                          "(only its broker line is replaced)")
    lines = [
        f"# Device {device.id!r} of store {config.store.id!r}, written by 'callbell device provision'.",
        "# It holds this device's broker password: keep it readable by its service only (chmod 600).",
        "",
        "[device]",
        f'id = "{device.id}"',
        f'store = "{config.store.id}"',
        f'prefix = "{config.mqtt.prefix}"',
        f'broker = "{url}"',
        'outbox = "outbox.db"',
    ]
    for slot, room in enumerate(device.rooms, start=1):
        lines += ["", "[[rooms]]", f'id = "{room}"', f"slot = {slot}                             "
                  "# the default pin map (hardware/pinmap.md)"]
    return "\n".join(lines) + "\n"


def find_device(config, device_id: str):
    for d in config.devices:
        if d.id == device_id:
            return d
    known = ", ".join(d.id for d in config.devices) or "none: add [[devices]] to store.toml"
    raise ConfigError(f"--device: no device {device_id!r} in the store config (devices: {known})")


def provision(config, plan: BrokerPlan, device_id: str, out: Path, passwd: PasswordFile,
              rotate: bool = False) -> tuple[list[Written], bool]:
    """Give ``device_id`` an account (reusing a password that still matches) and write its
    device.toml to ``out`` with the CA next to it. Returns what was written and whether the
    passwd file changed (then Mosquitto must reload)."""
    device = find_device(config, device_id)
    user = device_user(device_id)
    out = Path(out)
    password = None
    if not rotate:
        for candidate in (out, plan.out / "devices" / f"{device_id}.toml"):
            found = password_in(candidate, user)
            if passwd.verifies(user, found):
                password = found
                break
    changed = password is None
    if changed:
        password = new_password()
        passwd.set(user, password)
    existing = None
    if out.exists():
        existing = out.read_text()
        try:
            table = tomllib.loads(existing).get("device", {})
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{out}: not valid TOML: {e}") from None
        if table.get("id") != device_id:
            raise ConfigError(f"{out}: is the device.toml of {table.get('id')!r}, not {device_id!r}")
    written = []
    ca_ref = plan.device_ca
    if plan.ca_file.exists() and out.parent.resolve() != plan.certs:
        ca_copy = out.parent / "ca.crt"
        write_file(ca_copy, plan.ca_file.read_text(), FILE_MODES["ca.crt"])
        written.append(Written(ca_copy, "CA certificate for the device"))
    write_file(out, device_toml(config, device, plan.device_url(device_id, password, ca_ref), existing),
               FILE_MODES["device.toml"])
    written.insert(0, Written(out, f"device.toml of {device_id} ({'new' if changed else 'same'} password; "
                                   f"broker {plan.host}:{plan.tls_port}, CA at {ca_ref} on the device)"))
    return written, changed


# -- broker-config ----------------------------------------------------------------------------
@dataclass
class Result:
    written: list[Written]
    notes: list[str]
    ownership: list[str]


def write_broker_config(config, plan: BrokerPlan, *, rotate: tuple[str, ...] = (),
                        certs: bool = False) -> Result:
    """Write (or refresh) every broker file for ``config``; see the module docstring."""
    known = {"hub"} | {d.id for d in config.devices}
    for r in rotate:
        if r not in known:
            raise ConfigError(f"--rotate: no device {r!r} (give a device id from [[devices]], or 'hub')")
    plan.out.mkdir(parents=True, exist_ok=True)
    written: list[Written] = []
    notes: list[str] = []
    if certs:
        written += make_certs(plan.certs, plan.host, config.store.id)
    elif not (plan.certs / "server.crt").exists():
        notes.append(f"no TLS certificate yet: run again with --make-certs, or put ca.crt, server.crt "
                     f"and server.key into {plan.certs} (docs/security.md)")

    passwd = PasswordFile.load(plan.passwd)
    ours = {HUB_USER} | {device_user(d.id) for d in config.devices}
    for user in [u for u in passwd.entries if u.startswith("device-") and u not in ours]:
        del passwd.entries[user]  # a device taken out of store.toml loses its account
        notes.append(f"removed the account of {user} (no longer in [[devices]])")

    hub_env = plan.out / "hub.env"
    hub_password = None if "hub" in rotate else password_in(hub_env, HUB_USER)
    kept = passwd.verifies(HUB_USER, hub_password)
    if not kept:
        hub_password = new_password()
        passwd.set(HUB_USER, hub_password)
    write_file(hub_env, "# The hub's broker account, read by 'callbell hub' (systemd: EnvironmentFile=).\n"
                        f"CALLBELL_MQTT_URL={plan.hub_url(hub_password)}\n", FILE_MODES["hub.env"])
    written.append(Written(hub_env, f"the hub's broker URL and password (CALLBELL_MQTT_URL; "
                                    f"{'same' if kept else 'new'} password)"))

    for d in config.devices:
        user = device_user(d.id)
        if user in passwd.entries and d.id not in rotate:
            continue  # keeps its password; its device.toml is wherever it was provisioned to
        files, _ = provision(config, plan, d.id, plan.out / "devices" / f"{d.id}.toml", passwd, rotate=True)
        written += [f for f in files if f.path not in {w.path for w in written}]
    if not config.devices:
        notes.append("no [[devices]] in the store config: no device can connect (docs/security.md)")

    write_file(plan.passwd, passwd.text(), FILE_MODES["passwd"])
    written.append(Written(plan.passwd, f"{len(passwd.entries)} account(s), PBKDF2-SHA512 hashes"))
    local = plan.out / "acl.local"
    write_file(plan.acl, acl_text(config, local.read_text() if local.exists() else ""), FILE_MODES["acl"])
    written.append(Written(plan.acl, f"the hub's and {len(config.devices)} device(s)' topics"))
    conf = plan.out / "mosquitto.conf"
    write_file(conf, mosquitto_conf(plan, config.store.id), FILE_MODES["mosquitto.conf"])
    written.append(Written(conf, f"TLS on {plan.tls_port}" + (f", hub on 127.0.0.1:{plan.local_port}"
                                                              if plan.local_port else "")))
    return Result(written, notes, ownership_steps(plan))


def ownership_steps(plan: BrokerPlan) -> list[str]:
    """The commands that let Mosquitto, once it runs as ``plan.user``, read what it needs and
    nothing else. Applied here when run as root; printed for the record either way."""
    try:
        group = grp.getgrgid(pwd.getpwnam(plan.user).pw_gid).gr_name
    except KeyError:
        group = plan.user
    o, c = plan.out, plan.certs
    steps = [
        f"chown root:{group} {o} {o / 'passwd'} {o / 'acl'}",
        f"chmod 0750 {o}",
        f"chmod 0640 {o / 'passwd'} {o / 'acl'}",
        f"chown -R root:root {o / 'devices'} {o / 'hub.env'}" if (o / "devices").exists()
        else f"chown root:root {o / 'hub.env'}",
        f"install -d -o {plan.user} -g {group} -m 0700 {plan.data_dir}",
    ]
    if c.exists():
        steps[1:1] = [f"chown root:{group} {c} {c / 'server.key'}", f"chmod 0750 {c}",
                      f"chmod 0640 {c / 'server.key'}"]
    return steps


def apply_ownership(plan: BrokerPlan) -> bool:
    """Run :func:`ownership_steps` when we are root and the user exists; False otherwise."""
    if os.geteuid() != 0:
        return False
    try:
        pw = pwd.getpwnam(plan.user)
    except KeyError:
        return False
    gid = pw.pw_gid
    plan.data_dir.mkdir(parents=True, exist_ok=True)
    os.chown(plan.data_dir, pw.pw_uid, gid)
    os.chmod(plan.data_dir, 0o700)
    for path, mode in ((plan.out, 0o750), (plan.passwd, 0o640), (plan.acl, 0o640),
                       (plan.certs, 0o750), (plan.certs / "server.key", 0o640)):
        if path.exists():
            os.chown(path, 0, gid)
            os.chmod(path, mode)
    return True
