"""The call state machine (hub.domain.call) on a fake clock: no broker, no disk, no waiting."""
import pytest

from callbell.clock import FakeClock
from hub.domain.call import DomainError, Floor, Room, Timing

ROOMS = [Room("room-1", "a"), Room("room-2", "a"), Room("room-3", "b", ("help",))]


@pytest.fixture
def clock():
    return FakeClock(1_000_000.0)


@pytest.fixture
def floor():
    return Floor(ROOMS, Timing(standard_s=90, expiry_s=900, handling_limit_s=600))


def press(floor, clock, room="room-1", reason="help", age_s=0.0):
    return floor.press(room, reason, clock.time() - age_s, clock.time(), "device", None)


def kinds(transitions):
    return [t.kind for t in transitions]


def test_a_press_opens_a_call_and_lights_the_lamp(floor, clock):
    t = press(floor, clock)
    call = floor.current("room-1")
    assert kinds(t) == ["pressed"]
    assert call.status == "open" and call.id == "c-000001" and call.zone == "a"
    assert floor.lamp("room-1").state == "called"
    assert floor.lamp("room-1").call == call.id
    assert floor.lamp("room-2").state == "idle"


def test_the_full_lifecycle_gives_the_right_response_and_handling_times(floor, clock):
    press(floor, clock)
    call = floor.current("room-1")
    clock.advance(12)
    floor.acknowledge(call.id, "ana", clock.time(), "phone")
    assert floor.lamp("room-1").state == "acknowledged" and floor.lamp("room-1").by == "ana"
    clock.advance(30)
    assert kinds(floor.presence("room-1", clock.time(), "device")) == ["answered"]
    assert call.answered_by == "ana"  # who acknowledged is taken to be who arrived
    clock.advance(100)
    assert kinds(floor.presence("room-1", clock.time(), "device")) == ["done"]
    assert (call.wait_ack_s, call.response_s, call.handling_s) == (12, 42, 100)
    assert call.status == "done" and floor.current("room-1") is None
    assert floor.lamp("room-1").state == "idle"


def test_pressing_again_while_waiting_is_a_reminder_not_a_second_call(floor, clock):
    press(floor, clock)
    clock.advance(40)
    t = press(floor, clock)
    assert kinds(t) == ["reminder"]
    call = floor.current("room-1")
    assert call.reminders == 1 and call.urgency == 2 and call.id == "c-000001"


def test_a_press_right_after_a_call_ended_opens_a_new_call(floor, clock):
    press(floor, clock)
    first = floor.current("room-1")
    floor.done(first.id, "ana", clock.time() + 5, "dashboard")
    clock.advance(6)
    press(floor, clock)
    assert floor.current("room-1").id == "c-000002"


def test_a_press_on_an_answered_call_closes_it_and_opens_a_new_one(floor, clock):
    press(floor, clock)
    first = floor.current("room-1")
    floor.presence("room-1", clock.time() + 20, "device", "ana")
    clock.advance(200)
    t = press(floor, clock)
    assert kinds(t) == ["done", "pressed"]
    assert first.status == "done" and first.auto_closed
    assert floor.current("room-1").id == "c-000002"


def test_holding_the_button_cancels_a_waiting_call(floor, clock):
    press(floor, clock)
    call = floor.current("room-1")
    assert kinds(floor.cancel("room-1", clock.time() + 3)) == ["cancelled"]
    assert call.status == "cancelled" and floor.lamp("room-1").state == "idle"


def test_cancel_on_an_idle_room_changes_nothing(floor, clock):
    assert floor.cancel("room-1", clock.time()) == []


def test_presence_on_an_idle_room_only_records_who_was_there(floor, clock):
    t = floor.presence("room-2", clock.time(), "device", "ben")
    assert kinds(t) == ["presence"] and t[0].actor == "ben" and t[0].call is None


def test_the_press_time_is_the_physical_press_not_the_arrival(floor, clock):
    press(floor, clock, age_s=25)
    call = floor.current("room-1")
    assert call.pressed_at == clock.time() - 25
    floor.presence("room-1", clock.time(), "device", "ana")
    assert call.response_s == 25


