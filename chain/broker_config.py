"""Both ends of a chain's transport, from ``chain.toml``: ``callbell chain broker-config``.

Central (the RabbitMQ node or cluster with the MQTT plugin), in the output folder:

- ``rabbitmq.conf``: MQTT only (no AMQP listener), over TLS for the stores, plain on
  127.0.0.1 for the consumer; no anonymous clients; durable sessions and a retained store;
  definitions (accounts) loaded at boot;
- ``enabled_plugins``: ``rabbitmq_mqtt``;
- ``definitions.json``: the virtual host, one account per store (``store-{id}``) and one for the
  consumer (``chain-central``), passwords hashed as RabbitMQ's SHA-256; each store may publish
  only ``{p}/{store}/chain/events`` and read only ``{p}/{store}/chain/received``, and use only
  its own session queue; the consumer reads every store's events and writes their marks;
- ``central.env``: the consumer's broker URL with its password (``CALLBELL_CHAIN_MQTT_URL``);
- ``certs/``: with ``--make-certs``, a CA and a server certificate (app.broker_config).

Each store, in ``stores/{id}/``: ``chain-bridge.conf``, the section its Mosquitto needs to
bridge out to central (TLS, outbound only, ``cleansession false``, QoS 1, its account), with
``ca.crt`` next to it. Re-running keeps every password that still matches its hash.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from callbell.broker import MAX_QUEUED_MESSAGES
from callbell.broker_files import FILE_MODES, Written, make_certs, new_password, write_file
from callbell.chain_wire import ChainTopics
from callbell.settings import ConfigError

#: The consumer's account on central (and its MQTT client id).
CENTRAL_USER = "chain-central"

#: Where a store keeps the files of ``stores/{id}/`` (docs/chain.md): next to its own broker files.
DEFAULT_STORE_CHAIN_DIR = "/etc/mosquitto/callbell/chain"

#: Unacknowledged messages RabbitMQ hands the consumer at once (its default is 10). A range is
#: up to 200 events, so 256 keep ~50,000 events in flight: enough for 50 stores at full rate
#: while the consumer writes one batch, and bounded so a slow consumer is not flooded.
PREFETCH = 256

#: How long RabbitMQ keeps the queue of a session that went away, milliseconds: two weeks,
#: like the stores' own broker (a store closed for a holiday keeps its place).
SUBSCRIPTION_TTL_MS = 14 * 24 * 3600 * 1000

#: How often RabbitMQ writes its retained messages (the marks) to disk, milliseconds. A mark
#: lost in a crash only makes a store resend a little: it is republished on reconnect anyway.
RETAINED_SYNC_MS = 1000

#: Mosquitto's bridge reconnect backoff, seconds: first retry, and the cap.
BRIDGE_RESTART_MIN_S, BRIDGE_RESTART_MAX_S = 1, 10
#: Bridge keepalive, seconds: a dead link to central is noticed within ~1.5× this.
BRIDGE_KEEPALIVE_S = 20

#: Salt of RabbitMQ's ``rabbit_password_hashing_sha256``, bytes (its own choice).
RABBIT_SALT_BYTES = 4


def store_user(store_id: str) -> str:
    return f"store-{store_id}"


def rabbit_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's SHA-256 password hash: base64(salt ‖ SHA-256(salt ‖ password))."""
    salt = salt if salt is not None else secrets.token_bytes(RABBIT_SALT_BYTES)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def rabbit_verifies(password: str | None, encoded: str | None) -> bool:
    if not password or not encoded:
        return False
    try:
        raw = base64.b64decode(encoded)
    except ValueError:
        return False
    salt = raw[:RABBIT_SALT_BYTES]
    return hmac.compare_digest(rabbit_hash(password, salt), encoded)


def routing_key(topic: str) -> str:
    """RabbitMQ's name for an MQTT topic: levels joined by dots (what topic permissions match)."""
    return topic.replace("/", ".")


