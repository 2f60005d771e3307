"""store.toml's [chain] section and where the uplink's broker URL comes from."""
import pytest

from callbell.settings import ConfigError
from hub.config import load_store_config
from hub.uplink import URL_VARIABLE, Uplink
from tests.helpers import write_store


def test_a_bad_chain_section_is_a_config_error_naming_the_key(tmp_path):
    for extra, words in (('[chain]\nenabled = true\nurl = "http://hub"\n', "chain.url"),
                         ("[chain]\nenabled = true\nwindow = 10\n", "chain.window"),
                         ("[chain]\nenabel = true\n", "chain.enabel: unknown key")):
        path = write_store(tmp_path / "store.toml", broker_url=None, http_port=8080, extra="\n" + extra)
        with pytest.raises(ConfigError, match=words.replace(".", r"\.")):
            load_store_config(path)


def test_the_uplink_takes_the_environment_then_the_section_then_the_hubs_broker(tmp_path, monkeypatch):
    path = write_store(tmp_path / "store.toml", broker_url=None, http_port=8080, store_id="berlin",
                       extra='\n[chain]\nenabled = true\nurl = "mqtt://uplink@127.0.0.1:1884"\nresend_after_s = 7\n')
    config = load_store_config(path)
    monkeypatch.delenv(URL_VARIABLE, raising=False)
    u = Uplink.from_config(config, "mqtt://127.0.0.1:1883")
    assert (str(u.link.address), u.plan.resend_after_s, u.topics.events) == (
        "mqtt://127.0.0.1:1884", 7, "callbell/berlin/chain/events")
    monkeypatch.setenv(URL_VARIABLE, "mqtt://callbell-uplink:pw@127.0.0.1:1885")
    assert Uplink.from_config(config, "mqtt://127.0.0.1:1883").link.address.port == 1885
    monkeypatch.delenv(URL_VARIABLE)
    config.chain.url = None
    assert Uplink.from_config(config, "mqtt://127.0.0.1:1883").link.address.port == 1883
