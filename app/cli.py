"""``callbell``: the command line of the hub, the device and the demo.

    callbell demo                              # everything on this machine, simulated
    callbell hub --config store.toml           # the hub (embedded broker unless configured)
    callbell check --config store.toml         # every mistake in a config file, without starting anything
    callbell device --config device.toml       # a Raspberry Pi's rooms (real GPIO)
    callbell device --config device.toml --mock   # the same on mock pins, driven by stdin
    callbell simulate --config store.toml      # virtual devices for every room of a store
    callbell seed-history --database h.db --calls 200000 --days 365   # history for statistics
    callbell broker-config --config store.toml --make-certs   # a secured Mosquitto (docs/security.md)
    callbell device provision --config store.toml --device pi-a --out device.toml
    callbell token create --config store.toml --role manager --name grafana   # an API token
    callbell password --associate maria        # a manager's password_hash for store.toml
    callbell backup --config store.toml --to /var/backups/callbell   # safe while the hub runs
    callbell restore --config store.toml --from BACKUP     # the hub stopped (docs/hub.md)
    callbell db recover --config store.toml                # readable rows of a damaged database
    callbell chain broker-config --config chain.toml --make-certs   # a chain's central RabbitMQ and bridges
    callbell chain run --config chain.toml     # head office: events into ClickHouse, the chain page

Every command takes ``--help``. Bad configuration is reported as ``error: FILE line N: key:
what is wrong``, one line per mistake, with exit code 2 (``check``: 1), never as a traceback.
Each command imports what it needs when it runs: reading a config never loads the web stack.
"""
from __future__ import annotations

import argparse
import logging
import os
import socket
import sqlite3
import sys
import threading
from pathlib import Path

from callbell import __version__
from callbell.broker import BrokerError
from callbell.broker_files import (DEFAULT_BROKER_DIR, DEFAULT_BROKER_USER, DEFAULT_DATA_DIR, DEFAULT_DEVICE_CA,
                                   LOCAL_PORT, TLS_PORT)
from app.log_limit import RepeatLimit
from callbell.settings import ConfigError
from app.signals import wait_for_signal

log = logging.getLogger("callbell")

EXIT_CONFIG = 2
EXIT_RUNTIME = 1

#: Environment variable with the hub's broker URL (and password), over the config's [mqtt] url.
HUB_URL_VARIABLE = "CALLBELL_MQTT_URL"


def setup_logging(verbose: int, quiet: bool = False) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for handler in logging.getLogger().handlers:  # a line repeated thousands of times a second
        handler.addFilter(RepeatLimit())          # would fill the disk (app.log_limit)
    if verbose < 2:  # paho's packet log only with -vv
        logging.getLogger("paho").setLevel(logging.WARNING)


# -- commands -----------------------------------------------------------------------------
def cmd_hub(args) -> int:
    from hub.config import load_store_config
    config = load_store_config(args.config)  # the same check as 'callbell check', before the web stack loads
    from hub.service import HubService
    if args.database:
        config.database.path = Path(args.database)
    # The broker URL with the hub's password: from the environment (broker-config's hub.env,
    # systemd's EnvironmentFile), so the secret need not sit in store.toml.
    url = args.broker or os.environ.get(HUB_URL_VARIABLE) or None
    hub = HubService(config, broker_url=url, http_port=args.port, http_host=args.host)
    hub.run()
    return 0


#: Exit status of ``callbell check`` when a file has mistakes (0: all fine).
EXIT_CHECK_FAILED = 1


def cmd_check(args) -> int:
    """Check config files without starting anything: every mistake of each file at once."""
    from callbell.settings import read_toml
    failed = False
    for path in args.config:
        try:
            _, data = read_toml(path)
            kind, load = _config_kind(path, data)
            print(f"{path}: fine: {_config_summary(kind, load(path))}")
        except ConfigError as e:
            failed = True
            for line in str(e).splitlines():
                print(f"error: {line}", file=sys.stderr)
            mistakes = len(str(e).splitlines())
            print(f"{path}: {mistakes} mistake{'s' * (mistakes != 1)}; the examples folder has a complete, "
                  "commented file of each kind (docs/hub.md, Configuration)", file=sys.stderr)
    return EXIT_CHECK_FAILED if failed else 0