@dataclass
class CentralPlan:
    """Where the files go and how stores and the consumer reach central."""
    out: Path
    host: str
    addresses: tuple[str, ...] = ()
    tls_port: int = 8883
    local_port: int = 1883  # 0: the consumer uses TLS too
    vhost: str = "callbell"
    store_ca: str = f"{DEFAULT_STORE_CHAIN_DIR}/ca.crt"
    store_dir: str = DEFAULT_STORE_CHAIN_DIR

    def __post_init__(self):
        self.out = Path(self.out).resolve()

    @property
    def certs(self) -> Path:
        return self.out / "certs"

    @property
    def definitions(self) -> Path:
        return self.out / "definitions.json"

    def bridge_addresses(self) -> str:
        return " ".join(self.addresses or (f"{self.host}:{self.tls_port}",))

    def central_url(self, password: str) -> str:
        if self.local_port:
            return f"mqtt://{CENTRAL_USER}:{password}@127.0.0.1:{self.local_port}?protocol=3"
        return (f"mqtts://{CENTRAL_USER}:{password}@{self.host}:{self.tls_port}"
                f"?protocol=3&ca={self.certs / 'ca.crt'}")


# -- central ----------------------------------------------------------------------------------
def rabbitmq_conf(plan: CentralPlan, chain_id: str) -> str:
    c = plan.certs
    lines = [
        f"# RabbitMQ for the Callbell chain {chain_id!r}, written by 'callbell chain broker-config'.",
        "# Edits here are overwritten: change chain.toml and run it again (docs/chain.md).",
        "",
        "# MQTT only: no AMQP listener. Stores bridge in over TLS; the consumer on this machine",
        "# connects without TLS on the loopback address (still with its account).",
        "listeners.tcp = none",
        f"mqtt.listeners.ssl.default = {plan.tls_port}",
    ]
    if plan.local_port:
        lines.append(f"mqtt.listeners.tcp.local = 127.0.0.1:{plan.local_port}")
    else:
        lines.append("mqtt.listeners.tcp = none")
    lines += [
        f"ssl_options.cacertfile = {c / 'ca.crt'}",
        f"ssl_options.certfile = {c / 'server.crt'}",
        f"ssl_options.keyfile = {c / 'server.key'}",
        "ssl_options.versions.1 = tlsv1.2",
        "ssl_options.verify = verify_none",
        "ssl_options.fail_if_no_peer_cert = false",
        "mqtt.tcp_listen_options.nodelay = true",
        "",
        "# Every client signs in with its own account (definitions.json) and is held to its",
        "# topic permissions.",
        "mqtt.allow_anonymous = false",
        f"mqtt.vhost = {plan.vhost}",
        "mqtt.exchange = amq.topic",
        "",
        "# Sessions (cleansession false) keep their queue for two weeks; QoS 1 messages in it are",
        "# persistent, so a node killed and started again still has them.",
        f"mqtt.subscription_ttl = {SUBSCRIPTION_TTL_MS}",
        f"mqtt.prefetch = {PREFETCH}",
        "",
        "# Central's marks (chain/received) are retained: a store's bridge reads its mark on",
        "# every connect.",
        "mqtt.retained_message_store = rabbit_mqtt_retained_msg_store_dets",
        f"mqtt.retained_message_store_dets_sync_interval = {RETAINED_SYNC_MS}",
        "",
        "# Accounts and permissions, loaded at every boot.",
        "definitions.import_backend = local_filesystem",
        f"definitions.local.path = {plan.definitions}",
        "",
    ]
    return "\n".join(lines)


