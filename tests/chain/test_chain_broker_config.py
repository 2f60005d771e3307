"""``callbell chain broker-config``: the files, and a real RabbitMQ and Mosquitto holding every
account to its own topics."""
import json
import time

import pytest

from callbell.broker import Broker
from callbell.chain_wire import ChainTopics
from app.cli import main
from callbell.mqtt import MqttLink
from chain.broker_config import CentralPlan, rabbit_hash, rabbit_verifies, store_user, write_chain_broker_config
from tests.chain.harness import Central, chain_config
from tests.helpers import Recorder, wait_until


def test_rabbit_hashes_verify_their_password_only():
    h = rabbit_hash("correct horse")
    assert rabbit_verifies("correct horse", h) and not rabbit_verifies("wrong", h)


def test_writes_central_config_and_a_bridge_per_store(tmp_path):
    config = chain_config(["berlin", "hamburg"])
    plan = CentralPlan(out=tmp_path / "central", host="central.acme.example")
    result = write_chain_broker_config(config, plan)
    conf = (plan.out / "rabbitmq.conf").read_text()
    for line in ("listeners.tcp = none", "mqtt.allow_anonymous = false", "mqtt.listeners.ssl.default = 8883",
                 "mqtt.listeners.tcp.local = 127.0.0.1:1883", f"definitions.local.path = {plan.definitions}"):
        assert line in conf
    bridge = (plan.out / "stores" / "berlin" / "chain-bridge.conf").read_text()
    for line in ("cleansession false", "try_private false", "bridge_protocol_version mqttv311",
                 "address central.acme.example:8883", "remote_username store-berlin", "bridge_insecure false",
                 "topic chain/events out 1 callbell/berlin/ callbell/berlin/",
                 "topic chain/received in 1 callbell/berlin/ callbell/berlin/",
                 "notification_topic callbell/berlin/chain/bridge", "notifications_local_only true"):
        assert line in bridge
    assert (plan.out / "stores" / "berlin" / "chain-bridge.conf").stat().st_mode & 0o777 == 0o640
    defs = json.loads(plan.definitions.read_text())
    topics = {t["user"]: t for t in defs["topic_permissions"]}
    assert topics["store-berlin"]["write"] == r"^callbell\.berlin\.chain\.events$"
    assert topics["store-berlin"]["read"] == r"^callbell\.berlin\.chain\.received$"
    assert {u["name"] for u in defs["users"]} == {"chain-central", "store-berlin", "store-hamburg"}
    assert any("no TLS certificate yet" in n for n in result.notes)


def test_a_second_run_keeps_passwords_and_rotate_and_removal_change_only_theirs(tmp_path):
    plan = CentralPlan(out=tmp_path / "central", host="central.example")
    write_chain_broker_config(chain_config(["berlin", "hamburg", "munich"]), plan)
    before = {u["name"]: u["password_hash"] for u in json.loads(plan.definitions.read_text())["users"]}
    result = write_chain_broker_config(chain_config(["berlin", "hamburg"]), plan, rotate=("hamburg",))
    after = {u["name"]: u["password_hash"] for u in json.loads(plan.definitions.read_text())["users"]}
    assert after["store-berlin"] == before["store-berlin"] and after["chain-central"] == before["chain-central"]
    assert after["store-hamburg"] != before["store-hamburg"]
    assert "store-munich" not in after and not (plan.out / "stores" / "munich").exists()
    assert any("removed the account of store-munich" in n for n in result.notes)