def _config_kind(path: Path, data: dict):
    """Which config ``data`` is, by its first table, and the loader that checks it."""
    if "store" in data:
        from hub.config import load_store_config
        return "store", load_store_config
    if "device" in data:
        from firmware.config import load_device_config
        return "device", load_device_config
    if "chain" in data:
        from chain.config import load_chain_config
        return "chain", load_chain_config
    raise ConfigError(f"{path}: neither a store config ([store]), a device config ([device]) nor a chain "
                      "config ([chain]): which is it? (see the examples folder)")


def _config_summary(kind: str, config) -> str:
    if kind == "store":
        return (f"store {config.store.id!r}: {len(config.rooms)} rooms, {len(config.zones)} zones, "
                f"{len(config.associates)} associates, {len(config.devices)} devices")
    if kind == "device":
        return f"device {config.device.id!r} of store {config.device.store!r}: {len(config.rooms)} rooms"
    return f"chain {config.chain.id!r}: {len(config.stores)} stores"


def cmd_device(args) -> int:
    from firmware.config import load_device_config
    if args.action == "provision":
        return cmd_provision(args)
    config = load_device_config(args.config)  # before the GPIO and MQTT libraries load
    if args.action == "selftest":
        return cmd_selftest(args, config)
    from firmware.device import Device
    if args.mock:
        from firmware.console import Console
        console = Console()
        device = Device(config, pin_factory=console.factory, on_display=console.display,
                        broker_url=args.broker)
        console.attach(device)
        device.start()
        try:
            console.serve(sys.stdin)
        except KeyboardInterrupt:
            pass
        finally:
            device.stop()
        return 0
    device = Device(config, broker_url=args.broker)
    device.start()
    try:
        wait_for_signal()
    finally:
        device.stop()
    return 0


def _broker_plan(args, out: Path, **broker_side):
    """Where the broker files are and how devices reach the broker, from the options."""
    from app.broker_config import BrokerPlan
    from callbell.mqtt import BrokerAddress
    try:
        BrokerAddress.parse(f"mqtts://{args.host}:{args.tls_port}")
    except ValueError as e:
        raise ConfigError(f"--host/--tls-port: {e}") from None
    return BrokerPlan(out=out, host=args.host, tls_port=args.tls_port, device_ca=args.device_ca, **broker_side)


def cmd_broker_config(args) -> int:
    from app.broker_config import apply_ownership, write_broker_config
    from hub.config import load_store_config
    config = load_store_config(args.config)
    plan = _broker_plan(args, args.out, local_port=args.local_port or None, data_dir=args.data, user=args.user)
    result = write_broker_config(config, plan, rotate=tuple(args.rotate), certs=args.make_certs)
    print(f"Mosquitto configuration for store {config.store.id!r} in {plan.out}:")
    for w in result.written:
        print(w.line())
    for note in result.notes:
        print(f"note: {note}")
    applied = apply_ownership(plan)
    print("\nOwnership, so Mosquitto (user %r) can read its files and nothing else%s:"
          % (plan.user, " (applied)" if applied else " (run as root)"))
    for step in result.ownership:
        print(f"  {'' if applied else 'sudo '}{step}")
    print(f"\nThen: point Mosquitto at {plan.out / 'mosquitto.conf'} and restart it the first time "
          "(sudo systemctl restart mosquitto; after re-runs a reload is enough: new accounts and ACL, "
          "same listeners); start the hub with the environment of "
          f"{plan.out / 'hub.env'} (docs/security.md). Copy each devices/ID.toml and certs/ca.crt "
          "to its Pi as /etc/callbell/device.toml and /etc/callbell/ca.crt.")
    return 0


