"""A store's side of the chain: ``callbell chain store-config``, run on the store's broker
machine after ``callbell broker-config`` (docs/chain.md).

In the store's broker folder (default ``/etc/mosquitto/callbell``) it

- copies head office's bundle for this store (``chain-bridge.conf``, ``ca.crt``) into
  ``chain/``, which the store's ``mosquitto.conf`` then includes (``callbell broker-config``
  adds ``include_dir`` when the folder exists);
- gives the hub's uplink an account of its own, ``callbell-uplink`` (the store broker names
  every client after its account, so the uplink cannot share the hub's), in ``passwd``, hashed;
- writes its ACL into a marked block of ``acl.local``, which ``callbell broker-config`` appends
  to ``acl``: publish the store's ``chain/events``, read ``chain/received`` and ``chain/bridge``,
  nothing else;
- writes ``uplink.env``: ``CALLBELL_UPLINK_URL`` with the password, for the hub's service.

Then run ``callbell broker-config`` again (it keeps the account and includes the bridge) and
reload Mosquitto. Re-running keeps the password while it still matches its hash.
"""
from __future__ import annotations

import re
from pathlib import Path

from callbell.broker_files import (FILE_MODES, LOCAL_PORT, PasswordFile, Written, password_in, new_password,
                                    write_file)
from callbell.chain_wire import ChainTopics
from callbell.settings import ConfigError

#: The uplink's account on the store broker.
UPLINK_USER = "callbell-uplink"

#: The lines around the uplink's block in acl.local (the rest of the file is the store's own).
BLOCK_START = "# -- chain uplink: written by 'callbell chain store-config' (edits inside are replaced) --"
BLOCK_END = "# -- end of the chain uplink --"


def uplink_acl(config) -> str:
    t = ChainTopics(config.mqtt.prefix, config.store.id)
    return "\n".join([BLOCK_START, f"user {UPLINK_USER}", f"topic write {t.events}", f"topic read {t.received}",
                      f"topic read {t.bridge}", BLOCK_END, ""])


def with_block(text: str, block: str) -> str:
    """``text`` (acl.local) with the uplink's block replaced, or appended if it has none."""
    pattern = re.compile(re.escape(BLOCK_START) + r".*?" + re.escape(BLOCK_END) + r"\n?", re.S)
    if pattern.search(text):
        return pattern.sub(lambda m: block, text, count=1)
    return (text.rstrip("\n") + "\n\n" if text.strip() else "") + block


def write_store_chain_config(config, broker_dir: Path, bundle: Path | None = None, *,
                             local_port: int = LOCAL_PORT) -> list[Written]:
    broker_dir = Path(broker_dir)
    passwd_path = broker_dir / "passwd"
    if not passwd_path.exists():
        raise ConfigError(f"{passwd_path}: no such file: run 'callbell broker-config' first (or give --broker-dir)")
    written: list[Written] = []
    chain_dir = broker_dir / "chain"
    if bundle is not None:
        bridge = Path(bundle) / "chain-bridge.conf"
        if not bridge.exists():
            raise ConfigError(f"--bundle: no chain-bridge.conf in {bundle} (head office's "
                              f"'callbell chain broker-config' writes stores/{config.store.id}/)")
        text = bridge.read_text()
        if f"remote_username store-{config.store.id}\n" not in text:
            raise ConfigError(f"--bundle: {bridge} is not the bridge of store {config.store.id!r}")
        write_file(chain_dir / "chain-bridge.conf", text, 0o640)
        written.append(Written(chain_dir / "chain-bridge.conf", "the bridge to central (included by mosquitto.conf)"))
        if (Path(bundle) / "ca.crt").exists():
            write_file(chain_dir / "ca.crt", (Path(bundle) / "ca.crt").read_text(), FILE_MODES["ca.crt"])
            written.append(Written(chain_dir / "ca.crt", "central's CA certificate"))
    elif not (chain_dir / "chain-bridge.conf").exists():
        raise ConfigError(f"{chain_dir}/chain-bridge.conf missing: give --bundle with the folder head office sent")

    passwd = PasswordFile.load(passwd_path)
    env = broker_dir / "uplink.env"
    password = password_in(env, UPLINK_USER)
    kept = passwd.verifies(UPLINK_USER, password)
    if not kept:
        password = new_password()
        passwd.set(UPLINK_USER, password)
        write_file(passwd_path, passwd.text(), FILE_MODES["passwd"])
        written.append(Written(passwd_path, f"account {UPLINK_USER} added"))
    write_file(env, "# The hub's chain uplink account, read by 'callbell hub' (systemd: EnvironmentFile=).\n"
                    f"CALLBELL_UPLINK_URL=mqtt://{UPLINK_USER}:{password}@127.0.0.1:{local_port}\n", FILE_MODES["hub.env"])
    written.append(Written(env, f"the uplink's broker URL ({'same' if kept else 'new'} password)"))
    local = broker_dir / "acl.local"
    write_file(local, with_block(local.read_text() if local.exists() else "", uplink_acl(config)), FILE_MODES["acl"])
    written.append(Written(local, "the uplink's topics (appended to acl by 'callbell broker-config')"))
    return written
