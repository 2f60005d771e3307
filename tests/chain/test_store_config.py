"""``callbell chain store-config`` on a store's secured broker: the bridge included, the uplink
with an account of its own held to the chain topics."""
import getpass
import time

from callbell.broker import free_port
from callbell.mqtt import MqttLink
from chain.broker_config import CentralPlan, write_chain_broker_config
from chain.store_config import BLOCK_START, with_block
from tests.chain.harness import chain_config
from tests.helpers import wait_until, write_store
from tests.test_broker_security import AccountRecorder, SecuredBroker, callbell


def test_the_uplinks_block_in_acl_local_is_replaced_and_the_stores_own_lines_kept():
    once = with_block("user zigbee\ntopic read zigbee2mqtt/#\n", "BLOCK\n")
    assert once == "user zigbee\ntopic read zigbee2mqtt/#\n\nBLOCK\n"
    block = f"{BLOCK_START}\nuser callbell-uplink\n# -- end of the chain uplink --\n"
    twice = with_block(with_block("mine\n", block), block.replace("uplink\n", "uplink\ntopic read x\n"))
    assert twice.count(BLOCK_START) == 1 and "topic read x" in twice and twice.startswith("mine\n")


def test_store_config_gives_the_uplink_its_own_account_and_the_broker_the_bridge(tmp_path):
    out, local_port, tls_port = tmp_path / "broker", free_port(), free_port()
    store = write_store(tmp_path / "store.toml", broker_url=None, http_port=free_port(), store_id="berlin")
    central = CentralPlan(out=tmp_path / "central", host="localhost", store_ca=str(out / "chain" / "ca.crt"))
    write_chain_broker_config(chain_config(["berlin"]), central, certs=True)
    store_args = ["broker-config", "--config", str(store), "--out", str(out), "--host", "localhost", "--tls-port",
                  str(tls_port), "--local-port", str(local_port), "--data", str(tmp_path / "data"), "--user",
                  getpass.getuser()]
    assert callbell(*store_args, "--make-certs").returncode == 0
    r = callbell("chain", "store-config", "--config", str(store), "--broker-dir", str(out), "--bundle",
                 str(central.out / "stores" / "berlin"), "--local-port", str(local_port))
    assert r.returncode == 0, r.stderr
    assert callbell(*store_args).returncode == 0  # the store's own command, run again
    assert f"include_dir {out / 'chain'}" in (out / "mosquitto.conf").read_text()
    acl = (out / "acl").read_text()
    assert "user callbell-uplink\ntopic write callbell/berlin/chain/events\ntopic read callbell/berlin/chain/received" in acl
    url = (out / "uplink.env").read_text().split("CALLBELL_UPLINK_URL=", 1)[1].strip()
    again = callbell("chain", "store-config", "--config", str(store), "--broker-dir", str(out),
                     "--local-port", str(local_port))
    assert again.returncode == 0 and "same password" in again.stdout

    broker = SecuredBroker(out / "mosquitto.conf", tmp_path / "run", local_port).start()
    try:
        hub_url = (out / "hub.env").read_text().split("CALLBELL_MQTT_URL=", 1)[1].strip()
        seen = AccountRecorder(hub_url, ["callbell/berlin/#"])
        uplink = MqttLink(url, "callbell-uplink")
        uplink.start()
        assert uplink.wait_connected(10)
        uplink.publish("callbell/berlin/chain/events", b"range")
        uplink.publish("callbell/berlin/room/room-1/event", b"not the uplink's", qos=0)
        wait_until(lambda: seen.of("callbell/berlin/chain/events"), 10, what="the uplink's range at the broker")
        time.sleep(0.5)
        assert seen.of("callbell/berlin/room/room-1/event") == []
        uplink.stop()
        seen.close()
        assert "Connecting bridge" in (tmp_path / "run" / "mosquitto.log").read_text()
    finally:
        broker.stop()