def cmd_provision(args) -> int:
    from app.broker_config import find_device, provision
    from callbell.broker_files import FILE_MODES, PasswordFile, write_file
    from hub.config import load_store_config
    if not args.device or not args.out:
        raise ConfigError("device provision needs --device ID and --out device.toml")
    config = load_store_config(args.config)
    find_device(config, args.device)
    plan = _broker_plan(args, args.broker_dir)
    passwd = PasswordFile.load(plan.passwd)
    if not plan.passwd.exists():
        raise ConfigError(f"{plan.passwd}: no such file: run 'callbell broker-config' first "
                          "(or give --broker-dir)")
    written, changed = provision(config, plan, args.device, args.out, passwd, rotate=args.rotate_password)
    if changed:
        write_file(plan.passwd, passwd.text(), FILE_MODES["passwd"])
    for w in written:
        print(w.line())
    if changed:
        print(f"  {plan.passwd}: account {args.device!r} updated; reload Mosquitto to use it: "
              "sudo systemctl reload mosquitto")
    else:
        print("broker unchanged: the device keeps its password")
    return 0


def cmd_token(args) -> int:
    """API tokens (docs/security.md): create prints the token once; only its hash is kept."""
    import re
    import time
    from callbell.protocol import ID_PATTERN
    from hub.config import load_store_config
    config = load_store_config(args.config)  # before the database library loads
    from hub.auth import ROLES, digest, new_token
    from hub.store import Credentials
    credentials = Credentials(Path(args.database) if args.database else config.database.path)
    name = args.name or args.token_name
    if args.action == "list":
        for t in credentials.tokens():
            made = time.strftime("%Y-%m-%d %H:%M", time.localtime(t["created_at"]))
            state = ("revoked " + time.strftime("%Y-%m-%d %H:%M", time.localtime(t["revoked_at"]))
                     if t["revoked_at"] else "active")
            print(f"{t['name']:24} {t['role']:9} made {made}  {state}")
        return 0
    if not name or not re.fullmatch(ID_PATTERN, name):
        raise ConfigError(f"token {args.action} needs a NAME (--name): 1-64 characters of a-z 0-9 - _")
    if args.action == "revoke":
        if not credentials.revoke_token(name, time.time()):
            raise ConfigError(f"no active token named {name!r} ('callbell token list' shows them)")
        print(f"token {name!r} revoked: the running hub refuses it from its next request on")
        return 0
    if args.role not in ROLES:
        raise ConfigError(f"token create needs --role, one of: {', '.join(ROLES)}")
    token = new_token()
    try:
        credentials.add_token(name, args.role, digest(token), time.time())
    except ValueError as e:
        raise ConfigError(str(e)) from None
    print(token)
    print(f"token {name!r} (role {args.role}) made: copy it now, it is not shown again. "
          "Send it as 'Authorization: Bearer <token>'.", file=sys.stderr)
    return 0


