"""``callbell``: the command line of the hub, the device and the demo.

    callbell demo                              # everything on this machine, simulated
    callbell hub --config store.toml           # the hub (embedded broker unless configured)
    callbell device --config device.toml       # a Raspberry Pi's rooms (real GPIO)
    callbell device --config device.toml --mock   # the same on mock pins, driven by stdin
    callbell simulate --config store.toml      # virtual devices for every room of a store
    callbell seed-history --database h.db --calls 200000 --days 365   # history for statistics

Every command takes ``--help``. Bad configuration is reported as ``error: FILE line N: key:
what is wrong`` with exit code 2, never as a traceback.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sqlite3
import sys
import threading
from pathlib import Path

from callbell import __version__
from callbell.broker import BrokerError
from callbell.settings import ConfigError

log = logging.getLogger("callbell")

EXIT_CONFIG = 2
EXIT_RUNTIME = 1


def setup_logging(verbose: int, quiet: bool = False) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if verbose < 2:  # paho's packet log only with -vv
        logging.getLogger("paho").setLevel(logging.WARNING)


def wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass


# -- commands -----------------------------------------------------------------------------
def cmd_hub(args) -> int:
    from hub.config import load_store_config
    from hub.service import HubService
    config = load_store_config(args.config)
    if args.database:
        config.database.path = Path(args.database)
    hub = HubService(config, broker_url=args.broker, http_port=args.port, http_host=args.host)
    hub.run()
    return 0


def cmd_device(args) -> int:
    from firmware.config import load_device_config
    from firmware.device import Device
    config = load_device_config(args.config)
    if args.action == "selftest":
        return cmd_selftest(args, config)
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
    from firmware.simulate import Simulation
    from hub.config import load_store_config
    store = load_store_config(args.config)
    url = args.broker or store.mqtt.url or f"mqtt://127.0.0.1:{store.mqtt.embedded_port}"
    sim = Simulation(store, url, Path(args.data), rooms_per_device=args.rooms_per_device)
    sim.start()
    print(f"simulating {len(sim.devices)} device(s) for {len(store.rooms)} room(s) on {url}; "
          "type 'press ROOM', 'hold ROOM', 'size ROOM', 'presence ROOM'", flush=True)
    try:
        sim.console.serve(sys.stdin)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


def cmd_demo(args) -> int:
    from callbell.demo import Demo
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
    n = seed_history(database, shop, args.calls, args.days, until=time.time(), seed=args.seed,
                     progress=progress)
    if not args.quiet:
        print(file=sys.stderr)
    print(f"wrote {n:,} calls over {args.days} days into {database}")
    return 0


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

    d = sub.add_parser("device", help="run a device (a Raspberry Pi's rooms), or its self-test",
                       description="Run the device program for the rooms in device.toml, or "
                                   "'callbell device selftest' to check every lamp and button.")
    d.add_argument("action", nargs="?", choices=("run", "selftest"), default="run",
                   help="run (default): the device program; selftest: cycle every lamp pattern, "
                        "then wait for each button (for installers; no network needed)")
    d.add_argument("--config", "-c", required=True, type=Path, help="device config (TOML), e.g. examples/device.toml")
    d.add_argument("--pattern-s", type=float, default=2.5, help="selftest: seconds per lamp pattern (default: %(default)s)")
    d.add_argument("--timeout", type=float, default=30.0, help="selftest: seconds to wait for each button (default: %(default)s)")
    d.add_argument("--mock", action="store_true",
                   help="gpiozero's mock pins instead of GPIO: 'run' then reads 'press ROOM' etc. from "
                        "stdin (docs/firmware.md); 'selftest' presses the buttons itself")
    d.add_argument("--broker", help="broker URL, overriding the config")
    d.set_defaults(func=cmd_device)

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
    return p


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
        print(f"error: {e}", file=sys.stderr)
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