def definitions(config, plan: CentralPlan, hashes: dict[str, str]) -> dict:
    """RabbitMQ definitions: the vhost, the accounts with ``hashes`` (user → hash), their
    permissions on queues and their topic permissions (regexes over routing keys)."""
    p = config.mqtt.prefix
    users, permissions, topics = [], [], []
    for user, encoded in hashes.items():
        users.append({"name": user, "password_hash": encoded,
                      "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ""})
    # An MQTT session is a queue mqtt-subscription-{client id}qos{0,1} bound to amq.topic;
    # configure to declare it, write to bind it, read on the exchange to bind and consume.
    for user in hashes:
        queue = rf"mqtt-subscription-{re.escape(user)}qos[01]"
        permissions.append({"user": user, "vhost": plan.vhost, "configure": f"^{queue}$",
                            "write": rf"^(amq\.topic|{queue})$", "read": rf"^(amq\.topic|{queue})$"})
    for s in config.stores:
        t = ChainTopics(p, s.id)
        topics.append({"user": store_user(s.id), "vhost": plan.vhost, "exchange": "amq.topic",
                       "write": f"^{re.escape(routing_key(t.events))}$",
                       "read": f"^{re.escape(routing_key(t.received))}$"})
    topics.append({"user": CENTRAL_USER, "vhost": plan.vhost, "exchange": "amq.topic",
                   "write": rf"^{re.escape(p)}\.[^.]+\.chain\.received$",
                   "read": rf"^{re.escape(p)}\.[^.]+\.chain\.events$"})
    return {"rabbit_version": "3.10.8", "vhosts": [{"name": plan.vhost}], "users": users,
            "permissions": permissions, "topic_permissions": topics,
            "queues": [], "exchanges": [], "bindings": [], "policies": [], "parameters": []}


# -- a store's bridge ---------------------------------------------------------------------------
def bridge_conf(config, plan: CentralPlan, store_id: str, password: str) -> str:
    """The Mosquitto section that bridges store ``store_id`` out to central."""
    p = config.mqtt.prefix
    t = ChainTopics(p, store_id)
    local = f"{p}/{store_id}/"
    lines = [
        f"# Bridge of store {store_id!r} to the Callbell chain {config.chain.id!r}, written by",
        "# 'callbell chain broker-config' at head office. It holds the store's central password:",
        "# keep it readable by root and Mosquitto only (0640 root:mosquitto).",
        "#",
        "# Outbound only: the store connects to central; nothing connects to the store. The",
        "# store broker's main file must keep persistence on and max_queued_messages raised",
        f"# ({MAX_QUEUED_MESSAGES} from 'callbell broker-config'): the bridge queues while central is",
        "# away, and the default (1000) silently drops the rest.",
        f"connection chain-{config.chain.id}",
        f"address {plan.bridge_addresses()}",
        "round_robin false",
        "bridge_protocol_version mqttv311",
        "# RabbitMQ refuses Mosquitto's private bridge flag.",
        "try_private false",
        "# A durable session at central (and locally): QoS 1 messages wait on both sides.",
        "cleansession false",
        f"remote_clientid {store_user(store_id)}",
        f"local_clientid chain-bridge-{store_id}",
        f"remote_username {store_user(store_id)}",
        f"remote_password {password}",
        f"bridge_cafile {plan.store_ca}",
        "bridge_tls_version tlsv1.2",
        "bridge_insecure false",
        f"keepalive_interval {BRIDGE_KEEPALIVE_S}",
        f"restart_timeout {BRIDGE_RESTART_MIN_S} {BRIDGE_RESTART_MAX_S}",
        "start_type automatic",
        "# The bridge's state (1 up, 0 down), retained for the hub's uplink; not sent to central.",
        "notifications true",
        "notifications_local_only true",
        f"notification_topic {t.bridge}",
        "# The store's event log up, central's mark down; both QoS 1.",
        f"topic chain/events out 1 {local} {local}",
        f"topic chain/received in 1 {local} {local}",
        "",
    ]
    return "\n".join(lines)


def _password_in_bridge(path: Path) -> str | None:
    try:
        m = re.search(r"^remote_password (\S+)$", path.read_text(), re.M)
    except OSError:
        return None
    return m.group(1) if m else None


def _password_in_env(path: Path) -> str | None:
    try:
        m = re.search(rf"//{CENTRAL_USER}:([^@\s]+)@", path.read_text())
    except OSError:
        return None
    return m.group(1) if m else None


def _old_hashes(path: Path) -> dict[str, str]:
    try:
        return {u["name"]: u["password_hash"] for u in json.loads(path.read_text()).get("users", [])}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


@dataclass
class Result:
    written: list[Written]
    notes: list[str]


def write_chain_broker_config(config, plan: CentralPlan, *, certs: bool = False,
                              rotate: tuple[str, ...] = ()) -> Result:
    """Write (or refresh) central's files and every store's bridge section; see the module
    docstring. ``rotate``: store ids (or ``central``) that get a new password."""
    known = {"central"} | {s.id for s in config.stores}
    for r in rotate:
        if r not in known:
            raise ConfigError(f"--rotate: no store {r!r} in chain.toml (give a store id, or 'central')")
    plan.out.mkdir(parents=True, exist_ok=True)
    written: list[Written] = []
    notes: list[str] = []
    if certs:
        written += make_certs(plan.certs, plan.host, f"chain {config.chain.id}")
    elif not (plan.certs / "server.crt").exists():
        notes.append(f"no TLS certificate yet: run again with --make-certs, or put ca.crt, server.crt and "
                     f"server.key into {plan.certs}")
    old = _old_hashes(plan.definitions)
    hashes: dict[str, str] = {}

    env = plan.out / "central.env"
    password = None if "central" in rotate else _password_in_env(env)
    kept = rabbit_verifies(password, old.get(CENTRAL_USER))
    if not kept:
        password = new_password()
    hashes[CENTRAL_USER] = old[CENTRAL_USER] if kept else rabbit_hash(password)
    write_file(env, "# The chain consumer's broker URL, read by 'callbell chain run' (systemd: EnvironmentFile=).\n"
                    f"CALLBELL_CHAIN_MQTT_URL={plan.central_url(password)}\n", FILE_MODES["hub.env"])
    written.append(Written(env, f"the consumer's broker URL ({'same' if kept else 'new'} password)"))

    ca = plan.certs / "ca.crt"
    for s in config.stores:
        folder = plan.out / "stores" / s.id
        bridge = folder / "chain-bridge.conf"
        user = store_user(s.id)
        password = None if s.id in rotate else _password_in_bridge(bridge)
        kept = rabbit_verifies(password, old.get(user))
        if not kept:
            password = new_password()
        hashes[user] = old[user] if kept else rabbit_hash(password)
        write_file(bridge, bridge_conf(config, plan, s.id, password), 0o640)
        written.append(Written(bridge, f"store {s.id}: its bridge to central ({'same' if kept else 'new'} password)"))
        if ca.exists():
            write_file(folder / "ca.crt", ca.read_text(), FILE_MODES["ca.crt"])
    gone = sorted(set(old) - set(hashes))
    for user in gone:
        notes.append(f"removed the account of {user} (no longer in chain.toml)")
    for stale in sorted((plan.out / "stores").iterdir()) if (plan.out / "stores").exists() else ():
        if stale.is_dir() and stale.name not in {s.id for s in config.stores}:
            shutil.rmtree(stale)

    write_file(plan.definitions, json.dumps(definitions(config, plan, hashes), indent=2) + "\n", 0o640)
    written.append(Written(plan.definitions, f"{len(hashes)} account(s) with their topic permissions"))
    write_file(plan.out / "enabled_plugins", "[rabbitmq_mqtt].\n", 0o644)
    written.append(Written(plan.out / "enabled_plugins", "the MQTT plugin"))
    conf = plan.out / "rabbitmq.conf"
    write_file(conf, rabbitmq_conf(plan, config.chain.id), 0o644)
    written.append(Written(conf, f"MQTT over TLS on {plan.tls_port}" +
                           (f", consumer on 127.0.0.1:{plan.local_port}" if plan.local_port else "")))
    return Result(written, notes)