def cmd_password(args) -> int:
    """Hash a password for ``password_hash`` in store.toml: asked twice on a terminal, or
    read from the first line of standard input (scripts)."""
    import getpass
    from hub.auth import hash_password
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise ConfigError("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        line = f'password_hash = "{hash_password(password)}"'
    except ValueError as e:
        raise ConfigError(str(e)) from None
    who = f" of [[associates]] id = {args.associate!r}" if args.associate else " of the associate"
    print(f"# put this line in the block{who} in store.toml, then restart the hub:", file=sys.stderr)
    print(line)
    return 0


def cmd_selftest(args, config) -> int:
    from firmware.selftest import SelfTest
    factory = press = None  # real pins; an installer presses the buttons
    if args.mock:
        from firmware.wiring import mock_pins
        factory = mock_pins()
        press = _mock_installer(config, factory)
    test = SelfTest(config, pin_factory=factory, say=lambda line: print(line, flush=True),
                    pattern_s=args.pattern_s, button_timeout_s=args.timeout, press=press)
    return 0 if test.run() else EXIT_RUNTIME


def _mock_installer(config, factory):
    """With mock pins, the program plays the installer and presses each button it asks for."""
    def press(room: str, role: str) -> None:
        r = next(r for r in config.rooms if r.id == room)
        pin = factory.pin(int(getattr(r, role).removeprefix("GPIO")))
        pin.drive_low()
        threading.Event().wait(0.08)
        pin.drive_high()
    return press


def cmd_simulate(args) -> int:
    from app.simulate import Simulation
    from hub.config import load_store_config
    store = load_store_config(args.config)
    url = args.broker or store.mqtt.url or f"mqtt://127.0.0.1:{store.mqtt.embedded_port}"
    sim = Simulation(store, url, Path(args.data), rooms_per_device=args.rooms_per_device)
    sim.start()
    from callbell.mqtt import BrokerAddress
    shown = BrokerAddress.parse(url)  # without the password a URL may carry
    print(f"simulating {len(sim.devices)} device(s) for {len(store.rooms)} room(s) on {shown}; "
          "type 'press ROOM', 'hold ROOM', 'size ROOM', 'presence ROOM'", flush=True)
    try:
        sim.console.serve(sys.stdin)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


def cmd_demo(args) -> int:
    from app.demo import Demo
    Demo(port=args.port, data=Path(args.data), pace=args.pace, fresh=args.fresh).run()
    return 0


def cmd_seed_history(args) -> int:
    import time
    from zoneinfo import ZoneInfo
    from hub.history import Shop, seed_history
    if args.config:
        from hub.config import load_store_config
        store = load_store_config(args.config)
        database = Path(args.database) if args.database else store.database.path
        shop = Shop({r.id: r.zone for r in store.rooms},
                    tuple(a.id for a in store.associates if a.role != "manager") or ("ana",),
                    tuple(store.rooms[0].reasons) if store.rooms else ("help",), store.tz)
    else:
        if not args.database:
            raise ConfigError("give --database FILE (or --config store.toml)")
        database, shop = Path(args.database), Shop.default(ZoneInfo(args.timezone))
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        if args.quiet:
            return
        width = 30
        filled = int(width * done / max(total, 1))
        rate = done / max(time.monotonic() - started, 1e-6)
        print(f"\r[{'#' * filled}{' ' * (width - filled)}] {done * 100 // max(total, 1):3d}% "
              f"{done:,}/{total:,} calls, {rate:,.0f}/s", end="", file=sys.stderr, flush=True)
    def rollup_progress(done: int, total: int) -> None:
        if not args.quiet:
            print(f"\rstatistics roll-ups: {done:,}/{total:,} calls", end="", file=sys.stderr, flush=True)
    n = seed_history(database, shop, args.calls, args.days, until=time.time(), seed=args.seed,
                     progress=progress, rollup_progress=rollup_progress)
    if not args.quiet:
        print(file=sys.stderr)
    print(f"wrote {n:,} calls over {args.days} days into {database}")
    return 0


def cmd_backup(args) -> int:
    """A backup of the database (online, safe while the hub runs), the Web Push key, the
    config and the broker's files (app/backup.py; docs/hub.md, "Backup, restore and recovery")."""
    import time
    from app.backup import backup
    from hub.config import load_store_config
    config = load_store_config(args.config)
    folder = backup(config.database.path, args.config, args.to, broker_dir=args.broker_dir, now=time.time(),
                    say=_say, store=config.store.id)
    print(folder)
    return 0


def cmd_restore(args) -> int:
    """Put a backup in place, the hub stopped; the replaced files are kept aside."""
    import shutil
    import time
    from app.backup import CONFIG_NAME, RestoreError, hub_running, restore
    from hub.config import load_store_config
    if not args.config.exists() and (args.source / CONFIG_NAME).exists():
        shutil.copy2(args.source / CONFIG_NAME, args.config)  # a new machine: the backup's config
        _say(f"store config: {args.config} (from the backup)")
    config = load_store_config(args.config)
    running = hub_running(config.database.path, config.http.host, config.http.port)
    if running:
        raise ConfigError(f"the hub seems to run ({running}): stop it first (sudo systemctl stop callbell-hub), "
                          "then restore")
    try:
        done = restore(args.source, config.database.path, now=time.time(), say=_say, broker_dir=args.broker_dir)
    except RestoreError as e:
        raise ConfigError(str(e)) from None
    for path in done.set_aside:
        _say(f"  kept aside: {path}")
    for note in done.notes:
        _say(f"note: {note}")
    print(f"restored {done.database}; start the hub (sudo systemctl start callbell-hub)")
    return 0


def cmd_db(args) -> int:
    """``callbell db recover``: save the readable rows of a damaged database into a new file."""
    import time
    from app.backup import recover
    from hub.config import load_store_config
    from hub.store import damage
    config = load_store_config(args.config)
    db = config.database.path
    source = args.source
    if source is None:  # the live file, else the newest one the hub set aside at start
        aside = sorted(db.parent.glob(f"{db.name}.damaged-*[0-9Z]"), key=lambda p: p.stat().st_mtime)
        source = db if db.exists() and not aside else (aside[-1] if aside else db)
    if not source.exists():
        raise ConfigError(f"{source}: no such database file (give --from FILE)")
    target = args.to or db.with_name(f"{db.name}.recovered-{damage.stamp(time.time())}")
    _say(f"recovering the readable rows of {source} into {target}")
    results = recover(source, target, _say)
    lost = sum(len(r.skipped) for r in results.values()) + sum(bool(r.error) for t, r in results.items() if t != "rollup")
    saved = sum(r.saved for r in results.values())
    print(f"saved {saved:,} rows into {target}; "
          f"{'nothing found unreadable' if not lost else f'{lost} part(s) could not be read (listed above)'}")
    print(f"to use it: stop the hub, then: callbell restore --config {args.config} --from {target}")
    return 0


def _say(line: str) -> None:
    """Progress of a long command, on stderr (stdout keeps the result, for scripts)."""
    print(line, file=sys.stderr, flush=True)


def _broker_address_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default=f"{socket.gethostname()}.local",
                   help="the broker's name as devices reach it, in its certificate (default: %(default)s)")
    p.add_argument("--tls-port", type=int, default=TLS_PORT, help="the TLS listener's port (default: %(default)s)")
    p.add_argument("--device-ca", default=DEFAULT_DEVICE_CA,
                   help="where the CA certificate is on the device (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="callbell",
        description="Callbell: fitting-room call buttons, door lamps and a floor dashboard.",
        epilog="Start with 'callbell demo', then open the printed address.")
    p.add_argument("--version", action="version", version=f"callbell {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="debug log output (-vv: with MQTT packets)")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    h = sub.add_parser("hub", help="run the hub: MQTT consumer, database, API and dashboard",
                       description="Run the hub. With no [mqtt] url in the config it starts and "
                                   "supervises an embedded Mosquitto broker.")
    h.add_argument("--config", "-c", required=True, type=Path, help="store config (TOML), e.g. examples/store.toml")
    h.add_argument("--port", type=int, help="HTTP port (default: config http.port, 8080)")
    h.add_argument("--host", help="HTTP address to listen on (default: config http.host)")
    h.add_argument("--broker", help="broker URL, overriding the config (mqtt://host:port)")
    h.add_argument("--database", help="SQLite file, overriding the config")
    h.set_defaults(func=cmd_hub)

    c = sub.add_parser("check", help="check config files: every mistake at once, nothing started",
                       description="Read each config file (store.toml, device.toml or chain.toml, told apart "
                                   "by their first table) and report every mistake at once, one line each: "
                                   "FILE line N: key: what is wrong (and how to put it right where the "
                                   "hub can tell). Starts nothing and touches no database or broker, so it "
                                   "is safe beside a running hub. 'callbell hub' makes the same check "
                                   "when it starts.",
                       epilog="Exit status: 0 when every file is fine, 1 when any has a mistake. "
                              "Example: callbell check --config /etc/callbell/store.toml")
    c.add_argument("--config", "-c", required=True, type=Path, action="append", metavar="FILE",
                   help="a config file (TOML); repeat to check several, e.g. -c store.toml -c device.toml")
    c.set_defaults(func=cmd_check)

    d = sub.add_parser("device", help="run a device (a Raspberry Pi's rooms), or its self-test",
                       description="Run the device program for the rooms in device.toml, or "
                                   "'callbell device selftest' to check every lamp and button.")
    d.add_argument("action", nargs="?", choices=("run", "selftest", "provision"), default="run",
                   help="run (default): the device program; selftest: cycle every lamp pattern, "
                        "then wait for each button (for installers; no network needed); provision "
                        "(on the broker's machine): give a device of store.toml its broker account "
                        "and write its device.toml")
    d.add_argument("--config", "-c", required=True, type=Path,
                   help="device config (TOML), e.g. examples/device.toml; for provision: the store config")
    d.add_argument("--pattern-s", type=float, default=2.5, help="selftest: seconds per lamp pattern (default: %(default)s)")
    d.add_argument("--timeout", type=float, default=30.0, help="selftest: seconds to wait for each button (default: %(default)s)")
    d.add_argument("--mock", action="store_true",
                   help="gpiozero's mock pins instead of GPIO: 'run' then reads 'press ROOM' etc. from "
                        "stdin (docs/firmware.md); 'selftest' presses the buttons itself")
    d.add_argument("--broker", help="broker URL, overriding the config")
    d.add_argument("--device", help="provision: the device's id in the store config's [[devices]]")
    d.add_argument("--out", type=Path, help="provision: the device.toml to write (an existing one keeps "
                                            "all but its broker line, and its password if still valid)")
    d.add_argument("--broker-dir", type=Path, default=DEFAULT_BROKER_DIR,
                   help="provision: the folder broker-config wrote (default: %(default)s)")
    d.add_argument("--rotate-password", action="store_true", help="provision: a new password even if "
                                                                  "the old one is still valid")
    _broker_address_options(d)
    d.set_defaults(func=cmd_device)

    b = sub.add_parser("broker-config", help="write a secured Mosquitto configuration for the store",
                       description="Write mosquitto.conf, passwd (hashed), acl, the hub's broker URL "
                                   "(hub.env) and new devices' device.toml files from the store config's "
                                   "[[devices]]. Re-running keeps passwords (docs/security.md).")
    b.add_argument("--config", "-c", required=True, type=Path, help="store config (TOML)")
    b.add_argument("--out", type=Path, default=DEFAULT_BROKER_DIR, help="folder to write (default: %(default)s)")
    b.add_argument("--make-certs", action="store_true",
                   help="make a CA and a server certificate for --host with openssl (kept if present)")
    b.add_argument("--rotate", action="append", default=[], metavar="DEVICE",
                   help="new password for this device (or 'hub'); repeatable")
    b.add_argument("--local-port", type=int, default=LOCAL_PORT,
                   help="plain listener on 127.0.0.1 for the hub, 0 for none (default: %(default)s)")
    b.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR,
                   help="Mosquitto's persistence folder (default: %(default)s)")
    b.add_argument("--user", default=DEFAULT_BROKER_USER,
                   help="the user Mosquitto runs as (default: %(default)s)")
    _broker_address_options(b)
    b.set_defaults(func=cmd_broker_config)

    t = sub.add_parser("token", help="API tokens for other programs: create, list, revoke",
                       description="Tokens let programs (Grafana, a till, a script) call the API with "
                                   "'Authorization: Bearer <token>'. create prints the token once; the "
                                   "database keeps only its hash. Safe while the hub runs.")
    t.add_argument("action", choices=("create", "list", "revoke"))
    t.add_argument("token_name", nargs="?", metavar="NAME", help="the token's name (or --name)")
    t.add_argument("--config", "-c", required=True, type=Path, help="store config (TOML): its database")
    t.add_argument("--name", help="create/revoke: the token's name, e.g. grafana")
    t.add_argument("--role", help="create: device (health only), associate, manager or admin")
    t.add_argument("--database", help="SQLite file, overriding the config")
    t.set_defaults(func=cmd_token)

    w = sub.add_parser("password", help="hash a password for a manager's password_hash in store.toml",
                       description="Ask for a password (or read one line from stdin) and print the "
                                   "password_hash line for the associate's block in store.toml.")
    w.add_argument("--associate", help="whose password (only shown in the instruction)")
    w.set_defaults(func=cmd_password)

    s = sub.add_parser("simulate", help="virtual devices (mock pins) for every room of a store",
                       description="One virtual device per group of rooms, driven by stdin lines.")
    s.add_argument("--config", "-c", required=True, type=Path, help="store config (TOML)")
    s.add_argument("--broker", help="broker URL (default: the config's, or the embedded broker's port)")
    s.add_argument("--data", default="var/simulate", help="folder for the devices' outboxes (default: %(default)s)")
    s.add_argument("--rooms-per-device", type=int, default=4, help="rooms per virtual Pi (default: %(default)s)")
    s.set_defaults(func=cmd_simulate)

    g = sub.add_parser("seed-history", help="write a realistic call history into a database (for statistics)",
                       description="Generate calls over past days (hourly and weekly pattern, zones, "
                                   "rooms, associates' shifts) and write them with their events into "
                                   "a database. It writes the file directly: never run it on the "
                                   "database of a running hub (stop the hub first, or use a copy).")
    g.add_argument("--calls", type=int, default=10_000, help="calls to write (default: %(default)s)")
    g.add_argument("--days", type=int, default=90, help="days of history, up to yesterday (default: %(default)s)")
    g.add_argument("--database", help="SQLite file to write to (default: the config's database)")
    g.add_argument("--config", "-c", type=Path, help="store config (TOML): its rooms, zones, associates and "
                                                      "time zone (default: a built-in store of 16 rooms)")
    g.add_argument("--timezone", default="Europe/Berlin", help="time zone without --config (default: %(default)s)")
    g.add_argument("--seed", type=int, default=1, help="random seed; the same seed writes the same history")
    g.set_defaults(func=cmd_seed_history)

    m = sub.add_parser("demo", help="run everything on this machine with simulated shoppers and associates",
                       description="Embedded broker and database, the hub, simulated devices for the "
                                   "example store, and simulated shoppers and associates.")
    m.add_argument("--port", type=int, default=8080, help="HTTP port of the dashboard (default: %(default)s)")
    m.add_argument("--data", default="var/demo", help="folder for the demo's database and broker (default: %(default)s)")
    m.add_argument("--pace", type=float, default=1.0, help="speed of the simulated store, 2 = twice as busy (default: 1)")
    m.add_argument("--fresh", action="store_true", help="start with an empty database")
    m.set_defaults(func=cmd_demo)

    _add_backup_parsers(sub)

    from chain.cli import add_parser as add_chain  # head office: docs/chain.md
    add_chain(sub)
    return p


