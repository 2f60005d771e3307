"""The wire contract (callbell.protocol): topics and payloads, strict where it matters."""
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbell.protocol import Event, LampState, ProtocolError, Rejection, Topics

T = Topics("callbell", "store-1")


def test_topics_follow_protocol_v1():
    assert T.event("fitting-1") == "callbell/store-1/room/fitting-1/event"
    assert T.lamp("fitting-1") == "callbell/store-1/room/fitting-1/lamp"
    assert T.device_status("pi-a") == "callbell/store-1/device/pi-a/status"
    assert T.device_health("pi-a") == "callbell/store-1/device/pi-a/health"
    assert T.hub_status == "callbell/store-1/hub/status"
    assert T.hub_rejected == "callbell/store-1/hub/rejected"
    assert T.associate_location("ana") == "callbell/store-1/associate/ana/location"
    assert T.call("c-000001") == "callbell/store-1/call/c-000001"
    assert T.all_events == "callbell/store-1/room/+/event"


def test_topics_parse_back_to_kind_and_id():
    assert T.parse(T.event("r1")) == ("event", "r1")
    assert T.parse(T.device_status("pi-a")) == ("status", "pi-a")
    assert T.parse(T.hub_status) == ("hub-status", "")


@pytest.mark.parametrize("topic", ["other/store-1/room/r1/event", "callbell/store-1/room/R1/event",
                                   "callbell/store-1/room/r1/evil", "callbell/store-1/room/r1/event/x"])
def test_foreign_or_malformed_topics_are_refused(topic):
    with pytest.raises(ProtocolError):
        T.parse(topic)


def test_the_example_event_of_the_spec_parses():
    e = Event.from_json(b'{"v": 1, "id": "pi-fitting-a-7f3c-000123", "device": "pi-fitting-a", '
                        b'"type": "call", "reason": "help", "age_ms": 0, "at": 1763800000.125}')
    assert (e.id, e.device, e.type, e.reason, e.age_ms, e.at) == (
        "pi-fitting-a-7f3c-000123", "pi-fitting-a", "call", "help", 0, 1763800000.125)


def test_a_call_without_reason_means_help_and_extra_fields_are_ignored():
    e = Event.from_json(json.dumps({"v": 1, "id": "d-x", "device": "d", "type": "call", "age_ms": 5, "new": 1}))
    assert e.reason == "help"


@pytest.mark.parametrize("payload, words", [
    (b"not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"v": 2, "id": "x", "device": "d", "type": "call", "age_ms": 0}', "'v' must be 1"),
    (b'{"v": 1, "device": "d", "type": "call", "age_ms": 0}', "'id'"),
    (b'{"v": 1, "id": "x", "device": "D!", "type": "call", "age_ms": 0}', "'device'"),
    (b'{"v": 1, "id": "x", "device": "d", "type": "boom", "age_ms": 0}', "'type'"),
    (b'{"v": 1, "id": "x", "device": "d", "type": "call", "age_ms": -1}', "'age_ms'"),
    (b'{"v": 1, "id": "x", "device": "d", "type": "call", "age_ms": "0"}', "'age_ms'"),
    (b'{"v": 1, "id": "x", "device": "d", "type": "call", "age_ms": true}', "'age_ms'"),
    (b'{"v": 1, "id": "x", "device": "d", "type": "call"}', "'age_ms'"),
    (b'{"v": 1, "id": "' + b"x" * 65 + b'", "device": "d", "type": "call", "age_ms": 0}', "'id'"),
    (b'{"v": 1, "id": "x", "device": "d", "type": "call", "age_ms": 0, "badge": "b"}', "'badge'"),
    (b"[" * 5000 + b"]" * 5000, "limit"),
    (b"\xff\xfe", "not valid JSON"),
])
def test_bad_events_are_refused_with_a_reason(payload, words):
    with pytest.raises(ProtocolError) as e:
        Event.from_json(payload)
    assert words in str(e.value)


def test_deeply_nested_json_is_refused_not_crashed():
    with pytest.raises(ProtocolError):
        Event.from_json(b"[" * 2000 + b"]" * 2000)


def test_lamp_state_round_trips():
    lamp = LampState("acknowledged", "c-000184", "help", 1763800000.14, "ana")
    assert LampState.from_json(lamp.to_json()) == lamp
    assert json.loads(lamp.to_json()) == {"v": 1, "state": "acknowledged", "call": "c-000184",
                                          "reason": "help", "since": 1763800000.14, "by": "ana"}


def test_a_rejection_echoes_only_a_short_excerpt():
    r = Rejection.of("t", "bad", b"x" * 10_000)
    body = json.loads(r.to_json())
    assert body["topic"] == "t" and body["reason"] == "bad" and len(body["excerpt"]) == 200


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.binary(max_size=600), st.text(max_size=300).map(str.encode),
                 st.dictionaries(st.sampled_from(["v", "id", "device", "type", "age_ms", "reason", "at", "badge"]),
                                 st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                                           st.text(max_size=70), st.lists(st.integers(), max_size=3)),
                                 max_size=8).map(lambda d: json.dumps(d).encode())))
def test_the_event_decoder_never_fails_other_than_with_a_protocol_error(payload):
    try:
        e = Event.from_json(payload)
    except ProtocolError:
        return
    assert e.type in ("call", "cancel", "presence") and e.age_ms >= 0


def test_time_held_at_the_broker_counts_only_when_the_sender_declared_its_expiry():
    from callbell.protocol import EVENT_EXPIRY_S, held_at_broker_s
    assert held_at_broker_s(EVENT_EXPIRY_S, EVENT_EXPIRY_S - 300) == 300
    assert held_at_broker_s(EVENT_EXPIRY_S, EVENT_EXPIRY_S) == 0
    assert held_at_broker_s(None, 3600) == 0  # a third-party expiry we cannot interpret
    assert held_at_broker_s(3600, 3000) == 600
    assert held_at_broker_s(EVENT_EXPIRY_S, None) == 0  # MQTT 3.1.1: no expiry on arrival
    assert held_at_broker_s(60, 120) == 0  # nonsense: more left than declared