def test_a_call_turns_overdue_at_the_standard_and_the_lamp_says_so(floor, clock):
    press(floor, clock)
    clock.advance(89.9)
    assert floor.tick(clock.time()) == []
    clock.advance(0.1)
    assert kinds(floor.tick(clock.time())) == ["overdue"]
    assert floor.lamp("room-1").state == "overdue"
    assert floor.current("room-1").overdue


def test_a_call_nobody_answers_is_missed_at_the_expiry(floor, clock):
    press(floor, clock)
    clock.advance(900)
    t = floor.tick(clock.time())
    assert kinds(t) == ["overdue", "missed"]
    assert t[1].at == clock.time()  # missed exactly at the expiry, whenever the tick ran
    assert floor.current("room-1") is None


def test_a_press_delivered_after_the_expiry_is_stored_as_missed(floor, clock):
    t = press(floor, clock, age_s=2000)
    assert kinds(t) == ["pressed", "overdue", "missed"]


def test_an_answered_call_nobody_closes_is_closed_at_the_handling_limit(floor, clock):
    press(floor, clock)
    call = floor.current("room-1")
    floor.presence("room-1", clock.time() + 10, "device", "ana")
    clock.advance(10 + 600)
    assert kinds(floor.tick(clock.time())) == ["done"]
    assert call.auto_closed and call.handling_s == 600


def test_next_deadline_is_the_earliest_timer(floor, clock):
    assert floor.next_deadline() is None
    press(floor, clock)
    assert floor.next_deadline() == clock.time() + 90


def test_a_second_associate_cannot_acknowledge_a_taken_call(floor, clock):
    press(floor, clock)
    call = floor.current("room-1")
    floor.acknowledge(call.id, "ana", clock.time(), "phone")
    assert floor.acknowledge(call.id, "ana", clock.time(), "phone") == []  # repeat: no change
    with pytest.raises(DomainError) as e:
        floor.acknowledge(call.id, "ben", clock.time(), "phone")
    assert e.value.code == "conflict" and "ana" in e.value.message


def test_acting_on_a_closed_or_unknown_call_is_refused(floor, clock):
    with pytest.raises(DomainError) as e:
        floor.answer("c-999999", "ana", clock.time(), "phone")
    assert e.value.code == "not_found"


def test_a_decline_is_recorded_once(floor, clock):
    press(floor, clock)
    call = floor.current("room-1")
    assert kinds(floor.decline(call.id, "ana", clock.time(), "phone")) == ["declined"]
    assert floor.decline(call.id, "ana", clock.time(), "phone") == []
    assert call.declined == ["ana"]


def test_done_on_a_call_nobody_was_recorded_at_makes_up_no_arrival(floor, clock):
    press(floor, clock)
    call = floor.current("room-1")
    floor.acknowledge(call.id, "ana", clock.time() + 5, "phone")
    clock.advance(30)
    [t] = floor.done(call.id, "ana", clock.time(), "phone")  # "On my way", then "Done"
    assert (t.kind, t.detail) == ("done", {"arrival": "not recorded"})
    assert call.status == "done" and call.answered_at is None
    assert call.response_s is None and call.handling_s is None and call.wait_ack_s == 5


def test_unknown_rooms_and_reasons_are_refused(floor, clock):
    with pytest.raises(DomainError) as e:
        floor.press("nope", "help", clock.time(), clock.time())
    assert e.value.code == "unknown_room"
    with pytest.raises(DomainError) as e:
        floor.press("room-3", "size", clock.time(), clock.time())
    assert "no 'size' button" in e.value.message


def test_open_calls_are_restored_after_a_restart(floor, clock):
    press(floor, clock)
    press(floor, clock, room="room-2")
    active = floor.active_calls()
    again = Floor(ROOMS, floor.timing)
    again.restore(active, last_seq=2)
    assert [c.id for c in again.active_calls()] == ["c-000001", "c-000002"]
    again.press("room-3", "help", clock.time(), clock.time())
    assert again.current("room-3").id == "c-000003"


def test_changed_calls_are_reported_once(floor, clock):
    press(floor, clock)
    assert [c.id for c in floor.take_changed()] == ["c-000001"]
    assert floor.take_changed() == []
