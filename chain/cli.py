"""``callbell chain``: head office's commands (docs/chain.md).

    callbell chain broker-config --config chain.toml --out /etc/rabbitmq/callbell --make-certs
    callbell chain store-config --config store.toml --bundle stores/berlin   # on a store's broker machine
    callbell chain run --config chain.toml        # consumer into ClickHouse + the chain page
"""
from __future__ import annotations

from pathlib import Path

#: Where ``chain broker-config`` writes, unless told otherwise.
DEFAULT_CENTRAL_DIR = Path("/etc/rabbitmq/callbell")


def cmd_broker_config(args) -> int:
    from chain.broker_config import CentralPlan, write_chain_broker_config
    from chain.config import load_chain_config
    config = load_chain_config(args.config)
    b = config.broker
    plan = CentralPlan(out=args.out, host=args.host or b.host, addresses=tuple(b.addresses),
                       tls_port=b.tls_port, local_port=b.local_port, vhost=b.vhost, store_ca=args.store_ca)
    result = write_chain_broker_config(config, plan, certs=args.make_certs, rotate=tuple(args.rotate))
    print(f"RabbitMQ configuration for chain {config.chain.id!r} in {plan.out}:")
    for w in result.written:
        print(w.line())
    for note in result.notes:
        print(f"note: {note}")
    print(f"\nCentral: point RabbitMQ at it (RABBITMQ_CONFIG_FILE={plan.out / 'rabbitmq.conf'} and "
          f"RABBITMQ_ENABLED_PLUGINS_FILE={plan.out / 'enabled_plugins'} in /etc/rabbitmq/rabbitmq-env.conf), "
          "make the folder readable by user rabbitmq, restart it; run 'callbell chain run' with the "
          f"environment of {plan.out / 'central.env'}.")
    print(f"Each store: copy stores/ID/chain-bridge.conf and ca.crt into its {Path(args.store_ca).parent} "
          "(0640 root:mosquitto) and include the bridge in its Mosquitto (docs/chain.md).")
    return 0


def cmd_store_config(args) -> int:
    from chain.store_config import write_store_chain_config
    from hub.config import load_store_config
    config = load_store_config(args.config)
    written = write_store_chain_config(config, args.broker_dir, args.bundle, local_port=args.local_port)
    print(f"Chain uplink for store {config.store.id!r} in {args.broker_dir}:")
    for w in written:
        print(w.line())
    print(f"\nThen: run 'callbell broker-config' again (it includes {args.broker_dir / 'chain'} and keeps the "
          "uplink's account), reload Mosquitto (sudo systemctl reload mosquitto; restart it the first time), set "
          "[chain] enabled = true in store.toml and give the hub the environment of "
          f"{args.broker_dir / 'uplink.env'} too (docs/chain.md).")
    return 0


def cmd_run(args) -> int:
    from chain.config import load_chain_config
    from chain.service import ChainService
    config = load_chain_config(args.config)
    ChainService(config, broker_url=args.broker, http_port=args.port).run()
    return 0


def add_parser(sub) -> None:
    """Add ``chain`` and its subcommands to callbell's command line."""
    from callbell.broker_files import DEFAULT_BROKER_DIR, LOCAL_PORT
    from chain.broker_config import DEFAULT_STORE_CHAIN_DIR
    c = sub.add_parser("chain", help="head office: the central broker, the consumer into ClickHouse, the chain page",
                       description="A chain of stores (docs/chain.md): store hubs send their event logs through "
                                   "their brokers' bridges to a central RabbitMQ; 'chain run' stores them in "
                                   "ClickHouse (embedded chDB unless [warehouse] url names a server) and serves "
                                   "the chain page.")
    s = c.add_subparsers(dest="chain_command", metavar="ACTION", required=True)
    b = s.add_parser("broker-config", help="write central RabbitMQ's config, accounts and every store's bridge",
                     description="Write rabbitmq.conf, enabled_plugins, definitions.json (per-store accounts held "
                                 "to their own topics), central.env (the consumer's URL) and stores/ID/"
                                 "chain-bridge.conf for every store of chain.toml. Re-running keeps passwords.")
    b.add_argument("--config", "-c", required=True, type=Path, help="chain config (TOML), e.g. examples/chain.toml")
    b.add_argument("--out", type=Path, default=DEFAULT_CENTRAL_DIR, help="folder to write (default: %(default)s)")
    b.add_argument("--host", help="central's name as stores reach it (default: chain.toml [broker] host)")
    b.add_argument("--make-certs", action="store_true", help="make a CA and a server certificate with openssl "
                                                             "(kept if present)")
    b.add_argument("--rotate", action="append", default=[], metavar="STORE",
                   help="new password for this store (or 'central'); repeatable")
    b.add_argument("--store-ca", default=f"{DEFAULT_STORE_CHAIN_DIR}/ca.crt",
                   help="where a store keeps central's CA certificate (default: %(default)s)")
    b.set_defaults(func=cmd_broker_config)
    t = s.add_parser("store-config", help="on a store's broker machine: install head office's bridge and the "
                                          "uplink's account",
                     description="Copy the bundle head office wrote for this store (chain-bridge.conf, ca.crt) into "
                                 "the store broker's chain/ folder, give the hub's uplink its own broker account "
                                 "(passwd, acl.local) and write uplink.env. Then re-run 'callbell broker-config'.")
    t.add_argument("--config", "-c", required=True, type=Path, help="the store config (TOML)")
    t.add_argument("--bundle", type=Path, help="the folder stores/ID/ from head office (default: use what is "
                                               "already in chain/)")
    t.add_argument("--broker-dir", type=Path, default=DEFAULT_BROKER_DIR,
                   help="the folder 'callbell broker-config' wrote (default: %(default)s)")
    t.add_argument("--local-port", type=int, default=LOCAL_PORT,
                   help="the store broker's plain listener on 127.0.0.1 (default: %(default)s)")
    t.set_defaults(func=cmd_store_config)
    r = s.add_parser("run", help="consume every store's events into ClickHouse and serve the chain page",
                     description="The consumer (RabbitMQ → ClickHouse, each store's mark back) and the chain "
                                 "page. The broker URL comes from CALLBELL_CHAIN_MQTT_URL, [mqtt] url or --broker.")
    r.add_argument("--config", "-c", required=True, type=Path, help="chain config (TOML)")
    r.add_argument("--broker", help="central's MQTT URL with the consumer's account, overriding the rest")
    r.add_argument("--port", type=int, help="HTTP port of the chain page (default: chain.toml [http] port)")
    r.set_defaults(func=cmd_run)