def _add_backup_parsers(sub) -> None:
    """backup, restore, db recover (docs/hub.md, "Backup, restore and recovery")."""
    k = sub.add_parser("backup", help="back up the database (while the hub runs), Web Push key, config, broker files",
                       description="Copy the database with SQLite's online backup API (safe while the hub "
                                   "runs), the Web Push key, the store config and the broker's files into "
                                   "one timestamped folder with a manifest of SHA-256 checksums.")
    k.add_argument("--config", "-c", required=True, type=Path, help="store config (TOML)")
    k.add_argument("--to", required=True, type=Path, help="folder to put the backup folder in")
    k.add_argument("--broker-dir", type=Path, default=DEFAULT_BROKER_DIR,
                   help="the folder broker-config wrote, included if it exists (default: %(default)s)")
    k.set_defaults(func=cmd_backup)

    r = sub.add_parser("restore", help="put a backup in place (the hub stopped)",
                       description="Restore a backup folder (or a database file, e.g. from 'db recover'). "
                                   "Refuses while the hub runs; the files it replaces are kept aside.")
    r.add_argument("--config", "-c", required=True, type=Path,
                   help="store config (TOML); if missing, the backup's copy is put there")
    r.add_argument("--from", dest="source", required=True, type=Path, help="backup folder or database file")
    r.add_argument("--broker-dir", type=Path, help="also put the broker's files back into this folder")
    r.set_defaults(func=cmd_restore)

    db = sub.add_parser("db", help="database repair: db recover",
                        description="'db recover' reads every row it still can from a damaged database "
                                    "into a new file and reports what was saved and lost.")
    db.add_argument("action", choices=("recover",))
    db.add_argument("--config", "-c", required=True, type=Path, help="store config (TOML)")
    db.add_argument("--from", dest="source", type=Path,
                    help="the damaged file (default: the newest the hub set aside, else the database)")
    db.add_argument("--to", type=Path, help="the new file (default: beside the database, .recovered-TIME)")
    db.set_defaults(func=cmd_db)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_CONFIG
    setup_logging(args.verbose, args.quiet)
    try:
        return args.func(args)
    except ConfigError as e:
        for line in str(e).splitlines():  # every mistake, each on its own line
            print(f"error: {line}", file=sys.stderr)
        return EXIT_CONFIG
    except BrokerError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_RUNTIME
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_RUNTIME
    except sqlite3.DatabaseError as e:  # a damaged or foreign database file
        print(f"error: cannot use the database: {e}", file=sys.stderr)
        return EXIT_RUNTIME
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