def test_the_command_reports_a_bad_config_in_one_line(tmp_path, capsys):
    bad = tmp_path / "chain.toml"
    bad.write_text('[chain]\nid = "acme"\n[[regions]]\nid = "north"\n[[stores]]\nid = "berlin"\nregion = "south"\n')
    assert main(["chain", "broker-config", "--config", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "stores[0].region: unknown region 'south'" in err and "Traceback" not in err


@pytest.fixture(scope="module")
def central(tmp_path_factory):
    c = Central(chain_config(["berlin", "hamburg"]), tmp_path_factory.mktemp("wh") / "warehouse").start(consume=False)
    yield c
    c.stop()


def _password(central, store: str) -> str:
    for line in central.bridge(store).splitlines():
        if line.startswith("remote_password "):
            return line.split(" ", 1)[1]
    raise AssertionError("no password in the bridge section")


def test_rabbitmq_holds_each_store_to_its_own_topics(central):
    got = []
    reader = MqttLink(central.url, "chain-central", subscriptions=[("callbell/+/chain/events", 1)], on_message=got.append)
    reader.start()
    assert reader.wait_connected(15)
    time.sleep(0.5)
    url = f"mqtt://{store_user('berlin')}:{_password(central, 'berlin')}@127.0.0.1:{central.local_port}?protocol=3"
    berlin = MqttLink(url, store_user("berlin"))
    berlin.start()
    assert berlin.wait_connected(10)
    berlin.publish(ChainTopics("callbell", "hamburg").events, b"not mine", qos=0)  # refused (QoS 0: paho would retry)
    time.sleep(1.0)
    if not berlin.connected:  # RabbitMQ closes a connection that publishes where it may not
        assert berlin.wait_connected(10)
    berlin.publish(ChainTopics("callbell", "berlin").events, b"mine")
    wait_until(lambda: got, 10, what="berlin's own range at central")
    time.sleep(0.5)
    assert [(m.topic, m.payload) for m in got] == [("callbell/berlin/chain/events", b"mine")]
    berlin.stop()
    reader.stop()


def test_rabbitmq_refuses_anonymous_clients_and_wrong_passwords(central):
    for url in (f"mqtt://127.0.0.1:{central.local_port}?protocol=3",
                f"mqtt://store-berlin:wrong@127.0.0.1:{central.local_port}?protocol=3"):
        link = MqttLink(url, "store-berlin")
        link.start()
        assert not link.wait_connected(3), url
        link.stop()


def test_head_office_has_no_path_into_a_store_only_its_mark_reaches_it(central, tmp_path):
    store = Broker(tmp_path / "store-broker", extra_config=central.bridge("berlin")).start()
    local = Recorder(store.url, ["callbell/#"])
    try:
        wait_until(lambda: b"1" in local.of("callbell/berlin/chain/bridge"), 20, what="the bridge up")
        hq = MqttLink(central.url, "chain-central")
        hq.start()
        assert hq.wait_connected(10)
        hq.publish("callbell/berlin/room/room-1/lamp", b'{"v": 1, "state": "called"}', qos=0)  # into the store: no
        time.sleep(1.5)
        if not hq.connected:
            assert hq.wait_connected(10)
        hq.publish(ChainTopics("callbell", "berlin").received, b'{"v": 1, "seq": 7}', retain=True)
        wait_until(lambda: local.of("callbell/berlin/chain/received"), 10, what="the mark at the store")
        time.sleep(0.5)
        assert {t for t, _, _ in local.messages} == {"callbell/berlin/chain/bridge", "callbell/berlin/chain/received"}
        hq.stop()
    finally:
        local.close()
        store.stop()


def test_the_consumer_records_bad_ranges_and_unknown_stores_and_goes_on(central, tmp_path):
    from callbell.chain_wire import ChainEvent, EventRange
    from chain.consumer import Consumer
    from chain.warehouse import ChdbWarehouse
    wh = ChdbWarehouse(tmp_path / "warehouse")
    wh.create_schema()
    consumer = Consumer(chain_config(["berlin"]), wh, central.url).start()  # hamburg: not in chain.toml
    try:
        assert consumer.link.wait_connected(15)
        links = {}
        for s in ("berlin", "hamburg"):
            url = f"mqtt://{store_user(s)}:{_password(central, s)}@127.0.0.1:{central.local_port}?protocol=3"
            links[s] = MqttLink(url, store_user(s))
            links[s].start()
            assert links[s].wait_connected(10)
        good = EventRange("berlin", 0, 1, (ChainEvent(seq=1, at=1.0, kind="pressed"),), "UTC", 90).to_json()
        links["berlin"].publish(ChainTopics("callbell", "berlin").events, b'{"v": 1, "store": "berlin", "events": [')
        links["hamburg"].publish(ChainTopics("callbell", "hamburg").events,
                                 EventRange("hamburg", 0, 1, (ChainEvent(seq=1, at=1.0, kind="pressed"),)).to_json())
        links["berlin"].publish(ChainTopics("callbell", "berlin").events, good)
        wait_until(lambda: wh.marks() == {"berlin": 1}, 15, what="berlin's good range stored after the bad ones")
        wait_until(lambda: len(wh.rows("SELECT * FROM rejected")) == 2, 10, what="two refusals recorded")
        reasons = {r[2]: r[3] for r in wh.rows("SELECT at, topic, store, reason FROM rejected")}
        assert "not valid JSON" in reasons["berlin"] and "unknown store 'hamburg'" in reasons["hamburg"]
        for link in links.values():
            link.stop()
    finally:
        consumer.stop()
        wh.close()
